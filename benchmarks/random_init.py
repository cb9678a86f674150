"""Benchmark: how strong is the random-init baseline, with and without batch-norm statistics?

    python benchmarks/random_init.py --ckpt runs/demo/checkpoints/last.ckpt [--seeds 0,1,2] [--clips 4]

A freshly initialised backbone in eval mode normalises with its initial running statistics
(mean 0, variance 1), not with statistics of the data; the linear probe reports it both ways
(``random-init``: statistics re-estimated on the training clips, the baseline margins use;
``random-init-initial-bn``). This script is an independent readout of the same comparison, on the
checkpoint's dataset (train split to fit, test split to score):

* the pre-trained encoder;
* the random-init encoder with its initial batch-norm statistics;
* the same random weights with batch-norm statistics re-estimated on the training clips
  (a cumulative average over one pass of the train split's evaluation views).

All three through one readout (``stream_ssl.linear_top1``): per-video features (mean over
``--clips`` clips), L2-normalised and standardised, a linear classifier trained with Adam (300
full-batch steps), test top-1 % per readout (fused, audio, video). The numbers are comparable with each other, not with
``avssl test``'s (a different classifier). The difference between the last two rows is how much of
"pre-trained minus random-init" is only the batch-norm statistics.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from stream_ssl import linear_top1  # noqa: E402

from avssl.evaluation.encoder import PretrainedEncoder, load_encoder  # noqa: E402
from avssl.evaluation.features import Features, encoder_datamodule, extract_features  # noqa: E402
from avssl.models.backbone import TwoStreamBackbone  # noqa: E402

READOUTS = ("fused", "audio", "video")


def encode(encoder: PretrainedEncoder, data, clips: int) -> dict[str, Features]:
    """The encoder's per-video features of the train and test splits (mean over ``clips``)."""
    common = {"datamodule": data, "clips": clips, "batch_size": data.batch_size, "num_workers": data.num_workers, "device": "cpu"}
    return {split: extract_features(encoder, split=split, **common) for split in ("train", "test")}


def readout(features: dict[str, Features], seed: int) -> dict[str, float]:
    """Test top-1 % per readout of a linear classifier on per-video features."""
    train, test = features["train"], features["test"]
    return {
        name: linear_top1(getattr(train, name)[:, None], train.labels, getattr(test, name)[:, None], test.labels, seed) for name in READOUTS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="a pre-training checkpoint (its dataset and input settings are used)")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the random weights (and of the classifiers)")
    parser.add_argument("--clips", type=int, default=4, help="clips per video")
    args = parser.parse_args()
    pretrained = load_encoder(args.ckpt, field_name="--ckpt")
    data = encoder_datamodule(pretrained, batch_size=32, num_workers=1)
    data.setup("fit")
    data.setup("test")

    def encoder(backbone: TwoStreamBackbone) -> PretrainedEncoder:
        return PretrainedEncoder(backbone=backbone, path=args.ckpt, sha256="", architecture=pretrained.architecture, data=pretrained.data)

    print(f"{'encoder':<46} {'seed':>4} " + " ".join(f"{r:>7}" for r in READOUTS))
    pretrained_features = encode(pretrained, data, args.clips)  # the same for every seed
    transform = data.views.transform()
    for seed in (int(s) for s in args.seeds.split(",")):
        torch.manual_seed(seed)
        random = TwoStreamBackbone(pretrained.architecture).eval()
        rows = {
            "pre-trained": pretrained_features,
            "random-init, initial batch-norm statistics": encode(encoder(random), data, args.clips),
            "random-init, statistics of the training clips": encode(
                encoder(copy.deepcopy(random).estimate_norm_statistics(transform.eval_views(b) for b in data.train_dataloader())),
                data,
                args.clips,
            ),
        }
        for name, features in rows.items():
            top1 = readout(features, seed)
            print(f"{name:<46} {seed:>4} " + " ".join(f"{top1[r]:7.1f}" for r in READOUTS), flush=True)


if __name__ == "__main__":
    main()

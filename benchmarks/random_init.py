"""Benchmark: how strong is the random-init baseline, with and without batch-norm statistics?

    python benchmarks/random_init.py --ckpt runs/demo/checkpoints/last.ckpt [--seeds 0,1,2] [--clips 4]

The linear probe's random-init encoder (``baselines: true``) is a freshly initialised backbone in
eval mode: its batch-norm layers normalise with their initial running statistics (mean 0,
variance 1), not with statistics of the data. This script reads out, on the checkpoint's dataset
(train split to fit, test split to score):

* the pre-trained encoder;
* the random-init encoder as the probe uses it (initial batch-norm statistics);
* the same random weights with batch-norm statistics re-estimated on the training clips
  (a cumulative average over one pass of the train split's evaluation views).

All three through one readout: per-video features (mean over ``--clips`` clips), L2-normalised and
standardised, a linear classifier trained with Adam (300 full-batch steps), test top-1 % per
readout (fused, audio, video). The numbers are comparable with each other, not with
``avssl test``'s (a different classifier). The difference between the last two rows is how much of
"pre-trained minus random-init" is only the batch-norm statistics.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avssl.evaluation.encoder import PretrainedEncoder, load_encoder  # noqa: E402
from avssl.evaluation.features import encoder_datamodule, extract_features  # noqa: E402
from avssl.models.backbone import TwoStreamBackbone  # noqa: E402

READOUTS = ("fused", "audio", "video")


def readout(encoder: PretrainedEncoder, data, clips: int, seed: int) -> dict[str, float]:
    """Test top-1 % per readout of a linear classifier on the encoder's per-video features."""
    common = {"datamodule": data, "clips": clips, "batch_size": data.batch_size, "num_workers": data.num_workers, "device": "cpu"}
    train = extract_features(encoder, split="train", **common)
    test = extract_features(encoder, split="test", **common)
    top1 = {}
    for name in READOUTS:
        x_train, x_test = F.normalize(getattr(train, name), dim=1), F.normalize(getattr(test, name), dim=1)
        mean, std = x_train.mean(0), x_train.std(0) + 1e-6
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
        torch.manual_seed(seed)
        classifier = nn.Linear(x_train.shape[1], int(train.labels.max()) + 1)
        optimizer = torch.optim.Adam(classifier.parameters(), lr=1e-2, weight_decay=1e-4)
        for _ in range(300):
            optimizer.zero_grad()
            F.cross_entropy(classifier(x_train), train.labels).backward()
            optimizer.step()
        with torch.no_grad():
            top1[name] = 100 * (classifier(x_test).argmax(1) == test.labels).float().mean().item()
    return top1


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
    for seed in (int(s) for s in args.seeds.split(",")):
        torch.manual_seed(seed)
        random = TwoStreamBackbone(pretrained.architecture).eval()
        rows = {
            "pre-trained": pretrained,
            "random-init, initial batch-norm statistics": encoder(random),
            "random-init, statistics of the training clips": encoder(
                copy.deepcopy(random).estimate_norm_statistics(data.transform.eval_views(batch) for batch in data.train_dataloader())
            ),
        }
        for name, enc in rows.items():
            top1 = readout(enc, data, args.clips, seed)
            print(f"{name:<46} {seed:>4} " + " ".join(f"{top1[r]:7.1f}" for r in READOUTS), flush=True)


if __name__ == "__main__":
    main()

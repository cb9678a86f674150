"""Benchmark: what do the cross-modal projectors of a checkpoint match, on training and on unseen videos?

    python benchmarks/crossmodal.py --ckpt CKPT [--config configs/demo.yaml ...]

For a checkpoint trained with ``model.init_args.cross_modal_weight > 0`` (its data settings given by
``--config``, composed after ``configs/simclr.yaml``), every video of the train and the test split
is cut into clips starting at 0, 0.5, 1.0, ... s plus a phase of 0, 0.1, ..., 0.4 s (5 phases),
decoded with the evaluation views (centre crop, no augmentation), and embedded by the encoders
and the two cross-modal projectors in eval mode. Per split it prints:

* own-clip retrieval: the rank of a clip's own video embedding among all the split's video
  embeddings for its audio embedding (0 = best; a random embedding gives about (clips - 1) / 2),
  and how often it is the best;
* for the best video embedding from *another* video: how often it has the query's class
  (chance 1 / classes) and the query's phase (chance 1 / 5), i.e. whether the two streams are
  matched by class or by where the synthetic data's 0.5-s nuisance redraws fall in the clip.

A term that learned the class would show class agreement well above chance on test videos; one
that memorised the training videos shows own-clip retrieval far better on train than on test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from streams import demo_setup  # noqa: E402

from avssl import methods  # noqa: E402
from avssl.methods.base import SSLMethod  # noqa: E402

PHASES = (0.0, 0.1, 0.2, 0.3, 0.4)


@torch.no_grad()
def embed(model: SSLMethod, data, split: str) -> dict[str, torch.Tensor]:
    """Cross-modal embeddings of every clip of ``split`` at every phase, with video index, class, phase."""
    dataset = data.dataset(split, train=False)
    last_start = min(info.duration for info in dataset.infos) - data.clip.clip_seconds
    out = {k: [] for k in ("audio", "video", "index", "label", "phase")}
    transform = data.views.transform()
    for p, phase in enumerate(PHASES):
        starts = np.arange(0.0, last_start - phase + 1e-9, 0.5) + phase
        dataset.clip_starts = lambda epoch, index, s=starts: s.copy()  # fixed windows for this phase
        for batch in data.loader(dataset, shuffle=False):
            batch = transform.eval_views(batch, [0.5])
            streams = model.encode_streams(batch["video"], batch["spec"])
            n = batch["video"].shape[1]
            for stream in ("audio", "video"):
                out[stream].append(F.normalize(model.stream_projectors[stream](streams[stream].flatten(0, 1)), dim=-1))
            out["index"].append(batch["index"].repeat_interleave(n))
            out["label"].append(batch["label"].repeat_interleave(n))
            out["phase"].append(torch.full((batch["index"].shape[0] * n,), p))
    return {k: torch.cat(v) for k, v in out.items()}


def report(split: str, e: dict[str, torch.Tensor], classes: int) -> str:
    sim = e["audio"] @ e["video"].T
    own = sim.diagonal()
    rank = (sim > own[:, None]).sum(1).float()
    other = sim.masked_fill(e["index"][:, None] == e["index"][None, :], -2.0).argmax(1)
    same_class = 100 * (e["label"][other] == e["label"]).float().mean().item()
    same_phase = 100 * (e["phase"][other] == e["phase"]).float().mean().item()
    clips = len(own)
    return (
        f"| {split} | {clips} | {rank.mean().item():.0f} ({(clips - 1) / 2:.0f}) | {100 * (rank == 0).float().mean().item():.1f} "
        f"({100 / clips:.2f}) | {same_class:.1f} ({100 / classes:.1f}) | {same_phase:.1f} ({100 / len(PHASES):.0f}) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, type=Path, help="a checkpoint trained with a cross-modal weight > 0")
    parser.add_argument("--config", action="append", help="data configs composed after configs/simclr.yaml (default: configs/demo.yaml)")
    args = parser.parse_args()
    _, data = demo_setup(args.config)
    checkpoint = torch.load(args.ckpt, map_location="cpu", weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    model_class = getattr(methods, hparams["_class_path"].rpartition(".")[2], None)  # avssl.methods.<Name> only
    if not (isinstance(model_class, type) and issubclass(model_class, SSLMethod)):
        sys.exit(f"{args.ckpt}: {hparams['_class_path']!r} is not an avssl method")
    model = model_class(**{k: v for k, v in hparams.items() if not k.startswith("_")})
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    if model.stream_projectors is None or model.hparams.cross_modal_weight == 0:
        sys.exit(f"{args.ckpt}: trained without the cross-modal term (model.init_args.cross_modal_weight = 0)")
    data.prepare_data()
    print(f"{args.ckpt} ({type(model).__name__})")
    print(
        "| split | clips | own-clip mean rank (random) | own clip best % (random) | other video's best: same class % (chance) | same phase % (chance) |"
    )
    print("|---|---|---|---|---|---|")
    for split in ("train", "test"):
        print(report(split, embed(model, data, split), data.num_classes), flush=True)


if __name__ == "__main__":
    main()

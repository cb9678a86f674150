"""Benchmark: how much class signal does each stream of the demo data carry on its own?

    python benchmarks/streams.py [--epochs 30] [--seed 0] [--config configs/demo.yaml ...] [--augment]
                                 [--optimizer adam|sgd] [--lr 1e-3] [-- CLI overrides]

The demo's self-supervised encoders read the class almost only from the audio
(docs/studies/demo.md). This checks the input side of that: with the demo's data settings (``configs/simclr.yaml``
+ ``--config``: synthetic dataset, 8 frames of 32-px crops, 16 kHz log-mel) it decodes every
training video once into ``eval_clips`` deterministic views, then trains each stream's encoder
alone (the demo width, from scratch) with a linear classifier and cross-entropy, no
augmentation, Adam (lr 1e-3, batch 64; ``--optimizer sgd``: SGD with momentum 0.9, as pre-training
uses, at ``--lr``), and reports test top-1 (mean softmax over the test
video's views) next to chance. A stream well above chance here carries learnable class signal,
whatever the self-supervised loss then makes of it. ``--augment`` trains instead on the
pre-training views: every epoch decodes new clip pairs and applies ``AVTransform.train_views``
(crops, flips and the config's temporal augmentations, e.g. the demo's RE alpha 0.75 on both
streams), which shows how much of each stream's signal those augmentations leave. Arguments after
``--`` go to the config parser as ``avssl fit`` would take them, e.g.
``-- --data.augment.crop_scale=[1.0,1.0] --data.augment.flip_p=0``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avssl.cli import instantiate  # noqa: E402
from avssl.models.backbone import TwoStreamBackbone  # noqa: E402

INPUT = {"video": "video", "audio": "spec"}


def demo_setup(configs: list[str] | None, overrides: list[str] = ()):
    """``(model, datamodule)`` of ``configs/simclr.yaml`` + ``configs`` (default: the demo's) + CLI
    overrides, without running anything; prints what it composed."""
    configs = ["configs/simclr.yaml", *(configs or ["configs/demo.yaml"])]
    model, data, _ = instantiate([*(arg for config in configs for arg in ("--config", str(ROOT / config))), *overrides])
    print("configs:", " + ".join(configs), *overrides)
    return model, data


def views(data, split: str) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Deterministic evaluation views of a split: ``{video, spec}`` ``[B, N, ...]`` and labels."""
    loader = data.loader(data.dataset(split, train=False), shuffle=False)
    parts, labels = {k: [] for k in INPUT.values()}, []
    for batch in loader:
        batch = data.views.transform().eval_views(batch, data.views.eval_positions)
        for key in parts:
            parts[key].append(batch[key])
        labels.append(batch["label"])
    return {k: torch.cat(v) for k, v in parts.items()}, torch.cat(labels)


def fixed_batches(x: torch.Tensor, y: torch.Tensor, seed: int):
    """Per epoch: the clips ``x`` ``[B, N, ...]`` (views flattened) in shuffled batches of 64."""
    generator = torch.Generator().manual_seed(seed)
    clips, labels = x.flatten(0, 1), y.repeat_interleave(x.shape[1])

    def epoch(_: int):
        order = torch.randperm(len(clips), generator=generator)
        for i in range(0, len(clips), 64):
            yield clips[order[i : i + 64]], labels[order[i : i + 64]]

    return epoch


def augmented_batches(data, key: str, seed: int):
    """Per epoch: new pre-training clip pairs of the training split through ``train_views``."""
    loader, transform = data.train_dataloader(), data.views.transform()

    def epoch(e: int):
        loader.sampler.set_epoch(e)
        for step, batch in enumerate(loader):
            views = transform.train_views(batch, torch.Generator().manual_seed(hash((seed, e, step)) & 0xFFFF_FFFF))
            yield views[key].flatten(0, 1), batch["label"].repeat_interleave(views[key].shape[1])

    return epoch


def train_stream(encoder: nn.Module, batches, classes: int, epochs: int, optimizer: str = "adam", lr: float = 1e-3) -> nn.Module:
    """Encoder + linear classifier trained with cross-entropy on ``batches(epoch)``."""
    model = nn.Sequential(encoder, nn.Linear(encoder.out_dim, classes))
    if optimizer == "sgd":
        optimiser = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    else:
        optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for e in range(epochs):
        for clips, labels in batches(e):
            loss = F.cross_entropy(model(clips), labels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval()


@torch.no_grad()
def top1(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Test top-1 %, mean softmax over each video's views."""
    probs = torch.stack([model(x[:, k]).softmax(-1) for k in range(x.shape[1])]).mean(0)
    return 100 * (probs.argmax(-1) == y).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--config",
        action="append",
        help="config files composed after configs/simclr.yaml, in order (default: configs/demo.yaml), e.g. "
        "--config configs/demo.yaml --config configs/paper/table3/control.yaml",
    )
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--augment", action="store_true", help="train on augmented pre-training views (new clips every epoch)")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args, overrides = parser.parse_args(argv[:cut]), argv[cut + 1 :]
    torch.manual_seed(args.seed)
    model, data = demo_setup(args.config, overrides)
    data.prepare_data()
    classes = data.num_classes
    start = time.perf_counter()
    train_x, train_y = views(data, "train")
    test_x, test_y = views(data, "test")
    print(
        f"decoded {len(train_y)} train / {len(test_y)} test videos x {train_x['video'].shape[1]} views in {time.perf_counter() - start:.0f} s"
    )
    training = "augmented pre-training views" if args.augment else "fixed evaluation views"
    print(
        f"| stream | test top-1 % (supervised on {training}, {args.optimizer} lr {args.lr:g}, {args.epochs} epochs) | chance % | train seconds |"
    )
    print("|---|---|---|---|")
    for stream, key in INPUT.items():
        start = time.perf_counter()
        backbone = TwoStreamBackbone(model.backbone.config)
        if args.augment:
            batches = augmented_batches(data, key, args.seed)
        else:
            batches = fixed_batches(train_x[key], train_y, args.seed)
        trained = train_stream(getattr(backbone, stream), batches, classes, args.epochs, args.optimizer, args.lr)
        acc = top1(trained, test_x[key], test_y)
        print(f"| {stream} | {acc:.1f} | {100 / classes:.1f} | {time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()

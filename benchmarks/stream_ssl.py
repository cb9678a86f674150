"""Benchmark: can one stream of the demo data learn its class from a contrastive objective alone?

    python benchmarks/stream_ssl.py [--stream video|audio] [--target views|labels|audio-encoder]
                                    [--head mlp|linear|none] [--epochs 20] [--lr 0.05] [--seed 0]
                                    [--teacher CKPT] [-- CLI overrides, e.g. --data.min_gap=1.28]

A fast loop for the question the demo raises (docs/studies/demo.md): the video encoder's readout
does not rise above random init after pre-training. It trains one stream's encoder (the demo's
width, from scratch, on the demo's pre-training views: new clip pairs every epoch through
``AVTransform.train_views``) with SGD (momentum 0.9, 3 warm-up epochs + cosine, weight decay
1e-4) and an InfoNCE loss at temperature ``--temperature`` against one of three targets:

* ``views``: the other view of the same video (SimCLR on that stream alone);
* ``labels``: a learned embedding of the clip's class, as a cross-modal partner would be if it
  carried exactly the class (the audio-video term with a perfect audio encoder);
* ``audio-encoder``: the frozen audio encoder of a pre-training checkpoint (``--teacher``) plus a
  trained projector (the audio-video term with the demo's audio encoder, frozen).

``--head`` is the projector between the encoder and the loss (``mlp``: the library's 2-layer
projector with BN, hidden 256, output 64; ``linear``; ``none``). Every ``--eval-every`` epochs it
prints the loss and a linear readout of the frozen encoder (features of the deterministic
evaluation views, L2-normalised and standardised, a linear classifier trained with Adam,
test = mean softmax over each test video's views), next to the random-init encoder's readout
measured the same way, so the two are comparable within one run.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from streams import INPUT, demo_setup, views  # noqa: E402

from avssl.evaluation.encoder import load_encoder  # noqa: E402
from avssl.losses import cross_modal_nce, info_nce  # noqa: E402
from avssl.models.backbone import TwoStreamBackbone  # noqa: E402
from avssl.models.heads import mlp  # noqa: E402

EMBED_DIM = 64


def head(kind: str, in_dim: int) -> nn.Module:
    """The projector between an encoder and the loss."""
    if kind == "mlp":
        return mlp(in_dim, 256, EMBED_DIM)
    return nn.Linear(in_dim, EMBED_DIM) if kind == "linear" else nn.Identity()


@torch.no_grad()
def features(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Frozen features ``[B, N, D]`` of views ``[B, N, ...]`` (eval mode)."""
    was_training = encoder.training
    encoder.eval()
    out = torch.stack([encoder(x[:, k]) for k in range(x.shape[1])], 1)
    encoder.train(was_training)
    return out


def linear_top1(f_train: torch.Tensor, y_train: torch.Tensor, f_test: torch.Tensor, y_test: torch.Tensor, seed: int) -> float:
    """Test top-1 % of a linear classifier on frozen features ``[B, N, D]`` (N views per video):
    L2-normalised and standardised, Adam for 300 full-batch steps on every view, a test video's
    prediction the mean softmax over its views."""
    torch.manual_seed(seed)
    f_train, f_test = F.normalize(f_train, dim=-1), F.normalize(f_test, dim=-1)
    flat = f_train.flatten(0, 1)
    mean, std = flat.mean(0), flat.std(0) + 1e-6
    x, y = (flat - mean) / std, y_train.repeat_interleave(f_train.shape[1])
    classifier = nn.Linear(x.shape[1], int(y_train.max()) + 1)
    optimiser = torch.optim.Adam(classifier.parameters(), 1e-2, weight_decay=1e-4)
    for _ in range(300):
        loss = F.cross_entropy(classifier(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        probs = classifier((f_test - mean) / std).softmax(-1).mean(1)
    return 100 * (probs.argmax(-1) == y_test).float().mean().item()


def readout(encoder: nn.Module, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor], seed: int) -> float:
    """Linear-readout test top-1 % of the frozen encoder."""
    return linear_top1(features(encoder, train[0]), train[1], features(encoder, test[0]), test[1], seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", choices=tuple(INPUT), default="video")
    parser.add_argument("--target", choices=("views", "labels", "audio-encoder"), default="views")
    parser.add_argument("--head", choices=("mlp", "linear", "none"), default="mlp")
    parser.add_argument("--teacher", help="pre-training checkpoint whose audio encoder is the target (--target audio-encoder)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--temperature", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args, overrides = parser.parse_args(argv[:cut]), argv[cut + 1 :]
    if args.target == "audio-encoder" and (args.stream != "video" or not args.teacher):
        parser.error("--target audio-encoder trains the video stream and needs --teacher CKPT")
    torch.manual_seed(args.seed)
    model, data = demo_setup(None, [f"--data.seed={args.seed}", *overrides])
    data.prepare_data()
    data.setup("fit")
    key = INPUT[args.stream]
    (train_x, train_y), (test_x, test_y) = views(data, "train"), views(data, "test")
    train, test = (train_x[key], train_y), (test_x[key], test_y)

    encoder = getattr(TwoStreamBackbone(model.backbone.config), args.stream)
    print(f"random-init readout {readout(encoder, train, test, args.seed):.1f} % (chance {100 / data.num_classes:.1f})", flush=True)
    projector = head(args.head, encoder.out_dim)
    modules = [encoder, projector]
    teacher = None
    if args.target == "labels":
        label_embedding = nn.Embedding(data.num_classes, EMBED_DIM if args.head != "none" else encoder.out_dim)
        modules.append(label_embedding)
    elif args.target == "audio-encoder":
        teacher = load_encoder(args.teacher).backbone.audio.eval()
        teacher_projector = head(args.head, teacher.out_dim)
        modules.append(teacher_projector)
    optimiser = torch.optim.SGD([p for m in modules for p in m.parameters()], lr=args.lr, momentum=0.9, weight_decay=1e-4)

    loader, transform = data.train_dataloader(), data.views.transform()
    total, warmup, step, start = args.epochs * len(loader), 3 * len(loader), 0, time.perf_counter()
    print(f"| epoch | loss | readout top-1 % | seconds |  ({args.stream}, target {args.target}, head {args.head}, lr {args.lr:g})")
    print("|---|---|---|---|")
    for epoch in range(args.epochs):
        loader.sampler.set_epoch(epoch)
        losses = []
        for i, batch in enumerate(loader):
            batch_views = transform.train_views(batch, torch.Generator().manual_seed(hash((args.seed, epoch, i)) & 0xFFFF_FFFF))
            x = batch_views[key]
            b, n = x.shape[:2]
            z = projector(encoder(x.flatten(0, 1))).view(b, n, -1)
            if args.target == "views":
                loss = info_nce(z[:, 0], z[:, 1], args.temperature)
            else:
                if teacher is not None:
                    with torch.no_grad():
                        audio = teacher(batch_views["spec"].flatten(0, 1))
                    partner = teacher_projector(audio).view(b, n, -1)
                else:
                    partner = label_embedding(batch["label"])[:, None].expand(b, n, -1)
                loss = sum(cross_modal_nce(partner[:, j], z[:, j], args.temperature) for j in range(n)) / n
            factor = step / warmup if step < warmup else 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
            for group in optimiser.param_groups:
                group["lr"] = args.lr * factor
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.detach())
            step += 1
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
            acc = readout(encoder, train, test, args.seed)
            print(f"| {epoch + 1} | {torch.stack(losses).mean():.3f} | {acc:.1f} | {time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()

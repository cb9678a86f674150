"""Benchmark: batched on-device augmentation vs a per-clip Python loop (same ops, same run).

    make bench            # or: python benchmarks/augment.py [--device cuda] [--batch 64]

Prints the wall time per batch of ``AVTransform.train_views`` (batched, chunked on CPU) and of
the baseline that calls the same transform once per video, and their ratio.
"""

from __future__ import annotations

import argparse
import time

import torch

from avssl.augment.audio import SpectrogramConfig
from avssl.augment.pipeline import AugmentConfig, AVTransform


def timed(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=32, help="videos per batch (2 clips each)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--side", type=int, default=128, help="decoded frame side")
    parser.add_argument("--crop", type=int, default=112)
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    transform = AVTransform(args.rate, AugmentConfig(crop_size=args.crop), SpectrogramConfig()).to(device)
    g = torch.Generator(device=device).manual_seed(0)
    batch = {
        "video": torch.randint(0, 256, (args.batch, 2, args.frames, args.side, args.side, 3), dtype=torch.uint8, device=device),
        "audio": torch.randn(args.batch, 2, int(1.28 * args.rate), device=device),
    }

    def batched():
        transform.train_views(batch, g)

    def per_video():
        for i in range(args.batch):
            transform.train_views({k: v[i : i + 1] for k, v in batch.items()}, g)

    t_batched = timed(batched, args.repeats, device)
    t_loop = timed(per_video, args.repeats, device)
    print(f"device={device} batch={args.batch} videos x 2 clips x {args.frames} frames {args.side}px -> {args.crop}px")
    print(f"per-video loop (baseline): {t_loop * 1000:8.1f} ms/batch")
    print(f"batched train_views:       {t_batched * 1000:8.1f} ms/batch")
    print(f"speed-up: {t_loop / t_batched:.2f}x")


if __name__ == "__main__":
    main()

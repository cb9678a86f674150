"""Benchmark: the cached-feature linear probe vs the full (augmenting) protocol.

    python benchmarks/linear.py [--ckpt runs/demo/checkpoints/last.ckpt] [--epochs 100] [--out runs/bench_linear]

Runs ``avssl test`` twice on the demo settings (``configs/linear.yaml`` + ``configs/demo_linear.yaml``,
the synthetic dataset) with the same pre-trained encoder: ``modes: [cached]`` (features of 4
clips per training video extracted once, 100 epochs on the cached tensors) and ``modes: [full]``
(a freshly decoded and augmented clip per video every epoch, 100 epochs through the frozen
encoder). Prints the wall time of each run, the ratio, and the top-1 of each readout with the
difference. The checkpoint comes from ``make demo`` (or any pre-training run at the demo width).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READOUTS = ("fused", "audio", "video")


def probe(mode: str, ckpt: Path, epochs: int, out: Path) -> tuple[float, dict]:
    out_dir = out / mode
    args = [
        "test",
        "--config=configs/linear.yaml",
        "--config=configs/demo_linear.yaml",
        f"--model.encoder_ckpt={ckpt}",
        f"--model.init_args.modes=[{mode}]",
        f"--model.init_args.epochs={epochs}",
        "--model.init_args.baselines=false",
        f"--model.init_args.output_dir={out_dir}",
        f"--trainer.logger.init_args.save_dir={out}",
    ]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "avssl", *args], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: avssl {' '.join(args)}\n{proc.stderr[-3000:]}")
    return seconds, json.loads((out_dir / "results.json").read_text())["metrics"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, default=ROOT / "runs" / "demo" / "checkpoints" / "last.ckpt")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_linear")
    ns = parser.parse_args()
    if not ns.ckpt.is_file():
        sys.exit(f"--ckpt: {ns.ckpt} does not exist; run `make demo` first or pass a demo-width pre-training checkpoint")
    rows = {}
    for mode in ("cached", "full"):
        print(f"[bench] {mode} probe, {ns.epochs} epochs ...", flush=True)
        rows[mode] = probe(mode, ns.ckpt.resolve(), ns.epochs, ns.out.resolve())
    (tc, mc), (tf, mf) = rows["cached"], rows["full"]
    print(f"\nlinear probe on the synthetic test split, {ns.epochs} epochs, encoder {ns.ckpt}")
    print("| mode | wall s (whole `avssl test`) | " + " | ".join(f"{r} top-1" for r in READOUTS) + " |")
    print("|---|---|" + "---|" * len(READOUTS))
    for mode, (secs, m) in rows.items():
        print(f"| {mode} | {secs:.0f} | " + " | ".join(f"{m[f'pretrained/{mode}/{r}']['top1']:.1f}" for r in READOUTS) + " |")
    diffs = ", ".join(f"{r} {mf[f'pretrained/full/{r}']['top1'] - mc[f'pretrained/cached/{r}']['top1']:+.1f}" for r in READOUTS)
    print(f"\nfull / cached wall time: {tf / tc:.1f}x; top-1 full - cached: {diffs} points")


if __name__ == "__main__":
    main()

"""Benchmark: the paper's linear-evaluation protocol (mode ``full``) vs the fast modes.

    python benchmarks/linear.py [--ckpt runs/demo/checkpoints/last.ckpt] [--epochs 100] [--out runs/bench_linear]

Runs ``avssl test`` once per mode on the demo settings (``configs/linear.yaml`` +
``configs/demo_linear.yaml``; the dataset and input settings come from the checkpoint) with the
same pre-trained encoder:

* ``full`` (the paper's protocol): every epoch a freshly decoded clip per training video with the
  domain-specific augmentations, through the frozen encoder;
* ``cached``: features of 4 clips per training video extracted once, the classifier trained on them;
* ``knn``: a kNN vote over those cached features (no training).

Prints the wall time of each whole ``avssl test`` run, its ratio to the ``full`` run measured in the
same invocation, and the top-1 of each readout with the difference from ``full``. The checkpoint
comes from ``make demo`` (or any pre-training run at the demo width).
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
MODES = ("full", "cached", "knn")


def probe(mode: str, ckpt: Path, epochs: int, out: Path) -> tuple[float, dict]:
    out_dir = out / mode
    args = [
        "test",
        "--config=configs/linear.yaml",
        "--config=configs/demo_linear.yaml",
        f"--model.encoder_ckpt={ckpt}",
        f"--model.init_args.mode={mode}",
        f"--trainer.max_epochs={epochs}",
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
    for mode in MODES:
        print(f"[bench] {mode}, {ns.epochs} probe epochs ...", flush=True)
        rows[mode] = probe(mode, ns.ckpt.resolve(), ns.epochs, ns.out.resolve())
    full_seconds, full_metrics = rows["full"]
    print(f"\nlinear evaluation on the synthetic test split, {ns.epochs} probe epochs, encoder {ns.ckpt}")
    print("| mode | wall s (whole `avssl test`) | time / full | " + " | ".join(f"{r} top-1 (vs full)" for r in READOUTS) + " |")
    print("|---|---|---|" + "---|" * len(READOUTS))
    for mode, (seconds, metrics) in rows.items():
        cells = []
        for r in READOUTS:
            top1, ref = metrics[f"pretrained/{mode}/{r}"]["top1"], full_metrics[f"pretrained/full/{r}"]["top1"]
            cells.append(f"{top1:.1f}" if mode == "full" else f"{top1:.1f} ({top1 - ref:+.1f})")
        print(f"| {mode} | {seconds:.0f} | {seconds / full_seconds:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

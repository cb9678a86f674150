"""Benchmark: does every method learn on the synthetic data, and what does the cross-modal term do?

    python benchmarks/methods.py [--epochs 80] [--methods simclr,mocov3,byol,simsiam,supervised]
                                 [--cross-modal 0,1] [--seed 0] [--out runs/bench_methods]

For each method (and each cross-modal weight lambda) this pre-trains with the demo settings
(``configs/<method>.yaml`` + ``configs/demo.yaml``: width 16, 32-px crops, 16 kHz, batch 32) and
runs the demo linear evaluation (``configs/linear.yaml`` + ``configs/demo_linear.yaml``), whose
random-init encoder, evaluated the same way, is the baseline. It prints the linear-probe top-1 of
the fused, audio-only and video-only readouts next to the random-init ones, and the wall time.
Every run is its own ``python -m avssl`` process; results land in ``--out``/<run>/results.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# Heads at demo scale (the paper-size heads of configs/<method>.yaml are far wider than a width-16 encoder).
HEADS = {
    "simclr": {"proj_hidden_dim": 256, "proj_dim": 64},
    "mocov3": {"proj_hidden_dim": 256, "proj_dim": 64, "queue_size": 128},
    "byol": {"proj_hidden_dim": 256, "proj_dim": 64},
    "simsiam": {"proj_hidden_dim": 256, "proj_dim": 256, "pred_hidden_dim": 64},
    "supervised": {},
}


def demo_config(method: str, tmp: Path) -> Path:
    """configs/demo.yaml with this method's demo head sizes (the file itself carries SimCLR's)."""
    config = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    init = config["model"]["init_args"]
    for key in ("proj_hidden_dim", "proj_dim"):
        init.pop(key, None)
    init.update(HEADS[method])
    path = tmp / f"demo_{method}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "avssl", *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: avssl {' '.join(args)}\n{proc.stderr[-3000:]}")


def one(method: str, weight: float, epochs: int, seed: int, out: Path, tmp: Path) -> dict:
    name = f"{method}_xm{weight:g}_s{seed}"
    run_dir = out / name
    if (run_dir / "results.json").exists():  # resumable: a finished run is not repeated
        return json.loads((run_dir / "results.json").read_text()) | {"name": name}
    start = time.perf_counter()
    ckpt_dir = run_dir / "checkpoints"
    fit = ["fit", f"--config=configs/{method}.yaml", f"--config={demo_config(method, tmp)}", f"--seed_everything={seed}"]
    fit += [
        f"--trainer.max_epochs={epochs}",
        f"--trainer.callbacks.init_args.dirpath={ckpt_dir}",
        f"--trainer.logger.init_args.save_dir={run_dir}",
    ]
    if weight > 0:
        fit += [f"--model.init_args.cross_modal_weight={weight}"]
    run(fit)
    fit_s = time.perf_counter() - start
    run(
        [
            "test",
            "--config=configs/linear.yaml",
            "--config=configs/demo_linear.yaml",
            f"--model.encoder_ckpt={ckpt_dir / 'last.ckpt'}",
            f"--model.output_dir={run_dir}",
            f"--trainer.logger.init_args.save_dir={run_dir}",
        ]
    )
    results = json.loads((run_dir / "results.json").read_text())
    results["bench"] = {"fit_seconds": fit_s, "total_seconds": time.perf_counter() - start}
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    return results | {"name": name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--methods", default=",".join(HEADS))
    parser.add_argument("--cross-modal", default="0", help="comma-separated cross-modal weights lambda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_methods")
    ns = parser.parse_args()
    methods = [m for m in ns.methods.split(",") if m]
    unknown = [m for m in methods if m not in HEADS]
    if unknown:
        sys.exit(f"--methods: unknown {unknown}; choose from {list(HEADS)}")
    weights = [float(w) for w in ns.cross_modal.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for method in methods:
            for weight in weights:
                print(f"[bench] {method} lambda={weight:g}: {ns.epochs} epochs ...", flush=True)
                res = one(method, weight, ns.epochs, ns.seed, ns.out, Path(tmp))
                m = res["metrics"]
                rows.append(
                    (method, weight, *(m[f"pretrained/cached/{r}"]["top1"] for r in ("fused", "audio", "video")),
                     m["random-init/cached/fused"]["top1"], m["random-init/cached/video"]["top1"], res.get("bench", {}).get("total_seconds", float("nan")))
                )  # fmt: skip
    print(f"\nlinear-probe top-1 (%) on the synthetic test split, {ns.epochs} epochs, seed {ns.seed}; chance {100 / 8:.1f}")
    print("| method | lambda | fused | audio | video | random-init fused | random-init video | minutes |")
    print("|---|---|---|---|---|---|---|---|")
    for method, w, fused, audio, video, rf, rv, secs in rows:
        print(f"| {method} | {w:g} | {fused:.1f} | {audio:.1f} | {video:.1f} | {rf:.1f} | {rv:.1f} | {secs / 60:.1f} |")


if __name__ == "__main__":
    main()

"""Benchmark: does every method learn on the synthetic data, and what does the cross-modal term do?

    python benchmarks/methods.py [--epochs 80] [--methods simclr,mocov3,byol,simsiam,supervised,...,cavmae,simclr+vit]
                                 [--cross-modal 0,1] [--augment re,none] [--seeds 0,1,2]
                                 [--out runs/bench_methods] [--model-arg KEY=VALUE ...]

For each method, cross-modal weight lambda (default: demo.yaml's), temporal augmentation (``re``:
the default RE alpha 0.75; ``none``: no temporal augmentation, the paper's control) and seed, this
pre-trains with the demo settings
(``configs/<method>.yaml`` + ``configs/demo.yaml``: width 16, 32-px crops, 16 kHz, batch 32; a
method name ending in ``+vit`` composes ``configs/vit.yaml`` before the demo settings, whose ViT is
64 wide, 2 blocks, 8-px patches; ``cavmae`` is a ViT by its config) and
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
# Heads at demo scale (the paper-size heads of configs/<method>.yaml are far wider than a width-16
# encoder), and the learning rates where demo.yaml's (tuned for SimCLR) diverged or stalled.
DEMO = {
    "simclr": {"proj_hidden_dim": 256, "proj_dim": 64},
    "mocov3": {"proj_hidden_dim": 256, "proj_dim": 64, "queue_size": 128},
    "byol": {"proj_hidden_dim": 256, "proj_dim": 64},
    "simsiam": {"proj_hidden_dim": 256, "proj_dim": 256, "pred_hidden_dim": 64},
    "supervised": {},
    "vicreg": {"proj_hidden_dim": 256, "proj_dim": 256, "base_lr": 0.5},  # 1.0 and 4.0 diverged in 10 epochs
    "barlow_twins": {"proj_hidden_dim": 256, "proj_dim": 256},
    "cross_modal": {"proj_hidden_dim": 256, "proj_dim": 64, "base_lr": 0.3},  # 1.0 and 4.0 stayed at chance for 10 epochs
    # CAV-MAE's Adam: lr per batch 48 (its 5e-5 is for ViT-B over 25 epochs); its step decay spread over the demo's epochs
    # (its own contrastive term: no auxiliary cross-modal term, whatever --cross-modal says)
    "cavmae": {
        **{"decoder_dim": 64, "decoder_depth": 2, "decoder_heads": 4, "cross_modal_weight": 0.0},
        **{"base_lr": 1e-3, "lr_decay_start": 40, "lr_decay_every": 10},
    },
}
VIT = "+vit"  # a method name with this suffix: its configs/<method>.yaml, then configs/vit.yaml (ViT encoders)
READOUTS = ("fused", "audio", "video")


def method_configs(method: str) -> list[str]:
    """The ``--config`` files of a benchmark method name (``simclr``, ``simclr+vit``, ``cavmae``)."""
    base = method.removesuffix(VIT)
    return [f"--config=configs/{base}.yaml"] + (["--config=configs/vit.yaml"] if method.endswith(VIT) else [])


def demo_config(method: str, tmp: Path) -> Path:
    """configs/demo.yaml with this method's demo head sizes (the file itself carries SimCLR's)."""
    method = method.removesuffix(VIT)
    config = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    init = config["model"]["init_args"]
    for key in ("proj_hidden_dim", "proj_dim"):
        init.pop(key, None)
    init.update(DEMO[method])
    path = tmp / f"demo_{method}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "avssl", *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: avssl {' '.join(args)}\n{proc.stderr[-3000:]}")


def one(method: str, weight: float, augment: str, epochs: int, seed: int, out: Path, tmp: Path, model_args: tuple[str, ...] = ()) -> dict:
    name = f"{method}_xm{weight:g}_{augment}_s{seed}" + "".join(f"_{a}" for a in model_args)
    run_dir = out / name
    if (run_dir / "results.json").exists():  # resumable: a finished run is not repeated
        return json.loads((run_dir / "results.json").read_text()) | {"name": name}
    start = time.perf_counter()
    ckpt_dir = run_dir / "checkpoints"
    fit = ["fit", *method_configs(method), f"--config={demo_config(method, tmp)}", f"--seed_everything={seed}"]
    fit += [
        f"--trainer.max_epochs={epochs}",
        f"--trainer.callbacks.init_args.dirpath={ckpt_dir}",
        f"--trainer.logger.init_args.save_dir={run_dir}",
    ]
    fit += [f"--model.init_args.cross_modal_weight={weight}"]  # always: demo.yaml sets one
    fit += [f"--model.init_args.{a}" for a in model_args]
    if augment == "none":
        fit += ["--data.augment.temporal=[]"]
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
    parser.add_argument("--methods", default=",".join(DEMO))
    parser.add_argument("--cross-modal", help="comma-separated cross-modal weights lambda (default: demo.yaml's)")
    parser.add_argument("--augment", default="re", help="comma-separated: re (RE alpha 0.75, the default) and / or none")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_methods")
    parser.add_argument(
        "--model-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model setting over the demo's (repeatable; in the run's name)",
    )
    ns = parser.parse_args()
    methods = [m for m in ns.methods.split(",") if m]
    unknown = [m for m in methods if m.removesuffix(VIT) not in DEMO]
    if unknown:
        sys.exit(f"--methods: unknown {unknown}; choose from {list(DEMO)}")
    augments = [a for a in ns.augment.split(",") if a]
    if not set(augments) <= {"re", "none"}:
        sys.exit(f"--augment: re and / or none, got {ns.augment!r}")
    demo_weight = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())["model"]["init_args"].get("cross_modal_weight", 0.0)
    weights = [float(w) for w in ns.cross_modal.split(",")] if ns.cross_modal else [demo_weight]
    seeds = [int(s) for s in ns.seeds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for method in methods:
            fixed = DEMO[method.removesuffix(VIT)].get("cross_modal_weight")
            for weight in weights if fixed is None else [fixed]:
                for augment in augments:
                    for seed in seeds:
                        print(f"[bench] {method} lambda={weight:g} {augment} seed {seed}: {ns.epochs} epochs ...", flush=True)
                        res = one(method, weight, augment, ns.epochs, seed, ns.out, Path(tmp), tuple(ns.model_arg))
                        m = res["metrics"]
                        ours = [m[f"pretrained/cached/{r}"]["top1"] for r in READOUTS]
                        random = [m[f"random-init/cached/{r}"]["top1"] for r in READOUTS]
                        rows.append((method, weight, augment, seed, ours, random, res.get("bench", {}).get("total_seconds", float("nan"))))
    print(
        f"\nlinear-probe top-1 (%) on the synthetic test split, {ns.epochs} epochs; chance {100 / 8:.1f}; gain = over the random-init encoder"
    )
    print("| method | lambda | temporal aug. | seed | fused (gain) | audio (gain) | video (gain) | minutes |")
    print("|---|---|---|---|---|---|---|---|")
    for method, w, augment, seed, ours, random, secs in rows:
        cells = " | ".join(f"{o:.1f} ({o - r:+.1f})" for o, r in zip(ours, random))
        print(f"| {method} | {w:g} | {augment} | {seed} | {cells} | {secs / 60:.1f} |")


if __name__ == "__main__":
    main()

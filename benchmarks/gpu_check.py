"""The one device check to run when a GPU machine is available (a few minutes on one H100 / H200).

    python benchmarks/gpu_check.py                        # CUDA: paper width and batch, 100 steps per variant
    python benchmarks/gpu_check.py --device cpu --steps 2 --tiny   # what the test suite runs

For each variant (eager, compile, channels_last, compile + channels_last; bf16 mixed precision on
CUDA) it pre-trains SimCLR as ``avssl fit`` configures it (configs/simclr.yaml: the paper's
ResNet-18 width and batch 128 x 2 clips, the default augmentations) on the embedded synthetic set
for ``--steps`` steps and measures, after ``--warmup`` steps:

* host-device synchronisations per step (CUDA: ``torch.cuda.set_sync_debug_mode("warn")``, each
  warning counted; logging steps included, so a few per ``log_every_n_steps`` are expected);
* Lightning's profiler breakdown per step: data wait (next batch from the loader), transfer +
  augmentation (``on_after_batch_transfer``), forward + backward (the training step and its
  backward), optimiser step;
* peak device memory and clips per second.

The ``store`` variant trains eager from a shard store of the same synthetic videos (``avssl
prepare --format shards`` at the run's short side, fps and sample rate) with ``data.decode_on:
device``: the workers return JPEG bytes and the batch's frames are decoded on the device (nvjpeg
on CUDA) inside "transfer + augmentation"; its row gives the frames decoded on the device per step.
The ``media`` variant decodes the synthetic mp4 files themselves on the device (``video_backend:
torchcodec``, ``decode_on: device``: NVDEC on CUDA), one decoder per video.

The ``vit`` variant pre-trains SimCLR with ViT-B encoders (``configs/vit.yaml``), the ``cavmae``
variant CAV-MAE (``configs/cavmae.yaml``), both eager at a quarter of ``--batch-size`` (a
transformer's activations per clip are several times a ResNet-18's); compare them by clips/s.

It then runs ``benchmarks/augment.py`` on the device (batched augmentation vs per-sample), prints
one table and writes everything to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch

from avssl.cli import instantiate

HERE = Path(__file__).resolve().parent
VARIANTS = {
    "eager": [],
    "compile": ["--model.init_args.compile=true"],
    "channels_last": ["--model.init_args.channels_last=true"],
    "compile+channels_last": ["--model.init_args.compile=true", "--model.init_args.channels_last=true"],
    "store": ["--data.decode_on=device"],  # eager, from a shard store of the same videos (see shard_store)
    "media": ["--data.video_backend=torchcodec", "--data.decode_on=device"],  # eager, the mp4 files decoded by torchcodec on the device
    "vit": [],  # eager, SimCLR with ViT-B encoders (configs/vit.yaml), a quarter of the batch
    "cavmae": [],  # eager, CAV-MAE (configs/cavmae.yaml: ViT-B, 75 % masked, 8-block decoder), a quarter of the batch
}
# the config files of each variant (a transformer's activations take ~4x a ResNet-18's memory per clip: ViT batch / 4)
CONFIGS = {"vit": ["simclr.yaml", "vit.yaml"], "cavmae": ["cavmae.yaml"]}
TINY_VIT = ["--model.init_args.backbone.dim=16", "--model.init_args.backbone.depth=1", "--model.init_args.backbone.heads=2"]
TINY_VIT += ["--model.init_args.backbone.patch_size=8"]
TINY_DECODER = ["--model.init_args.decoder_dim=16", "--model.init_args.decoder_depth=1", "--model.init_args.decoder_heads=2"]
PHASES = ("data wait", "transfer + augmentation", "forward + backward", "optimiser")


def phase_ms(durations: dict[str, list[float]], skip: int) -> dict[str, float]:
    """ms per step of each phase from Lightning's profiler actions, after ``skip`` steps. The
    optimiser's action runs the closure (training step and backward): they are taken out of it."""

    def total(suffix: str) -> float:
        found = [v for k, v in durations.items() if k.endswith(suffix)]
        return sum(sum(v[skip:]) for v in found)

    steps = max(1, max((len(v) for k, v in durations.items() if k.endswith("Strategy.training_step")), default=0) - skip)
    forward_backward = total("Strategy.training_step") + total("Strategy.backward")
    seconds = {
        "data wait": total("train_dataloader_next"),
        "transfer + augmentation": total("Strategy.batch_to_device"),
        "forward + backward": forward_backward,
        "optimiser": total(".optimizer_step") - forward_backward,
    }
    return {k: round(1000 * v / steps, 2) for k, v in seconds.items()}


class StepClock(pl.Callback):
    """Wall time from the start of step ``warmup`` to the end of training (CUDA: synchronised at
    those two points only)."""

    def __init__(self, warmup: int, device: torch.device):
        self.warmup, self.device, self.start, self.end = warmup, device, None, None

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            self.start = self._now()

    def on_train_end(self, trainer, pl_module) -> None:
        self.end = self._now()


def run_variant(name: str, ns: argparse.Namespace, device: torch.device, work: Path) -> dict:
    profile = ["--trainer.profiler=pytorch_lightning.profilers.SimpleProfiler", f"--trainer.profiler.init_args.dirpath={work}"]
    profile += [f"--trainer.profiler.init_args.filename=profile_{name.replace('+', '_')}"]  # its summary goes to a file, not stdout
    configs = [arg for name_ in CONFIGS.get(name, ["simclr.yaml"]) for arg in ("--config", name_)]
    batch_size = max(1, ns.batch_size // 4) if name in CONFIGS else ns.batch_size
    args = [*configs, *profile, f"--data.synthetic_root={ns.data}", f"--trainer.accelerator={device.type}"]
    # max_steps ends the run; the synthetic train split may hold only a few batches, so epochs are unbounded
    args += ["--trainer.devices=1", f"--trainer.max_steps={ns.steps}", "--trainer.max_epochs=-1", "--trainer.limit_val_batches=0"]
    args += ["--trainer.num_sanity_val_steps=0", f"--trainer.precision={ns.precision}", f"--trainer.logger.init_args.save_dir={work}"]
    args += [f"--trainer.callbacks.init_args.dirpath={work / name}", "--trainer.callbacks.init_args.every_n_epochs=1000000"]  # no saving
    args += [f"--data.batch_size={batch_size}", f"--data.num_workers={ns.workers}", f"--data.synthetic.videos_per_class={ns.videos}"]
    if ns.tiny:
        args += ["--model.init_args.backbone.width=4", "--model.init_args.backbone.layers=[1,1,1,1]", *TINY_VIT]
        args += TINY_DECODER if name == "cavmae" else ["--model.init_args.proj_hidden_dim=16"]
        args += ["--data.short_side=40", "--data.augment.crop_size=32", "--data.sample_rate=16000", "--data.spectrogram.n_fft=512"]
        args += ["--data.spectrogram.n_mels=32", "--data.synthetic.num_classes=2", "--data.synthetic.duration=2.0"]
    if name == "store":
        args += [f"--data.root={shard_store(args, work)}"]
    model, data, trainer = instantiate([*args, *VARIANTS[name]])
    clock = StepClock(ns.warmup, device)
    trainer.callbacks.append(clock)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.set_sync_debug_mode("warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, data)
    if device.type == "cuda":
        torch.cuda.set_sync_debug_mode(0)
    syncs = sum("synchroniz" in str(w.message) for w in caught) if device.type == "cuda" else None
    steps = max(1, trainer.global_step)
    phases = phase_ms(trainer.profiler.recorded_durations, ns.warmup)
    seconds = (clock.end or 0) - (clock.start or 0)
    clips = (steps - ns.warmup) * batch_size * data.num_clips
    return {
        "variant": name,
        "steps": steps,
        "syncs_per_step": syncs / steps if syncs is not None else None,
        "ms_per_step": phases,
        "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
        "clips_per_s": clips / seconds if seconds > 0 else None,
        "batch_size": batch_size,
        "device_decoded_frames": batch_size * data.num_clips * data.clip.num_frames if data.clip.decode_on == "device" else 0,  # per step
    }


def shard_store(args: list[str], work: Path) -> Path:
    """A shard store of the run's synthetic videos at its short side, fps and sample rate."""
    from avssl.data.formats import PrepareConfig
    from avssl.prepare.shards import write_store

    _, data, _ = instantiate(args)
    data.prepare_data()  # the synthetic set, if no variant built it yet
    cfg = PrepareConfig(format="shards", short_side=data.clip.short_side, fps=data.synthetic.fps, audio_rate=data.clip.sample_rate)
    write_store(data.data_root, work / "store", cfg, workers=4, progress=False)
    return work / "store"


def augment_benchmark(device: torch.device, batch: int) -> dict:
    done = subprocess.run(
        [sys.executable, str(HERE / "augment.py"), "--device", device.type, "--batch", str(batch), "--repeats", "1"],
        capture_output=True,
        text=True,
    )
    return {"exit": done.returncode, "output": done.stdout.strip().splitlines()[-3:]}


def table(rows: list[dict]) -> str:
    def cell(value, fmt):
        return "n/a" if value is None else format(value, fmt)

    head = ["variant", "syncs/step", *PHASES, "peak GB", "clips/s", "device-decoded frames/step"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        phases = [cell(r["ms_per_step"][p], ".1f") for p in PHASES]
        cells = [r["variant"], cell(r["syncs_per_step"], ".2f"), *phases, cell(r["peak_memory_gb"], ".2f"), cell(r["clips_per_s"], ".0f")]
        lines.append("| " + " | ".join([*cells, str(r["device_decoded_frames"])]) + " |")
    return "\n".join(lines) + "\n(ms per step after the warm-up steps; n/a: not measurable on this device)"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=100, help="training steps per variant")
    parser.add_argument("--warmup", type=int, default=10, help="steps left out of the measurements (compilation, cudnn autotuning)")
    parser.add_argument("--batch-size", type=int, default=128, help="videos per step (2 clips each; the paper's 128)")
    parser.add_argument("--workers", type=int, default=8, help="decoding workers")
    parser.add_argument("--videos", type=int, default=48, help="synthetic videos per class (8 classes)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS))
    parser.add_argument("--precision", help="trainer precision (default bf16-mixed on CUDA, 32-true on CPU)")
    parser.add_argument("--tiny", action="store_true", help="tiny widths and clips (the test suite's CPU run)")
    parser.add_argument("--data", help="synthetic dataset directory (built if missing; default a temporary one)")
    parser.add_argument("--out", default="gpu_check.json", help="JSON report")
    ns = parser.parse_args(argv)
    device = torch.device(ns.device)
    ns.precision = ns.precision or ("bf16-mixed" if device.type == "cuda" else "32-true")
    ns.warmup = min(ns.warmup, max(0, ns.steps - 1))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ns.data = ns.data or str(work / "synthetic")
        rows = [run_variant(name, ns, device, work) for name in ns.variants.split(",")]
    report = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "settings": {k: v for k, v in vars(ns).items() if k != "data"},
        "variants": rows,
        "augment": augment_benchmark(device, ns.batch_size if not ns.tiny else 4),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(table(rows))
    print("augmentation (benchmarks/augment.py):", *report["augment"]["output"], sep="\n  ")
    Path(ns.out).write_text(json.dumps(report, indent=2))
    print(f"report: {ns.out}")
    return report


if __name__ == "__main__":
    main()

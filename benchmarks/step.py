"""Benchmark: where a training step goes, for every method at the demo width.

    python benchmarks/step.py [--steps 10] [--methods simclr,mocov3,byol,simsiam,supervised]
                              [--threads 2] [--device cpu] [--video-backend pyav] [--store]

For each method (``configs/<method>.yaml`` + the demo settings of ``benchmarks/methods.py``:
width 16, batch 32 x 2 clips, 8 x 32 px video crops, 1.28 s at 16 kHz) it times, per batch:
data loading (decode + collate in this process, ``num_workers=0``, i.e. the work a loader worker
does, with ``--video-backend``), augmentation (``AVTransform.train_views``) and forward + backward + SGD step (+ the EMA
update of momentum methods). It prints the milliseconds, each part's share, the clips/s of the
whole step and the throughput relative to SimCLR measured in the same run, and the parameter
counts of every method at the demo width and at the paper's (ResNet-18, width 64).

``--store`` reads a shard store of the demo's data (``avssl prepare --format shards`` at the
demo's short side, fps and sample rate) with ``data.decode_on: device``: the loader's part is then
the bytes and the audio windows, and the decode of the batch's JPEG frames on ``--device``
(``decode_frames``) is its own column.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from methods import DEMO, demo_config, method_configs  # noqa: E402

from avssl.cli import instantiate  # noqa: E402
from avssl.data.decode import DEFAULT_VIDEO_BACKEND, VIDEO_BACKENDS  # noqa: E402
from avssl.data.encoded import decode_frames  # noqa: E402
from avssl.data.formats import PrepareConfig  # noqa: E402
from avssl.prepare.shards import write_store  # noqa: E402


def quiet(*args, **kwargs) -> None:
    return None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def batches(loader):
    """Training batches over as many epochs as needed (a store's streaming loader counts its own epochs)."""
    epoch = 0
    while True:
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def demo_store(dm, tmp: Path) -> Path:
    """A shard store of the demo's data at its short side, fps and sample rate (a complete store
    is not rewritten, an interrupted one resumes)."""
    store = tmp / "store"
    cfg = PrepareConfig(format="shards", short_side=dm.clip.short_side, fps=dm.synthetic.fps, audio_rate=dm.clip.sample_rate)
    write_store(dm.data_root, store, cfg, workers=2, progress=False)
    return store


def time_method(
    method: str, steps: int, device: torch.device, tmp: Path, backend: str = DEFAULT_VIDEO_BACKEND, store: bool = False
) -> dict:
    args = [
        *method_configs(method),
        f"--config={demo_config(method, tmp)}",
        "--trainer.logger=false",
        "--trainer.callbacks=[]",
        f"--data.video_backend={backend}",
    ]
    model, dm, _ = instantiate(args)
    dm.prepare_data()
    if store:
        model, dm, _ = instantiate([*args, f"--data.root={demo_store(dm, tmp)}", "--data.decode_on=device"])
    dm.num_workers = 0
    model.to(device).train()
    model.log = model.log_dict = quiet
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    transform = dm.views.transform().to(device)
    loader = batches(dm.train_dataloader())
    parts = {"data": [], "device decode": [], "augment": [], "fwd+bwd+step": []}
    for step in range(steps + 2):  # two warm-up steps
        t0 = time.perf_counter()
        batch = next(loader)
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        sync(device)
        t1 = time.perf_counter()
        batch = decode_frames(batch)  # a store's JPEG frames (decode_on: device); else nothing
        sync(device)
        t1b = time.perf_counter()
        views = transform.train_views(batch, torch.Generator(device=device).manual_seed(step))
        if hasattr(model, "mask_generator"):  # CAV-MAE's masks: the trainer's per-batch generator there
            model.mask_generator = lambda device, step=step: torch.Generator(device=device).manual_seed(step)
        sync(device)
        t2 = time.perf_counter()
        loss = model.training_step(views, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if getattr(model, "target", None) is not None:
            model.target.update(model.online_modules(), 0.99)
        sync(device)
        t3 = time.perf_counter()
        if step >= 2:
            for key, dt in zip(parts, (t1 - t0, t1b - t1, t2 - t1b, t3 - t2)):
                parts[key].append(dt * 1000)
    ms = {k: statistics.median(v) for k, v in parts.items()}
    clips = dm.batch_size * dm.num_clips
    return {
        "ms": ms,
        "clips_per_s": clips / (sum(ms.values()) / 1000),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


def param_table(methods: list[str], tmp: Path) -> list[str]:
    lines = ["| method | encoders (video + audio) | heads | total trainable | momentum target |", "|---|---|---|---|---|"]
    for label, extra in (("demo sizes", None), ("bundled config: ResNet-18 / ViT-B", [])):
        for method in methods:
            args = [*method_configs(method), "--trainer.logger=false", "--trainer.callbacks=[]"]
            if extra is None:
                args.insert(len(method_configs(method)), f"--config={demo_config(method, tmp)}")
            model, _, _ = instantiate(args)
            backbone = model.backbone
            trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
            heads = trainable - count(backbone) - count(model.probe)
            target = count(getattr(model, "target", None))
            enc = f"{count(backbone.video) / 1e6:.2f} M + {count(backbone.audio) / 1e6:.2f} M"
            lines.append(f"| {method} ({label}) | {enc} | {heads / 1e6:.2f} M | {trainable / 1e6:.2f} M | {target / 1e6:.2f} M |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--methods", default=",".join(DEMO), help="comma-separated; a name ending in +vit trains ViT encoders")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--video-backend", default=DEFAULT_VIDEO_BACKEND, choices=VIDEO_BACKENDS)
    parser.add_argument("--store", action="store_true", help="a shard store of the demo's data, decode_on: device")
    parser.add_argument("--no-params", action="store_true", help="skip the parameter-count table")
    ns = parser.parse_args()
    torch.set_num_threads(ns.threads)
    device = torch.device(ns.device)
    methods = [m for m in ns.methods.split(",") if m]
    with tempfile.TemporaryDirectory() as tmp:
        results = {m: time_method(m, ns.steps, device, Path(tmp), ns.video_backend, ns.store) for m in methods}
        params = [] if ns.no_params else param_table(methods, Path(tmp))
    base = results.get("simclr", next(iter(results.values())))["clips_per_s"]
    print(
        f"\ntraining step at the demo width on {device} ({ns.threads} threads), median of {ns.steps} steps,"
        f" batch 32 x 2 clips, " + ("shard store, decode_on: device" if ns.store else f"video backend {ns.video_backend}")
    )
    print("| method | data ms | device decode ms | augment ms | fwd+bwd+step ms | shares data/decode/aug/step | clips/s | vs SimCLR |")
    print("|---|---|---|---|---|---|---|---|")
    for method, r in results.items():
        ms = r["ms"]
        total = sum(ms.values())
        shares = "/".join(f"{100 * v / total:.0f}%" for v in ms.values())
        print(
            f"| {method} | {ms['data']:.0f} | {ms['device decode']:.0f} | {ms['augment']:.0f} | {ms['fwd+bwd+step']:.0f} | {shares} | {r['clips_per_s']:.1f} | {r['clips_per_s'] / base:.2f}x |"
        )
    if params:
        print("\nparameters (online probe excluded)")
        print("\n".join(params))


if __name__ == "__main__":
    main()

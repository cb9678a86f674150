"""Benchmark: the default training augmentation, batched on the device vs per sample.

    make bench      # or: python benchmarks/augment.py [--device cuda] [--batch 128] [--repeats 3]

Batched: ``AVTransform.train_views`` on a decoded batch of ``--batch`` videos x 2 clips
(8 x 128 x 128 uint8 frames, 1.28 s of 44.1 kHz audio): crop + flip, colour jitter, grayscale,
blur, pitch shift, RE (alpha 0.75, both streams), normalisation, log-mel.

Baseline: the same operations per clip as a ``Dataset.__getitem__`` would do them, with
torchvision.transforms.v2 (RandomResizedCrop, RandomHorizontalFlip, ColorJitter, RandomGrayscale,
GaussianBlur, Normalize) and torchaudio (MelSpectrogram); RE by ``F.interpolate`` and pitch shift
by avssl's per-clip ``pitch_shift`` (torchaudio's own ``pitch_shift`` spends seconds in its
polyphase resample, which would flatter the batched path).

Each variant runs in its own process (so its peak RSS is its own), alternating A, B, A, B, ...
for ``--repeats`` rounds; the script prints ms per batch (median), the ratio and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time

import torch


def make_batch(batch: int, device: torch.device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    video = torch.randint(0, 256, (batch, 2, 8, 128, 128, 3), dtype=torch.uint8, generator=g)
    audio = torch.randn(batch, 2, round(1.28 * 44100), generator=g) * 0.1
    return {"video": video.to(device), "audio": audio.to(device)}


def batched(batch: dict, device: torch.device, repeats: int) -> list[float]:
    from avssl.augment.audio import SpectrogramConfig
    from avssl.augment.pipeline import AugmentConfig, AVTransform

    transform = AVTransform(44100, AugmentConfig(crop_size=112), SpectrogramConfig()).to(device)
    times = []
    for i in range(repeats + 1):
        sync(device)
        start = time.perf_counter()
        transform.train_views(batch, torch.Generator(device=device).manual_seed(i))
        sync(device)
        times.append(time.perf_counter() - start)
    return times[1:]  # the first call warms up


def per_sample(batch: dict, repeats: int) -> list[float]:
    import torch.nn.functional as F
    import torchvision.transforms.v2 as T
    from torchaudio.transforms import MelSpectrogram

    from avssl.augment.audio import pitch_shift

    video_tf = T.Compose(
        [
            T.RandomResizedCrop(112, scale=(0.3, 1.0), antialias=False),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            T.RandomApply([T.GaussianBlur(11, sigma=(0.1, 2.0))], p=0.5),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize((0.45,) * 3, (0.225,) * 3),
        ]
    )
    mel = MelSpectrogram(44100, n_fft=1024, hop_length=128, n_mels=80)

    def resample_time(x: torch.Tensor, s: float) -> torch.Tensor:  # x [..., L] along the last dim
        length = x.shape[-1]
        down = F.interpolate(x.reshape(1, -1, length), size=max(1, round(length * (1 - s))), mode="nearest")
        return F.interpolate(down, size=length, mode="nearest").reshape(x.shape)

    times = []
    videos, audios = batch["video"].flatten(0, 1), batch["audio"].flatten(0, 1)
    for _ in range(repeats + 1):
        start = time.perf_counter()
        for clip, wave in zip(videos, audios):
            frames = video_tf(clip.permute(0, 3, 1, 2))  # [T, 3, 112, 112], one draw per clip
            frames = resample_time(frames.permute(1, 2, 3, 0), 0.75 * torch.rand(1).item()).permute(3, 0, 1, 2)
            steps = torch.randint(-3, 4, (1,)) * (torch.rand(1) < 0.5)
            wave = pitch_shift(wave[None], 44100, steps)[0]
            wave = resample_time(wave[None], 0.75 * torch.rand(1).item())[0]
            torch.log(mel(wave) + 1e-6)
        times.append(time.perf_counter() - start)
    return times[1:]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def worker(variant: str, device: str, batch_size: int, repeats: int) -> None:
    dev = torch.device(device)
    batch = make_batch(batch_size, dev if variant == "batched" else torch.device("cpu"))
    times = batched(batch, dev, repeats) if variant == "batched" else per_sample(batch, repeats)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"times": times, "peak_rss_mb": peak_mb, "threads": torch.get_num_threads()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="device of the batched variant")
    parser.add_argument("--batch", type=int, default=128, help="videos per batch (2 clips each)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds of the two variants")
    parser.add_argument("--worker", choices=["batched", "per_sample"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.device, args.batch, 1)
        return
    results: dict[str, list[dict]] = {"batched": [], "per_sample": []}
    for _ in range(args.repeats):
        for variant in results:
            cmd = [sys.executable, __file__, "--worker", variant, "--device", args.device, "--batch", str(args.batch)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            results[variant].append(json.loads(out.strip().splitlines()[-1]))
    summary = {}
    for variant, runs in results.items():
        ms = statistics.median(t * 1000 for run in runs for t in run["times"])
        summary[variant] = (ms, max(run["peak_rss_mb"] for run in runs))
    (b_ms, b_rss), (p_ms, p_rss) = summary["batched"], summary["per_sample"]
    threads = results["batched"][0]["threads"]
    print(f"batch: {args.batch} videos x 2 clips x 8 frames 128 px -> 112 px, 1.28 s at 44.1 kHz; torch threads: {threads}")
    print(f"per-sample (torchvision v2 / torchaudio, CPU): {p_ms:9.1f} ms/batch   peak RSS {p_rss:8.0f} MB")
    print(f"batched train_views ({args.device}):{' ' * max(0, 14 - len(args.device))}{b_ms:9.1f} ms/batch   peak RSS {b_rss:8.0f} MB")
    print(f"speed-up: {p_ms / b_ms:.2f}x   peak-memory ratio (batched / per-sample): {b_rss / p_rss:.2f}")
    if math.isnan(b_ms):
        raise SystemExit(1)


if __name__ == "__main__":
    main()

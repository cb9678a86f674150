"""``avssl prepare SRC DST``: re-encode a dataset once into a training-friendly copy.

Every video under ``SRC`` becomes ``DST/<same relative path>.mp4``: H.264 at a short side of
``short_side`` px (aspect kept, even sizes, rotation and pixel aspect applied), a constant ``fps``
with strictly increasing time stamps (frame ``k`` at ``k / fps`` on the source's timeline, showing
the source frame displayed at that time), a keyframe every ``gop`` frames, so a clip window decodes
from a near keyframe, and ``bframes`` B-frames between P-frames that no frame references
(``b-pyramid=none``, fixed pattern): a decoder may drop the ones a clip does not show, which the
``pyav`` video backend does (3 of 4 frames at the default). When two sources would share an output
name (``clip.mkv`` and ``clip.mp4``), the ``.mp4`` keeps it and the others keep their extension
(``clip.mkv.mp4``). Its audio is written beside it as ``<name>.wav``: mono 16-bit PCM at
``audio_rate`` on the same timeline (an audio stream that starts late is preceded by silence),
which the decoder reads by sample range. Other files (``Annotations.txt`` and the split files of
AVE, a ``manifest.csv`` — with its paths pointed at the copies) are copied, so the datasets read
``DST`` exactly as they read ``SRC``. ``SRC`` may itself be a prepared copy, or hold one (to
re-prepare at another size): its videos' audio is read from their sidecars, and its
``prepare_report.json`` files are not copied (``DST``'s own report lists the new sidecars).

Runs ``workers`` processes with a progress bar; resumable: outputs are written in
``DST/.avssl-prepare-tmp`` and moved into place when complete, a re-run skips files whose outputs
exist and redoes the others. ``DST/prepare_report.json`` accounts for every source: under
``files``, each one's status (``prepared`` or the reason it was skipped: unreadable, no audio
stream, truncated, dangling link, ...), output and audio sidecar; counts by reason, renamed outputs
and files with non-finite audio samples (set to 0 and counted) are summarised. The decoder takes a
WAV for a video's audio only when this report lists it. A source whose frames end before its
header's duration (a cut download) is reported ``truncated``, not prepared.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import wave
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from tqdm.auto import tqdm

from avssl.data.decode import (
    DecodeError,
    MediaInfo,
    resized_shape,
)
from avssl.data.formats import PREPARE_REPORT, PREPARE_TMP, PrepareConfig
from avssl.data.layouts import VIDEO_EXTENSIONS
from avssl.data.prepared import probe_file
from avssl.errors import ConfigError
from avssl.prepare.timeline import timeline_audio, timeline_frames

log = logging.getLogger(__name__)
COPIED = (".txt", ".csv", ".json")


def prepare_file(
    src: str, dst: str, cfg: PrepareConfig, audio_dst: str | None = None, tmp_dir: str | None = None
) -> tuple[str, str, str, int]:
    """Re-encode one file to ``dst`` (its audio to ``audio_dst``, default ``dst`` with ``.wav``).
    Returns ``(src, status, detail, non-finite audio samples)``: status ``prepared`` or a skip
    reason. Outputs are written in ``tmp_dir`` (default: beside ``dst``) under a name derived from
    ``dst`` and moved into place when complete, the video last (its final name marks a finished
    file)."""
    dst_video = Path(dst)
    dst_audio = Path(audio_dst) if audio_dst else dst_video.with_suffix(".wav")
    tmp = Path(tmp_dir or dst_video.parent) / (".tmp-" + hashlib.sha1(dst.encode()).hexdigest()[:16])
    tmp_video, tmp_audio = tmp.with_suffix(".mp4"), tmp.with_suffix(".wav")
    try:
        info = probe_file(src)  # a source that is itself a prepared copy has its audio in a sidecar
        if not info.has_audio and not cfg.allow_missing_audio:
            raise DecodeError(src, "no_audio_stream")
        dst_video.parent.mkdir(parents=True, exist_ok=True)
        nonfinite = _write_audio(src, tmp_audio, cfg.audio_rate, info) if info.has_audio else 0
        _write_video(src, tmp_video, info, cfg)
        if info.has_audio:  # a video kept without audio has no sidecar
            os.replace(tmp_audio, dst_audio)
        os.replace(tmp_video, dst_video)
        return src, "prepared", "", nonfinite
    except DecodeError as e:
        return src, e.reason, str(e), 0
    except (av.FFmpegError, OSError, ValueError) as e:
        return src, "corrupt", f"{type(e).__name__}: {e}", 0
    except Exception as e:  # any other failure on one file is reported with it, never ends the whole run
        return src, "failed", f"{type(e).__name__}: {e}", 0
    finally:
        for leftover in (tmp_video, tmp_audio):
            leftover.unlink(missing_ok=True)


def _write_audio(src: str, path: Path, rate: int, info: MediaInfo) -> int:
    """:func:`timeline_audio` written to ``path`` as a mono PCM16 WAV; returns the non-finite
    sample count."""
    pcm, nonfinite = timeline_audio(src, rate, info)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return nonfinite


def _write_video(src: str, path: Path, info: MediaInfo, cfg: PrepareConfig) -> None:
    """:func:`timeline_frames` encoded to ``path`` (H.264, frame ``k`` at time stamp ``k / fps``)."""
    out_h, out_w = resized_shape(info.height, info.width, cfg.short_side)
    with av.open(str(path), mode="w") as target:
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
        for k, rgb in enumerate(timeline_frames(src, info, cfg)):
            _encode(target, out, rgb, k)
        for packet in out.encode():
            target.mux(packet)


def _encode(container, stream, rgb: np.ndarray, k: int) -> None:
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    frame.pts = k  # time base 1 / fps: strictly increasing time stamps
    for packet in stream.encode(frame):
        container.mux(packet)


@dataclass(frozen=True)
class Source:
    """One video under SRC and where its copy goes (paths relative to SRC / DST)."""

    rel: Path
    output: Path | None  # None: not prepared (``problem`` says why)
    problem: str = ""

    @property
    def audio(self) -> Path:
        return self.output.with_suffix(".wav")


def _plan(src: Path, dst: Path) -> tuple[list[Source], list[Path]]:
    """Every video under ``src`` (dangling links included) with a distinct output: ``a/clip.mp4``
    for ``a/clip.<ext>``; when two sources would share it, the one that is already an ``.mp4``
    keeps it and the others keep their extension (``a/clip.mkv.mp4``)."""
    videos, others = [], []
    for path in sorted(src.rglob("*")):
        if dst == path or dst in path.parents or PREPARE_TMP in path.parts:
            continue
        rel = path.relative_to(src)
        if path.suffix.lower() in VIDEO_EXTENSIONS:
            if path.is_symlink() and not path.exists():
                videos.append(Source(rel, None, "dangling_link"))
            elif path.is_file():
                videos.append(Source(rel, rel.with_suffix(".mp4")))
        elif path.is_file() and path.suffix.lower() in COPIED and path.name != PREPARE_REPORT:
            others.append(rel)  # a prepared copy's report is not copied: DST's own report lists its sidecars
    claims: dict[Path, list[int]] = {}
    for i, v in enumerate(videos):
        if v.output is not None:
            claims.setdefault(v.output, []).append(i)
    for ids in claims.values():
        if len(ids) > 1:
            for i in ids:
                if videos[i].rel.suffix != ".mp4":
                    videos[i] = Source(videos[i].rel, videos[i].rel.with_name(videos[i].rel.name + ".mp4"))
    taken: set[Path] = set()
    for i, v in enumerate(videos):  # a renamed output can still meet a source of that name
        if v.output is not None and (v.output in taken or v.audio in taken):
            videos[i] = Source(v.rel, None, "name_collision")
        elif v.output is not None:
            taken.update((v.output, v.audio))
    return videos, others


def _copy_metadata(src: Path, dst: Path, rel: Path, outputs: dict[Path, Path | None]) -> None:
    target = dst / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if rel.name == "manifest.csv":  # point the manifest at the .mp4 copies
        with open(src / rel, newline="") as f:
            rows = list(csv.DictReader(f))
            fields = list(rows[0].keys()) if rows else ["path", "label", "split"]
        for row in rows:  # a row whose video is not prepared keeps its path: the dataset reports it
            video = Path(row["path"])
            if video.is_absolute():
                output = outputs.get(video.relative_to(src)) if src in video.parents else None
                row["path"] = str(dst / output) if output else row["path"]
            else:
                output = outputs.get(Path(os.path.normpath(rel.parent / video)))
                row["path"] = os.path.relpath(output, rel.parent) if output else row["path"]
        with open(target, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    else:
        shutil.copyfile(src / rel, target)


def _sidecar(dst: Path, source: Source) -> str | None:
    """The report's name of a prepared video's sidecar; ``None`` for a video kept without audio."""
    return str(source.audio) if (dst / source.audio).is_file() else None


def check_settings(dst: Path, settings: dict) -> None:
    """Refuse to resume into a ``dst`` prepared with other settings (its finished files would be kept)."""
    try:
        previous = json.loads((dst / PREPARE_REPORT).read_text()).get("settings")
    except (OSError, ValueError, AttributeError):
        return
    if previous is None or previous == settings:
        return
    formats = previous.get("format", "mp4"), settings.get("format", "mp4")  # an mp4 copy's report names no format
    if formats[0] != formats[1]:
        raise ConfigError(f"prepare: {dst} was prepared with --format {formats[0]}, not {formats[1]}; use a new DST or delete it")
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
    if cfg.format != "mp4":
        raise ConfigError(f"prepare: this writer makes mp4 copies, got format {cfg.format!r}")
    settings = cfg.settings()
    check_settings(dst, settings)
    dst.mkdir(parents=True, exist_ok=True)
    tmp_dir = dst / PREPARE_TMP
    shutil.rmtree(tmp_dir, ignore_errors=True)  # partial outputs of an interrupted run
    tmp_dir.mkdir()
    # settings first, so a re-run after an interruption cannot mix files of two settings
    (dst / PREPARE_REPORT).write_text(json.dumps({"source": str(src), "settings": settings, "in_progress": True}, indent=2))
    outputs = {v.rel: v.output for v in videos}
    for rel in others:
        _copy_metadata(src, dst, rel, outputs)
    planned = [v for v in videos if v.output is not None]
    # the video is moved into place last: it marks a finished file (with its sidecar, unless kept without audio)
    done = [v for v in planned if (dst / v.output).is_file() and (cfg.allow_missing_audio or (dst / v.audio).is_file())]
    todo = [v for v in planned if v not in set(done)]
    files = {str(v.rel): {"status": v.problem, "output": None, "audio": None} for v in videos if v.output is None}
    files.update({str(v.rel): {"status": "prepared", "output": str(v.output), "audio": _sidecar(dst, v)} for v in done})
    for v in done:
        files[str(v.rel)]["already_done"] = True
    # spawn, not fork: a forked child of a process whose torch / OpenMP threads are running can deadlock
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = pool.map(
            prepare_file,
            [str(src / v.rel) for v in todo],
            [str(dst / v.output) for v in todo],
            [cfg] * len(todo),
            [str(dst / v.audio) for v in todo],
            [str(tmp_dir)] * len(todo),
        )
        for v, (_, status, detail, nonfinite) in zip(todo, tqdm(futures, total=len(todo), desc="prepare", disable=not progress)):
            entry = {"status": status, "output": None, "audio": None}
            if status == "prepared":
                entry.update(output=str(v.output), audio=_sidecar(dst, v))
                if nonfinite:
                    entry["nonfinite_audio_samples"] = nonfinite
            else:
                entry["detail"] = detail
            files[str(v.rel)] = entry
    shutil.rmtree(tmp_dir, ignore_errors=True)
    skipped = [
        {"path": str(src / rel), "reason": f["status"], "detail": f.get("detail", "")}
        for rel, f in files.items()
        if f["status"] != "prepared"
    ]
    report = {
        "source": str(src),
        "settings": settings,
        "videos": len(videos),
        "prepared": sum(1 for f in files.values() if f["status"] == "prepared" and not f.get("already_done")),
        "already_done": len(done),
        "skipped_by_reason": dict(sorted(Counter(item["reason"] for item in skipped).items())),
        "skipped": skipped,
        "renamed": {str(v.rel): str(v.output) for v in planned if v.output != v.rel.with_suffix(".mp4")},
        "nonfinite_audio_files": sum(1 for f in files.values() if f.get("nonfinite_audio_samples")),
        "metadata_copied": [str(r) for r in others],
        "files": dict(sorted(files.items())),
    }
    (dst / PREPARE_REPORT).write_text(json.dumps(report, indent=2))
    log.info(
        "prepare: %d prepared, %d already done, %d skipped %s -> %s",
        report["prepared"],
        len(done),
        len(skipped),
        report["skipped_by_reason"],
        dst / PREPARE_REPORT,
    )
    return report

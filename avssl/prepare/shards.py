"""``avssl prepare SRC DST --format shards``: write a dataset once into a litdata store.

``SRC`` is any root avssl reads (its layout is detected as ``data.root`` would be; a transfer
benchmark is read with its first official split). Every record of its catalog becomes one litdata
item, written split by split (train, val, test, then any other), so that a split is one
contiguous range of items that litdata streams on its own (:mod:`~avssl.data.streaming`); a
file listed by several records (a video in two splits) is written once per record. An item holds
its frames as JPEG, exactly the frames ``avssl prepare`` would encode into an mp4 copy with
the same short side and fps (:func:`~avssl.prepare.timeline.timeline_frames`), and its audio as the
int16 samples that copy's WAV sidecar would hold (:func:`~avssl.prepare.timeline.timeline_audio`).
A catalog without audio (UCF101, HMDB51) stores frames only; an audio-only one (ESC-50) audio only.

The same guarantees as an mp4 copy: ``workers`` processes with a progress bar; every source is
accounted for in ``DST/prepare_report.json`` (prepared, or skipped with its reason: a listed file
that is missing, unreadable, without the audio the catalog needs, truncated, ...); resumable: each
file is staged in ``DST/.avssl-store-items`` when complete (written under a temporary name and
renamed), a re-run keeps the staged files and redoes the others, and resuming with other settings
is refused. When every file is staged the chunks are written in that order with litdata's
:class:`~litdata.streaming.writer.BinaryWriter`, then ``avssl_store.json`` (the store's
description, whose presence marks a complete store), and the staged files are removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import numpy as np
import torch
from torchvision.io import encode_jpeg
from tqdm.auto import tqdm

from avssl import __version__
from avssl.data import layouts
from avssl.data.decode import DecodeError
from avssl.data.formats import ITEM_KEYS, LITDATA_INDEX, PREPARE_REPORT, STAGE_DIR, STORE_FORMAT, STORE_META, PrepareConfig
from avssl.data.layouts import VideoRecord
from avssl.data.prepared import probe_file
from avssl.data.store.meta import StoreMeta, checksums
from avssl.errors import ConfigError
from avssl.prepare.mp4 import check_settings
from avssl.prepare.timeline import timeline_audio, timeline_frames

log = logging.getLogger(__name__)
SPLIT_ORDER = ("train", "val", "test")
CHUNK_BYTES = "64MB"  # litdata chunk size: a few hundred videos of 10 s at 128 px per chunk


def store_file(src: str, out: str, cfg: PrepareConfig, streams: tuple[str, ...]) -> tuple[str, str, str]:
    """Stage one file as ``out`` (``.npz``: the item's arrays and its description). Returns
    ``(src, status, detail)``: status ``prepared`` or a skip reason; nothing is left at ``out``
    unless it is complete."""
    tmp = out + ".tmp.npz"
    try:
        info = probe_file(src, video="video" in streams)
        if "audio" in streams and not info.has_audio and not cfg.allow_missing_audio:
            raise DecodeError(src, "no_audio_stream")
        audio = "audio" in streams and info.has_audio  # kept without audio: an item with no samples
        chunks, height, width = [], 0, 0
        if "video" in streams:
            for rgb in timeline_frames(src, info, cfg):
                height, width = rgb.shape[:2]
                chunks.append(encode_jpeg(torch.from_numpy(rgb).permute(2, 0, 1).contiguous(), quality=cfg.jpeg_quality).numpy())
        pcm, nonfinite = timeline_audio(src, cfg.audio_rate, info) if audio else (np.zeros(0, np.int16), 0)
        offsets = np.zeros(len(chunks) + 1, np.int64)
        offsets[1:] = np.cumsum([len(c) for c in chunks])
        jpeg = np.concatenate(chunks) if chunks else np.zeros(0, np.uint8)
        description = {
            "frames": len(chunks),
            "height": int(height),
            "width": int(width),
            # the prepared timeline's duration (frame k shows for [k / fps, (k + 1) / fps)), as the
            # mp4 copy's header gives it, so that clip starts are drawn over the same range
            "duration": len(chunks) / cfg.fps if chunks else float(info.duration),
            "has_audio": audio,
            "nonfinite_audio_samples": nonfinite,
        }
        audio = pcm.astype(np.int16)
        crc = checksums(chunks, audio)
        np.savez(tmp, jpeg=jpeg, offsets=offsets, audio=audio, crc=crc, description=json.dumps(description))
        os.replace(tmp, out)
        return src, "prepared", ""
    except DecodeError as e:
        return src, e.reason, str(e)
    except (av.FFmpegError, OSError, ValueError) as e:
        return src, "corrupt", f"{type(e).__name__}: {e}"
    except Exception as e:  # any other failure on one file is reported with it, never ends the whole run
        return src, "failed", f"{type(e).__name__}: {e}"
    finally:
        Path(tmp).unlink(missing_ok=True)


def training_order(records: list[VideoRecord]) -> list[VideoRecord]:
    """``records`` by split (train, val, test, then the others by name), each split in catalog order."""
    rank = {split: i for i, split in enumerate(SPLIT_ORDER)}
    return sorted(records, key=lambda r: (rank.get(r.split, len(rank)), "" if r.split in rank else r.split))


def _staged_name(path: str) -> str:
    return hashlib.sha1(path.encode()).hexdigest()[:20] + ".npz"


def _relative(path: str, src: Path) -> str:
    return os.path.relpath(path, src) if Path(path).is_relative_to(src) else path


def write_store(
    src: str | Path, dst: str | Path, cfg: PrepareConfig = PrepareConfig(format="shards"), *, workers: int = 4, progress: bool = True
) -> dict:
    """Write the store of ``src`` into ``dst`` (see the module docstring); returns the report
    (also written to ``dst/prepare_report.json``)."""
    src, dst = Path(src).resolve(), Path(dst).resolve()
    if cfg.format != "shards":
        raise ConfigError(f"prepare: the store writer needs format shards, got {cfg.format!r}")
    if not src.is_dir():
        raise ConfigError(f"prepare: source directory {str(src)!r} does not exist")
    if src == dst or src in dst.parents:
        raise ConfigError("prepare: DST must lie outside SRC")
    catalog = layouts.read(src)
    files = list(dict.fromkeys(r.path for r in catalog.records))  # each file once, in catalog order
    if not files:
        raise ConfigError(f"prepare: the {catalog.layout} catalog of {src} lists no existing files ({catalog.report()})")
    settings = cfg.settings()
    check_settings(dst, settings)
    if (dst / STORE_META).is_file():
        return _complete(src, dst, files, settings)
    dst.mkdir(parents=True, exist_ok=True)
    stage = dst / STAGE_DIR
    stage.mkdir(exist_ok=True)
    (dst / PREPARE_REPORT).write_text(json.dumps({"source": str(src), "settings": settings, "in_progress": True}, indent=2))
    staged = {f: stage / _staged_name(f) for f in files}
    done = [f for f in files if staged[f].is_file()]
    todo = [f for f in files if not staged[f].is_file()]
    status: dict[str, tuple[str, str]] = {f: ("prepared", "") for f in done}
    # spawn, not fork: a forked child of a process whose torch / OpenMP threads are running can deadlock
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=multiprocessing.get_context("spawn")) as pool:
        results = pool.map(store_file, todo, [str(staged[f]) for f in todo], [cfg] * len(todo), [catalog.streams] * len(todo))
        for path, result, detail in tqdm(results, total=len(todo), desc="prepare (shards)", disable=not progress):
            status[path] = (result, detail)
    prepared = [f for f in files if status[f][0] == "prepared"]
    records = training_order([r for r in catalog.records if status[r.path][0] == "prepared"])
    items, nonfinite = _write_chunks(dst, [staged[r.path] for r in records], progress)
    item_of: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        item_of.setdefault(r.path, []).append(i)
    meta = {
        "store_format": STORE_FORMAT,
        "avssl": __version__,
        "settings": settings,
        "source": str(src),
        "layout": catalog.layout,
        "split": catalog.split,
        "classes": catalog.classes,
        "streams": list(catalog.streams),
        "items": [{"source": _relative(r.path, src), **item} for r, item in zip(records, items)],
        "records": [
            {"item": i, "video_id": r.video_id, "label": r.label, "split": r.split, "offset": r.offset, "length": r.length}
            for i, r in enumerate(records)
        ],
    }
    tmp = dst / (STORE_META + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, dst / STORE_META)
    skipped = [{"path": m, "reason": "missing", "detail": "listed by the catalog, not on disk"} for m in catalog.missing]
    skipped += [{"path": f, "reason": status[f][0], "detail": status[f][1]} for f in files if status[f][0] != "prepared"]
    file_entries = {_relative(f, src): {"status": status[f][0], "items": item_of.get(f, [])} for f in files}
    for r, count in zip(records, nonfinite):
        if count:
            file_entries[_relative(r.path, src)]["nonfinite_audio_samples"] = count
    report = _report(src, settings, len(files) + len(catalog.missing), len(prepared) - len(done), len(done), skipped, file_entries)
    report["nonfinite_audio_files"] = sum(1 for e in file_entries.values() if e.get("nonfinite_audio_samples"))
    (dst / PREPARE_REPORT).write_text(json.dumps(report, indent=2))
    shutil.rmtree(stage, ignore_errors=True)
    log.info("prepare (shards): %d prepared, %d skipped %s -> %s", len(prepared), len(skipped), report["skipped_by_reason"], dst)
    return report


def _write_chunks(dst: Path, staged: list[Path], progress: bool) -> tuple[list[dict], list[int]]:
    """litdata chunks of the staged files, in order (any chunks of an interrupted write are
    replaced); each item's description and non-finite sample count."""
    from litdata.streaming.writer import BinaryWriter

    for old in [*dst.glob("chunk-*.bin"), *dst.glob("*index.json")]:
        old.unlink()
    writer = BinaryWriter(str(dst), chunk_bytes=CHUNK_BYTES)
    items, nonfinite = [], []
    for i, path in enumerate(tqdm(staged, desc="write chunks", disable=not progress)):
        with np.load(path) as data:
            writer[i] = {key: data[key] for key in ITEM_KEYS}
            description = json.loads(str(data["description"]))
        nonfinite.append(description.pop("nonfinite_audio_samples"))
        items.append(description)
    writer.done()
    writer.merge()
    if not (dst / LITDATA_INDEX).is_file():
        raise ConfigError(f"prepare: litdata wrote no {LITDATA_INDEX} in {dst}")
    return items, nonfinite


def _complete(src: Path, dst: Path, files: list[str], settings: dict) -> dict:
    """The report of a re-run on a complete store: every file already done when it holds the
    same sources, else an error (a store's chunks are not appended to)."""
    meta = StoreMeta.read(dst)
    stored = {item.source for item in meta.items}
    previous = json.loads((dst / PREPARE_REPORT).read_text())
    wanted = {_relative(f, src) for f in files}
    added = sorted(wanted - stored - {k for k, v in previous.get("files", {}).items() if v["status"] != "prepared"})
    if added:
        raise ConfigError(
            f"prepare: {dst} is a complete store without {len(added)} of SRC's files (e.g. {added[:3]}); write the store to a new DST"
        )
    previous.update(prepared=0, already_done=len(meta.items))
    return previous


def _report(src: Path, settings: dict, videos: int, prepared: int, already: int, skipped: list[dict], files: dict) -> dict:
    return {
        "source": str(src),
        "settings": settings,
        "videos": videos,
        "prepared": prepared,
        "already_done": already,
        "skipped_by_reason": dict(sorted(Counter(item["reason"] for item in skipped).items())),
        "skipped": skipped,
        "files": dict(sorted(files.items())),
    }

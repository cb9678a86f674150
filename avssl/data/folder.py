"""Folder / CSV datasets (no decoding): a list of :class:`VideoRecord`.

A manifest CSV has the header ``path,label[,split]``; ``path`` is relative to the manifest's
directory (or absolute), ``label`` an integer class or empty for unlabeled videos, ``split`` one of
``train`` / ``val`` / ``test``. Without a manifest, every video file under the root is an
unlabeled training video.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class VideoRecord:
    """One video (or audio file) of a dataset; clips are drawn from ``[offset, offset + length)``
    of the file (the whole file by default)."""

    path: str
    label: int  # -1 when unknown
    video_id: str
    split: str = "train"
    offset: float = 0.0  # seconds into the file where the sample starts
    length: float | None = None  # seconds of the sample (None: to the end of the file)


def read_manifest(manifest: str | Path) -> list[VideoRecord]:
    """Parse a ``path,label[,split]`` CSV; errors name the file, line and field."""
    manifest = Path(manifest)
    base = manifest.parent
    records = []
    with open(manifest, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "path" not in reader.fieldnames:
            raise ValueError(f"{manifest}: expected a header 'path,label[,split]', got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            path = Path(row["path"])
            label_text = (row.get("label") or "").strip()
            try:
                label = int(label_text) if label_text else -1
            except ValueError:
                raise ValueError(f"{manifest}:{line}: field 'label' must be an integer or empty, got {label_text!r}") from None
            split = (row.get("split") or "train").strip()
            if split not in SPLITS:
                raise ValueError(f"{manifest}:{line}: field 'split' must be one of {SPLITS}, got {split!r}")
            full = path if path.is_absolute() else base / path
            records.append(VideoRecord(str(full), label, path.stem, split))
    return records


def scan_folder(root: str | Path) -> list[VideoRecord]:
    """Every video file under ``root`` as an unlabeled training record (sorted, deterministic)."""
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
    return [VideoRecord(str(p), -1, str(p.relative_to(root).with_suffix("")), "train") for p in files]

"""A manifest CSV or a plain folder of videos (no decoding).

A manifest has the header ``path,label[,split]``; ``path`` is relative to the manifest's
directory (or absolute), ``label`` an integer class or empty for unlabeled videos, ``split`` one of
``train`` / ``val`` / ``test``. Without a manifest, every video file under the root is an
unlabeled training video.
"""

from __future__ import annotations

import csv
from pathlib import Path

from avssl.data.formats import MANIFEST
from avssl.data.layouts.base import SPLITS, VIDEO_EXTENSIONS, Catalog, Layout, ReadOptions, VideoRecord
from avssl.errors import ConfigError


def read_manifest(manifest: str | Path) -> list[VideoRecord]:
    """Parse a ``path,label[,split]`` CSV; errors name the file, line and field."""
    manifest = Path(manifest)
    base = manifest.parent
    records = []
    with open(manifest, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "path" not in reader.fieldnames:
            raise ConfigError(f"{manifest}: expected a header 'path,label[,split]', got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            path = Path(row["path"])
            label_text = (row.get("label") or "").strip()
            try:
                label = int(label_text) if label_text else -1
            except ValueError:
                raise ConfigError(f"{manifest}:{line}: field 'label' must be an integer or empty, got {label_text!r}") from None
            split = (row.get("split") or "train").strip()
            if split not in SPLITS:
                raise ConfigError(f"{manifest}:{line}: field 'split' must be one of {SPLITS}, got {split!r}")
            full = path if path.is_absolute() else base / path
            records.append(VideoRecord(str(full), label, path.stem, split))
    return records


def scan_folder(root: str | Path) -> list[VideoRecord]:
    """Every video file under ``root`` as an unlabeled training record (sorted, deterministic).
    A symbolic link whose target is gone is kept, so the dataset skips it and names it
    (``dangling_link``) instead of leaving it out unseen."""
    root = Path(root)
    files = sorted(
        p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and (p.is_file() or (p.is_symlink() and not p.exists()))
    )
    return [VideoRecord(str(p), -1, str(p.relative_to(root).with_suffix("")), "train") for p in files]


class Manifest(Layout):
    """A directory with a ``manifest.csv``."""

    name = "manifest"

    def detect(self, root: Path) -> bool:
        return (root / MANIFEST).is_file()

    def read(self, root: Path, options: ReadOptions) -> Catalog:
        if not self.detect(root):
            raise ConfigError(f"data.layout {self.name}: no {MANIFEST} in {root}")
        return Catalog(self.name, None, read_manifest(root / MANIFEST))


class Folder(Layout):
    """Any directory: every video file under it, unlabeled, all train (detected last)."""

    name = "folder"

    def detect(self, root: Path) -> bool:
        return root.is_dir()

    def read(self, root: Path, options: ReadOptions) -> Catalog:
        return Catalog(self.name, None, scan_folder(root))

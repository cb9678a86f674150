"""What every dataset layout shares: the record of one video, the catalog a layout reads, and the
:class:`Layout` interface (detect a root, read its records and splits).

A layout is one small object per kind of dataset root (AVE, the transfer benchmarks, a manifest,
a folder, the synthetic set); :mod:`avssl.data.layouts` keeps them in one ordered registry that
the data module, ``avssl transfer`` and the probe's results all read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from avssl.errors import ConfigError

log = logging.getLogger(__name__)

STREAMS = ("video", "audio")  # the streams a dataset can hold, in batch order
SPLITS = ("train", "val", "test")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v")


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
    store: str | None = None  # a shard store's root when the video is one of its items (``path`` then names it)
    item: int = -1  # the video's item in that store


@dataclass(frozen=True)
class ReadOptions:
    """How to read a root: the official split (layouts with several) and AVE's duplicate rule."""

    split: int = 1
    drop_cross_split_duplicates: bool = False


@dataclass
class Catalog:
    """What a layout read from a root.

    Attributes:
        layout: the layout's name.
        split: the official split read (``None`` for layouts without official splits).
        records: the rows of every split (``train`` / ``val`` / ``test``) whose files exist.
        classes: class names by label, or ``None`` when the data names none (labels are integers).
        streams: the streams the data has (``("video",)``, ``("audio",)`` or both).
        missing: listed files that do not exist (counted and reported, never silently dropped).
    """

    layout: str
    split: int | None
    records: list[VideoRecord]
    classes: list[str] | None = None
    streams: tuple[str, ...] = STREAMS
    missing: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        """Named classes, else one past the largest label (0 for unlabeled data)."""
        if self.classes is not None:
            return len(self.classes)
        return max((r.label for r in self.records), default=-1) + 1

    def report(self) -> str:
        counts = {s: n for s in SPLITS if (n := sum(r.split == s for r in self.records)) or s != "val"}
        split = f" split {self.split}" if self.split is not None else ""
        line = f"{self.layout}{split}: {self.num_classes} classes, {counts} videos, streams {'+'.join(self.streams)}"
        if self.missing:
            line += f"; {len(self.missing)} listed files missing and skipped, e.g. {self.missing[:3]}"
        return line


class Layout:
    """One kind of dataset root.

    Subclasses set :attr:`name` (the ``data.layout`` value), :attr:`num_splits` when the data has
    official splits chosen with ``data.split``, and implement :meth:`detect` and :meth:`read`.
    """

    name: ClassVar[str]
    num_splits: ClassVar[int | None] = None

    def detect(self, root: Path) -> bool:
        """Whether ``root`` holds this layout (from its files; nothing is decoded)."""
        raise NotImplementedError

    def read(self, root: Path, options: ReadOptions) -> Catalog:
        """The records, classes and streams of ``root``; errors name the file, line and field."""
        raise NotImplementedError

    @property
    def declares_streams(self) -> bool:
        """Whether its catalog says which streams the data has (the benchmarks, a store); the
        others are read with both."""
        return self.num_splits is not None

    def check_split(self, split: int) -> None:
        if self.num_splits is not None and not 1 <= split <= self.num_splits:
            raise ConfigError(f"data.split: {self.name} has splits 1..{self.num_splits}, got {split}")

    def __repr__(self) -> str:
        return f"<layout {self.name}>"


def find_file(root: Path, name: str, subdir: str) -> Path | None:
    """``root/name`` or ``root/subdir/name``, whichever is a file."""
    for candidate in (root / name, root / subdir / name):
        if candidate.is_file():
            return candidate
    return None


def media_dir(root: Path, subdir: str) -> Path:
    """``root/subdir`` when it exists, else ``root`` (downloads unpack either way)."""
    return root / subdir if (root / subdir).is_dir() else root


def list_lines(path: Path) -> list[tuple[int, list[str]]]:
    """Non-empty lines of a whitespace-separated list file, numbered from 1."""
    return [(i, line.split()) for i, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1) if line.strip()]


def checked(found: Catalog) -> Catalog:
    """``found`` after refusing a catalog without training files; its report is logged."""
    if not any(r.split == "train" for r in found.records):
        raise ConfigError(f"data.root: {found.layout} split {found.split} has no training files on disk ({found.report()})")
    log.info(found.report())
    return found

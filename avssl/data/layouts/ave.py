"""AVE (Tian et al., ECCV 2018) annotation and split parsing — no decoding.

Layout of the download (``AVE_Dataset/``)::

    Annotations.txt                 Category&VideoID&Quality&StartTime&EndTime, one row per sample
    trainSet.txt valSet.txt testSet.txt   the official splits, same format (3,339 / 402 / 402 rows)
    AVE/<VideoID>.mp4

Rules: the header line is optional (the repository copy has none, the zip copy has one);
fields are split on ``&`` only (class names contain commas and parentheses); samples are the split
files' rows, keyed by row, not by VideoID — 4,143 rows carry only 4,097 unique IDs: some IDs have
two or three labels, and a few appear in two splits. Those overlaps and every missing mp4 are
counted and reported when the dataset loads (:class:`AVEReport`); ``drop_cross_split_duplicates``
keeps an ID only in the first split of train, val, test that holds it.

Class indices: the category names of ``Annotations.txt`` sorted alphabetically — for AVE exactly
:data:`AVE_CLASSES` (28 names; a fixed, documented order that does not depend on any file's row
order). A file whose categories differ from those 28 still loads, with a warning naming the
difference.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from avssl.data.layouts.base import Catalog, Layout, ReadOptions, VideoRecord
from avssl.errors import ConfigError

log = logging.getLogger(__name__)

AVE_CLASSES = tuple(
    sorted(
        [
            "Accordion",
            "Acoustic guitar",
            "Baby cry, infant cry",
            "Banjo",
            "Bark",
            "Bus",
            "Cat",
            "Chainsaw",
            "Church bell",
            "Clock",
            "Female speech, woman speaking",
            "Fixed-wing aircraft, airplane",
            "Flute",
            "Frying (food)",
            "Goat",
            "Helicopter",
            "Horse",
            "Male speech, man speaking",
            "Mandolin",
            "Motorcycle",
            "Race car, auto racing",
            "Rodents, rats",
            "Shofar",
            "Toilet flush",
            "Train horn",
            "Truck",
            "Ukulele",
            "Violin, fiddle",
        ]
    )
)
HEADER = ("Category", "VideoID", "Quality", "StartTime", "EndTime")
SPLIT_FILES = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}
ANNOTATIONS = "Annotations.txt"


@dataclass(frozen=True)
class AVERow:
    category: str
    video_id: str
    quality: str
    start: float
    end: float
    line: int


@dataclass
class AVEReport:
    """What loading found: rows per split, IDs with several labels, IDs in several splits, missing files."""

    classes: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    multi_label_ids: dict[str, list[str]] = field(default_factory=dict)
    cross_split_ids: dict[str, list[str]] = field(default_factory=dict)
    dropped_cross_split: int = 0
    missing: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"AVE: rows per split {self.rows}"]
        if self.multi_label_ids:
            out.append(
                f"AVE: {len(self.multi_label_ids)} VideoIDs carry several labels (samples keyed by row), e.g. {_first(self.multi_label_ids)}"
            )
        if self.cross_split_ids:
            what = (
                f"dropped {self.dropped_cross_split} rows" if self.dropped_cross_split else "kept (data.drop_cross_split_duplicates: false)"
            )
            out.append(f"AVE: {len(self.cross_split_ids)} VideoIDs appear in several splits ({what}), e.g. {_first(self.cross_split_ids)}")
        if self.missing:
            out.append(f"AVE: {len(self.missing)} expected mp4 files are missing and skipped, e.g. {self.missing[:5]}")
        return out


def _first(mapping: dict[str, list[str]], n: int = 3) -> dict[str, list[str]]:
    return {k: mapping[k] for k in list(mapping)[:n]}


def parse_annotation_file(path: str | Path) -> list[AVERow]:
    """Rows of an AVE annotation / split file (header optional; fields split on ``&`` only)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"data.root: AVE file {path} does not exist")
    rows = []
    for line_no, raw in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        fields = [f.strip() for f in line.split("&")]
        if len(fields) != 5:
            raise ConfigError(f"{path}:{line_no}: expected 5 '&'-separated fields {'&'.join(HEADER)}, got {len(fields)}: {line!r}")
        if tuple(fields) == HEADER:
            continue
        category, video_id, quality, start, end = fields
        try:
            start_s, end_s = float(start), float(end)
        except ValueError:
            raise ConfigError(f"{path}:{line_no}: StartTime / EndTime must be numbers, got {start!r} / {end!r}") from None
        if not video_id:
            raise ConfigError(f"{path}:{line_no}: empty VideoID")
        rows.append(AVERow(category, video_id, quality, start_s, end_s, line_no))
    return rows


def load_ave(root: str | Path, *, drop_cross_split_duplicates: bool = False, video_dir: str = "AVE") -> tuple[list[VideoRecord], AVEReport]:
    """Records of every split row whose mp4 exists, and the report (also logged).

    Args:
        root: the ``AVE_Dataset`` directory (``Annotations.txt``, split files, ``AVE/``).
        drop_cross_split_duplicates: keep an ID only in the first of train, val, test holding it.
        video_dir: sub-directory of the mp4 files (``AVE``); the root itself when it does not exist.
    """
    root = Path(root)
    annotations = parse_annotation_file(root / ANNOTATIONS)
    names = sorted({row.category for row in annotations})
    if set(names) != set(AVE_CLASSES):
        log.warning(
            "AVE: %s has categories %s not among the 28 AVE classes and lacks %s",
            root / ANNOTATIONS,
            sorted(set(names) - set(AVE_CLASSES)),
            sorted(set(AVE_CLASSES) - set(names)),
        )
    classes = {name: i for i, name in enumerate(names)}
    report = AVEReport(classes=names)
    labels_by_id: dict[str, set[str]] = defaultdict(set)
    for row in annotations:
        labels_by_id[row.video_id].add(row.category)
    report.multi_label_ids = {vid: sorted(cats) for vid, cats in labels_by_id.items() if len(cats) > 1}

    split_rows = {split: parse_annotation_file(root / name) for split, name in SPLIT_FILES.items()}
    splits_by_id: dict[str, list[str]] = defaultdict(list)
    for split, rows in split_rows.items():
        for vid in dict.fromkeys(r.video_id for r in rows):
            splits_by_id[vid].append(split)
    report.cross_split_ids = {vid: s for vid, s in splits_by_id.items() if len(s) > 1}

    videos = root / video_dir if (root / video_dir).is_dir() else root
    records = []
    for split, rows in split_rows.items():
        report.rows[split] = len(rows)
        for row in rows:
            if row.category not in classes:
                raise ConfigError(f"{root / SPLIT_FILES[split]}:{row.line}: category {row.category!r} is not in {root / ANNOTATIONS}")
            if drop_cross_split_duplicates and splits_by_id[row.video_id][0] != split:
                report.dropped_cross_split += 1
                continue
            path = videos / f"{row.video_id}.mp4"
            if not path.is_file():
                report.missing.append(row.video_id)
                continue
            records.append(VideoRecord(str(path), classes[row.category], row.video_id, split))
    for line in report.lines():
        log.info(line)
    return records, report


def is_ave_root(root: str | Path) -> bool:
    """An AVE download: ``Annotations.txt`` and ``trainSet.txt`` in the root."""
    root = Path(root)
    return (root / ANNOTATIONS).is_file() and (root / SPLIT_FILES["train"]).is_file()


class AVE(Layout):
    """The AVE download: its three official splits at once (``data.split`` does not apply)."""

    name = "ave"

    def detect(self, root: Path) -> bool:
        return is_ave_root(root)

    def read(self, root: Path, options: ReadOptions) -> Catalog:
        records, report = load_ave(root, drop_cross_split_duplicates=options.drop_cross_split_duplicates)
        return Catalog(self.name, None, records, report.classes, missing=list(report.missing))

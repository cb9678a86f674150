"""Transfer benchmarks in their official layouts (parsing only, no decoding).

Each reader turns a download, as its authors distribute it, into :class:`VideoRecord` rows with
``train`` / ``test`` splits for one official split (or fold) and the streams the data has:

* **UCF101** (Soomro et al., 2012): ``classInd.txt`` (``1 ApplyEyeMakeup``), ``trainlist0{1,2,3}.txt``
  (``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1``), ``testlist0{1,2,3}.txt`` (path only), in the
  root or in ``ucfTrainTestlist/``; videos ``UCF-101/<Class>/v_*.avi`` (or ``<Class>/`` in the
  root). Labels come from the class directory of each path, matched to ``classInd.txt`` without
  regard to case (the lists spell ``HandstandPushups`` where the files say ``HandStandPushups``).
  About half of the videos have no audio track, so the data is video-only.
* **HMDB51** (Kuehne et al., 2011): ``<class>_test_split{1,2,3}.txt`` (``<file>.avi <id>``; 1 =
  train, 2 = test, 0 = unused), in the root or in ``testTrainMulti_7030_splits/``; videos
  ``<class>/<file>.avi`` under ``hmdb51_org/`` or the root. Classes in alphabetical order. Video-only
  (its audio is mostly music and speech unrelated to the action).
* **ESC-50** (Piczak, 2015): ``meta/esc50.csv`` (``filename, fold, target, category, ...``) and
  ``audio/*.wav``; fold ``k`` is the test split, the other four train. Audio-only.
* **VGGSound** (Chen et al., 2020) and Kinetics-Sounds-style lists: a CSV (``vggsound.csv`` in the
  root, header optional) of ``youtube_id, start_seconds, label, split`` (``train`` / ``test``);
  classes are the label names in alphabetical order. A clip is found as ``<id>_<start:06d>.mp4``
  (the common pre-cut distribution, 10 s from 0), else ``<id>.*`` (the full video, cut at
  ``start_seconds`` for ``CLIP_SECONDS``), in ``video/`` or the root. Audio and video.

A listed file that does not exist is counted and reported (:attr:`TransferSet.missing`), never
silently dropped.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path

from avssl.data.folder import VIDEO_EXTENSIONS, VideoRecord
from avssl.errors import ConfigError

log = logging.getLogger(__name__)

STREAMS = ("video", "audio")
CLIP_SECONDS = 10.0  # VGGSound's clips: 10 s from the listed start
LAYOUTS = ("ucf101", "hmdb51", "esc50", "vggsound")
NUM_SPLITS = {"ucf101": 3, "hmdb51": 3, "esc50": 5, "vggsound": 1}


@dataclass
class TransferSet:
    """One official split of a transfer benchmark.

    Attributes:
        name: the layout (``ucf101``, ``hmdb51``, ``esc50``, ``vggsound``).
        split: the official split (ESC-50: the test fold).
        records: ``train`` and ``test`` rows whose files exist.
        classes: class names by label.
        streams: the streams the data has (``("video",)``, ``("audio",)`` or both).
        missing: listed files that do not exist.
    """

    name: str
    split: int
    records: list[VideoRecord]
    classes: list[str]
    streams: tuple[str, ...]
    missing: list[str] = field(default_factory=list)

    def report(self) -> str:
        counts = {s: sum(r.split == s for r in self.records) for s in ("train", "test")}
        line = f"{self.name} split {self.split}: {len(self.classes)} classes, {counts} videos, streams {'+'.join(self.streams)}"
        if self.missing:
            line += f"; {len(self.missing)} listed files missing and skipped, e.g. {self.missing[:3]}"
        return line


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    """Non-empty lines of a whitespace-separated list file, numbered from 1."""
    return [(i, line.split()) for i, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1) if line.strip()]


def _check_split(name: str, split: int) -> None:
    if not 1 <= split <= NUM_SPLITS[name]:
        raise ConfigError(f"data.split: {name} has splits 1..{NUM_SPLITS[name]}, got {split}")


def _find(root: Path, name: str, subdir: str) -> Path | None:
    for candidate in (root / name, root / subdir / name):
        if candidate.is_file():
            return candidate
    return None


def _video_dir(root: Path, subdir: str) -> Path:
    return root / subdir if (root / subdir).is_dir() else root


# --------------------------------------------------------------------------- UCF101
def read_ucf101(root: str | Path, split: int = 1) -> TransferSet:
    """UCF101 split ``split`` (1-3): ``trainlist0{split}`` is train, ``testlist0{split}`` test."""
    root = Path(root)
    _check_split("ucf101", split)
    class_file = _find(root, "classInd.txt", "ucfTrainTestlist")
    if class_file is None:
        raise ConfigError(f"data.root: no classInd.txt in {root} or {root / 'ucfTrainTestlist'} (UCF101 layout)")
    classes: dict[int, str] = {}
    for line, fields in _lines(class_file):
        if len(fields) != 2 or not fields[0].isdigit():
            raise ConfigError(f"{class_file}:{line}: expected '<index> <ClassName>', got {' '.join(fields)!r}")
        classes[int(fields[0])] = fields[1]
    if sorted(classes) != list(range(1, len(classes) + 1)):
        raise ConfigError(f"{class_file}: class indices must run 1..{len(classes)}, got {sorted(classes)[:5]}...")
    by_name = {name.lower(): index - 1 for index, name in classes.items()}
    videos = _video_dir(root, "UCF-101")
    records, missing = [], []
    for part in ("train", "test"):
        list_file = _find(root, f"{part}list0{split}.txt", "ucfTrainTestlist")
        if list_file is None:
            raise ConfigError(f"data.root: no {part}list0{split}.txt in {root} or {root / 'ucfTrainTestlist'} (UCF101 split {split})")
        for line, fields in _lines(list_file):
            relative = fields[0]
            class_name = relative.split("/")[0].lower()
            if "/" not in relative or class_name not in by_name:
                raise ConfigError(f"{list_file}:{line}: expected '<Class>/v_<Class>_gXX_cXX.avi', got {relative!r}")
            label = by_name[class_name]
            if len(fields) > 1 and int(fields[1]) - 1 != label:
                raise ConfigError(f"{list_file}:{line}: label {fields[1]} does not match the class directory of {relative!r}")
            path = videos / relative
            if not path.is_file():
                missing.append(relative)
                continue
            records.append(VideoRecord(str(path), label, Path(relative).stem, part))
    return _done(TransferSet("ucf101", split, records, [classes[i] for i in sorted(classes)], ("video",), missing))


# --------------------------------------------------------------------------- HMDB51
HMDB_SPLIT_DIR = "testTrainMulti_7030_splits"


def _hmdb_split_files(root: Path, split: int) -> list[Path]:
    for directory in (root, root / HMDB_SPLIT_DIR):
        files = sorted(directory.glob(f"*_test_split{split}.txt"))
        if files:
            return files
    return []


def read_hmdb51(root: str | Path, split: int = 1) -> TransferSet:
    """HMDB51 split ``split`` (1-3): id 1 is train, 2 test, 0 unused."""
    root = Path(root)
    _check_split("hmdb51", split)
    files = _hmdb_split_files(root, split)
    if not files:
        raise ConfigError(f"data.root: no <class>_test_split{split}.txt in {root} or {root / HMDB_SPLIT_DIR} (HMDB51 layout)")
    suffix = f"_test_split{split}.txt"
    classes = sorted(f.name[: -len(suffix)] for f in files)
    videos = _video_dir(root, "hmdb51_org")
    records, missing = [], []
    for label, name in enumerate(classes):
        list_file = files[0].parent / f"{name}{suffix}"
        for line, fields in _lines(list_file):
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise ConfigError(f"{list_file}:{line}: expected '<video>.avi <0|1|2>', got {' '.join(fields)!r}")
            if fields[1] == "0":
                continue
            path = videos / name / fields[0]
            if not path.is_file():
                missing.append(f"{name}/{fields[0]}")
                continue
            records.append(VideoRecord(str(path), label, Path(fields[0]).stem, "train" if fields[1] == "1" else "test"))
    return _done(TransferSet("hmdb51", split, records, classes, ("video",), missing))


# --------------------------------------------------------------------------- ESC-50
ESC50_COLUMNS = ("filename", "fold", "target", "category")


def read_esc50(root: str | Path, split: int = 1) -> TransferSet:
    """ESC-50 with fold ``split`` (1-5) as the test split and the other four as train."""
    root = Path(root)
    _check_split("esc50", split)
    meta = root / "meta" / "esc50.csv"
    if not meta.is_file():
        raise ConfigError(f"data.root: no meta/esc50.csv in {root} (ESC-50 layout)")
    names: dict[int, str] = {}
    records, missing = [], []
    with open(meta, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        lacking = [c for c in ESC50_COLUMNS if c not in (reader.fieldnames or [])]
        if lacking:
            raise ConfigError(f"{meta}: missing column(s) {lacking}; expected a header with {', '.join(ESC50_COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            try:
                fold, target = int(row["fold"]), int(row["target"])
            except ValueError:
                raise ConfigError(f"{meta}:{line}: fold and target must be integers, got {row['fold']!r}, {row['target']!r}") from None
            if not 1 <= fold <= 5:
                raise ConfigError(f"{meta}:{line}: fold must be 1..5, got {fold}")
            if names.setdefault(target, row["category"]) != row["category"]:
                raise ConfigError(f"{meta}:{line}: target {target} is {names[target]!r} elsewhere, {row['category']!r} here")
            path = root / "audio" / row["filename"]
            if not path.is_file():
                missing.append(row["filename"])
                continue
            records.append(VideoRecord(str(path), target, Path(row["filename"]).stem, "test" if fold == split else "train"))
    if sorted(names) != list(range(len(names))):
        raise ConfigError(f"{meta}: targets must run 0..{len(names) - 1}, got {sorted(names)[:5]}...")
    return _done(TransferSet("esc50", split, records, [names[i] for i in range(len(names))], ("audio",), missing))


# --------------------------------------------------------------------------- VGGSound
VGGSOUND_CSV = "vggsound.csv"


def _vggsound_file(videos: Path, youtube_id: str, start: int, index: dict[str, Path]) -> tuple[Path, float] | None:
    """The clip's file and where in it the clip starts."""
    for stem in (f"{youtube_id}_{start:06d}", f"{youtube_id}_{start}"):
        if stem in index:
            return index[stem], 0.0
    if youtube_id in index:
        return index[youtube_id], float(start)
    return None


def read_vggsound(root: str | Path, split: int = 1, csv_name: str = VGGSOUND_CSV) -> TransferSet:
    """A ``youtube_id, start_seconds, label, split`` list (VGGSound, Kinetics-Sounds style)."""
    root = Path(root)
    _check_split("vggsound", split)
    listing = root / csv_name
    if not listing.is_file():
        raise ConfigError(f"data.root: no {csv_name} in {root} (VGGSound layout: youtube_id, start_seconds, label, split)")
    rows = []
    with open(listing, newline="", encoding="utf-8-sig") as f:
        for line, fields in enumerate(csv.reader(f), start=1):
            if not fields or not "".join(fields).strip():
                continue
            if line == 1 and fields[1].strip().lower() in ("start_seconds", "start", "time_start"):
                continue  # header
            if len(fields) != 4:
                raise ConfigError(f"{listing}:{line}: expected 4 fields youtube_id, start_seconds, label, split, got {len(fields)}")
            youtube_id, start, label, part = (x.strip() for x in fields)
            try:
                start_s = int(float(start))
            except ValueError:
                raise ConfigError(f"{listing}:{line}: start_seconds must be a number, got {start!r}") from None
            if part not in ("train", "test"):
                raise ConfigError(f"{listing}:{line}: split must be train or test, got {part!r}")
            rows.append((youtube_id, start_s, label, part))
    classes = sorted({r[2] for r in rows})
    labels = {name: i for i, name in enumerate(classes)}
    videos = _video_dir(root, "video")
    index = {p.stem: p for p in sorted(videos.iterdir()) if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()}
    records, missing = [], []
    for youtube_id, start, label, part in rows:
        found = _vggsound_file(videos, youtube_id, start, index)
        if found is None:
            missing.append(f"{youtube_id}_{start:06d}")
            continue
        path, offset = found
        records.append(VideoRecord(str(path), labels[label], f"{youtube_id}_{start:06d}", part, offset, CLIP_SECONDS))
    return _done(TransferSet("vggsound", split, records, classes, STREAMS, missing))


# --------------------------------------------------------------------------- dispatch
READERS = {"ucf101": read_ucf101, "hmdb51": read_hmdb51, "esc50": read_esc50, "vggsound": read_vggsound}


def detect_layout(root: str | Path) -> str | None:
    """The transfer layout a directory holds, or ``None``."""
    root = Path(root)
    if _find(root, "classInd.txt", "ucfTrainTestlist") is not None:
        return "ucf101"
    if _hmdb_split_files(root, 1):
        return "hmdb51"
    if (root / "meta" / "esc50.csv").is_file():
        return "esc50"
    if (root / VGGSOUND_CSV).is_file():
        return "vggsound"
    return None


def read_transfer_set(root: str | Path, layout: str, split: int = 1) -> TransferSet:
    """The records of ``layout`` (one of :data:`LAYOUTS`) at ``root`` for official split ``split``."""
    if layout not in READERS:
        raise ConfigError(f"data.layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    return READERS[layout](root, split)


def _done(found: TransferSet) -> TransferSet:
    if not any(r.split == "train" for r in found.records):
        raise ConfigError(f"data.root: {found.name} split {found.split} has no training files on disk ({found.report()})")
    log.info(found.report())
    return found

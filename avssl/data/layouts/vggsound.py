"""VGGSound (Chen et al., 2020) and Kinetics-Sounds-style lists (parsing only, no decoding).

A CSV (``vggsound.csv`` in the root, header optional) of ``youtube_id, start_seconds, label,
split`` (``train`` / ``test``); classes are the label names in alphabetical order. A clip is found
as ``<id>_<start:06d>.mp4`` (the common pre-cut distribution, 10 s from 0), else ``<id>.*`` (the
full video, cut at ``start_seconds`` for :data:`CLIP_SECONDS`), in ``video/`` or the root. Audio and
video. Missing listed files are counted and reported.
"""

from __future__ import annotations

import csv
from pathlib import Path

from avssl.data.layouts.base import STREAMS, VIDEO_EXTENSIONS, Catalog, Layout, ReadOptions, VideoRecord, checked, media_dir
from avssl.errors import ConfigError

CLIP_SECONDS = 10.0  # VGGSound's clips: 10 s from the listed start

VGGSOUND_CSV = "vggsound.csv"


def _vggsound_file(videos: Path, youtube_id: str, start: int, index: dict[str, Path]) -> tuple[Path, float] | None:
    """The clip's file and where in it the clip starts."""
    for stem in (f"{youtube_id}_{start:06d}", f"{youtube_id}_{start}"):
        if stem in index:
            return index[stem], 0.0
    if youtube_id in index:
        return index[youtube_id], float(start)
    return None


class VGGSound(Layout):
    name = "vggsound"
    num_splits = 1

    def detect(self, root: Path) -> bool:
        return (root / VGGSOUND_CSV).is_file()

    def read(self, root: Path, options: ReadOptions) -> Catalog:
        """A ``youtube_id, start_seconds, label, split`` list (VGGSound, Kinetics-Sounds style)."""
        root, split = Path(root), options.split
        self.check_split(split)
        listing = root / VGGSOUND_CSV
        if not listing.is_file():
            raise ConfigError(f"data.root: no {VGGSOUND_CSV} in {root} (VGGSound layout: youtube_id, start_seconds, label, split)")
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
        videos = media_dir(root, "video")
        index = {p.stem: p for p in sorted(videos.iterdir()) if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()}
        records, missing = [], []
        for youtube_id, start, label, part in rows:
            found = _vggsound_file(videos, youtube_id, start, index)
            if found is None:
                missing.append(f"{youtube_id}_{start:06d}")
                continue
            path, offset = found
            records.append(VideoRecord(str(path), labels[label], f"{youtube_id}_{start:06d}", part, offset, CLIP_SECONDS))
        return checked(Catalog(self.name, split, records, classes, STREAMS, missing))

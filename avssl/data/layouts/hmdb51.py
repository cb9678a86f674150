"""HMDB51 (Kuehne et al., 2011) in its official layout (parsing only, no decoding).

``<class>_test_split{1,2,3}.txt`` (``<file>.avi <id>``; 1 = train, 2 = test, 0 = unused), in the
root or in ``testTrainMulti_7030_splits/``; videos ``<class>/<file>.avi`` under ``hmdb51_org/`` or
the root. Classes in alphabetical order. Video-only (its audio is mostly music and speech
unrelated to the action). Missing listed files are counted and reported.
"""

from __future__ import annotations

from pathlib import Path

from avssl.data.layouts.base import Catalog, Layout, ReadOptions, VideoRecord, checked, list_lines, media_dir
from avssl.errors import ConfigError

HMDB_SPLIT_DIR = "testTrainMulti_7030_splits"


def _hmdb_split_files(root: Path, split: int) -> list[Path]:
    for directory in (root, root / HMDB_SPLIT_DIR):
        files = sorted(directory.glob(f"*_test_split{split}.txt"))
        if files:
            return files
    return []


class HMDB51(Layout):
    name = "hmdb51"
    num_splits = 3

    def detect(self, root: Path) -> bool:
        return bool(_hmdb_split_files(root, 1))

    def read(self, root: Path, options: ReadOptions) -> Catalog:
        """HMDB51 split ``split`` (1-3): id 1 is train, 2 test, 0 unused."""
        root, split = Path(root), options.split
        self.check_split(split)
        files = _hmdb_split_files(root, split)
        if not files:
            raise ConfigError(f"data.root: no <class>_test_split{split}.txt in {root} or {root / HMDB_SPLIT_DIR} (HMDB51 layout)")
        suffix = f"_test_split{split}.txt"
        classes = sorted(f.name[: -len(suffix)] for f in files)
        videos = media_dir(root, "hmdb51_org")
        records, missing = [], []
        for label, name in enumerate(classes):
            list_file = files[0].parent / f"{name}{suffix}"
            for line, fields in list_lines(list_file):
                if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                    raise ConfigError(f"{list_file}:{line}: expected '<video>.avi <0|1|2>', got {' '.join(fields)!r}")
                if fields[1] == "0":
                    continue
                path = videos / name / fields[0]
                if not path.is_file():
                    missing.append(f"{name}/{fields[0]}")
                    continue
                records.append(VideoRecord(str(path), label, Path(fields[0]).stem, "train" if fields[1] == "1" else "test"))
        return checked(Catalog(self.name, split, records, classes, ("video",), missing))

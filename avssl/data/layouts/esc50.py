"""ESC-50 (Piczak, 2015) in its official layout (parsing only, no decoding).

``meta/esc50.csv`` (``filename, fold, target, category, ...``) and ``audio/*.wav``; fold ``k`` is
the test split, the other four train. Audio-only. Missing listed files are counted and reported.
"""

from __future__ import annotations

import csv
from pathlib import Path

from avssl.data.layouts.base import Catalog, Layout, ReadOptions, VideoRecord, checked
from avssl.errors import ConfigError

ESC50_COLUMNS = ("filename", "fold", "target", "category")


class ESC50(Layout):
    name = "esc50"
    num_splits = 5

    def detect(self, root: Path) -> bool:
        return (root / "meta" / "esc50.csv").is_file()

    def read(self, root: Path, options: ReadOptions) -> Catalog:
        """ESC-50 with fold ``split`` (1-5) as the test split and the other four as train."""
        root, split = Path(root), options.split
        self.check_split(split)
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
        return checked(Catalog(self.name, split, records, [names[i] for i in range(len(names))], ("audio",), missing))

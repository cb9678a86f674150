"""UCF101 (Soomro et al., 2012) in its official layout (parsing only, no decoding).

``classInd.txt`` (``1 ApplyEyeMakeup``), ``trainlist0{1,2,3}.txt``
(``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1``), ``testlist0{1,2,3}.txt`` (path only), in the
root or in ``ucfTrainTestlist/``; videos ``UCF-101/<Class>/v_*.avi`` (or ``<Class>/`` in the
root). Labels come from the class directory of each path, matched to ``classInd.txt`` without
regard to case (the lists spell ``HandstandPushups`` where the files say ``HandStandPushups``).
About half of the videos have no audio track, so the data is video-only. A listed file that does
not exist is counted and reported (:attr:`Catalog.missing`), never silently dropped.
"""

from __future__ import annotations

from pathlib import Path

from avssl.data.layouts.base import Catalog, Layout, ReadOptions, VideoRecord, checked, find_file, list_lines, media_dir
from avssl.errors import ConfigError


class UCF101(Layout):
    name = "ucf101"
    num_splits = 3

    def detect(self, root: Path) -> bool:
        return find_file(root, "classInd.txt", "ucfTrainTestlist") is not None

    def read(self, root: Path, options: ReadOptions) -> Catalog:
        """UCF101 split ``split`` (1-3): ``trainlist0{split}`` is train, ``testlist0{split}`` test."""
        root, split = Path(root), options.split
        self.check_split(split)
        class_file = find_file(root, "classInd.txt", "ucfTrainTestlist")
        if class_file is None:
            raise ConfigError(f"data.root: no classInd.txt in {root} or {root / 'ucfTrainTestlist'} (UCF101 layout)")
        classes: dict[int, str] = {}
        for line, fields in list_lines(class_file):
            if len(fields) != 2 or not fields[0].isdigit():
                raise ConfigError(f"{class_file}:{line}: expected '<index> <ClassName>', got {' '.join(fields)!r}")
            classes[int(fields[0])] = fields[1]
        if sorted(classes) != list(range(1, len(classes) + 1)):
            raise ConfigError(f"{class_file}: class indices must run 1..{len(classes)}, got {sorted(classes)[:5]}...")
        by_name = {name.lower(): index - 1 for index, name in classes.items()}
        videos = media_dir(root, "UCF-101")
        records, missing = [], []
        for part in ("train", "test"):
            list_file = find_file(root, f"{part}list0{split}.txt", "ucfTrainTestlist")
            if list_file is None:
                raise ConfigError(f"data.root: no {part}list0{split}.txt in {root} or {root / 'ucfTrainTestlist'} (UCF101 split {split})")
            for line, fields in list_lines(list_file):
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
        return checked(Catalog(self.name, split, records, [classes[i] for i in sorted(classes)], ("video",), missing))

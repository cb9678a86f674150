"""The layout registry: one object per kind of root, detected in a fixed order."""

from __future__ import annotations

import csv
import shutil

import pytest

import avssl
from avssl.data import layouts
from avssl.data.layouts import Catalog, Layout, ReadOptions, VideoRecord
from avssl.errors import ConfigError


def test_each_kind_of_root_is_detected_by_its_own_layout(tiny_root, tmp_path):
    manifest_root = tmp_path / "manifest"
    shutil.copytree(tiny_root, manifest_root)
    (manifest_root / "synthetic.json").unlink()  # a manifest without the generator's parameters
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(next(tiny_root.glob("**/*.mp4")), folder / "sub" / "clip.mp4")
    ave = tmp_path / "ave"
    ave.mkdir()
    (ave / "Annotations.txt").write_text("")
    (ave / "trainSet.txt").write_text("")
    found = {
        name: layouts.detect(root).name
        for name, root in {"synthetic": tiny_root, "manifest": manifest_root, "folder": folder, "ave": ave}.items()
    }
    assert found == {"synthetic": "synthetic", "manifest": "manifest", "folder": "folder", "ave": "ave"}
    assert [layout.name for layout in layouts.LAYOUTS][-1] == "folder"  # the catch-all is tried last


def test_manifest_synthetic_and_folder_catalogs(tiny_root, tmp_path):
    rows = list(csv.DictReader(open(tiny_root / "manifest.csv")))
    synthetic = layouts.read(tiny_root)
    assert synthetic.layout == "synthetic" and len(synthetic.records) == len(rows)
    assert synthetic.num_classes == 1 + max(int(r["label"]) for r in rows) and synthetic.classes is None
    as_manifest = layouts.read(tiny_root, "manifest")
    assert as_manifest.layout == "manifest" and as_manifest.records == synthetic.records
    folder = layouts.read(tiny_root, "folder")
    assert len(folder.records) == len(rows) and {r.label for r in folder.records} == {-1} and folder.num_classes == 0
    with pytest.raises(ConfigError, match="data.layout manifest: no manifest.csv"):
        layouts.read(tmp_path, "manifest")


def test_a_layout_name_and_a_split_are_checked():
    with pytest.raises(ConfigError, match="data.layout must be auto or one of store, ave, ucf101.*folder, got 'ucf'"):
        layouts.get("ucf")
    with pytest.raises(ConfigError, match="data.split: hmdb51 has splits 1..3, got 4"):
        layouts.get("hmdb51").check_split(4)
    assert layouts.with_official_splits() == {"ucf101": 3, "hmdb51": 3, "esc50": 5, "vggsound": 1}


def test_a_new_layout_is_one_subclass_and_one_registry_entry(tiny_root, tmp_path, monkeypatch):
    class Listing(Layout):
        """A root with ``videos.txt``: one path per line, all unlabeled training videos."""

        name = "listing"

        def detect(self, root):
            return (root / "videos.txt").is_file()

        def read(self, root, options: ReadOptions) -> Catalog:
            paths = (root / "videos.txt").read_text().split()
            return Catalog(self.name, None, [VideoRecord(str(tiny_root / p), -1, p) for p in paths])

    monkeypatch.setattr(layouts, "LAYOUTS", (Listing(), *layouts.LAYOUTS))
    monkeypatch.setitem(layouts.BY_NAME, "listing", layouts.LAYOUTS[0])
    paths = [r["path"] for r in csv.DictReader(open(tiny_root / "manifest.csv"))][:4]
    (tmp_path / "videos.txt").write_text("\n".join(paths))
    data = avssl.AVDataModule(
        str(tmp_path), batch_size=2, num_workers=0, short_side=32, sample_rate=16000, augment=avssl.AugmentConfig(crop_size=32)
    )
    assert data.layout == "listing" and len(data.records("train")) == 4 and data.num_classes == 0


def test_a_dangling_link_in_a_folder_is_skipped_and_named(tiny_root, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for i, source in enumerate(sorted(tiny_root.glob("**/*.mp4"))[:2]):
        shutil.copy(source, folder / f"clip{i}.mp4")
    (folder / "gone.mp4").symlink_to(tmp_path / "deleted.mp4")  # its target does not exist
    data = avssl.AVDataModule(
        str(folder), batch_size=1, num_workers=0, short_side=32, sample_rate=16000, augment=avssl.AugmentConfig(crop_size=32)
    )
    dataset = data.dataset("train", train=True)
    assert len(dataset) == 2 and dataset.skipped == {"dangling_link": 1}
    assert dataset.skipped_files == [(str(folder / "gone.mp4"), "dangling_link")]

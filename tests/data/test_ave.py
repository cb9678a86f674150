"""AVE parsing on a small AVE-format tree (annotation files + real mp4s from the tiny dataset)."""

from __future__ import annotations

import logging
import shutil

import pytest

from avssl.augment.pipeline import AugmentConfig
from avssl.data.datamodule import AVDataModule
from avssl.data.layouts.ave import AVE_CLASSES, is_ave_root, load_ave, parse_annotation_file
from avssl.errors import ConfigError

HEADER = "Category&VideoID&Quality&StartTime&EndTime\n"
ROWS = {
    # (category, id): a comma + parentheses name, an ID with two labels, an ID in two splits, a missing mp4
    "train": [("Church bell", "vid_a"), ("Baby cry, infant cry", "vid_b"), ("Frying (food)", "vid_c"), ("Frying (food)", "dup")],
    "val": [("Bark", "dup"), ("Church bell", "vid_d")],
    "test": [("Baby cry, infant cry", "vid_e"), ("Bark", "missing")],
}


def write(path, rows, header):
    path.write_text((HEADER if header else "") + "".join(f"{c}&{v}&good&{i}&{i + 2}\n" for i, (c, v) in enumerate(rows)))


@pytest.fixture
def ave_root(tmp_path, tiny_root):
    root = tmp_path / "AVE_Dataset"
    (root / "AVE").mkdir(parents=True)
    write(root / "Annotations.txt", [r for rows in ROWS.values() for r in rows], header=True)  # the zip copy: with header
    for split, name in (("train", "trainSet.txt"), ("val", "valSet.txt"), ("test", "testSet.txt")):
        write(root / name, ROWS[split], header=split == "val")
    mp4s = sorted(tiny_root.glob("**/*.mp4"))
    for i, vid in enumerate(["vid_a", "vid_b", "vid_c", "dup", "vid_d", "vid_e"]):
        shutil.copy(mp4s[i], root / "AVE" / f"{vid}.mp4")
    return root


def test_parse_with_and_without_header_splits_on_ampersand_only(ave_root):
    with_header = parse_annotation_file(ave_root / "Annotations.txt")
    without = parse_annotation_file(ave_root / "trainSet.txt")
    assert len(with_header) == 8 and len(without) == 4
    assert without[1].category == "Baby cry, infant cry" and without[2].category == "Frying (food)"
    assert without[0].start == 0.0 and without[0].end == 2.0


def test_load_reports_overlaps_and_missing_files(ave_root, caplog):
    caplog.set_level(logging.INFO, logger="avssl")
    records, report = load_ave(ave_root)
    assert report.rows == {"train": 4, "val": 2, "test": 2}
    assert report.multi_label_ids == {"dup": ["Bark", "Frying (food)"]}
    assert report.cross_split_ids == {"dup": ["train", "val"]}
    assert report.missing == ["missing"]
    assert len(records) == 7  # keyed by row: "dup" twice, with its two labels; the missing mp4 skipped
    dup = [r for r in records if r.video_id == "dup"]
    assert {(r.split, report.classes[r.label]) for r in dup} == {("train", "Frying (food)"), ("val", "Bark")}
    text = caplog.text
    assert "several labels" in text and "several splits" in text and "1 expected mp4 files are missing" in text


def test_drop_cross_split_duplicates_keeps_the_first_split(ave_root):
    records, report = load_ave(ave_root, drop_cross_split_duplicates=True)
    assert [r.split for r in records if r.video_id == "dup"] == ["train"] and report.dropped_cross_split == 1


def test_class_order_is_sorted_names(ave_root):
    _, report = load_ave(ave_root)
    assert report.classes == sorted(report.classes) == ["Baby cry, infant cry", "Bark", "Church bell", "Frying (food)"]
    assert len(AVE_CLASSES) == 28 and list(AVE_CLASSES) == sorted(AVE_CLASSES)


def test_malformed_rows_name_the_file_and_line(tmp_path):
    bad = tmp_path / "Annotations.txt"
    bad.write_text("Bark&id1&good&0&10\nBark&id2&good&0\n")
    with pytest.raises(ConfigError, match=r"Annotations.txt:2: expected 5"):
        parse_annotation_file(bad)
    bad.write_text("Bark&id1&good&zero&10\n")
    with pytest.raises(ConfigError, match=r"Annotations.txt:1: StartTime"):
        parse_annotation_file(bad)


def test_datamodule_reads_an_ave_root(ave_root):
    data = AVDataModule(str(ave_root), batch_size=2, num_workers=0, short_side=40, sample_rate=16000, augment=AugmentConfig(crop_size=32))
    assert is_ave_root(ave_root) and data.num_classes == 4
    assert data.class_names[data.records("val")[0].label] in ("Bark", "Church bell")
    assert len(data.records("train")) == 4 and len(data.records("test")) == 1
    sample = data.dataset("test", train=False)[(0, 0)]
    assert sample["label"] == data.class_names.index("Baby cry, infant cry")

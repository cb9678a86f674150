"""Transfer benchmarks read from their official layouts, and single-stream batches."""

from __future__ import annotations

import shutil

import pytest
import pytorch_lightning as pl
import torch

import avssl
from avssl.data import layouts
from avssl.data.layouts import ReadOptions
from avssl.errors import ConfigError
from tests.data import transfer_trees as trees

SMALL = dict(batch_size=2, num_workers=0, short_side=32, sample_rate=16000, eval_clips=2, augment=avssl.AugmentConfig(crop_size=32))


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("transfer")
    return {name: getattr(trees, name)(base / name) for name in ("ucf101", "hmdb51", "esc50", "vggsound")}


def read_transfer_set(root, layout, split):
    return layouts.read(root, layout, ReadOptions(split=split))


def by_split(found):
    return {s: sorted((r.video_id, r.label) for r in found.records if r.split == s) for s in ("train", "test")}


def test_layouts_are_recognised_from_their_files(roots, tmp_path):
    assert {name: layouts.detect(root).name for name, root in roots.items()} == {n: n for n in roots}
    assert layouts.detect(tmp_path).name == "folder"  # any other directory: a folder of videos


@pytest.mark.parametrize("split", [1, 2, 3])
def test_ucf101_split_lists_choose_train_and_test_and_labels_follow_the_class_directory(roots, split):
    found = read_transfer_set(roots["ucf101"], "ucf101", split)
    assert found.classes == trees.UCF_CLASSES and found.streams == ("video",)
    parts = by_split(found)
    # group g == split is the test set; every class has 4 groups
    assert [vid for vid, _ in parts["test"]] == sorted(
        f"v_{'HandStandPushups' if c == 'HandstandPushups' else c}_g{split:02d}_c01" for c in trees.UCF_CLASSES
    )
    assert len(parts["train"]) == 9 and not {v for v, _ in parts["train"]} & {v for v, _ in parts["test"]}
    # labels: the class directory in classInd order (the HandStandPushups spelling included)
    assert all(label == next(i for i, c in enumerate(trees.UCF_CLASSES) if c.lower() in vid.lower()) for vid, label in parts["test"])


def test_a_listed_file_that_is_missing_is_reported_not_silently_dropped(roots, tmp_path):
    root = shutil.copytree(roots["ucf101"], tmp_path / "ucf")
    (root / "UCF-101" / "Typing" / "v_Typing_g02_c01.avi").unlink()
    found = read_transfer_set(root, "ucf101", 1)
    assert found.missing == ["Typing/v_Typing_g02_c01.avi"]
    assert "1 listed files missing" in found.report() and len(found.records) == 11


def test_a_malformed_list_line_names_the_file_and_line(roots, tmp_path):
    root = shutil.copytree(roots["ucf101"], tmp_path / "ucf")
    listing = root / "ucfTrainTestlist" / "trainlist01.txt"
    listing.write_text(listing.read_text() + "NoSuchClass/v_x.avi 2\n")
    with pytest.raises(ConfigError, match=r"trainlist01.txt:10: expected"):
        read_transfer_set(root, "ucf101", 1)
    with pytest.raises(ConfigError, match="data.split: ucf101 has splits 1..3, got 4"):
        read_transfer_set(root, "ucf101", 4)


@pytest.mark.parametrize("split", [1, 2, 3])
def test_hmdb51_ids_one_train_two_test_zero_unused(roots, split):
    found = read_transfer_set(roots["hmdb51"], "hmdb51", split)
    parts = by_split(found)
    assert found.classes == trees.HMDB_CLASSES and found.streams == ("video",)
    assert [v for v, _ in parts["test"]] == [f"{c}_clip{split}" for c in trees.HMDB_CLASSES]
    assert all(not v.endswith("clip4") for v, _ in parts["train"])  # id 0: unused
    assert len(parts["train"]) == 3 * 2


def test_esc50_folds_partition_the_clips_and_fold_k_is_the_test_split(roots):
    tests = []
    for fold in range(1, 6):
        found = read_transfer_set(roots["esc50"], "esc50", fold)
        assert found.streams == ("audio",) and found.classes == trees.ESC_CLASSES
        parts = by_split(found)
        assert all(v.startswith(f"{fold}-") for v, _ in parts["test"]) and not any(v.startswith(f"{fold}-") for v, _ in parts["train"])
        assert all(int(v.rsplit("-", 1)[1]) == label for v, label in parts["test"])  # target
        tests += parts["test"]
    assert len(tests) == len(set(tests)) == 15  # every clip is tested exactly once over the folds


def test_esc50_metadata_errors_name_the_file(roots, tmp_path):
    root = shutil.copytree(roots["esc50"], tmp_path / "esc")
    meta = root / "meta" / "esc50.csv"
    meta.write_text(meta.read_text().replace(",1,0,dog,", ",7,0,dog,", 1))
    with pytest.raises(ConfigError, match=r"esc50.csv:2: fold must be 1..5, got 7"):
        read_transfer_set(root, "esc50", 1)


def test_vggsound_finds_precut_clips_and_cuts_full_videos_at_the_listed_start(roots, tmp_path):
    found = read_transfer_set(roots["vggsound"], "vggsound", 1)
    assert found.streams == ("video", "audio") and found.classes == trees.VGG_CLASSES
    offsets = {r.video_id: (r.offset, r.length) for r in found.records}
    assert offsets["yt00abcdef_000002"] == (2.0, 10.0)  # full video named by id: cut at start_seconds
    assert offsets["yt10abcdef_000030"] == (0.0, 10.0)  # pre-cut <id>_<start>.mp4
    with_header = trees.vggsound(tmp_path / "vgg", header=True)
    assert by_split(read_transfer_set(with_header, "vggsound", 1)) == by_split(found)
    # the clip of a full video starts at the listed second: the class's colour, not what precedes it
    data = avssl.AVDataModule(str(roots["vggsound"]), **SMALL)
    dataset = data.dataset("test", train=False)
    sample = dataset[[r.video_id for r in dataset.records].index("yt00abcdef_000002")]
    assert sample["start"].min() >= 2.0
    assert sample["video"][..., 0].float().mean() > 150 and sample["video"][..., 1].float().mean() < 80  # red (class 0)


def test_single_stream_data_gives_batches_of_that_stream_only(roots):
    video = avssl.AVDataModule(str(roots["ucf101"]), **SMALL)
    audio = avssl.AVDataModule(str(roots["esc50"]), **SMALL)
    assert video.layout == "ucf101" and video.streams == ("video",) and video.num_classes == 3
    assert audio.streams == ("audio",) and audio.class_names == trees.ESC_CLASSES
    vb, ab = next(iter(video.test_dataloader())), next(iter(audio.test_dataloader()))
    assert "audio" not in vb and vb["video"].shape[:2] == (2, 2)  # no zero-filled stand-in
    assert "video" not in ab and "extent" not in ab and ab["audio"].shape[:2] == (2, 2)
    assert set(video.views.transform().eval_views(vb)) >= {"video"} and "spec" not in video.views.transform().eval_views(vb)
    views = audio.views.transform().train_views(ab, torch.Generator().manual_seed(0))
    assert "video" not in views and views["spec"].shape[:2] == (2, 2)
    backbone = avssl.TwoStreamBackbone(avssl.BackboneConfig(width=4, layers=(1, 1, 1, 1)))
    out = backbone.forward_streams(None, views["spec"].flatten(0, 1))
    assert set(out) == {"audio"}


def test_asking_ucf101_for_audio_skips_and_counts_the_files_without_a_track(roots):
    data = avssl.AVDataModule(str(roots["ucf101"]), streams=["video", "audio"], **SMALL)
    dataset = data.dataset("train", train=False)
    assert dataset.skipped == {"no_audio_stream": 3}  # split 1 trains on groups 2-4; group 3 has no audio track
    assert len(dataset) == 6 and all(info.has_audio for info in dataset.infos)
    assert "audio" in next(iter(data.loader(dataset, shuffle=False)))


def test_pre_training_on_a_single_stream_dataset_is_refused(roots):
    data = avssl.AVDataModule(str(roots["esc50"]), **SMALL)
    model = avssl.SimCLR(backbone=avssl.BackboneConfig(width=4, layers=(1, 1, 1, 1)), proj_hidden_dim=8, proj_dim=4)
    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    with pytest.raises(ConfigError, match="pre-training needs audio and video; this data gives audio only"):
        trainer.fit(model, data)

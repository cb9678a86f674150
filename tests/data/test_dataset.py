import numpy as np
import pytest
import torch

from avssl.augment.pipeline import AugmentConfig
from avssl.data.batch import collate
from avssl.data.datamodule import AVDataModule
from avssl.data.dataset import AVClipDataset, ClipSpec
from avssl.data.layouts import VideoRecord
from avssl.data.layouts.manifest import read_manifest
from avssl.data.loaders import EpochSampler
from avssl.errors import ConfigError
from avssl.prepare.synthetic import write_av_mp4
from tests.conftest import TINY

KW = dict(num_frames=4, short_side=32, sample_rate=8000)
CLIP = ClipSpec(**KW)


def test_sample_layout(tiny_root):
    ds = AVClipDataset(read_manifest(tiny_root / "manifest.csv"), CLIP, train=True)
    s = ds[(0, 3)]
    assert s["video"].shape == (2, 4, 32, 32, 3) and s["video"].dtype == torch.uint8
    assert s["audio"].shape == (2, round(1.28 * 8000)) and s["audio"].dtype == torch.float32
    assert s["label"] == ds.records[3].label and s["index"] == 3 and s["video_id"] == ds.records[3].video_id
    batch = collate([ds[(0, i)] for i in range(3)])
    assert batch["video"].shape == (3, 2, 4, 32, 32, 3) and batch["label"].shape == (3,)
    assert batch["num_failed"].item() == 0


def test_video_backends_give_the_same_samples(tiny_root):
    records = read_manifest(tiny_root / "manifest.csv")[:4]
    decord_ds = AVClipDataset(records, CLIP, train=True)
    pyav_ds = AVClipDataset(records, ClipSpec(**KW, video_backend="pyav"), train=True)
    for i in range(4):
        a, b = decord_ds[(1, i)], pyav_ds[(1, i)]
        assert a["video"].shape == b["video"].shape and b["video"].dtype == torch.uint8
        assert (a["video"].float() - b["video"].float()).abs().mean() < 4  # YUV->RGB / resize rounding only
        torch.testing.assert_close(a["audio"], b["audio"])
    with pytest.raises(ValueError, match="video_backend"):
        AVClipDataset(records, ClipSpec(**KW, video_backend="opencv"), train=True)


def test_clip_starts_depend_on_seed_epoch_and_index_only(tiny_root):
    records = read_manifest(tiny_root / "manifest.csv")
    ds = AVClipDataset(records, CLIP, train=True)
    np.testing.assert_array_equal(ds.clip_starts(0, 1), ds.clip_starts(0, 1))
    assert not np.array_equal(ds.clip_starts(0, 1), ds.clip_starts(1, 1))
    other_seed = AVClipDataset(records, CLIP, train=True, seed=5)
    assert not np.array_equal(ds.clip_starts(0, 1), other_seed.clip_starts(0, 1))
    starts = ds.clip_starts(0, 1)
    assert np.all(starts >= 0) and np.all(starts + 1.28 <= TINY.duration + 1e-6)


def test_worker_count_does_not_change_the_clips(tiny_root):
    ds = AVClipDataset(read_manifest(tiny_root / "manifest.csv")[:6], CLIP, train=True)

    def starts(workers):
        sampler = EpochSampler(len(ds), shuffle=True, seed=0)
        sampler.set_epoch(3)
        loader = torch.utils.data.DataLoader(ds, batch_size=2, sampler=sampler, num_workers=workers, collate_fn=collate)
        return {int(i): s.tolist() for b in loader for i, s in zip(b["index"], b["start"])}

    assert starts(0) == starts(2)


def test_bad_files_are_skipped_and_counted(tiny_root, tmp_path):
    good = read_manifest(tiny_root / "manifest.csv")[:2]
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    silent = tmp_path / "silent.mp4"
    write_av_mp4(silent, np.zeros((10, 32, 32, 3), np.uint8), None, fps=10, sample_rate=8000)
    bad = [
        VideoRecord(str(tmp_path / "missing.mp4"), 0, "missing"),
        VideoRecord(str(empty), 0, "empty"),
        VideoRecord(str(silent), 0, "silent"),
    ]
    ds = AVClipDataset(good + bad, CLIP, train=True)
    assert len(ds) == 2
    assert dict(ds.skipped) == {"missing": 1, "unreadable": 1, "no_audio_stream": 1}
    assert {p for p, _ in ds.skipped_files} == {r.path for r in bad}


def test_collate_drops_failed_samples():
    sample = {
        "video": torch.zeros(2, 1, 4, 4, 3, dtype=torch.uint8),
        "audio": torch.zeros(2, 8),
        "label": 1,
        "index": 0,
        "start": torch.zeros(2),
        "video_id": "a",
    }
    batch = collate([sample, None, sample])
    assert batch["video"].shape[0] == 2 and batch["num_failed"].item() == 1
    assert collate([None])["num_failed"].item() == 1


def test_datamodule_splits_and_errors(tiny_root, tmp_path):
    dm = AVDataModule(synthetic=TINY, synthetic_root=str(tiny_root), batch_size=2, num_workers=0, augment=AugmentConfig(crop_size=32), **KW)
    assert dm.num_classes == TINY.num_classes
    sizes = {split: len(dm.records(split)) for split in ("train", "val", "test")}
    assert sum(sizes.values()) == TINY.num_classes * TINY.videos_per_class and min(sizes.values()) > 0
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape[:2] == (2, 2)
    with pytest.raises(ConfigError, match="data.root"):
        AVDataModule(root=str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="num_clips"):
        AVDataModule(num_clips=1)
    with pytest.raises(ConfigError, match="data.augment.eval_crop_size: 256 px crops are larger than the decoded short side"):
        AVDataModule(short_side=128, augment=AugmentConfig(eval_crop_size=256))
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(ConfigError, match="no training videos"):
        AVDataModule(root=str(tmp_path / "empty_dir")).records("train")


def test_manifest_errors_name_line_and_field(tmp_path):
    bad = tmp_path / "manifest.csv"
    bad.write_text("path,label,split\na.mp4,x,train\n")
    with pytest.raises(ValueError, match=r"manifest.csv:2: field 'label'"):
        read_manifest(bad)
    bad.write_text("path,label,split\na.mp4,1,training\n")
    with pytest.raises(ValueError, match=r"field 'split'"):
        read_manifest(bad)

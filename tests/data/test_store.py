"""The shard store (`avssl prepare --format shards`): the clips of the mp4 copy prepared with the
same settings, on the fidelity media zoo; every source accounted for; resumable; bad input named."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.io import decode_jpeg, encode_jpeg

from avssl.augment.pipeline import AugmentConfig
from avssl.cli import main
from avssl.data.batch import collate, decoded_on_device
from avssl.data.datamodule import AVDataModule
from avssl.data.decode import probe
from avssl.data.encoded import ENCODED_KEY, decode_frames
from avssl.data.formats import STORE_FORMAT, STORE_META, PrepareConfig
from avssl.data.store import read
from avssl.errors import ConfigError
from avssl.prepare import shards
from avssl.prepare.mp4 import prepare
from avssl.prepare.shards import write_store
from avssl.prepare.timeline import timeline_frames
from tests.data.media import read_index
from tests.data.test_fidelity import FPS, RATE, ROTATED, corners, write_zoo

SETTINGS = dict(short_side=32, fps=FPS, audio_rate=RATE)
CLIP = dict(
    short_side=32,
    augment=AugmentConfig(crop_size=32),
    sample_rate=RATE,
    num_frames=6,
    clip_seconds=1.0,
    eval_clips=3,
    num_workers=0,
    batch_size=2,
)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """The fidelity zoo (:func:`tests.data.test_fidelity.write_zoo`) as an mp4 copy and a store
    prepared with the same settings."""
    src = write_zoo(tmp_path_factory.mktemp("zoo"))
    root = tmp_path_factory.mktemp("zoo-out")
    mp4 = root / "mp4"
    prepare(src, mp4, PrepareConfig(**SETTINGS), workers=2, progress=False)
    store = root / "store"
    report = write_store(src, store, PrepareConfig(**SETTINGS, format="shards"), workers=2, progress=False)
    return src, mp4, store, report


def test_the_store_gives_the_clips_of_the_mp4_copy_with_the_same_settings(zoo):
    src, mp4, store, _ = zoo
    copy, shards = AVDataModule(str(mp4), **CLIP), AVDataModule(str(store), **CLIP)
    assert shards.layout == "store" and shards.num_classes == copy.num_classes == 2
    for split, train in (("train", True), ("train", False), ("test", False)):
        a, b = copy.dataset(split, train=train), shards.dataset(split, train=train)
        assert [r.video_id for r in b.records] == [r.video_id for r in a.records]
        for i in range(len(a)):
            for epoch in (0, 3):
                x, y = a[(epoch, i)], b[(epoch, i)]
                np.testing.assert_array_equal(y["start"], x["start"])  # the same clip starts
                assert y["label"] == x["label"] and y["video_id"] == x["video_id"]
                torch.testing.assert_close(y["audio"], x["audio"], rtol=0, atol=0)  # the same samples
                assert y["video"].shape == x["video"].shape
                if x["video_id"] != "phone":  # the frame each time shows: the same index
                    shown = [[read_index(f.numpy()) for f in clip] for clip in y["video"]]
                    assert shown == [[read_index(f.numpy()) for f in clip] for clip in x["video"]], x["video_id"]
                diff = (y["video"].float() - x["video"].float()).abs().mean()
                assert diff < 6, (x["video_id"], float(diff))  # x264 (crf 23) + JPEG error at 32 px


def jpeg_round_trip(rgb: np.ndarray, quality: int = 90) -> np.ndarray:
    image = torch.from_numpy(rgb).permute(2, 0, 1).contiguous()
    return decode_jpeg(encode_jpeg(image, quality=quality)).permute(1, 2, 0).numpy()


def test_stored_frames_are_the_prepared_timeline_after_a_jpeg_round_trip(zoo):
    src, _, store, _ = zoo
    data = AVDataModule(str(store), **CLIP)
    dataset = data.dataset("train", train=False)
    for i, record in enumerate(dataset.records):
        source = str(src / Path(record.path).name)  # the record names its source file
        reference = np.stack(list(timeline_frames(source, probe(source), PrepareConfig(**SETTINGS))))
        times = dataset[i]["start"].numpy()[:, None] + (np.arange(6) + 0.5) / 6
        picked = np.clip(np.floor(times * FPS + 1e-4).astype(int), 0, len(reference) - 1)
        # the JPEG round trip of the prepared frame, exactly (the store encodes the same pixels)
        expected = np.stack([jpeg_round_trip(reference[k]) for k in picked.reshape(-1)]).reshape(dataset[i]["video"].shape)
        np.testing.assert_array_equal(dataset[i]["video"].numpy(), expected, err_msg=record.video_id)
    phone = next(i for i, r in enumerate(dataset.records) if r.video_id == "phone")
    frame = dataset[phone]["video"][0, 0].numpy()
    assert frame.shape == (64, 32, 3) and corners(frame) == ROTATED[90]  # upright, as a player shows it


@pytest.mark.parametrize("side", [32, 24])  # the stored short side, or resized on decoding
def test_device_decoding_gives_the_worker_decoded_batch(zoo, side):
    _, _, store, _ = zoo
    clip = {**CLIP, "short_side": side, "augment": AugmentConfig(crop_size=side)}
    worker = AVDataModule(str(store), decode_on="worker", **clip)
    device = AVDataModule(str(store), decode_on="device", **clip)
    a, b = worker.dataset("train", train=True), device.dataset("train", train=True)
    batch = collate([b[(1, i)] for i in range(len(b))])
    assert "video" not in batch and len(batch[ENCODED_KEY]) == len(b)
    decoded = decode_frames(batch)
    assert int(decoded["extent"].min(1).values.max()) == side  # every video at the clip's short side
    expected = collate([a[(1, i)] for i in range(len(a))])  # videos of three sizes: padded alike
    assert torch.equal(decoded["video"], expected["video"]) and torch.equal(decoded["extent"], expected["extent"])
    views = device.views.transform().eval_views(decoded_on_device(batch))  # as a consumer's hook makes them
    assert torch.equal(views["video"], worker.views.transform().eval_views(expected)["video"])
    with pytest.raises(ConfigError, match="data.decode_on: device decodes a shard store"):
        AVDataModule(str(zoo[1]), decode_on="device", **CLIP)
    with pytest.raises(ConfigError, match="data.decode_on must be one of auto, worker, device"):
        AVDataModule(str(store), decode_on="gpu", **CLIP)


def test_every_source_is_accounted_for_and_a_rerun_redoes_nothing(zoo, tmp_path):
    src, mp4, store, report = zoo
    assert report["videos"] == 6 and report["prepared"] == 4
    assert report["skipped_by_reason"] == {"unreadable": 1, "missing": 1}, report["skipped"]
    copy = json.loads((mp4 / "prepare_report.json").read_text())
    # the mp4 copy's reasons and details; it leaves a listed file that is missing to the loader
    assert [s for s in report["skipped"] if s["reason"] != "missing"] == copy["skipped"]
    assert {s["path"].rsplit("/", 1)[-1] for s in report["skipped"]} == {"broken.mp4", "gone.mp4"}
    assert json.loads((store / "prepare_report.json").read_text())["files"] == report["files"]
    again = write_store(src, store, PrepareConfig(**SETTINGS, format="shards"), workers=1, progress=False)
    assert (again["prepared"], again["already_done"]) == (0, 4)
    with pytest.raises(ConfigError, match="prepared with other settings.*jpeg_quality: 90 -> 50"):
        write_store(src, store, PrepareConfig(**SETTINGS, format="shards", jpeg_quality=50), workers=1, progress=False)
    with pytest.raises(ConfigError, match=rf"prepare: {mp4} was prepared with --format mp4, not shards; use a new DST"):
        write_store(src, mp4, PrepareConfig(**SETTINGS, format="shards"), workers=1, progress=False)


def test_an_interrupted_store_is_named_and_resumes_from_its_finished_files(zoo, tmp_path, monkeypatch):
    src = zoo[0]
    dst = tmp_path / "store"

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(shards, "_write_chunks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_store(src, dst, PrepareConfig(**SETTINGS, format="shards"), workers=1, progress=False)
    with pytest.raises(ConfigError, match="not a complete shard store .*interrupted"):
        AVDataModule(str(dst), **CLIP).read_catalog()
    monkeypatch.undo()
    report = write_store(src, dst, PrepareConfig(**SETTINGS, format="shards"), workers=1, progress=False)
    assert (report["prepared"], report["already_done"]) == (0, 4)  # staged files are not redone
    assert len(AVDataModule(str(dst), **CLIP).dataset("train", train=True)) == 3


def test_bad_stores_are_named_or_their_videos_counted(zoo, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(zoo[2], store)
    data = AVDataModule(str(store), **CLIP)
    dataset = data.dataset("train", train=True)
    chunk = next(store.glob("chunk-*.bin"))
    raw = bytearray(chunk.read_bytes())
    first = dataset[(0, 0)]
    # damage the JPEG data of the whole chunk (its item headers, near the start, stay intact)
    raw[len(raw) // 10 :] = bytes(len(raw) - len(raw) // 10)
    chunk.write_bytes(bytes(raw))
    read._open.cache_clear()  # as a new run would, reads the damaged chunk
    fresh = AVDataModule(str(store), **CLIP).dataset("train", train=True)
    batch = collate([fresh[(0, i)] for i in range(len(fresh))])
    assert int(batch["num_failed"]) > 0 and first is not None  # counted, not a crash
    read._open.cache_clear()
    streamed = list(AVDataModule(str(store), **CLIP).train_dataloader())  # litdata's streaming loader
    assert streamed and sum(int(b["num_failed"]) for b in streamed) > 0  # counted, not a crash
    items = int(np.frombuffer(raw, "<u4", count=1)[0])
    offsets = bytearray(raw)
    offsets[4 : 4 * (items + 2)] = bytes(4 * (items + 1))  # the items' byte offsets: litdata cannot cut them out
    chunk.write_bytes(bytes(offsets))
    streamed = list(AVDataModule(str(store), **CLIP).train_dataloader())
    assert streamed and sum(int(b["num_failed"]) for b in streamed) > 0  # counted, not a crash
    chunk.write_bytes(bytes(len(raw)))  # its header too: litdata's loader would stop on it, so it is named up front
    with pytest.raises(ConfigError, match=rf"chunk file\(s\) of the store .* are damaged .*\['{chunk.name}'\]"):
        AVDataModule(str(store), **CLIP).read_catalog()
    chunk.write_bytes(bytes(raw))
    meta = json.loads((store / STORE_META).read_text())
    (store / STORE_META).write_text(json.dumps({**meta, "store_format": 99}))
    with pytest.raises(ConfigError, match=rf"avssl_store.json: store format 99, this avssl reads format {STORE_FORMAT}"):
        AVDataModule(str(store), **CLIP).read_catalog()
    (store / STORE_META).write_text(json.dumps(meta))
    chunk.unlink()
    with pytest.raises(ConfigError, match=f"lacks 1 chunk file.*{chunk.name}"):
        AVDataModule(str(store), **CLIP).read_catalog()


def test_avssl_prepare_format_shards(zoo, tmp_path, capsys):
    main(["prepare", str(zoo[0]), str(tmp_path / "s"), "--format", "shards", "--short-side", "32", "--workers", "1"])
    out = capsys.readouterr().out
    assert "prepared 4, already done 0, skipped 2 {'missing': 1, 'unreadable': 1}" in out
    assert (tmp_path / "s" / STORE_META).is_file()
    with pytest.raises(SystemExit):
        main(["prepare", str(zoo[0]), str(tmp_path / "t"), "--format", "tar"])


def test_a_frame_that_does_not_decode_on_the_device_drops_its_video_and_is_counted(zoo):
    store = zoo[2]
    worker = AVDataModule(str(store), decode_on="worker", **CLIP).dataset("train", train=False)
    device = AVDataModule(str(store), decode_on="device", **CLIP).dataset("train", train=False)
    batch = collate([device[i] for i in range(len(device))])
    encoded = batch[ENCODED_KEY]
    per_video = encoded.clips[0] * encoded.clips[1]
    start, end = encoded.offsets[per_video], encoded.offsets[per_video + 1]  # the first frame of video 1
    encoded.data[start + 20 : end] = 0  # its entropy-coded data and end marker gone: a truncated JPEG
    decoded = decode_frames(batch)
    expected = collate([worker[i] for i in range(len(worker)) if i != 1])
    assert decoded["video_id"] == expected["video_id"] and int(decoded["num_failed"]) == 1
    assert torch.equal(decoded["index"], expected["index"]) and torch.equal(decoded["audio"], expected["audio"])
    assert torch.equal(decoded["video"], expected["video"][..., : decoded["video"].shape[-3], : decoded["video"].shape[-2], :])
    encoded.data[:] = 0  # nothing decodes: the counters alone, as for a batch whose samples all failed
    failed = decode_frames(batch)
    assert set(failed) == {"num_failed"} and int(failed["num_failed"]) == len(device)


@pytest.mark.parametrize("part", ["frame", "audio"])
def test_damaged_bytes_that_would_decode_silently_fail_their_checksum(zoo, tmp_path, part):
    store = tmp_path / "store"
    shutil.copytree(zoo[2], store)
    dataset = AVDataModule(str(store), **CLIP).dataset("train", train=False)
    item = read._open(str(store), os.getpid())[dataset.records[0].item]
    if part == "audio":
        target = item["audio"].tobytes()
    else:  # a frame the first video's first clip shows
        times = dataset[0]["start"].numpy()[:1, None] + (np.arange(6) + 0.5) / 6
        k = int(np.floor(times[0, 0] * FPS + 1e-4))
        target = item["jpeg"][item["offsets"][k] : item["offsets"][k + 1]].tobytes()
    chunk = next(store.glob("chunk-*.bin"))
    raw = bytearray(chunk.read_bytes())
    found = raw.find(target)
    assert found >= 0
    while found >= 0:  # every copy (a video's frames before its streams start are one frame repeated)
        at = found + len(target) // 2
        raw[at : at + 16] = bytes(x ^ 0x55 for x in raw[at : at + 16])  # libjpeg decodes such damage to wrong pixels
        found = raw.find(target, found + len(target))
    chunk.write_bytes(bytes(raw))
    read._open.cache_clear()  # as a new run would, reads the damaged chunk
    fresh = AVDataModule(str(store), **CLIP).dataset("train", train=False)
    batch = collate([fresh[i] for i in range(len(fresh))])
    assert int(batch["num_failed"]) == 1 and dataset.records[0].video_id not in batch["video_id"]


def test_the_format_defaults_are_the_short_sides_their_readers_read():
    """A store is written at the short side pre-training reads by default, an mp4 copy at the one
    evaluation's 256-px crops read; both at the training audio rate."""
    import inspect

    defaults = {k: v.default for k, v in inspect.signature(AVDataModule).parameters.items()}
    store, copy = PrepareConfig(format="shards"), PrepareConfig()
    assert store.short_side == defaults["short_side"] == 128 and copy.short_side == 256
    assert store.audio_rate == copy.audio_rate == defaults["sample_rate"]
    assert PrepareConfig(format="shards", short_side=64).short_side == 64

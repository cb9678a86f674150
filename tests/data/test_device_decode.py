"""Media files decoded on the batch's device by torchcodec (``data.decode_on: device``): the
workers read the files' bytes, the frames are decoded after the transfer, and the batch is the
one the workers would have decoded (on the CPU, exactly), on the fidelity zoo (late streams with
B-frames, rotation, odd sizes), with truncation and decode failures counted."""

from __future__ import annotations

import pytest
import torch

from avssl.augment.pipeline import AugmentConfig
from avssl.data.batch import ViewsAfterTransfer, collate
from avssl.data.datamodule import AVDataModule
from avssl.data.decode import DecodeError
from avssl.data.decode.video_torchcodec import EncodedVideo, TorchCodecVideo
from avssl.data.encoded import ENCODED_KEY, decode_frames
from avssl.errors import ConfigError
from avssl.evaluation.base import EncoderEvaluation
from avssl.methods.base import SSLMethod
from tests.data.test_fidelity import RATE, ROTATED, corners, truncated_mkv, write_zoo

CLIP = dict(
    short_side=32, augment=AugmentConfig(crop_size=32), sample_rate=RATE, num_frames=6, clip_seconds=1.0, eval_clips=3, num_workers=0
)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    src = write_zoo(tmp_path_factory.mktemp("zoo"))
    truncated_mkv(src)  # listed by no manifest row: read as its own root below
    return src


def pair(root, **settings) -> tuple[AVDataModule, AVDataModule]:
    settings = {**CLIP, **settings}
    worker = AVDataModule(str(root), video_backend="torchcodec", decode_on="worker", **settings)
    device = AVDataModule(str(root), video_backend="torchcodec", decode_on="device", **settings)
    return worker, device


@pytest.mark.parametrize("split, train", [("train", True), ("train", False), ("test", False)])
def test_device_decoding_gives_the_worker_decoded_batch(zoo, split, train):
    worker, device = pair(zoo, batch_size=4)
    a, b = worker.dataset(split, train=train), device.dataset(split, train=train)
    assert [r.video_id for r in a.records] == [r.video_id for r in b.records]
    encoded = collate([b[(2, i)] for i in range(len(b))])
    assert "video" not in encoded and isinstance(encoded[ENCODED_KEY], EncodedVideo)  # the workers decoded no frame
    expected = collate([a[(2, i)] for i in range(len(a))])
    decoded = decode_frames(encoded)
    assert torch.equal(decoded["video"], expected["video"]) and torch.equal(decoded["extent"], expected["extent"])
    for key in ("audio", "start", "index", "num_failed", "num_truncated_video"):
        assert torch.equal(decoded[key], expected[key]), key
    if "phone" in decoded["video_id"]:  # upright, as a player shows it
        i = decoded["video_id"].index("phone")
        frame = decoded["video"][i, 0, 0, :64, :32].numpy()
        assert corners(frame) == ROTATED[90]


def test_windows_past_a_truncated_files_end_are_counted_after_the_device_decode(zoo, tmp_path):
    (tmp_path / "cut.mkv").symlink_to(zoo / "cut.mkv")
    worker, device = pair(tmp_path, batch_size=1, clip_seconds=0.64, eval_clips=4)
    a, b = worker.dataset("train", train=False), device.dataset("train", train=False)
    expected, decoded = collate([a[0]]), decode_frames(collate([b[0]]))
    assert int(expected["num_truncated_video"]) == 1
    assert int(decoded["num_truncated_video"]) == 1 and torch.equal(decoded["video"], expected["video"])


def test_a_file_that_fails_the_device_decode_is_dropped_and_counted(zoo, monkeypatch):
    _, device = pair(zoo, batch_size=4)
    dataset = device.dataset("train", train=False)
    batch = collate([dataset[i] for i in range(len(dataset))])
    real = TorchCodecVideo.played

    def damaged(self, times):
        if self.name.endswith("odd.mkv"):
            raise DecodeError(self.name, "corrupt", "injected")
        return real(self, times)

    monkeypatch.setattr(TorchCodecVideo, "played", damaged)
    decoded = decode_frames(batch)
    assert "odd" not in decoded["video_id"] and decoded["video"].shape[0] == len(dataset) - 1
    assert int(decoded["num_failed"]) == 1 and decoded["label"].shape[0] == len(dataset) - 1


def test_the_consumers_decode_what_arrives_encoded_once_in_one_hook(zoo):
    worker, device = pair(zoo, batch_size=4)
    b, a = device.dataset("test", train=False), worker.dataset("test", train=False)

    class Consumer(ViewsAfterTransfer):  # a method's or an evaluation's hook, with its views
        def make_views(self, batch):
            return device.views.transform().eval_views(batch, device.views.eval_positions)

    views = Consumer().on_after_batch_transfer(collate([b[0]]), 0)
    expected = worker.views.transform().eval_views(collate([a[0]]), worker.views.eval_positions)
    assert torch.equal(views["video"], expected["video"])
    for consumer in (SSLMethod, EncoderEvaluation):  # every consumer enters its views through that one hook
        assert consumer.on_after_batch_transfer is ViewsAfterTransfer.on_after_batch_transfer


def test_device_decoding_of_media_files_needs_torchcodec(zoo):
    with pytest.raises(ConfigError, match=r"data.decode_on: device decodes .* media files with data.video_backend torchcodec"):
        AVDataModule(str(zoo), video_backend="pyav", decode_on="device", **CLIP)
    auto = AVDataModule(str(zoo), video_backend="torchcodec", **CLIP)  # auto: media files decode in the workers, even with CUDA
    assert auto.clip.decode_on == "worker"

"""Features for a notebook user: a checkpoint plus a list of files (or a data module) in a few lines."""

from __future__ import annotations

import pytest
import torch

import avssl
from avssl.data.batch import collate
from avssl.data.dataset import AVClipDataset
from avssl.data.formats import PrepareConfig
from avssl.data.layouts import VideoRecord
from avssl.errors import ConfigError
from avssl.prepare.shards import write_store
from tests.conftest import TINY


def test_features_of_a_list_of_files_match_the_encoder_on_the_same_clips(checkpoint, tiny_root, tmp_path):
    videos = sorted((tiny_root / "videos").glob("*.mp4"))[:3]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 64)
    encoder = avssl.load_encoder(checkpoint)
    features = avssl.extract_features(encoder, [*videos, broken], clips=2, batch_size=2)
    assert features.video_ids == [v.stem for v in videos]
    assert features.fused.shape == (3, encoder.backbone.out_dim)
    assert features.audio.shape[1] + features.video.shape[1] == features.fused.shape[1]
    assert torch.equal(features.fused, torch.cat([features.video, features.audio], 1))
    assert list(features.skipped) == [str(broken)] and (features.labels == -1).all()
    # the same clips through the encoder by hand: the checkpoint's input settings (4 frames, 16 kHz)
    data = avssl.encoder_datamodule(encoder)
    assert data.clip.num_frames == 4 and data.clip.sample_rate == 16000
    again = avssl.extract_features(checkpoint, [videos[1]], clips=2)  # a path works too
    torch.testing.assert_close(again.fused[0], features.fused[1], rtol=1e-4, atol=1e-5)
    # reference: the two uniformly spaced clips of video 1, centre crops, through the backbone
    dataset = AVClipDataset([VideoRecord(str(videos[1]), -1, "v", "test")], data.clip, train=False, num_clips=2)
    views = data.views.transform().eval_views(collate([dataset[0]]), [0.5])
    with torch.no_grad():
        clip_features = encoder.backbone(views["video"][0], views["spec"][0])  # [2, D]
    torch.testing.assert_close(features.fused[1], clip_features.mean(0), rtol=1e-4, atol=1e-5)


def test_features_of_a_datamodule_split(checkpoint, tiny_root):
    encoder = avssl.load_encoder(checkpoint)
    data = avssl.encoder_datamodule(encoder, num_workers=0, batch_size=4)
    features = avssl.extract_features(encoder, datamodule=data, split="test", clips=1)
    assert len(features.video_ids) == len(data.records("test")) and features.labels.min() >= 0
    with pytest.raises(ConfigError, match="either videos"):
        avssl.extract_features(encoder)
    with pytest.raises(ConfigError, match="no such video"):
        avssl.extract_features(encoder, [tiny_root / "nope.mp4"])


def test_the_backbone_is_read_from_the_checkpoint_in_the_current_and_the_older_layout(checkpoint, tmp_path):
    """Checkpoints store the architecture once, as ``hyper_parameters.backbone``; those of avssl
    0.1 kept it as top-level hyper-parameters, and still load."""
    ckpt = torch.load(checkpoint, weights_only=True)
    assert avssl.BackboneConfig(**ckpt["hyper_parameters"]["backbone"]) == avssl.BackboneConfig(width=8, layers=(1, 1, 1, 1))
    current = avssl.load_encoder(checkpoint)
    assert current.architecture == avssl.BackboneConfig(width=8, layers=(1, 1, 1, 1))
    older = dict(
        ckpt,
        hyper_parameters={**{k: v for k, v in ckpt["hyper_parameters"].items() if k != "backbone"}, "width": 8, "layers": [1, 1, 1, 1]},
    )
    torch.save(older, tmp_path / "older.ckpt")
    assert avssl.load_encoder(tmp_path / "older.ckpt").architecture == current.architecture
    with pytest.raises(ConfigError, match="leave model.backbone unset"):
        avssl.LinearProbe(str(checkpoint), num_classes=4, backbone=avssl.BackboneConfig(width=8))


def test_features_of_a_store_decoded_in_the_workers_or_on_the_device_are_the_same(checkpoint, tiny_root, tmp_path):
    encoder = avssl.load_encoder(checkpoint)
    clip = avssl.encoder_datamodule(encoder).clip
    store = tmp_path / "store"
    cfg = PrepareConfig(format="shards", short_side=clip.short_side, fps=TINY.fps, audio_rate=clip.sample_rate)
    write_store(tiny_root, store, cfg, workers=1, progress=False)
    features = {
        on: avssl.extract_features(
            encoder, datamodule=avssl.encoder_datamodule(encoder, root=str(store), decode_on=on, num_workers=0, batch_size=4), clips=1
        )
        for on in ("worker", "device")
    }
    assert features["worker"].video_ids == features["device"].video_ids and len(features["worker"].video_ids) > 0
    assert torch.equal(features["worker"].fused, features["device"].fused)


def test_videos_without_audio_are_named_or_kept_with_the_data_modules_option(checkpoint, tmp_path):
    import numpy as np

    from avssl.prepare.synthetic import write_av_mp4

    silent, sound = tmp_path / "silent.mp4", tmp_path / "sound.mp4"
    write_av_mp4(silent, np.full((50, 48, 48, 3), 60, np.uint8), None, 25, 16000)
    write_av_mp4(sound, np.full((50, 48, 48, 3), 60, np.uint8), np.zeros(32000, np.float32), 25, 16000)
    default = avssl.extract_features(checkpoint, [silent, sound])
    assert default.video_ids == ["sound"] and default.skipped == {str(silent): "no_audio_stream"}
    kept = avssl.extract_features(checkpoint, [silent, sound], allow_missing_audio=True)
    assert kept.video_ids == ["silent", "sound"] and not kept.skipped
    torch.testing.assert_close(kept.video[1], default.video[0])  # the same clips of the file with audio
    data = avssl.encoder_datamodule(avssl.load_encoder(checkpoint), root=str(tmp_path), num_workers=0)  # a folder: all train
    with pytest.raises(ConfigError, match=rf"extract_features: the data at {tmp_path} has no test split"):
        avssl.extract_features(checkpoint, datamodule=data)

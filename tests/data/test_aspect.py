"""Frames keep their aspect ratio from the file to the views: 3 test crops along the long side,
training crops anywhere in the frame, padded batches whose padding never enters a view."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from avssl.augment.pipeline import AugmentConfig
from avssl.augment.video import ColorConfig
from avssl.data.datamodule import AVDataModule
from tests.data.media import write_media

# (name, height, width): 4:3, 16:9, 21:9 and a portrait phone video
SHAPES = [("4x3", 96, 128), ("16x9", 72, 128), ("21x9", 54, 126), ("portrait", 128, 72)]
SHORT = 48


def ramp_frames(height: int, width: int, frames: int = 40) -> np.ndarray:
    """Red encodes x, green encodes y (0 -> 255 across the frame), blue is a constant 128."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    img = np.stack([x, y, np.full_like(x, 128)], -1).astype(np.uint8)
    return np.repeat(img[None], frames, 0)


@pytest.fixture(scope="module")
def ramp_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("aspect")
    audio = np.zeros((1, 16000 * 2), np.float32)
    with open(root / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "split"])
        for i, (name, height, width) in enumerate(SHAPES):
            write_media(root / f"{name}.mp4", ramp_frames(height, width), audio=audio, gop=10)
            for split in ("train", "test"):
                writer.writerow([f"{name}.mp4", i % 2, split])
    return root


def data(root, **augment):
    return AVDataModule(
        str(root),
        batch_size=4,
        num_workers=0,
        short_side=SHORT,
        sample_rate=16000,
        num_frames=2,
        eval_clips=1,
        eval_crops=3,
        augment=AugmentConfig(crop_size=32, eval_crop_size=SHORT, chunk_size=4, **augment),
    )


def unnormalise(video: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """Model-layout views ``[..., 3, T, h, w]`` back to 0..255 intensities."""
    mean = torch.tensor(cfg.mean).view(3, 1, 1, 1)
    std = torch.tensor(cfg.std).view(3, 1, 1, 1)
    return (video * std + mean) * 255


def test_decoded_frames_keep_their_aspect_and_batches_pad(ramp_root):
    dm = data(ramp_root)
    batch = next(iter(dm.test_dataloader()))
    expected = {name: (SHORT, round(SHORT * w / h / 2) * 2) if h <= w else (round(SHORT * h / w / 2) * 2, SHORT) for name, h, w in SHAPES}
    got = {vid: tuple(e.tolist()) for vid, e in zip(batch["video_id"], batch["extent"])}
    assert got == {name: expected[name] for name in got} and len(got) == 4
    height, width = batch["video"].shape[3:5]
    assert (height, width) == (max(e[0] for e in got.values()), max(e[1] for e in got.values()))
    for i, (h, w) in enumerate(batch["extent"].tolist()):  # the padding is zeros, the frame is not
        assert batch["video"][i, ..., :h, :w, 2].float().mean() > 100
        assert batch["video"][i, ..., h:, :, :].sum() == 0 and batch["video"][i, ..., :, w:, :].sum() == 0


def test_three_test_crops_differ_and_cover_the_long_side(ramp_root):
    dm = data(ramp_root)
    batch = next(iter(dm.test_dataloader()))
    views = dm.views.transform().eval_views(batch, dm.views.eval_positions)  # [B, 3 crops, 3, T, h, w]
    assert views["video"].shape[1:] == (3, 3, 2, SHORT, SHORT)
    for i, name in enumerate(batch["video_id"]):
        crops = unnormalise(views["video"][i], dm.views.augment)[:, :, 0]  # [3, 3 channels, h, w], first frame
        portrait = name == "portrait"
        # position along the long side, in [0, 1], read from the ramp of each crop's pixels
        along = (crops[:, 1].mean(2) if portrait else crops[:, 0].mean(1)) / 255  # [3, side]
        across = (crops[:, 0].mean(1) if portrait else crops[:, 1].mean(2)) / 255
        lo, hi = along.min(1).values, along.max(1).values
        assert lo[0] < 0.03 and hi[2] > 0.97, (name, lo, hi)  # first and last crop reach both ends
        assert hi[0] >= lo[1] - 0.02 and hi[1] >= lo[2] - 0.02, (name, lo, hi)  # no gap between crops
        assert lo[0] < lo[1] < lo[2], name  # three different crops
        assert across.min() < 0.03 and across.max() > 0.97, name  # each spans the whole short side
        assert crops[:, 2].min() > 100, name  # blue is 128 everywhere: no padding in any crop


def test_training_crops_land_anywhere_in_the_frame_and_never_in_the_padding(ramp_root):
    dm = data(ramp_root, color=ColorConfig(jitter_p=0.0, grayscale_p=0.0, blur_p=0.0), flip_p=0.0, temporal=[])
    batch = next(iter(dm.train_dataloader()))
    reach, transform = {name: [1.0, 0.0] for name in batch["video_id"]}, dm.views.transform()
    for seed in range(40):
        views = transform.train_views(batch, torch.Generator().manual_seed(seed))
        video = unnormalise(views["video"], dm.views.augment)  # [B, 2 clips, 3, T, h, w]
        assert video[:, :, 2].min() > 120, video[:, :, 2].min()  # the padding (blue 0) never enters a crop, even partly
        for i, name in enumerate(batch["video_id"]):
            ramp = video[i, :, 1 if name == "portrait" else 0] / 255
            reach[name] = [min(reach[name][0], ramp.min().item()), max(reach[name][1], ramp.max().item())]
    for name, (lo, hi) in reach.items():  # over 40 draws the crops reach both ends of the long side
        assert lo < 0.05 and hi > 0.95, (name, lo, hi)

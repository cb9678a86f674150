"""Batched ops equal a per-sample loop (or torchvision) for fixed parameters."""

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from avssl.augment.functional import compose_indices, crop_flip_resize, normalise_, resample_indices, select_frames, view_boxes
from avssl.augment.temporal import TemporalAug
from tests.augment.reference import resample


def test_resample_matches_interpolate_per_sample():
    x = torch.randn(6, 3, 16)  # [M, C, L]: time on dim 2
    strength = torch.tensor([0.0, 0.1, 0.25, 0.5, 0.75, 0.9])
    out = resample(x, strength, dim=2)
    for i, s in enumerate(strength):
        kept = max(1, round(16 * (1 - float(s))))
        down = F.interpolate(x[i : i + 1], size=kept, mode="nearest")
        ref = F.interpolate(down, size=16, mode="nearest")
        torch.testing.assert_close(out[i : i + 1], ref)


def test_resample_half_on_eight_frames_keeps_four_distinct_frames():
    frames = torch.arange(8.0).view(1, 1, 8, 1, 1).expand(3, 3, 8, 2, 2).contiguous()  # [M, C, T, H, W]
    out = resample(frames, torch.full((3,), 0.5), dim=2)
    assert out[0, 0, :, 0, 0].tolist() == [0, 0, 2, 2, 4, 4, 6, 6]
    assert resample_indices(8, torch.tensor([0.0])).tolist() == [list(range(8))]


def test_resample_audio_halves_the_effective_rate():
    wave = torch.randn(2, 1000)
    out = resample(wave, torch.tensor([0.5, 0.0]), dim=1)
    torch.testing.assert_close(out[0, 0::2], out[0, 1::2])
    torch.testing.assert_close(out[1], wave[1])


def test_strength_sampling_respects_alpha_and_p():
    g = torch.Generator().manual_seed(0)
    s = TemporalAug("RE", alpha=0.5, p=1.0).sample_strength(10000, g, torch.device("cpu"))
    assert s.min() >= 0 and s.max() <= 0.5 and abs(s.mean().item() - 0.25) < 0.01
    s = TemporalAug("RE", alpha=0.5, p=0.3).sample_strength(10000, g, torch.device("cpu"))
    assert abs((s > 0).float().mean().item() - 0.3) < 0.02


def test_crop_equals_torchvision_per_sample_on_integer_boxes():
    frames = torch.rand(4, 5, 3, 20, 24)  # [M, T, C, H, W]
    boxes = torch.tensor([[0, 0, 8, 8], [3, 5, 8, 8], [16, 12, 8, 8], [7, 2, 8, 8]])
    flip = torch.tensor([False, True, False, True])
    out = crop_flip_resize(frames, boxes, flip, (8, 8))
    for i, (x0, y0, w, h) in enumerate(boxes.tolist()):
        ref = TF.crop(frames[i], y0, x0, h, w)  # same box on every frame of the clip
        if flip[i]:
            ref = ref.flip(-1)
        torch.testing.assert_close(out[i], ref, atol=1e-5, rtol=0)


def test_crop_resize_matches_a_per_sample_loop_and_channels_last_input():
    decoded = torch.randint(0, 256, (5, 4, 16, 16, 3), dtype=torch.uint8)  # [M, T, H, W, C] as decoded
    frames = decoded.permute(0, 1, 4, 2, 3).float()  # channels-last strides, no copy
    boxes = torch.tensor([[0.0, 0.0, 16, 16], [2.5, 1.0, 9, 12], [4, 4, 5, 5], [0, 3, 16, 10], [1, 1, 14, 14]])
    flip = torch.tensor([True, False, True, False, False])
    batched = crop_flip_resize(frames, boxes, flip, (8, 8))
    looped = torch.cat([crop_flip_resize(frames[i : i + 1].contiguous(), boxes[i : i + 1], flip[i : i + 1], (8, 8)) for i in range(5)])
    torch.testing.assert_close(batched, looped)
    # a full-frame box resized equals bilinear interpolation of each frame
    ref = F.interpolate(frames[0], size=(8, 8), mode="bilinear", align_corners=False).flip(-1)
    torch.testing.assert_close(batched[0], ref, atol=1e-4, rtol=0)


def test_select_frames_and_composed_index_maps():
    clips = torch.randint(0, 256, (3, 8, 4, 6, 3), dtype=torch.uint8)
    index = torch.randint(0, 8, (3, 8))
    torch.testing.assert_close(select_frames(clips, index), torch.stack([clips[i, index[i]] for i in range(3)]))
    # applying two maps one after the other equals applying their composition once
    a, b = resample_indices(8, torch.tensor([0.5, 0.25, 0.0])), torch.randint(0, 8, (3, 8))
    torch.testing.assert_close(select_frames(select_frames(clips, a), b), select_frames(clips, compose_indices(a, b)))


def test_normalise_in_place_folds_the_uint8_scale():
    frames = torch.randint(0, 256, (2, 3, 3, 4, 4)).float()  # [M, T, C, H, W]
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.6, 0.7)
    expected = (frames / 255 - torch.tensor(mean).view(1, 1, 3, 1, 1)) / torch.tensor(std).view(1, 1, 3, 1, 1)
    torch.testing.assert_close(normalise_(frames.clone(), mean, std, scale=1 / 255), expected)


def test_view_boxes_span_the_long_side_on_whole_pixels():
    extent = torch.tensor([[20, 40], [20, 40], [20, 40], [30, 17], [30, 17], [30, 17]])
    boxes = view_boxes(extent, (10, 10), torch.tensor([0.0, 0.5, 1.0] * 2))
    assert boxes.tolist()[:3] == [[0, 0, 20, 20], [10, 0, 20, 20], [20, 0, 20, 20]]
    assert boxes.tolist()[3:] == [[0, 0, 17, 17], [0, 7, 17, 17], [0, 13, 17, 17]]  # portrait: along the height


def test_crops_of_padded_frames_never_read_the_padding():
    """A frame padded to the batch's size: boxes at its valid edge, up-scaled, stay inside."""
    frames = torch.zeros(2, 1, 1, 10, 16)
    frames[0, ..., :6, :8] = 1.0  # valid 6 x 8, padding 0 around it
    frames[1] = 1.0  # valid everywhere
    extent = torch.tensor([[6, 8], [10, 16]])
    boxes = torch.tensor([[4.0, 2.0, 4.0, 4.0], [12.0, 6.0, 4.0, 4.0]])  # at the bottom-right edge of each
    out = crop_flip_resize(frames, boxes, torch.tensor([False, True]), (9, 9), extent)
    torch.testing.assert_close(out, torch.ones_like(out))
    unclamped = crop_flip_resize(frames, boxes, torch.tensor([False, True]), (9, 9))
    assert unclamped[0].min() < 1  # without the extent the bilinear edge reads the padding

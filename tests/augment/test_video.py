"""Batched video ops equal torchvision applied clip by clip, for fixed parameters."""

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from avssl.augment.video import (
    ColorConfig,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    color_augment,
    gaussian_blur,
    grayscale,
)

CLIPS = torch.rand(4, 3, 3, 12, 10, generator=torch.Generator().manual_seed(0))  # [M, T, C, H, W]


@pytest.mark.parametrize(
    "ours, theirs, factors",
    [
        (adjust_brightness, TF.adjust_brightness, [0.6, 1.0, 1.4, 1.2]),
        (adjust_contrast, TF.adjust_contrast, [0.6, 1.0, 1.4, 0.9]),
        (adjust_saturation, TF.adjust_saturation, [0.6, 1.0, 1.4, 0.0]),
        (adjust_hue, TF.adjust_hue, [-0.1, 0.0, 0.1, 0.5]),
    ],
)
def test_jitter_ops_equal_torchvision_per_clip(ours, theirs, factors):
    out = ours(CLIPS.clone(), torch.tensor(factors))
    for i, f in enumerate(factors):
        torch.testing.assert_close(out[i], theirs(CLIPS[i], f), atol=1e-5, rtol=1e-5)


def test_grayscale_equals_torchvision():
    torch.testing.assert_close(grayscale(CLIPS)[0], TF.rgb_to_grayscale(CLIPS[0]), atol=1e-6, rtol=0)


def test_blur_equals_torchvision_per_clip():
    sigmas = [0.0, 0.5, 1.3, 2.0]
    out = gaussian_blur(CLIPS, torch.tensor(sigmas), 5)
    for i, s in enumerate(sigmas):
        ref = CLIPS[i] if s == 0 else TF.gaussian_blur(CLIPS[i], [5, 5], [s, s])
        torch.testing.assert_close(out[i], ref, atol=1e-5, rtol=1e-5)


def test_color_augment_is_consistent_across_frames_and_stays_in_range():
    frames = torch.rand(6, 1, 3, 8, 8).expand(6, 4, 3, 8, 8).contiguous()  # every frame of a clip identical
    params = ColorConfig(jitter_p=1.0, grayscale_p=0.5, blur_p=0.5).sample(6, torch.Generator().manual_seed(1), torch.device("cpu"))
    out = color_augment(frames, params, 3)
    assert out.min() >= 0 and out.max() <= 1
    torch.testing.assert_close(out[:, 0], out[:, 3])  # same parameters on every frame
    assert not torch.allclose(out[0], out[1])  # different clips, different parameters


def test_probabilities_zero_give_identity():
    params = ColorConfig(jitter_p=0.0, grayscale_p=0.0, blur_p=0.0).sample(4, torch.Generator().manual_seed(2), torch.device("cpu"))
    torch.testing.assert_close(color_augment(CLIPS.clone(), params, 5), CLIPS, atol=1e-5, rtol=0)


@pytest.mark.parametrize("field, value", [("jitter_p", 1.5), ("hue", 0.7), ("brightness", -0.1), ("blur_sigma", (0.0, 1.0))])
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ColorConfig(**{field: value})

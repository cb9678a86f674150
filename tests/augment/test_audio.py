import math

import numpy as np
import pytest
import torch

from avssl.augment.audio import AudioAugConfig, AudioAugment, coloured_noise, pitch_shift
from avssl.augment.pipeline import AugmentConfig, AVTransform

SR = 16000


def peak_frequency(x: torch.Tensor) -> float:
    seg = x[2048:-2048]
    spec = torch.fft.rfft(seg * torch.hann_window(len(seg)), n=len(seg) * 8).abs()
    k = int(spec.argmax())
    a, b, c = spec[k - 1].log(), spec[k].log(), spec[k + 1].log()
    return float((k + 0.5 * (a - c) / (a - 2 * b + c)) * SR / (len(seg) * 8))


def test_pitch_shift_of_a_440_hz_sine_within_one_percent():
    t = torch.arange(20480) / SR
    steps = torch.arange(-4, 5)
    wave = torch.sin(2 * math.pi * 440 * t).repeat(len(steps), 1)
    out = pitch_shift(wave, SR, steps)
    assert out.shape == wave.shape
    for i, n in enumerate(steps.tolist()):
        assert peak_frequency(out[i]) == pytest.approx(440 * 2 ** (n / 12), rel=0.01)
    torch.testing.assert_close(out[4], wave[4])  # 0 semitones: untouched


@pytest.mark.parametrize("color, slope", [(0.0, 0.0), (1.0, -3.0), (2.0, -6.0)])
def test_noise_colour_slopes_in_db_per_octave(color, slope):
    noise = coloured_noise((64, 16384), torch.full((64,), color), torch.Generator().manual_seed(0), torch.device("cpu"))
    assert noise.square().mean(1).sqrt().sub(1).abs().max() < 1e-4  # unit RMS
    power = torch.fft.rfft(noise).abs().square().mean(0)
    freqs = torch.arange(len(power)).float()
    band = (freqs >= 64) & (freqs <= 4096)  # six octaves
    fit = np.polyfit(np.log2(freqs[band].numpy()), 10 * np.log10(power[band].numpy()), 1)
    assert fit[0] == pytest.approx(slope, abs=0.3)


def test_noise_snr():
    aug = AudioAugment(SR, AudioAugConfig(pitch_p=0.0, noise_p=1.0, noise_snr_db=(20.0, 20.0), noise_colors=("pink",)))
    g = torch.Generator().manual_seed(1)
    wave = torch.randn(8, 8000) * 0.3
    params = aug.sample(8, g, np.random.default_rng(2), torch.device("cpu"))  # host draws: NumPy
    noisy = aug.apply(wave, params, "after", g)
    snr = 10 * torch.log10(wave.square().mean(1) / (noisy - wave).square().mean(1))
    torch.testing.assert_close(snr, torch.full((8,), 20.0), atol=0.01, rtol=0)
    torch.testing.assert_close(aug.apply(wave, params, "before", g), wave)  # placed after only


def test_placement_before_or_after_the_temporal_augmentations():
    g = torch.Generator().manual_seed(0)
    batch = {
        "video": torch.randint(0, 256, (2, 2, 4, 16, 16, 3), dtype=torch.uint8, generator=g),
        "audio": torch.randn(2, 2, 8000, generator=g),
    }
    temporal = [{"name": "FD", "alpha": 1.0}]

    def spec(placement):
        audio = AudioAugConfig(pitch_p=0.0, noise_p=1.0, noise_placement=placement)
        tr = AVTransform(SR, AugmentConfig(crop_size=8, temporal=temporal, audio=audio))
        return tr.train_views(batch, torch.Generator().manual_seed(3))["spec"]

    before, after = spec("before"), spec("after")
    assert not torch.allclose(before, after)  # noise faded with the signal vs added after the fade


@pytest.mark.parametrize(
    "kwargs, field",
    [({"pitch_p": 2.0}, "pitch_p"), ({"noise_placement": "middle"}, "noise_placement"), ({"noise_colors": ("blue",)}, "noise_colors")],
)
def test_bad_audio_values_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        AudioAugConfig(**kwargs)


def test_grouped_pitch_shift_equals_one_call_per_clip():
    wave = torch.randn(6, 8000, generator=torch.Generator().manual_seed(3))
    steps = torch.tensor([2, -1, 0, 2, 3, -1])
    batched = pitch_shift(wave, SR, steps)
    looped = torch.cat([pitch_shift(wave[i : i + 1], SR, steps[i : i + 1]) for i in range(6)])
    torch.testing.assert_close(batched, looped, atol=1e-5, rtol=1e-5)

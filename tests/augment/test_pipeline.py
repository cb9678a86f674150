import dataclasses

import pytest
import torch

from avssl.augment.audio import AudioAugConfig, SpectrogramConfig
from avssl.augment.pipeline import AugmentConfig, AVTransform
from avssl.augment.temporal import TemporalAug
from avssl.augment.video import ColorConfig
from tests.augment.reference import apply_plan, resample


def batch(b=3, n=2, t=8, h=20, w=24, s=4000):
    g = torch.Generator().manual_seed(0)
    return {
        "video": torch.randint(0, 256, (b, n, t, h, w, 3), dtype=torch.uint8, generator=g),
        "audio": torch.randn(b, n, s, generator=g),
        "label": torch.arange(b),
    }


def transform(**kw):
    return AVTransform(8000, AugmentConfig(crop_size=16, chunk_size=4, **kw), SpectrogramConfig(n_fft=256, hop_length=64, n_mels=32))


def test_train_views_shapes_and_reproducibility():
    tr, x = transform(), batch()
    out = tr.train_views(x, torch.Generator().manual_seed(1))
    assert out["video"].shape == (3, 2, 3, 8, 16, 16) and out["video"].dtype == torch.float32
    assert out["spec"].shape == (3, 2, 1, 32, 4000 // 64 + 1)
    assert out["label"].tolist() == [0, 1, 2] and "audio" not in out
    again = tr.train_views(x, torch.Generator().manual_seed(1))
    other = tr.train_views(x, torch.Generator().manual_seed(2))
    torch.testing.assert_close(out["video"], again["video"])
    assert not torch.equal(out["video"], other["video"])


def test_chunking_does_not_change_the_result():
    x = batch()
    a = transform().train_views(x, torch.Generator().manual_seed(3))
    b = AVTransform(8000, AugmentConfig(crop_size=16, chunk_size=1), SpectrogramConfig(n_fft=256, hop_length=64, n_mels=32)).train_views(
        x, torch.Generator().manual_seed(3)
    )
    torch.testing.assert_close(a["video"], b["video"])


def test_resample_on_video_only_leaves_audio_untouched():
    x = batch()
    video_only = transform(temporal=[{"name": "RE", "alpha": 1.0, "p": 1.0, "streams": "video"}])
    none = transform(temporal=[])
    a = video_only.train_views(x, torch.Generator().manual_seed(4))
    b = none.train_views(x, torch.Generator().manual_seed(4))
    torch.testing.assert_close(a["spec"], b["spec"])


def test_eval_views_three_crops():
    x = batch()
    out = transform().eval_views(x, positions=(0.0, 0.5, 1.0))
    assert out["video"].shape == (3, 6, 3, 8, 16, 16)
    torch.testing.assert_close(out["spec"][:, 0], out["spec"][:, 1])  # crops of a clip share its audio
    assert not torch.equal(out["video"][:, 0], out["video"][:, 2])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "XX"}, "name"),
        ({"name": "RE", "alpha": 1.5}, "alpha"),
        ({"name": "RE", "p": -0.1}, "p must"),
        ({"name": "RE", "streams": "left"}, "streams"),
    ],
)
def test_bad_temporal_specs_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TemporalAug(**kwargs)


def test_logmel_equals_torchaudio():
    from torchaudio.transforms import MelSpectrogram

    from avssl.augment.audio import LogMel

    wave = torch.randn(5, 4000)
    ours = LogMel(8000, SpectrogramConfig(n_fft=256, hop_length=64, n_mels=32, f_min=20.0, f_max=3000.0), chunk_size=2)(wave)
    ref = torch.log(MelSpectrogram(8000, n_fft=256, hop_length=64, n_mels=32, f_min=20.0, f_max=3000.0)(wave) + 1e-6).unsqueeze(1)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)
    standardised = LogMel(8000, SpectrogramConfig(n_fft=256, hop_length=64, n_mels=32, f_min=20.0, f_max=3000.0, mean=-5.0, std=4.0))
    torch.testing.assert_close(standardised(wave), (ref + 5.0) / 4.0, atol=1e-4, rtol=1e-4)  # a dataset's statistics (CAV-MAE's)


def test_train_views_resample_equals_reference_order():
    """RE applied to frames before the crop equals cropping first and resampling the crop after
    (parameters replayed: the same crops, the RE strengths read from the parameters)."""
    x = batch()
    no_pitch = AudioAugConfig(pitch_p=0.0)
    tr = transform(temporal=[{"name": "RE", "alpha": 0.75, "streams": "both"}], audio=no_pitch)
    params = tr.sample(x, torch.Generator().manual_seed(5))
    out = tr.apply(x, params)
    base = transform(temporal=[], audio=no_pitch).apply(x, dataclasses.replace(params, temporal=[]))
    strengths = params.temporal[0]
    video_ref = resample(base["video"].flatten(0, 1), strengths["video"]["strength"], dim=2).view_as(out["video"])
    torch.testing.assert_close(out["video"], video_ref)
    wave_ref = resample(x["audio"].reshape(6, -1), strengths["audio"]["strength"], dim=1)
    torch.testing.assert_close(out["spec"].flatten(0, 1), tr.logmel(wave_ref))


def test_apply_is_a_function_of_the_batch_and_the_parameters():
    x = batch()
    tr = transform(temporal=[{"name": n, "alpha": 0.5} for n in ("FD", "TM", "TS", "RE")], audio=AudioAugConfig(noise_p=0.5))
    params = tr.sample(x, torch.Generator().manual_seed(6))
    a, b = tr.apply(x, params), tr.apply(x, params)
    torch.testing.assert_close(a["video"], b["video"])
    torch.testing.assert_close(a["spec"], b["spec"])


def test_audio_mask_noise_is_held_by_a_following_resample():
    """TM then RE on the waveform: RE repeats the noise samples TM put in, as sequential
    application does (the pipeline moves the fill with the plan)."""
    x = batch()
    temporal = [{"name": "TM", "alpha": 1.0, "streams": "audio"}, {"name": "RE", "alpha": 1.0, "streams": "audio"}]
    tr = transform(temporal=temporal, audio=AudioAugConfig(pitch_p=0.0))
    params = tr.sample(x, torch.Generator().manual_seed(7))
    out = tr.apply(x, params, keep_wave=True)["wave"].flatten(0, 1)
    plan = tr.temporal_plans(params, 8, 4000)["audio"]
    wave = x["audio"].reshape(6, -1)
    noise = torch.randn(6, 4000, generator=torch.Generator().manual_seed(params.noise_seed))  # the first fill drawn
    expected = apply_plan(wave, plan, fill=noise * wave.square().mean(1, keepdim=True).sqrt())
    torch.testing.assert_close(out, expected)
    held = (plan.fill_gain[:, 1:] > 0) & (plan.fill_src[:, 1:] == plan.fill_src[:, :-1])
    assert held.any() and torch.equal(out[:, 1:][held], out[:, :-1][held])


def test_video_mask_noise_is_held_by_a_following_resample():
    x = batch()
    temporal = [{"name": "TM", "alpha": 1.0, "streams": "video"}, {"name": "RE", "alpha": 1.0, "streams": "video"}]
    tr = transform(temporal=temporal)
    params = tr.sample(x, torch.Generator().manual_seed(8))
    video = tr.apply(x, params)["video"].flatten(0, 1).transpose(1, 2)  # [M, T, 3, h, w]
    plan = tr.temporal_plans(params, 8, 4000)["video"]
    same = (plan.src[:, 1:] == plan.src[:, :-1]) & (plan.fill_src[:, 1:] == plan.fill_src[:, :-1])
    held_noise = same & (plan.fill_gain[:, 1:] > 0)
    assert held_noise.any()
    torch.testing.assert_close(video[:, 1:][same], video[:, :-1][same])


def test_views_of_a_padded_batch_never_read_the_padding():
    """Two videos of different widths in one batch (the narrower zero-padded): the crops at its
    right edge, up-scaled (an eval crop larger than the frame, and training crops), stay inside."""
    video = torch.zeros(2, 1, 2, 12, 30, 3, dtype=torch.uint8)
    video[0, ..., :12, :20, :] = 200  # valid 12 x 20
    video[1] = 200  # valid 12 x 30
    x = {"video": video, "audio": torch.zeros(2, 1, 4000), "extent": torch.tensor([[12, 20], [12, 30]])}
    no_colour = {"color": ColorConfig(jitter_p=0.0, grayscale_p=0.0, blur_p=0.0), "temporal": [], "audio": AudioAugConfig(pitch_p=0.0)}
    tr = AVTransform(
        8000, AugmentConfig(crop_size=16, eval_crop_size=24, **no_colour), SpectrogramConfig(n_fft=256, hop_length=64, n_mels=32)
    )
    inside = (200 / 255 - tr.cfg.mean[0]) / tr.cfg.std[0]
    eval_views = tr.eval_views(x, positions=(0.0, 1.0))["video"]
    torch.testing.assert_close(eval_views, torch.full_like(eval_views, inside))
    for seed in range(20):
        train = tr.train_views(x, torch.Generator().manual_seed(seed))["video"]
        torch.testing.assert_close(train, torch.full_like(train, inside))

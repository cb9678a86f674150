import pytest
import torch

from avssl.augment.audio import SpectrogramConfig
from avssl.augment.pipeline import AugmentConfig, AVTransform
from avssl.augment.temporal import TemporalAug


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


def test_train_views_resample_equals_reference_order():
    """RE applied to frames before the crop equals cropping first and resampling the crop after."""
    x = batch()
    from avssl.augment.audio import AudioAugConfig

    no_pitch = AudioAugConfig(pitch_p=0.0)
    tr = transform(temporal=[{"name": "RE", "alpha": 0.75, "streams": "both"}], audio=no_pitch)
    out = tr.train_views(x, torch.Generator().manual_seed(5))
    no_temporal = transform(temporal=[], audio=no_pitch)
    g = torch.Generator().manual_seed(5)
    base = no_temporal.train_views(x, g)  # same crops: the crop and flip are drawn first
    g = torch.Generator().manual_seed(5)
    m = 6
    from avssl.augment.video import sample_flip, sample_resized_crop

    sample_resized_crop(m, 20, 24, (0.3, 1.0), (3 / 4, 4 / 3), g, torch.device("cpu"))
    sample_flip(m, 0.5, g, torch.device("cpu"))
    tr.cfg.color.sample(m, g, torch.device("cpu"))
    tr.audio_aug.sample(m, g, torch.Generator(), torch.device("cpu"))
    aug = tr.cfg.temporal[0]
    s_audio, s_video = aug.sample_strength(m, g, torch.device("cpu")), aug.sample_strength(m, g, torch.device("cpu"))
    video_ref = aug.apply(base["video"].flatten(0, 1), s_video, dim=2).view_as(out["video"])
    torch.testing.assert_close(out["video"], video_ref)
    wave_ref = aug.apply(x["audio"].reshape(m, -1), s_audio, dim=1)
    torch.testing.assert_close(out["spec"].flatten(0, 1), tr.logmel(wave_ref))

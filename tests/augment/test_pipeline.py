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

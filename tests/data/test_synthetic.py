import csv
import hashlib

import av
import numpy as np
import pytest

from avssl.data.decode import probe
from avssl.data.layouts.synthetic import MOTIONS, SyntheticSpec, class_pattern
from avssl.errors import ConfigError
from avssl.prepare.synthetic import FAMILIES, _motion_coordinates, _sample_texture, _texture_waves, generate
from tests.conftest import TINY


def test_files_decode_with_the_right_duration_rate_and_labels(tiny_root):
    rows = list(csv.DictReader(open(tiny_root / "manifest.csv")))
    assert len(rows) == TINY.num_classes * TINY.videos_per_class
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    labels = sorted({int(r["label"]) for r in rows})
    assert labels == list(range(TINY.num_classes))
    for row in rows[:: TINY.videos_per_class]:  # one video per class
        assert row["path"].startswith(f"videos/{int(row['label']):02d}_")
        info = probe(str(tiny_root / row["path"]))
        assert info.duration == pytest.approx(TINY.duration, abs=0.05)
        assert (info.width, info.height) == (TINY.size, TINY.size)
        assert info.audio_rate == TINY.sample_rate
        with av.open(str(tiny_root / row["path"])) as c:
            assert c.streams.video[0].codec_context.name == "h264"
            assert c.streams.audio[0].codec_context.name == "aac"
            frames = sum(1 for _ in c.decode(video=0))
        assert frames == round(TINY.duration * TINY.fps)


def test_generation_is_deterministic_and_cached(tmp_path):
    spec = SyntheticSpec(num_classes=2, videos_per_class=3, duration=1.0, size=32, seed=3)
    a, b = generate(tmp_path / "a", spec, progress=False), generate(tmp_path / "b", spec, progress=False)

    def digest(root):
        return [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((root / "videos").glob("*.mp4"))]

    assert digest(a.parent) == digest(b.parent)
    mtime = (a.parent / "videos" / "00_0000.mp4").stat().st_mtime_ns
    generate(tmp_path / "a", spec, progress=False)  # reused, not rewritten
    assert (a.parent / "videos" / "00_0000.mp4").stat().st_mtime_ns == mtime
    with pytest.raises(ValueError, match="built with"):
        generate(tmp_path / "a", SyntheticSpec(num_classes=3, videos_per_class=3, duration=1.0, size=32, seed=3), progress=False)


def test_classes_have_distinct_patterns():
    pairs = {class_pattern(k) for k in range(64)}
    assert len(pairs) == 64


def test_nuisances_change_within_a_video(tiny_root):
    """Colours are redrawn every segment: the first and last second of a video differ in mean colour."""
    path = str(tiny_root / "videos" / "00_0000.mp4")
    with av.open(path) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(float)
    per_segment = [frames[i : i + 12].mean(axis=(0, 1, 2)) for i in range(0, len(frames) - 12, 13)]
    spread = np.ptp(np.stack(per_segment), axis=0).max()
    assert spread > 20


@pytest.mark.parametrize("motion", MOTIONS)
def test_every_class_looks_the_same_mirrored(motion):
    """A horizontally flipped clip of a class is a clip of the same class: its mirror image is the
    class's motion with mirrored nuisances (direction, centre, texture), so a flip augmentation
    keeps the class."""
    rng = np.random.default_rng(0)
    waves = _texture_waves(rng)
    nuisance = {"speed": 0.4, "centre": np.array([0.3, 0.6]), "sign": 1.0, "diagonal": (1.0, -1.0)}
    mirrored = {**nuisance, "centre": np.array([0.7, 0.6]), "sign": -1.0 if motion != "drift_vertical" else 1.0, "diagonal": (-1.0, -1.0)}
    (kx_ky, phase, amp) = waves
    mirror_waves = (kx_ky * np.array([-1.0, 1.0]), phase + kx_ky[:, 0], amp)  # texture(1 - u, v)
    v, u = (np.mgrid[0:16, 0:16] + 0.5) / 16
    t = np.linspace(-0.25, 0.25, 5)[:, None, None]
    clip = _sample_texture(waves, *_motion_coordinates(motion, u[None], v[None], t, nuisance))
    mirror = _sample_texture(mirror_waves, *_motion_coordinates(motion, u[None], v[None], t, mirrored))
    np.testing.assert_allclose(clip[..., ::-1], mirror, atol=1e-9)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_texture_family_is_its_own_mirror_image(family):
    """A flip maps a wave vector (kx, ky) to (-kx, ky): drawn many times, a family's orientations
    (mod 180 degrees) and frequencies are distributed the same before and after, so a flipped
    texture is one the family draws as often."""
    rng = np.random.default_rng(1)
    k = np.concatenate([_texture_waves(rng, family)[0] for _ in range(3000)])
    orientation = np.degrees(np.arctan2(k[:, 1], k[:, 0])) % 180
    mirrored = np.degrees(np.arctan2(k[:, 1], -k[:, 0])) % 180
    bins = np.linspace(0, 180, 13)
    a, b = np.histogram(orientation, bins)[0] / len(k), np.histogram(mirrored, bins)[0] / len(k)
    assert np.abs(a - b).max() < 0.02, (family, a.round(3), b.round(3))


def test_texture_families_differ_in_orientation_or_scale():
    """Each family's orientation histogram (mod 180 degrees, 12 bins) or frequency range differs
    from every other's: the class is visible in one frame."""
    rng = np.random.default_rng(2)
    stats = {}
    for family in FAMILIES:
        k = np.concatenate([_texture_waves(rng, family)[0] for _ in range(500)])
        hist = np.histogram(np.degrees(np.arctan2(k[:, 1], k[:, 0])) % 180, np.linspace(0, 180, 13))[0] / len(k)
        stats[family] = (hist, np.median(np.hypot(k[:, 0], k[:, 1])))
    for i, a in enumerate(FAMILIES):
        for b in FAMILIES[i + 1 :]:
            (ha, fa), (hb, fb) = stats[a], stats[b]
            assert np.abs(ha - hb).sum() > 0.3 or abs(fa - fb) > 0.5 or {a, b} == {"sparse", "dense"}, (a, b)


def test_the_files_are_the_same_whatever_the_number_of_writers(tmp_path):
    spec = SyntheticSpec(num_classes=2, videos_per_class=3, duration=1.0, size=32, seed=3)
    digests = []
    for workers in (1, 3):
        root = tmp_path / f"w{workers}"
        generate(root, spec, progress=False, workers=workers)
        digests.append(
            {p.relative_to(root).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}
        )
    assert digests[0] == digests[1] and len(digests[0]) == 6 + 2  # the videos, the manifest and the parameters


def test_the_embedded_set_read_as_a_store_gives_the_clips_of_its_files(tmp_path):
    """data.synthetic_format: shards writes the set's files once into a store beside them (at the
    clips' short side and rate) and reads that: the same videos, labels, splits and clip starts,
    the frames after one JPEG round trip."""
    import numpy as np

    from avssl import AugmentConfig, AVDataModule
    from avssl.data.batch import collate, decoded_on_device

    spec = SyntheticSpec(num_classes=2, videos_per_class=4, duration=2.0, size=32, seed=5)
    settings = dict(synthetic=spec, synthetic_root=str(tmp_path / "set"), batch_size=2, num_workers=0, short_side=32, sample_rate=16000)
    files = AVDataModule(**settings, augment=AugmentConfig(crop_size=32))
    store = AVDataModule(**settings, synthetic_format="shards", decode_on="device", augment=AugmentConfig(crop_size=32))
    files.prepare_data()
    store.prepare_data()
    assert store.layout == "store" and store.data_root == tmp_path / "set-store-32px-16000hz" and store.num_classes == 2
    a, b = files.dataset("train", train=True), store.dataset("train", train=True)
    assert [(r.video_id, r.label) for r in a.records] == [(r.video_id, r.label) for r in b.records]
    x, y = collate([a[(1, i)] for i in range(len(a))]), decoded_on_device(collate([b[(1, i)] for i in range(len(b))]))
    assert np.array_equal(x["start"].numpy(), y["start"].numpy())
    # the same audio (the store's is the prepared timeline's int16; a window decoded from the AAC
    # file after a seek differs at its first samples)
    assert np.corrcoef(x["audio"].numpy().ravel(), y["audio"].numpy().ravel())[0, 1] > 0.99
    assert (x["video"].float() - y["video"].float()).abs().mean() < 3  # JPEG quality 90 of the decoded frames
    with pytest.raises(ConfigError, match="data.synthetic_format must be one of mp4, shards"):
        AVDataModule(**settings, synthetic_format="zip", augment=AugmentConfig(crop_size=32))

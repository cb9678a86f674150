import numpy as np
import pytest

from avssl.data.sampling import sample_gap, sample_train_starts, uniform_starts


def test_cvrl_gap_histogram_decreases_linearly():
    rng = np.random.default_rng(0)
    span = 10.0
    gaps = np.array([sample_gap(rng, span, 1.0) for _ in range(40000)])
    hist, _ = np.histogram(gaps, bins=10, range=(0, span), density=True)
    assert np.all(np.diff(hist) < 0)
    # density 2/D * (1 - t/D) at the bin centres
    centres = np.arange(10) + 0.5
    np.testing.assert_allclose(hist, 2 / span * (1 - centres / span), atol=0.012)


def test_gap_power_and_uniform():
    rng = np.random.default_rng(1)
    mean_p1 = np.mean([sample_gap(rng, 1.0, 1.0) for _ in range(20000)])
    mean_p2 = np.mean([sample_gap(rng, 1.0, 2.0) for _ in range(20000)])
    mean_u = np.mean([sample_gap(rng, 1.0, None) for _ in range(20000)])
    assert mean_p1 == pytest.approx(1 / 3, abs=0.01)  # E[t] for density 2(1 - t)
    assert mean_p2 == pytest.approx(3 / 8, abs=0.01)  # density 1.5(1 - t^2)
    assert mean_u == pytest.approx(0.5, abs=0.01)
    with pytest.raises(ValueError, match="power"):
        sample_gap(rng, 1.0, 0.0)


def test_train_clips_stay_inside_the_video_and_are_shuffled():
    rng = np.random.default_rng(2)
    firsts = []
    for _ in range(2000):
        starts = sample_train_starts(rng, duration=10.0, clip_seconds=1.28, num_clips=2)
        assert starts.shape == (2,)
        assert np.all(starts >= 0) and np.all(starts + 1.28 <= 10.0 + 1e-9)
        firsts.append(starts[0] < starts[1])
    assert 0.45 < np.mean(firsts) < 0.55  # order shuffled


def test_more_clips_and_short_videos():
    rng = np.random.default_rng(3)
    starts = sample_train_starts(rng, 10.0, 1.28, num_clips=4)
    assert starts.shape == (4,) and np.all((starts >= 0) & (starts <= 10.0 - 1.28))
    np.testing.assert_array_equal(sample_train_starts(rng, 1.0, 1.28, num_clips=2), [0.0, 0.0])


def test_sampling_is_deterministic_per_seed():
    a = sample_train_starts(np.random.default_rng([0, 1, 2]), 10.0, 1.28)
    b = sample_train_starts(np.random.default_rng([0, 1, 2]), 10.0, 1.28)
    c = sample_train_starts(np.random.default_rng([0, 2, 2]), 10.0, 1.28)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_uniform_eval_clips_span_the_video():
    np.testing.assert_allclose(uniform_starts(10.0, 1.28, 10), np.linspace(0, 8.72, 10))
    assert uniform_starts(10.0, 1.28, 1)[0] == pytest.approx(4.36)


def test_min_gap_keeps_positives_apart_and_zero_is_cvrl():
    starts = [sample_train_starts(np.random.default_rng([0, i]), 4.0, 1.28, 2, 1.0, min_gap=1.28) for i in range(500)]
    gaps = np.array([abs(a - b) for a, b in starts])
    assert gaps.min() >= 1.28 - 1e-9 and gaps.max() <= 2.72 + 1e-9 and all(min(s) >= 0 and max(s) <= 2.72 for s in starts)
    for i in range(20):  # min_gap 0 draws exactly what CVRL's sampling draws
        a = sample_train_starts(np.random.default_rng([1, i]), 4.0, 1.28, 2, 1.0)
        b = sample_train_starts(np.random.default_rng([1, i]), 4.0, 1.28, 2, 1.0, min_gap=0.0)
        assert np.array_equal(a, b)
    # a video too short for the gap: as far apart as it allows
    short = sample_train_starts(np.random.default_rng(0), 2.0, 1.28, 2, 1.0, min_gap=1.28)
    assert abs(abs(short[0] - short[1]) - 0.72) < 1e-9

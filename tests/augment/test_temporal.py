"""FD / TM / TS / RE: per-sample references, alpha semantics, composition and alignment."""

import pytest
import torch
from torchaudio.transforms import Fade

from avssl.augment.audio import SpectrogramConfig
from avssl.augment.pipeline import AugmentConfig, AVTransform
from avssl.augment.temporal import FADE_SHAPES, TemporalAug, TimePlan, fade_envelope, mask_segment, shift_indices
from tests.augment.reference import apply_plan, one_clip

CPU = torch.device("cpu")


@pytest.mark.parametrize("shape", range(len(FADE_SHAPES)))
def test_fade_matches_torchaudio_sample_by_sample(shape):
    length = 200
    cases = [(0, 0), (1, 0), (0, 1), (2, 2), (37, 0), (0, 58), (50, 100), (100, 100)]
    wave = torch.randn(len(cases), length)
    n_in = torch.tensor([c[0] for c in cases])
    n_out = torch.tensor([c[1] for c in cases])
    env = fade_envelope(length, n_in, n_out, torch.full((len(cases),), shape))
    for i, (fi, fo) in enumerate(cases):
        ref = Fade(fade_in_len=fi, fade_out_len=fo, fade_shape=FADE_SHAPES[shape])(wave[i : i + 1])
        torch.testing.assert_close(wave[i : i + 1] * env[i], ref, atol=1e-6, rtol=1e-5)


def test_time_shift_is_a_roll_per_sample():
    x = torch.randn(4, 50)
    shifts = torch.tensor([0, 3, -7, 49])
    out = x.gather(1, shift_indices(50, shifts))
    for i, k in enumerate(shifts.tolist()):
        torch.testing.assert_close(out[i], torch.roll(x[i], k))


def test_mask_segment():
    mask = mask_segment(10, torch.tensor([0, 4, 7]), torch.tensor([3, 0, 3]))
    assert mask.int().tolist() == [[1, 1, 1, 0, 0, 0, 0, 0, 0, 0], [0] * 10, [0, 0, 0, 0, 0, 0, 0, 1, 1, 1]]


def plan_for(aug, m=2000, length=100, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = aug.sample_params(m, g, CPU)
    return aug.apply_to_plan(TimePlan.identity(m, length, CPU), params), params


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 1.0])
def test_alpha_bounds_the_affected_fraction(alpha):
    length = 100
    fd, _ = plan_for(TemporalAug("FD", alpha), length=length)
    faded = (fd.gain < 1).sum(1) if fd.gain is not None else torch.zeros(1)
    assert faded.max() <= alpha * length + 2  # two sides of <= alpha/2 each
    tm, _ = plan_for(TemporalAug("TM", alpha), length=length)
    masked = (tm.gain == 0).sum(1)
    assert masked.max() <= round(alpha * length) and (alpha == 0 or masked.float().mean() > 0.35 * alpha * length)
    ts, params = plan_for(TemporalAug("TS", alpha), length=length)
    assert params["shift"].abs().max() <= alpha
    sorted_src = ts.src.sort(1).values
    assert torch.equal(sorted_src, torch.arange(length).expand_as(sorted_src))  # a permutation
    re, _ = plan_for(TemporalAug("RE", alpha), length=8)
    distinct = torch.tensor([len(set(row.tolist())) for row in re.src])
    assert distinct.min() >= round(8 * (1 - alpha)) if alpha < 1 else distinct.min() >= 1


def test_probability_zero_is_identity():
    for name in ("FD", "TM", "TS", "RE"):
        plan, _ = plan_for(TemporalAug(name, 1.0, p=0.0), m=20)
        x = torch.randn(20, 100)
        torch.testing.assert_close(apply_plan(x, plan), x)


def test_mask_fills_with_a_constant_and_keeps_the_rest():
    plan, params = plan_for(TemporalAug("TM", 0.5, mask_fill="constant", mask_value=3.0), m=50)
    x = torch.randn(50, 100)
    out = apply_plan(x, plan, fill=3.0)
    masked = plan.gain == 0
    assert torch.all(out[masked] == 3.0)
    torch.testing.assert_close(out[~masked], x[~masked])


def test_composition_equals_sequential_application():
    """A plan of FD, TS, TM, RE equals applying each op one after the other."""
    m, length = 16, 64
    augs = [
        TemporalAug("FD", 0.8),
        TemporalAug("TS", 0.5),
        TemporalAug("TM", 0.3, mask_fill="constant", mask_value=-2.0),
        TemporalAug("RE", 0.6),
    ]
    g = torch.Generator().manual_seed(1)
    params = [a.sample_params(m, g, CPU) for a in augs]
    x = torch.randn(m, length, 3)
    plan = TimePlan.identity(m, length, CPU)
    sequential = x
    for aug, prm in zip(augs, params):
        plan = aug.apply_to_plan(plan, prm)
        step = aug.apply_to_plan(TimePlan.identity(m, length, CPU), prm)
        sequential = apply_plan(sequential, step, fill=-2.0)
    torch.testing.assert_close(apply_plan(x, plan, fill=-2.0), sequential)


ORDERS = [
    ["TM", "RE"],  # RE after TM holds the noise samples
    ["TM", "TS"],  # TS after TM rolls them
    ["FD", "TM", "TS", "RE"],
    ["TM", "RE", "TM", "TS"],  # two masks: each draws its own noise
    ["RE", "TM", "FD"],
]


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
def test_plan_with_noise_equals_per_clip_sequential_application(order):
    """The composed plan (noise fill included) equals applying each augmentation to each clip in
    turn, the plain way, with the same parameters and the same noise."""
    m, length = 12, 48
    augs = [TemporalAug(name, 0.7, p=0.8) for name in order]
    g = torch.Generator().manual_seed(7)
    params = [a.sample_params(m, g, CPU) for a in augs]
    plan = TimePlan.identity(m, length, CPU)
    for aug, prm in zip(augs, params):
        plan = aug.apply_to_plan(plan, prm)
    x = torch.randn(m, length)
    noise = torch.randn(m, max(plan.fills, 1) * length)  # the fill sequence: one block of L per TM
    batched = apply_plan(x, plan, fill=noise)
    for i in range(m):
        clip, masks = x[i], 0
        for aug, prm in zip(augs, params):
            fill = noise[i, masks * length : (masks + 1) * length] if aug.name == "TM" else 0.0
            clip = one_clip(aug.name, clip, {k: float(v[i]) for k, v in prm.items()}, fill)
            masks += aug.name == "TM"
        torch.testing.assert_close(batched[i], clip, msg=f"clip {i}")


def test_fade_with_probability_fires_each_side_with_that_probability():
    """FD at p = 0.5: one application fades both sides, so each side fades in half of the clips."""
    params = TemporalAug("FD", 1.0, p=0.5).sample_params(20000, torch.Generator().manual_seed(8), CPU)
    fade_in, fade_out = params["fade_in"] > 0, params["fade_out"] > 0
    assert abs(fade_in.float().mean().item() - 0.5) < 0.015 and abs(fade_out.float().mean().item() - 0.5) < 0.015
    assert torch.equal(fade_in, fade_out)  # both sides of one application
    assert params["fade_in"].max() <= 0.5 and params["fade_out"].max() <= 0.5


def transform(aligned, temporal):
    return AVTransform(
        8000, AugmentConfig(crop_size=16, temporal=temporal, aligned=aligned), SpectrogramConfig(n_fft=256, hop_length=64, n_mels=16)
    )


def plans(tr, m, frames, samples, seed):
    """The temporal plans of ``m`` clips (one video each) drawn from ``seed``."""
    batch = {"video": torch.zeros(m, 1, frames, 4, 4, 3, dtype=torch.uint8), "audio": torch.zeros(m, 1, samples)}
    return tr.temporal_plans(tr.sample(batch, torch.Generator().manual_seed(seed)), frames, samples)


def test_aligned_streams_share_the_parameters_themselves():
    tr = transform(True, [{"name": n, "alpha": 0.5} for n in ("FD", "TM", "TS", "RE")])
    params = tr.sample(
        {"video": torch.zeros(3, 2, 8, 4, 4, 3, dtype=torch.uint8), "audio": torch.zeros(3, 2, 80)}, torch.Generator().manual_seed(1)
    )
    assert all(p["audio"] is p["video"] for p in params.temporal)
    free = transform(False, [{"name": "TS", "alpha": 0.5}])
    params = free.sample(
        {"video": torch.zeros(3, 2, 8, 4, 4, 3, dtype=torch.uint8), "audio": torch.zeros(3, 2, 80)}, torch.Generator().manual_seed(1)
    )
    assert not torch.equal(params.temporal[0]["audio"]["shift"], params.temporal[0]["video"]["shift"])


@pytest.mark.parametrize("name", ["TS", "TM", "FD"])
def test_alignment_shares_strength_and_location(name):
    frames, samples, m = 80, 8000, 200  # 80 steps: rounding to frames stays small
    aligned = plans(transform(True, [{"name": name, "alpha": 1.0}]), m, frames, samples, seed=2)
    unaligned = plans(transform(False, [{"name": name, "alpha": 1.0}]), m, frames, samples, seed=2)

    def relative(plans, stream):
        plan = plans[stream]
        length = plan.src.shape[1]
        if name == "TS":  # relative shift of step 0
            return ((-plan.src[:, 0]) % length).float() / length  # compared circularly below
        if name == "TM":  # relative mask centre
            masked = (plan.gain == 0).float()
            centre = (masked * torch.arange(length)).sum(1) / masked.sum(1).clamp(min=1)
            return torch.where(masked.sum(1) > 0, centre / length, 0.0)
        return (1 - plan.gain).mean(1)  # FD: area of the fades, relative

    a_aligned, v_aligned = relative(aligned, "audio"), relative(aligned, "video")
    a_free, v_free = relative(unaligned, "audio"), relative(unaligned, "video")

    def gap(a, v):
        d = (a - v).abs()
        return torch.minimum(d, 1 - d).mean() if name == "TS" else d.mean()

    aligned_gap, free_gap = gap(a_aligned, v_aligned), gap(a_free, v_free)
    assert aligned_gap < 1.0 / frames  # equal up to rounding to the video's steps
    assert free_gap > 2.5 * aligned_gap


def test_resample_alignment_shares_only_the_strength():
    streams = plans(transform(True, [{"name": "RE", "alpha": 1.0}]), 100, 8, 800, seed=3)
    kept_video = torch.tensor([len(set(r.tolist())) for r in streams["video"].src]) / 8
    kept_audio = torch.tensor([len(set(r.tolist())) for r in streams["audio"].src]) / 800
    assert (kept_video - kept_audio).abs().max() <= 1 / 8 + 1e-6


def test_two_views_get_different_parameters_and_seeds_reproduce():
    tr = transform(False, [{"name": "TS", "alpha": 1.0}])
    a = plans(tr, 4, 8, 100, seed=4)["audio"].src
    b = plans(tr, 4, 8, 100, seed=4)["audio"].src
    assert torch.equal(a, b)
    assert len({tuple(row.tolist()) for row in a}) > 1  # clips (views) draw their own parameters


def test_bad_configuration_names_the_field():
    with pytest.raises(ValueError, match="mask_fill"):
        TemporalAug("TM", mask_fill="zeros")
    with pytest.raises(ValueError, match="one mask_fill"):
        AugmentConfig(temporal=[{"name": "TM", "mask_fill": "noise"}, {"name": "TM", "mask_fill": "constant"}])


def test_train_views_apply_all_four_and_fill_video_frames():
    g = torch.Generator().manual_seed(0)
    x = {
        "video": torch.randint(0, 256, (4, 2, 8, 20, 20, 3), dtype=torch.uint8, generator=g),
        "audio": torch.randn(4, 2, 4000, generator=g),
    }
    every = [{"name": n, "alpha": 0.75} for n in ("FD", "TM", "TS", "RE")]
    out = transform(True, every).train_views(x, torch.Generator().manual_seed(1))
    assert out["video"].shape == (4, 2, 3, 8, 16, 16) and torch.isfinite(out["video"]).all() and torch.isfinite(out["spec"]).all()
    # TM with a constant on video: masked frames become exactly that intensity, normalised
    cfg = [{"name": "TM", "alpha": 1.0, "streams": "video", "mask_fill": "constant", "mask_value": 0.0}]
    tr = transform(False, cfg)
    out = tr.train_views(x, torch.Generator().manual_seed(2))
    black = torch.tensor([-m / s for m, s in zip(tr.cfg.mean, tr.cfg.std)]).view(3, 1, 1)
    frames = out["video"].flatten(0, 1).transpose(1, 2).flatten(0, 1)  # [M * T, 3, h, w]
    is_black = torch.isclose(frames, black.expand_as(frames[0]), atol=1e-5).flatten(1).all(1)
    assert 0 < is_black.sum() < len(is_black)

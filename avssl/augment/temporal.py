"""Temporal augmentations of the paper (section 3.3.1) on audio waveforms and video frames.

Each augmentation has an intensity ``alpha`` in [0, 1], the largest fraction of the clip's time
axis it may affect; one application's strength is drawn per clip uniformly in ``[0, alpha]``
and the augmentation is applied with probability ``p`` (strength 0 otherwise).

* **FD** fade in/out: a fade at the start and one at the end, each side's length drawn
  independently in ``[0, alpha / 2 * L]``; the curve is drawn uniformly from torchaudio's five
  ``Fade`` shapes (linear, logarithmic, exponential, quarter-sine, half-sine; same formulas).
* **TM** time masking: one segment of length ``<= alpha * L`` at a uniform position, filled with
  Gaussian noise or a constant.
* **TS** time shift: roll forward or backward by up to ``alpha * L`` samples/frames, with
  roll-over.
* **RE** resample: down-sample time by ``1 - s`` and nearest up-sample back.

Parameters are drawn in *relative* time (fractions of the clip), so one draw can serve both
streams: with alignment, FD / TM / TS share strength and location between the audio and the
video of a clip and RE shares its strength (RE has no location).

Every augmentation acts on a :class:`TimePlan`, the composed effect on one stream,
``out[t] = gain[t] * x[src[t]] + fill_gain[t] * fill[fill_src[t]]``: RE and TS change the index
maps, FD multiplies the gains, TM zeroes the gain on its segment and lets the fill through. The
fill has its own index map, so an index map that follows a TM moves the fill as sequential
application would (RE after TM holds the noise samples, TS rolls them). A whole list of
augmentations is thus applied to a stream once, whatever its length, and equals applying them one
after the other (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from avssl.augment.functional import compose_indices, resample_indices
from avssl.errors import ConfigError

PLACEMENTS = ("audio", "video", "both")  # which streams a temporal augmentation applies to
NAMES = ("FD", "TM", "TS", "RE")
FADE_SHAPES = ("linear", "logarithmic", "exponential", "quarter_sine", "half_sine")
MASK_FILLS = ("noise", "constant")


# --------------------------------------------------------------------------- time plans
@dataclass
class TimePlan:
    """The composed effect of temporal augmentations on a stream of ``length`` steps per clip.

    ``out[t] = gain[t] * x[src[t]] + fill_gain[t] * fill[fill_src[t]]``; ``gain`` /
    ``fill_gain`` stay ``None`` while they are all ones / all zeros, so index-only plans cost one
    gather. The fill (TM's noise or constant) is a sequence of ``fills * length`` steps: the
    ``k``-th TM of a list draws its fill in steps ``[k * length, (k + 1) * length)`` of it, at the
    positions the clip has when that TM runs, and later index maps move it like the content.
    """

    src: torch.Tensor  # long [M, L]
    gain: torch.Tensor | None = None  # float [M, L]
    fill_gain: torch.Tensor | None = None  # float [M, L]
    fill_src: torch.Tensor | None = None  # long [M, L], index into the fill sequence
    fills: int = 0  # TMs composed so far (the fill sequence holds fills * L steps)

    @classmethod
    def identity(cls, m: int, length: int, device: torch.device) -> TimePlan:
        return cls(torch.arange(length, device=device).expand(m, length))

    @property
    def length(self) -> int:
        return self.src.shape[1]

    def then_index(self, index: torch.Tensor) -> TimePlan:
        """Follow with a time map: the next output step ``t`` reads this plan's step ``index[t]``."""
        gather = lambda x: None if x is None else x.gather(1, index)  # noqa: E731
        return TimePlan(compose_indices(self.src, index), gather(self.gain), gather(self.fill_gain), gather(self.fill_src), self.fills)

    def then_scale(self, envelope: torch.Tensor) -> TimePlan:
        """Follow with a per-step gain (a fade scales the content and any fill alike)."""
        gain = envelope if self.gain is None else self.gain * envelope
        fill = None if self.fill_gain is None else self.fill_gain * envelope
        return TimePlan(self.src, gain, fill, self.fill_src, self.fills)

    def then_mask(self, mask: torch.Tensor) -> TimePlan:
        """Follow with a mask: masked steps show only a fill drawn fresh for this mask."""
        gain = torch.where(mask, 0.0, 1.0 if self.gain is None else self.gain)
        fill_gain = torch.where(mask, 1.0, 0.0 if self.fill_gain is None else self.fill_gain)
        fresh = torch.arange(self.length, device=mask.device) + self.fills * self.length  # this mask's own fill steps
        fill_src = torch.where(mask, fresh, fresh if self.fill_src is None else self.fill_src)
        return TimePlan(self.src, gain.float(), fill_gain.float(), fill_src, self.fills + 1)


# --------------------------------------------------------------------------- envelopes / maps
def fade_curve(position: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """torchaudio ``Fade`` fade-in curves at ``position`` in [0, 1], per-sample ``shape`` index
    into :data:`FADE_SHAPES` (broadcast). The fade-out curve at ``q`` is the fade-in at ``1 - q``."""
    p = position
    curves = (
        p,
        torch.log10(0.1 + p) + 1,
        torch.pow(2, p - 1) * p,
        torch.sin(p * math.pi / 2),
        torch.sin(p * math.pi - math.pi / 2) / 2 + 0.5,
    )
    out = curves[0]
    for k in range(1, len(curves)):
        out = torch.where(shape == k, curves[k], out)
    return out.clamp(0, 1)


def fade_envelope(length: int, fade_in: torch.Tensor, fade_out: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """Gain ``[M, length]``: fade-in over the first ``fade_in[m]`` steps, fade-out over the last
    ``fade_out[m]`` steps (as ``torchaudio.transforms.Fade`` with those lengths and shape)."""
    t = torch.arange(length, device=fade_in.device, dtype=torch.float32)[None, :]
    n_in, n_out, shape = fade_in[:, None].float(), fade_out[:, None].float(), shape[:, None]
    p_in = torch.where(n_in > 1, t / (n_in - 1).clamp(min=1), torch.zeros_like(t))
    g_in = torch.where(t < n_in, fade_curve(p_in, shape), torch.ones_like(t))
    start = length - n_out
    q_out = torch.where(n_out > 1, (t - start) / (n_out - 1).clamp(min=1), torch.zeros_like(t))
    g_out = torch.where(t >= start, fade_curve(1 - q_out, shape), torch.ones_like(t))
    return g_in * g_out


def shift_indices(length: int, shift: torch.Tensor) -> torch.Tensor:
    """TS: roll by ``shift[m]`` steps with roll-over (``torch.roll`` semantics: ``out[t] = x[t - k]``)."""
    t = torch.arange(length, device=shift.device)[None, :]
    return torch.remainder(t - shift[:, None].long(), length)


def mask_segment(length: int, start: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """TM: bool ``[M, length]``, true on ``[start, start + size)``."""
    t = torch.arange(length, device=start.device)[None, :]
    return (t >= start[:, None]) & (t < (start + size)[:, None])


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class TemporalAug:
    """One entry of the ordered temporal-augmentation list (YAML ``{name, alpha, p, streams}``).

    Args:
        name: ``FD``, ``TM``, ``TS`` or ``RE``.
        alpha: maximum intensity in [0, 1] (fraction of the clip's time axis).
        p: probability of applying it to a clip.
        streams: ``audio``, ``video`` or ``both``.
        mask_fill: TM only: ``noise`` (Gaussian; audio: the clip's RMS as std; video: mean 0.5,
            std 0.25 in [0, 1] intensity) or ``constant``.
        mask_value: TM only: the constant (audio amplitude, or video intensity in [0, 1]).
    """

    name: str = "RE"
    alpha: float = 0.75
    p: float = 1.0
    streams: str = "both"
    mask_fill: str = "noise"
    mask_value: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in NAMES:
            raise ConfigError(f"data.augment.temporal: name must be one of {list(NAMES)}, got {self.name!r}")
        for field in ("alpha", "p"):
            value = getattr(self, field)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"data.augment.temporal: {self.name} {field} must be in [0, 1], got {value}")
        if self.streams not in PLACEMENTS:
            raise ConfigError(f"data.augment.temporal: {self.name} streams must be one of {PLACEMENTS}, got {self.streams!r}")
        if self.mask_fill not in MASK_FILLS:
            raise ConfigError(f"data.augment.temporal: {self.name} mask_fill must be one of {MASK_FILLS}, got {self.mask_fill!r}")

    def applies_to(self, stream: str) -> bool:
        return self.streams in (stream, "both")

    # ------------------------------------------------------------------ parameters
    def sample_strength(self, m: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """Per-clip strengths ``[M]``: ``U(0, alpha)`` with probability ``p``, else 0."""
        u = torch.rand(m, generator=generator, device=device)
        apply = torch.rand(m, generator=generator, device=device) < self.p
        return torch.where(apply, u * self.alpha, torch.zeros_like(u))

    def sample_params(self, m: int, generator: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
        """Relative-time parameters of ``m`` clips (fractions of the clip length)."""
        rand = lambda: torch.rand(m, generator=generator, device=device)  # noqa: E731
        if self.name == "FD":  # one application (probability p) fades both sides, each in [0, alpha / 2]
            applied = rand() < self.p
            fade_in, fade_out = rand() * self.alpha / 2, rand() * self.alpha / 2
            shape = torch.randint(len(FADE_SHAPES), (m,), generator=generator, device=device)
            return {"fade_in": torch.where(applied, fade_in, 0.0), "fade_out": torch.where(applied, fade_out, 0.0), "shape": shape}
        strength = self.sample_strength(m, generator, device)
        if self.name == "TM":
            return {"size": strength, "start": rand() * (1 - strength)}
        if self.name == "TS":
            sign = torch.where(rand() < 0.5, -1.0, 1.0)
            return {"shift": sign * strength}
        return {"strength": strength}  # RE

    def apply_to_plan(self, plan: TimePlan, params: dict[str, torch.Tensor]) -> TimePlan:
        """Follow ``plan`` with this augmentation at ``params`` (relative units)."""
        length = plan.src.shape[1]
        if self.name == "RE":
            return plan.then_index(resample_indices(length, params["strength"]))
        if self.name == "TS":
            return plan.then_index(shift_indices(length, torch.round(params["shift"] * length)))
        if self.name == "FD":
            n_in, n_out = torch.round(params["fade_in"] * length), torch.round(params["fade_out"] * length)
            return plan.then_scale(fade_envelope(length, n_in, n_out, params["shape"]))
        size = torch.round(params["size"] * length)
        start = torch.round(params["start"] * length).clamp(max=length - size)
        return plan.then_mask(mask_segment(length, start, size))

    def fill(self, shape: tuple[int, ...], pick, generator: torch.Generator, device: torch.device, *, mean=0.0, std=1.0):
        """TM's fill of a stream: ``mask_value`` (``constant``), or Gaussian noise of ``mean`` /
        ``std`` (a float or a tensor broadcast over ``shape``) drawn as ``shape`` (``plan.fills``
        fill tracks of the clip's length) and moved to the output time axis by ``pick`` (the
        plan's fill index map)."""
        if self.mask_fill == "constant":
            return self.mask_value
        noise = torch.randn(shape, generator=generator, device=device).mul_(std)
        return pick(noise.add_(mean) if mean else noise)

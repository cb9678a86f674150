"""Per-clip reference implementations that the batched augmentation code is checked against."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from avssl.augment.functional import resample_indices
from avssl.augment.temporal import FADE_SHAPES, TimePlan


def gather_time(x: torch.Tensor, index: torch.Tensor, dim: int) -> torch.Tensor:
    """``out[m, ..., j, ...] = x[m, ..., index[m, j], ...]`` along time dimension ``dim``."""
    shape = [1] * x.dim()
    shape[0], shape[dim] = index.shape[0], index.shape[1]
    expanded = index.view(shape).expand(*[index.shape[1] if i == dim else size for i, size in enumerate(x.shape)])
    return torch.gather(x, dim, expanded)


def resample(x: torch.Tensor, strength: torch.Tensor, dim: int) -> torch.Tensor:
    """RE at explicit strengths along ``dim``."""
    return gather_time(x, resample_indices(x.shape[dim], strength), dim)


def apply_plan(x: torch.Tensor, plan: TimePlan, fill: torch.Tensor | float = 0.0) -> torch.Tensor:
    """A plan on ``x`` ``[M, L, ...]`` (time on dim 1). ``fill``: a constant, or the fill sequence
    ``[M, plan.fills * L, ...]`` that the plan's ``fill_src`` indexes."""
    out = gather_time(x, plan.src, 1)
    extra = [1] * (x.dim() - 2)
    if plan.gain is not None:
        out = out * plan.gain.view(*plan.gain.shape, *extra)
    if plan.fill_gain is not None:
        if torch.is_tensor(fill):
            fill = gather_time(fill, plan.fill_src, 1)
        out = out + plan.fill_gain.view(*plan.fill_gain.shape, *extra) * fill
    return out


def fade(x: torch.Tensor, fade_in: int, fade_out: int, shape: int) -> torch.Tensor:
    """torchaudio's Fade on one clip ``[L]``."""
    from torchaudio.transforms import Fade

    return Fade(fade_in_len=fade_in, fade_out_len=fade_out, fade_shape=FADE_SHAPES[shape])(x[None])[0]


def one_clip(name: str, x: torch.Tensor, params: dict[str, float], fill: torch.Tensor | float = 0.0) -> torch.Tensor:
    """One temporal augmentation on one clip ``[L]`` at relative parameters, written the plain way
    (sequential application, as a per-sample dataset transform would do it). TM's ``fill`` is a
    constant or a ``[L]`` sequence at the clip's positions."""
    length = x.shape[0]
    if name == "FD":
        return fade(x, round(params["fade_in"] * length), round(params["fade_out"] * length), int(params["shape"]))
    if name == "TS":
        return torch.roll(x, int(round(params["shift"] * length)))
    if name == "RE":
        kept = max(1, round(length * (1 - params["strength"])))
        down = F.interpolate(x[None, None], size=kept, mode="nearest")
        return F.interpolate(down, size=length, mode="nearest")[0, 0]
    size = round(params["size"] * length)
    start = min(round(params["start"] * length), length - size)
    out = x.clone()
    out[start : start + size] = fill[start : start + size] if torch.is_tensor(fill) else fill
    return out

"""Temporal augmentations of the paper (section 3.3.1) on audio waveforms and video frames.

Each augmentation has an intensity ``alpha`` in [0, 1], the largest fraction of the clip's time
axis it may affect; the strength of one application is drawn per clip uniformly in
``[0, alpha]``, and the augmentation is applied with probability ``p`` (strength 0 otherwise).

Implemented here: **RE** (Resample). RE only moves samples in time, so it is an index map
(:func:`avssl.augment.functional.resample_indices`); the registry
:data:`TEMPORAL_AUGMENTATIONS` maps a name to its index-map builder ``(length, strength [M]) ->
[M, length]`` so FD / TM / TS plug in the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from avssl.augment.functional import gather_time, resample_indices

STREAMS = ("audio", "video", "both")


def resample(x: torch.Tensor, strength: torch.Tensor, dim: int) -> torch.Tensor:
    """RE: down-sample the time axis by ``1 - strength`` and nearest up-sample back (per clip)."""
    return gather_time(x, resample_indices(x.shape[dim], strength), dim)


# name -> index-map builder (length, strength [M]) -> source indices [M, length]
TEMPORAL_AUGMENTATIONS: dict[str, Callable[[int, torch.Tensor], torch.Tensor]] = {"RE": resample_indices}


@dataclass(frozen=True)
class TemporalAug:
    """One entry of the ordered temporal-augmentation list (YAML: ``{name, alpha, p, streams}``).

    Args:
        name: one of :data:`TEMPORAL_AUGMENTATIONS` (``RE``).
        alpha: maximum intensity in [0, 1].
        p: probability of applying it to a clip.
        streams: ``audio``, ``video`` or ``both``.
    """

    name: str = "RE"
    alpha: float = 0.75
    p: float = 1.0
    streams: str = "both"

    def __post_init__(self) -> None:
        if self.name not in TEMPORAL_AUGMENTATIONS:
            raise ValueError(f"temporal augmentation name must be one of {sorted(TEMPORAL_AUGMENTATIONS)}, got {self.name!r}")
        for field in ("alpha", "p"):
            value = getattr(self, field)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"temporal augmentation {self.name}: {field} must be in [0, 1], got {value}")
        if self.streams not in STREAMS:
            raise ValueError(f"temporal augmentation {self.name}: streams must be one of {STREAMS}, got {self.streams!r}")

    def sample_strength(self, m: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """Per-clip strengths ``[M]``: ``U(0, alpha)`` with probability ``p``, else 0."""
        u = torch.rand(m, generator=generator, device=device)
        apply = torch.rand(m, generator=generator, device=device) < self.p
        return torch.where(apply, u * self.alpha, torch.zeros_like(u))

    def indices(self, length: int, strength: torch.Tensor) -> torch.Tensor:
        """Source indices ``[M, length]`` of this augmentation at the given strengths."""
        return TEMPORAL_AUGMENTATIONS[self.name](length, strength)

    def apply(self, x: torch.Tensor, strength: torch.Tensor, dim: int) -> torch.Tensor:
        """Apply to ``x`` along time dimension ``dim`` (reference path; the pipeline composes
        :meth:`indices` instead)."""
        return gather_time(x, self.indices(x.shape[dim], strength), dim)

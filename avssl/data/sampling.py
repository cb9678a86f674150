"""Clip sampling: pure functions of a ``numpy.random.Generator``.

Pre-training follows CVRL (Qian et al. 2021): with ``D = duration - clip_seconds``, draw a gap
``t`` in ``[0, D]`` with density proportional to ``1 - (t / D) ** p`` (``p = 1``: linearly
decreasing, CVRL's choice) or uniformly; draw the first start uniformly in ``[0, D - t]``; the
last clip starts ``t`` later. With ``N > 2`` clips the middle ones start uniformly between the
two. The order of the clips is shuffled. ``min_gap`` (0 by default, CVRL's sampling) keeps the
gap at least that long: with ``min_gap = clip_seconds`` two positives never overlap in time, so
they share nothing a video holds only for a moment (beyond the paper; for short videos whose
appearance changes over time, where overlapping positives share a frame-level fingerprint).

Videos shorter than one clip (``D < 0``) give ``N`` clips starting at 0; the decoder repeats the
last frame and pads the audio with silence past the end of the file.
"""

from __future__ import annotations

import numpy as np


def sample_gap(rng: np.random.Generator, span: float, power: float | None = 1.0) -> float:
    """A gap in ``[0, span]`` with density proportional to ``1 - (t / span) ** power``.

    ``power=None`` draws uniformly. Sampling is by rejection (exact; acceptance rate
    ``power / (power + 1)``).
    """
    if span <= 0:
        return 0.0
    if power is None:
        return float(rng.uniform(0.0, span))
    if power <= 0:
        raise ValueError(f"gap power must be > 0, got {power}")
    while True:
        x, u = rng.random(2)
        if u < 1.0 - x**power:
            return float(x * span)


def sample_train_starts(
    rng: np.random.Generator,
    duration: float,
    clip_seconds: float,
    num_clips: int = 2,
    power: float | None = 1.0,
    min_gap: float = 0.0,
) -> np.ndarray:
    """Start times (seconds) of ``num_clips`` positive clips of one video, in shuffled order; the
    first and last start at least ``min_gap`` apart where the video is long enough (else as far
    apart as it allows)."""
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    span = duration - clip_seconds
    if span <= 0:
        return np.zeros(num_clips)
    low = min(max(0.0, min_gap), span)
    gap = low + sample_gap(rng, span - low, power) if num_clips > 1 else 0.0
    first = rng.uniform(0.0, span - gap)
    middle = rng.uniform(first, first + gap, size=max(0, num_clips - 2))
    starts = np.concatenate([[first], middle, [first + gap]])[:num_clips]
    return rng.permutation(starts)


def uniform_starts(duration: float, clip_seconds: float, num_clips: int) -> np.ndarray:
    """``num_clips`` evaluation clips spaced uniformly from the start to the end of the video."""
    span = max(0.0, duration - clip_seconds)
    if num_clips == 1:
        return np.array([span / 2])
    return np.linspace(0.0, span, num_clips)

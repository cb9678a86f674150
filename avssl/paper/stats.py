"""The statistics of a cell against the control over seeds: the paired difference and its 95 %
confidence interval (Student's t)."""

from __future__ import annotations

import math
import statistics

# two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom (then the normal's 1.96)
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
       2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def paired_difference(cell: dict[int, float], control: dict[int, float]) -> tuple[float, float, int] | None:
    """Mean of ``cell - control`` over the seeds both ran, the half-width of its 95 % confidence
    interval (Student's t; ``nan`` with one seed) and the number of seeds."""
    seeds = sorted(set(cell) & set(control))
    if not seeds:
        return None
    diffs = [cell[s] - control[s] for s in seeds]
    if len(diffs) == 1:
        return diffs[0], math.nan, 1
    t = T95[len(diffs) - 2] if len(diffs) - 1 <= len(T95) else 1.96
    return statistics.fmean(diffs), t * statistics.stdev(diffs) / math.sqrt(len(diffs)), len(diffs)

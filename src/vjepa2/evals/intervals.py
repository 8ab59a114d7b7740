"""95% intervals for what a small evaluation reports, so that a few clips, pairs or episodes are
not read as a finding.

- ``wilson``: a rate (a share of n trials). Unlike rate +- 1.96 standard errors it stays inside
  [0, 1] and does not shrink to a point at 0 or 1 (0 of 3 episodes is not "certainly never").
- ``newcombe``: the difference of two rates, from their Wilson intervals (Newcombe 1998, method
  10), as if the two samples were independent. Two models scored on the same clips usually agree
  more than independent samples would, so on shared trials this interval is the wider, cautious
  one; it needs no per-trial outcomes, which the commands do not all keep.
- ``bootstrap``: any other statistic of n independent units (pairs, episodes), percentile
  bootstrap over the units; the same seed and n give the same draws, so statistics computed with
  one seed are resampled alike (``evals.physics.metrics.score_pairs`` relies on it).

A difference is within noise when its interval holds 0 (``holds_zero``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

LEVEL = 95  # percent: every interval here
Z95 = 1.959963984540054  # the standard normal's 97.5th percentile: two-sided 95%


def wilson(rate: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of ``rate`` (in [0, 1]) observed over ``n`` trials; (nan, nan) for
    n = 0. ``rate`` need not be a multiple of 1/n (a mean over weighted trials)."""
    if n <= 0:
        return math.nan, math.nan
    z2n = z * z / n
    centre = (rate + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(rate * (1 - rate) / n + z2n / (4 * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(rate_a: float, n_a: int, rate_b: float, n_b: int) -> tuple[float, float]:
    """Interval of ``rate_a - rate_b`` (rates in [0, 1], independent samples of n_a and n_b)."""
    low_a, high_a = wilson(rate_a, n_a)
    low_b, high_b = wilson(rate_b, n_b)
    diff = rate_a - rate_b
    low = diff - math.sqrt((rate_a - low_a) ** 2 + (high_b - rate_b) ** 2)
    high = diff + math.sqrt((high_a - rate_a) ** 2 + (rate_b - low_b) ** 2)
    return low, high


def bootstrap(
    statistic: Callable[[np.ndarray], float], n: int, resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """2.5th and 97.5th percentiles of ``statistic(indices)`` over ``resamples`` draws of n unit
    indices with replacement; (nan, nan) for fewer than 2 units, where resampling says nothing."""
    if n < 2:
        return math.nan, math.nan
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))  # (resamples, n)
    low, high = np.nanpercentile([statistic(d) for d in draws], [2.5, 97.5])
    return float(low), float(high)


def holds_zero(low: float, high: float) -> bool:
    """Whether a difference's interval holds 0: the difference is within noise."""
    return low <= 0 <= high

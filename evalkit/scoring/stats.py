"""Confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Z95 = 1.959963984540054


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def clustered_interval(values_by_item: Mapping[str, Sequence[float]], z: float = Z95) -> tuple[float, float, float]:
    """Mean over all values and a 95% interval whose standard error is clustered by item.

    With repeats, answers to one item are correlated; treating them as independent would make the
    interval too narrow. Returns (mean, low, high).
    """
    items = [list(v) for v in values_by_item.values() if len(v)]
    n_total = sum(len(v) for v in items)
    if n_total == 0:
        return 0.0, 0.0, 1.0
    mean = sum(sum(v) for v in items) / n_total
    k = len(items)
    if k < 2:
        return mean, 0.0 if mean == 0 else mean, mean
    # Cluster-robust variance of the mean: sum over clusters of (sum of residuals)^2 / N^2, k/(k-1).
    s = sum((sum(v) - len(v) * mean) ** 2 for v in items)
    var = s / (n_total**2) * k / (k - 1)
    half = z * math.sqrt(var)
    return mean, max(0.0, mean - half), min(1.0, mean + half)

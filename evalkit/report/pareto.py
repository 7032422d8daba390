"""The Pareto test itself: which points no other point beats on size and score (no pandas, no plots)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def pareto_mask(xs: Sequence[float], ys: Sequence[float]) -> list[bool]:
    """For each point, whether it is on the frontier (smaller x and larger y are better).

    Sort by x; a point is dominated when a point with strictly smaller x has a score at least as
    high, or a point with the same x has a strictly higher score. O(n log n).
    """
    if len(xs) != len(ys):
        raise ValueError("xs and ys differ in length")
    for v in (*xs, *ys):
        if _missing(v):
            raise ValueError("pareto_mask needs every x and y; separate missing values first")
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    mask = [False] * len(xs)
    best_before = -math.inf  # best score among strictly smaller x
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and xs[order[j]] == xs[order[i]]:
            j += 1
        group = order[i:j]
        top = max(ys[k] for k in group)
        for k in group:
            mask[k] = ys[k] == top and ys[k] > best_before
        best_before = max(best_before, top)
        i = j
    return mask

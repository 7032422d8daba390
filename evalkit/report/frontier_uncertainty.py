"""How sure is a frontier? A bootstrap of which points are Pareto-optimal, and the band of the step line.

A frontier drawn from point estimates claims more than the data allows: on a 30-item AIME set one
question moves a score by 3.3 points. Each bootstrap draw re-scores every point and recomputes the
frontier; ``P(on frontier)`` is the share of draws a point is on it, and the frontier band is the
2.5-97.5% envelope of the drawn step lines (the best score reachable at or below each size).

How a point is redrawn:

- own runs: items are resampled with replacement, then each drawn item's repeats are resampled with
  replacement (a two-stage, item-clustered bootstrap). Runs of one task draw the same items (paired),
  so two runs over one item set are compared on the same draw, as the frontier compares them.
- published scores on a benchmark of known size (:data:`BENCHMARK_SIZES`) are redrawn as
  Binomial(n, p) / n: the spread of one pass over n items. Averages over many samples (AIME avg@64)
  spread less, so this overstates their uncertainty a little.
- published scores without a known size are held fixed, and the result says so.

Everything is seeded: the same inputs and seed give the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.report.pareto import pareto_mask

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# Items in each published benchmark, for the binomial redraw of published scores.
BENCHMARK_SIZES = {
    "aime_2024": 30,
    "aime_2025": 30,
    "aime_2026": 30,
    "math500": 500,
    "math": 5000,
    "mmlu_pro": 12032,
}
DEFAULT_DRAWS = 1000
DEFAULT_SEED = 20260101
BAND = (2.5, 97.5)

# item id -> the item's per-repeat values (1.0 / 0.0 for correct / wrong, or points)
ItemValues = Mapping[str, Sequence[float]]


@dataclass
class FrontierUncertainty:
    """``p_on_frontier`` per point (same order as the input), the band on ``band_x`` (lower and upper
    best-reachable score at or below each size), and notes on what was held fixed."""

    p_on_frontier: list[float]
    band_x: list[float]
    band_low: list[float]
    band_high: list[float]
    draws: int
    seed: int
    notes: list[str] = field(default_factory=list)


def run_item_values(run_dir: str | Path, task: str, points_metric: bool = False) -> dict[str, list[float]]:
    """Per-item results of one task in a run folder: sample id -> the value of each repeat (graded
    answers only; failed requests are not results)."""
    from evalkit.store import RunFolder

    out: dict[str, list[float]] = {}
    for r in sorted(RunFolder(run_dir).records(), key=lambda r: (r.sample_id, r.repeat)):
        score = r.primary
        if r.task != task or not r.ok or score is None:
            continue
        if points_metric and score.grade.points is not None:
            value = float(score.grade.points)
        else:
            value = 1.0 if score.grade.correct else 0.0
        out.setdefault(r.sample_id, []).append(value)
    return out


@dataclass
class _RunMatrix:
    """One run's values over the union of item ids: ``values[u, j]`` is repeat j of item u (NaN past
    the item's ``counts[u]`` repeats; count 0 where the run lacks the item)."""

    values: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, items: ItemValues, ids: Sequence[str]) -> _RunMatrix:
        import numpy as np

        width = max((len(v) for v in items.values()), default=1) or 1
        values = np.full((len(ids), width), np.nan)
        counts = np.zeros(len(ids), dtype=int)
        for u, i in enumerate(ids):
            got = items.get(i) or ()
            values[u, : len(got)] = got
            counts[u] = len(got)
        return cls(values, counts)

    def draw(self, rng: np.random.Generator, picks: np.ndarray) -> float:
        """The run's mean over the drawn items, each item's repeats resampled."""
        import numpy as np

        rows, counts = self.values[picks], self.counts[picks]
        has = counts > 0
        if not has.any():
            return float("nan")
        rows, counts = rows[has], counts[has]
        cols = (rng.random(rows.shape) * counts[:, None]).astype(int)
        drawn = np.take_along_axis(rows, cols, axis=1)
        keep = np.arange(rows.shape[1])[None, :] < counts[:, None]
        return float((np.where(keep, drawn, 0.0).sum(axis=1) / counts).mean())


def _item_draw(
    rng: np.random.Generator, matrices: Sequence[_RunMatrix | None], n_ids: int, scale: Sequence[float]
) -> list[float | None]:
    """One draw of every run's score: item indices shared by all runs (paired), then each run's
    repeats of each drawn item resampled."""
    if not n_ids:
        return [None] * len(matrices)
    picks = rng.integers(0, n_ids, size=n_ids)
    return [None if m is None else s * m.draw(rng, picks) for m, s in zip(matrices, scale, strict=True)]


def _best_at(xs: np.ndarray, ys: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The step line: the best score among points with x at or below each grid value."""
    import numpy as np

    order = np.argsort(xs, kind="stable")
    running = np.maximum.accumulate(ys[order])
    idx = np.searchsorted(xs[order], grid, side="right") - 1
    return np.where(idx >= 0, running[np.clip(idx, 0, None)], np.nan)


def bootstrap_frontier(
    xs: Sequence[float],
    scores: Sequence[float],
    *,
    items: Sequence[ItemValues | None] | None = None,
    n: Sequence[float | None] | None = None,
    scale: float | Sequence[float] = 100.0,
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
) -> FrontierUncertainty:
    """P(on frontier) of each point and the frontier band, over ``draws`` bootstrap draws.

    ``items[i]``: point i's per-item values (an own run), redrawn by the item bootstrap; otherwise
    ``n[i]``, the number of items behind a published percentage, redrawn as Binomial(n, p)/n; a point
    with neither is held fixed. ``scale`` turns item values into the score's unit (100: percent).
    """
    import numpy as np

    k = len(xs)
    items = list(items) if items is not None else [None] * k
    n = list(n) if n is not None else [None] * k
    scales = [float(scale)] * k if isinstance(scale, (int, float)) else [float(s) for s in scale]
    if not (len(scores) == len(items) == len(n) == len(scales) == k):
        raise ValueError("xs, scores, items, n and scale differ in length")
    rng = np.random.default_rng(seed)
    x = np.asarray(xs, dtype=float)
    base = np.asarray(scores, dtype=float)
    grid = np.unique(x)
    ids = sorted({i for it in items if it for i in it})
    matrices = [_RunMatrix.of(it, ids) if it else None for it in items]
    on = np.zeros(k)
    lines = np.empty((draws, len(grid)))
    for b in range(draws):
        y = base.copy()
        for i, v in enumerate(_item_draw(rng, matrices, len(ids), scales)):
            if v is not None:
                y[i] = v
        for i in range(k):
            if items[i] is None and _known(n[i]):
                size = int(n[i])  # type: ignore[arg-type]
                p = min(max(base[i] / scales[i], 0.0), 1.0)
                y[i] = scales[i] * rng.binomial(size, p) / size
        on += pareto_mask(x.tolist(), y.tolist())
        lines[b] = _best_at(x, y, grid)
    fixed = [i for i in range(k) if items[i] is None and not _known(n[i])]
    notes = []
    if fixed:
        notes.append(f"{len(fixed)} point(s) have no known item count and are held fixed in the bootstrap")
    low, high = np.percentile(lines, BAND, axis=0)
    return FrontierUncertainty(
        p_on_frontier=(on / draws).tolist(),
        band_x=grid.tolist(),
        band_low=low.tolist(),
        band_high=high.tolist(),
        draws=draws,
        seed=seed,
        notes=notes,
    )


def _known(v: float | None) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v)) and v > 0


def frontier_uncertainty(
    table: pd.DataFrame, draws: int = DEFAULT_DRAWS, seed: int = DEFAULT_SEED
) -> FrontierUncertainty:
    """The bootstrap for a frontier table (:func:`evalkit.report.frontier.frontier_table`): own runs
    from their run folders' records, published points by their benchmark's size."""
    from evalkit.report.runs import is_points_metric

    items: list[ItemValues | None] = []
    sizes: list[float | None] = []
    scales: list[float] = []
    missing_records = []
    for r in table.to_dict("records"):
        points = is_points_metric(str(r["metric"]))
        scales.append(1.0 if points else 100.0)
        if r["origin"] == "run":
            values = run_item_values(r["run_dir"], str(r["task"]), points) if r["run_dir"] else {}
            if not values:
                missing_records.append(str(r["label"]))
            items.append(values or None)
            sizes.append(None)
        else:
            items.append(None)
            sizes.append(None if points else BENCHMARK_SIZES.get(str(r["benchmark"])))
    result = bootstrap_frontier(
        table["x"].astype(float).tolist(),
        table["score"].astype(float).tolist(),
        items=items,
        n=sizes,
        scale=scales,
        draws=draws,
        seed=seed,
    )
    if missing_records:
        result.notes.append(
            f"no per-item records in the run folder of {', '.join(missing_records)}: held fixed"
        )
    return result

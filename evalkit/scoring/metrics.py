"""Named metrics computed over graded records (errors are excluded before a metric sees them)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from evalkit.scoring.stats import clustered_interval, wilson_interval


@dataclass(frozen=True)
class ScoredRow:
    """The part of a record a metric needs."""

    sample_id: str
    repeat: int
    correct: bool
    points: float | None = None
    status: str = "ok"  # extraction status: ok | no_answer | truncated | abstain
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricResult:
    name: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0  # rows used
    n_items: int = 0  # distinct items
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["extra"] = dict(self.extra)
        return d


Metric = Callable[[Sequence[ScoredRow], Mapping[str, Any]], MetricResult]
METRICS: dict[str, Metric] = {}


def register_metric(name: str) -> Callable[[Metric], Metric]:
    def deco(fn: Metric) -> Metric:
        METRICS[name] = fn
        return fn

    return deco


def get_metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(sorted(METRICS))}") from None


def by_item(rows: Sequence[ScoredRow], value: Callable[[ScoredRow], float]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        out[r.sample_id].append(value(r))
    return out


@register_metric("accuracy")
def accuracy(rows: Sequence[ScoredRow], options: Mapping[str, Any]) -> MetricResult:
    """Strict accuracy (no answer = wrong). 95% Wilson interval with one repeat per item, an
    item-clustered interval when items were answered several times."""
    n = len(rows)
    items = by_item(rows, lambda r: 1.0 if r.correct else 0.0)
    if n == 0:
        return MetricResult("accuracy", 0.0, None, None, 0, 0)
    if n == len(items):
        k = sum(1 for r in rows if r.correct)
        lo, hi = wilson_interval(k, n)
        return MetricResult("accuracy", k / n, lo, hi, n, len(items), {"interval": "wilson"})
    mean, lo, hi = clustered_interval(items)
    return MetricResult("accuracy", mean, lo, hi, n, len(items), {"interval": "clustered_by_item"})

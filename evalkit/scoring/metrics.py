"""Named metrics computed over graded records (errors are excluded before a metric sees them)."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from evalkit.scoring.grade import AMC_POINTS
from evalkit.scoring.registry import Metric, register_metric, register_metric_family
from evalkit.scoring.stats import (
    Z95,
    clustered_interval,
    mean_interval,
    pass_all_k,
    pass_at_k,
    wilson_interval,
)


@dataclass(frozen=True)
class ScoredRow:
    """The part of a record a metric needs."""

    sample_id: str
    repeat: int
    correct: bool
    points: float | None = None
    status: str = "ok"  # extraction status: ok | no_answer | truncated | abstain
    meta: Mapping[str, Any] = field(default_factory=dict)
    answer: str | None = None  # the extracted answer, for majority voting (maj@k)


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


_FAMILY_RE = re.compile(r"(pass|maj|mean)[@^](\d+)")


def by_item(rows: Sequence[ScoredRow], value: Callable[[ScoredRow], float]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        out[r.sample_id].append(value(r))
    return out


def _proportion(name: str, rows: Sequence[ScoredRow], hit: Callable[[ScoredRow], bool]) -> MetricResult:
    """A proportion with a 95% Wilson interval (one answer per item) or an item-clustered interval
    (several answers per item are correlated; treating them as independent is too narrow)."""
    n = len(rows)
    items = by_item(rows, lambda r: 1.0 if hit(r) else 0.0)
    if n == 0:
        return MetricResult(name, 0.0, None, None, 0, 0)
    if n == len(items):
        k = sum(1 for r in rows if hit(r))
        lo, hi = wilson_interval(k, n)
        return MetricResult(name, k / n, lo, hi, n, len(items), {"interval": "wilson"})
    mean, lo, hi = clustered_interval(items)
    return MetricResult(name, mean, lo, hi, n, len(items), {"interval": "clustered_by_item"})


@register_metric("accuracy")
def accuracy(rows: Sequence[ScoredRow], options: Mapping[str, Any]) -> MetricResult:
    """Share of answers graded correct (with the strict graders, no answer = wrong). 95% Wilson
    interval with one repeat per item, an item-clustered interval with repeats."""
    return _proportion("accuracy", rows, lambda r: r.correct)


@register_metric("accuracy_strict")
def accuracy_strict(rows: Sequence[ScoredRow], options: Mapping[str, Any]) -> MetricResult:
    """Correct AND an answer was extracted: strict even under an official-compatible grader that
    credits random guesses for outputs with no answer."""
    return _proportion("accuracy_strict", rows, lambda r: r.correct and r.status == "ok")


@register_metric("accuracy_official_compatible")
def accuracy_official_compatible(rows: Sequence[ScoredRow], options: Mapping[str, Any]) -> MetricResult:
    """Accuracy as an official script computes it, named as such. With the
    ``choice_official_compatible`` grader it includes the official seeded random guess for outputs
    with no answer (MMLU-Pro); ``extra.random_guess_hits`` counts those lucky guesses."""
    res = _proportion("accuracy_official_compatible", rows, lambda r: r.correct)
    hits = sum(1 for r in rows if r.correct and r.status != "ok")
    return MetricResult(
        res.name,
        res.value,
        res.ci_low,
        res.ci_high,
        res.n,
        res.n_items,
        {**res.extra, "random_guess_hits": hits},
    )


def _amc_row_points(r: ScoredRow) -> float:
    if r.points is not None:
        return float(r.points)
    if r.correct:
        return AMC_POINTS["correct"]
    return AMC_POINTS["blank"] if r.status == "abstain" else AMC_POINTS["wrong"]


@register_metric("amc_points")
def amc_points(rows: Sequence[ScoredRow], options: Mapping[str, Any]) -> MetricResult:
    """AMC score out of 150 per contest (25 questions: 6 correct, 1.5 blank, 0 wrong), averaged
    over contests and repeats, with a 95% interval.

    The contest comes from the meta field ``contest_field`` (default ``contest``); rows without it
    form one contest. A contest with fewer than 25 items in the data is scaled to 25 questions
    (its mean points per question x 25), and ``extra.contests`` says so. Points come from the
    grader (``points: amc``) or, when absent, from correctness and an explicit abstention.
    Interval: stratified by contest, items as clusters (their mean over repeats).
    """
    field_name = str(options.get("contest_field", "contest"))
    per_contest = int(options.get("questions_per_contest", 25))
    if not rows:
        return MetricResult("amc_points", 0.0, None, None, 0, 0)
    by_contest: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        contest = str(r.meta.get(field_name) or "all")
        by_contest[contest][r.sample_id].append(_amc_row_points(r))
    n_c = len(by_contest)
    value = 0.0
    var = 0.0
    contests: dict[str, Any] = {}
    for contest, items in sorted(by_contest.items()):
        means = [sum(v) / len(v) for v in items.values()]
        score = per_contest * sum(means) / len(means)
        value += score / n_c
        m = sum(means) / len(means)
        s2 = sum((x - m) ** 2 for x in means) / (len(means) - 1) if len(means) > 1 else 0.0
        var_mean = s2 / len(means)
        if var_mean == 0.0:
            # Every item scored alike (all blank, all right ...): the sample variance says nothing.
            # Use the spread a Wilson interval gives for that share of the 6 points at this many items.
            lo_w, hi_w = wilson_interval(m / AMC_POINTS["correct"] * len(means), len(means))
            var_mean = (AMC_POINTS["correct"] * (hi_w - lo_w) / (2 * Z95)) ** 2
        var += (per_contest / n_c) ** 2 * var_mean
        contests[contest] = {
            "score": score,
            "n_items": len(means),
            "repeats": max(len(v) for v in items.values()),
            "scaled": len(means) != per_contest,
        }
    half = Z95 * math.sqrt(var)
    top = AMC_POINTS["correct"] * per_contest
    n_items = sum(len(items) for items in by_contest.values())
    return MetricResult(
        "amc_points",
        value,
        max(0.0, value - half),
        min(top, value + half),
        len(rows),
        n_items,
        {
            "max": top,
            "contests": contests,
            "contest_field": field_name,
            "interval": "stratified_by_contest_clustered_by_item",
        },
    )


def _by_item_sorted(rows: Sequence[ScoredRow]) -> dict[str, list[ScoredRow]]:
    out: dict[str, list[ScoredRow]] = defaultdict(list)
    for r in rows:
        out[r.sample_id].append(r)
    for v in out.values():
        v.sort(key=lambda r: r.repeat)
    return out


def _k(name: str, options: Mapping[str, Any], rows_by_item: Mapping[str, list[ScoredRow]]) -> int:
    m = _FAMILY_RE.fullmatch(name)
    if m:
        return int(m.group(2))
    if options.get("k") is not None:
        return int(options["k"])
    return max((len(v) for v in rows_by_item.values()), default=1)


def _mean_at(name: str) -> Metric:
    def metric(rows: Sequence[ScoredRow], options: Mapping[str, Any]) -> MetricResult:
        items = _by_item_sorted(rows)
        k = _k(name, options, items)
        vals = {sid: [1.0 if r.correct else 0.0 for r in rs[:k]] for sid, rs in items.items()}
        short = sum(1 for rs in items.values() if len(rs) < k)
        if not vals:
            return MetricResult(name, 0.0, None, None, 0, 0, {"k": k})
        mean, lo, hi = clustered_interval(vals)
        n = sum(len(v) for v in vals.values())
        return MetricResult(
            name,
            mean,
            lo,
            hi,
            n,
            len(vals),
            {"k": k, "items_with_fewer_repeats": short, "interval": "clustered_by_item"},
        )

    metric.__doc__ = "Mean accuracy over the first k repeats of each item (mean@k), item-clustered interval."
    return metric


def _norm_vote(answer: str) -> str:
    return re.sub(r"\\[dt]frac", r"\\frac", re.sub(r"\s+", "", answer.strip().rstrip(".").strip("$")))


def _maj_at(name: str) -> Metric:
    def metric(rows: Sequence[ScoredRow], options: Mapping[str, Any]) -> MetricResult:
        items = _by_item_sorted(rows)
        k = _k(name, options, items)
        have_answers = all(r.answer is not None for r in rows if r.status == "ok")
        hits = 0
        for rs in items.values():
            first = rs[:k]
            if have_answers:
                votes: Counter[str] = Counter()
                order: dict[str, int] = {}
                correct_of: dict[str, bool] = {}
                for i, r in enumerate(first):
                    if r.status != "ok" or r.answer is None:
                        continue
                    a = _norm_vote(r.answer)
                    votes[a] += 1
                    order.setdefault(a, i)
                    correct_of[a] = correct_of.get(a, False) or r.correct
                if votes:
                    best = max(votes, key=lambda a: (votes[a], -order[a]))
                    hits += correct_of[best]
            else:
                hits += sum(r.correct for r in first) * 2 > len(first)
        n_items = len(items)
        if n_items == 0:
            return MetricResult(name, 0.0, None, None, 0, 0, {"k": k})
        lo, hi = wilson_interval(hits, n_items)
        extra: dict[str, Any] = {"k": k, "interval": "wilson_over_items"}
        if not have_answers:
            extra["method"] = "strict majority of correct answers (records carry no answers): a lower bound"
        return MetricResult(name, hits / n_items, lo, hi, len(rows), n_items, extra)

    metric.__doc__ = (
        "Majority vote over the first k answers of each item (maj@k): the most frequent "
        "extracted answer (ties: the earliest) decides; no answer does not vote."
    )
    return metric


def _over_items(
    name: str,
    rows: Sequence[ScoredRow],
    options: Mapping[str, Any],
    per_item: Callable[[int, int, int], float],
    estimator: str,
) -> MetricResult:
    """The mean over items of an unbiased per-item estimate from (n answers, c correct, k), with a
    normal interval over items (items with fewer than k answers use k = n)."""
    items = _by_item_sorted(rows)
    k = _k(name, options, items)
    vals, short = [], 0
    for rs in items.values():
        n, c = len(rs), sum(1 for r in rs if r.correct)
        short += n < k
        vals.append(per_item(n, c, min(k, n)))
    mean, lo, hi = mean_interval(vals)
    return MetricResult(
        name,
        mean,
        None if lo is None else max(0.0, lo),
        None if hi is None else min(1.0, hi),
        len(rows),
        len(items),
        {
            "k": k,
            "estimator": estimator,
            "items_with_fewer_repeats": short,
            "note": "items with n < k use k = n",
            "interval": "normal_over_items",
        },
    )


def _pass_at(name: str) -> Metric:
    def metric(rows: Sequence[ScoredRow], options: Mapping[str, Any]) -> MetricResult:
        return _over_items(name, rows, options, pass_at_k, "unbiased (Chen et al. 2021)")

    metric.__doc__ = "Unbiased pass@k over all repeats of each item (Chen et al. 2021)."
    return metric


def _pass_all(name: str) -> Metric:
    def metric(rows: Sequence[ScoredRow], options: Mapping[str, Any]) -> MetricResult:
        estimator = "unbiased: C(c, k) / C(n, k) per item (tau-bench's pass^k)"
        return _over_items(name, rows, options, pass_all_k, estimator)

    metric.__doc__ = "Unbiased pass^k: the chance that k answers drawn from an item's n are all correct."
    return metric


# k = the number of repeats (or the metric option k).
for _family, _make in (("pass", _pass_at), ("maj", _maj_at), ("mean", _mean_at)):
    register_metric_family(_family)(_make)
    register_metric(f"{_family}@k")(_make(f"{_family}@k"))
register_metric_family("pass^")(_pass_all)
register_metric("pass^k")(_pass_all("pass^k"))

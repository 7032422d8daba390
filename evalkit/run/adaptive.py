"""`evalkit run --target-ci W`: add repeats until the item-clustered 95% interval is narrower than W
points, or a cap is reached.

Each round is an ordinary `run_evaluation` of the same folder (its identity leaves repeats out), so
everything answered is resumed and only the new repeats are sent. After a first uniform round,
each round spends half a repeat's worth of new answers (half as many as there are items) where they narrow
the interval most: the item whose next answer removes the most variance from the mean of item
means, w_i / k_i - w_i / (k_i + 1) with w_i its (smoothed) pass-rate variance, so items with
intermediate pass rates get more answers while the score still weights every item equally (the
mean over items of each item's mean, evalkit.scoring.stats.clustered_interval).

What repeats cannot do: the interval is about the population of items, and its item part (how much
the items differ in difficulty) only more items narrow. When that part alone is wider than the
target, the loop stops and says so.

The stopping rule looks at the interval after every round, so the interval at the stop is a
planning aid, not a confirmatory interval (stopping when it first looks narrow makes it too
narrow); the run also reports the interval widened for every look the cap allows (Bonferroni over
the rounds: each look at level 0.05 / rounds), which is conservative but valid whenever it stopped.
Both go into the manifest (``adaptive``), with the repeats each item got.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any

from evalkit.run.runner import RunConfig, RunResult, prepare, run_evaluation, run_folder_for
from evalkit.scoring.stats import Z95, clustered_interval
from evalkit.store import RunFolder

PLANNING_AID = (
    "planning aid, not a confirmatory interval: the run stopped when this interval first looked "
    "narrow enough; the Bonferroni interval over every round the cap allows is the conservative one"
)


PRIOR_ANSWERS = 2.0  # strength of the shrinkage toward the task mean in the allocation


@dataclass
class TaskPrecision:
    """One task's score after a round: the mean of item means and its clustered interval."""

    task: str
    mean: float
    low: float
    high: float
    n_items: int
    n_answers: int
    item_floor: float  # the interval width the items' own spread leaves however many repeats

    @property
    def width(self) -> float:
        return self.high - self.low


@dataclass
class AdaptiveResult:
    run: RunResult
    rounds: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = ""
    repeats_by_item: dict[str, dict[str, int]] = field(default_factory=dict)
    final: dict[str, TaskPrecision] = field(default_factory=dict)
    adjusted: dict[str, tuple[float, float]] = field(default_factory=dict)  # Bonferroni over the rounds


def graded_values(folder: RunFolder) -> dict[str, dict[str, list[float]]]:
    """task -> item -> the primary grades (1/0) of its answers that stand for the folder's run."""
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for rec in folder.current_records():
        if rec.ok and rec.primary is not None:
            out[rec.task][rec.sample_id].append(1.0 if rec.primary.grade.correct else 0.0)
    return out


def precision(task: str, values: Mapping[str, Sequence[float]], z: float = Z95) -> TaskPrecision:
    mean, lo, hi = clustered_interval(values, z)
    items = [list(v) for v in values.values() if v]
    means = [sum(v) / len(v) for v in items]
    k = len(items)
    floor = 0.0
    if k >= 2:
        # The item part of the variance: the spread of item means less their answer noise.
        spread = sum((m - mean) ** 2 for m in means) / (k - 1)
        noise = sum(_item_variance(v) / len(v) for v in items) / k
        floor = 2 * z * math.sqrt(max(0.0, spread - noise) / k)
    return TaskPrecision(task, mean, lo, hi, k, sum(map(len, items)), floor)


def _item_variance(v: Sequence[float]) -> float:
    """Unbiased p(1-p) of one item from its answers (0 with one answer)."""
    n = len(v)
    if n < 2:
        return 0.0
    m = sum(v) / n
    return m * (1 - m) * n / (n - 1)


def allocate(values: Mapping[str, Sequence[float]], budget: int, cap: int) -> dict[str, int]:
    """Repeats per item after adding ``budget`` answers where each narrows the mean of item means
    most. An item's pass rate is shrunk toward the task's mean by PRIOR_ANSWERS pseudo-answers:
    an item that came out 2/2 by chance still gets answers (left at 2 answers, its extreme mean would
    widen the spread of item means for good), while one that stays 0/k or k/k falls behind the
    uncertain ones as k grows. No item goes past ``cap``."""
    counts = {i: len(v) for i, v in values.items()}
    answers = sum(counts.values())
    overall = sum(sum(v) for v in values.values()) / answers if answers else 0.5

    def gain(i: str) -> float:
        k, s = counts[i], sum(values[i])
        p = (s + PRIOR_ANSWERS * overall) / (k + PRIOR_ANSWERS)
        return p * (1 - p) * (1 / k - 1 / (k + 1))

    heap = [(-gain(i), i) for i in counts if counts[i] < cap]
    heapq.heapify(heap)
    for _ in range(budget):
        if not heap:
            break
        _, i = heapq.heappop(heap)
        counts[i] += 1
        if counts[i] < cap:
            heapq.heappush(heap, (-gain(i), i))
    return counts


def run_until_narrow(
    cfg: RunConfig,
    target_points: float,
    max_repeats: int = 16,
    first_repeats: int = 2,
    max_rounds: int = 8,
    run: Callable[[RunConfig], RunResult] = run_evaluation,
    on_round: Callable[[dict[str, Any]], None] | None = None,
) -> AdaptiveResult:
    """Run ``cfg`` in rounds until every task's 95% interval is narrower than ``target_points``."""
    target = target_points / 100
    by_item, uniform = previous_repeats(cfg)
    first = max(first_repeats, cfg.repeats or 1, uniform)
    earlier = {t: {i: max(first, n) for i, n in ks.items()} for t, ks in by_item.items()}
    cfg = replace(cfg, repeats=first, repeats_by_item=earlier)
    result = AdaptiveResult(run=run(cfg))
    for n in range(1, max_rounds + 1):
        values = graded_values(RunFolder(result.run.run_dir))
        precisions = {t: precision(t, v) for t, v in values.items()}
        result.final = precisions
        result.rounds.append(_round_entry(n, precisions, values))
        if on_round is not None:
            on_round(result.rounds[-1])
        reason, todo = _stop_or_continue(precisions, values, target, max_repeats)
        if reason:
            result.stop_reason = reason
            break
        if n == max_rounds:
            result.stop_reason = f"cap: {max_rounds} rounds"
            break
        # Tasks already narrow keep the answers they have; the others get half a repeat's worth more.
        plan = {
            t: allocate(v, max(1, len(v) // 2), max_repeats)
            if t in todo
            else {i: len(x) for i, x in v.items()}
            for t, v in values.items()
        }
        cfg = replace(cfg, repeats=1, repeats_by_item=plan)
        result.run = run(cfg)
    result.repeats_by_item = {t: {i: len(v) for i, v in vs.items()} for t, vs in values.items()}
    z_adj = NormalDist().inv_cdf(1 - 0.05 / (2 * max_rounds))
    for t, v in values.items():
        adjusted = precision(t, v, z_adj)
        result.adjusted[t] = (adjusted.low, adjusted.high)
    record_in_manifest(result, target_points, max_repeats, max_rounds)
    return result


def previous_repeats(cfg: RunConfig) -> tuple[dict[str, dict[str, int]], int]:
    """The repeats an earlier run of the same folder planned (task -> item -> repeats where items
    differ, and the most any task planned uniformly), so that running the same command again starts
    where it stopped (nothing to send) instead of from fewer repeats."""
    backend, plans = prepare(cfg)  # plans only: no model is loaded
    tasks = (run_folder_for(cfg, backend, plans).manifest or {}).get("tasks") or {}
    by_item = {t: dict(e["repeats_by_item"]) for t, e in tasks.items() if e.get("repeats_by_item")}
    uniform = [int(e.get("repeats_max") or 0) for t, e in tasks.items() if t not in by_item]
    return by_item, max(uniform, default=0)


def _stop_or_continue(
    precisions: Mapping[str, TaskPrecision],
    values: Mapping[str, Mapping[str, Sequence[float]]],
    target: float,
    cap: int,
) -> tuple[str, list[str]]:
    """A stop reason (empty to go on) and the tasks that still need answers."""
    todo, reasons = [], []
    for t, p in precisions.items():
        if p.width < target:
            continue
        if p.item_floor >= target and p.n_answers >= 4 * p.n_items:  # 4 answers each: noise estimable
            reasons.append(
                f"{t}: the items' own spread leaves an interval of about {100 * p.item_floor:.1f} points "
                f"however many repeats; only more items narrow it below {100 * target:g}"
            )
        elif all(_item_variance(v) == 0 for v in values[t].values()) and p.n_answers > p.n_items:
            reasons.append(f"{t}: answers do not vary between repeats (greedy decoding?); only items help")
        elif all(len(v) >= cap for v in values[t].values()):
            reasons.append(f"{t}: cap of {cap} repeats per item reached")
        else:
            todo.append(t)
    if todo:
        return "", todo
    return ("; ".join(reasons) or f"every interval is narrower than {100 * target:g} points"), []


def _round_entry(
    n: int, precisions: Mapping[str, TaskPrecision], values: Mapping[str, Mapping[str, Sequence[float]]]
) -> dict[str, Any]:
    return {
        "round": n,
        "tasks": {
            t: {
                "score": p.mean,
                "ci": [p.low, p.high],
                "width_points": 100 * p.width,
                "items": p.n_items,
                "answers": p.n_answers,
                "repeats_min_max": [min(map(len, values[t].values())), max(map(len, values[t].values()))],
            }
            for t, p in precisions.items()
        },
    }


def record_in_manifest(result: AdaptiveResult, target_points: float, cap: int, max_rounds: int) -> None:
    folder = RunFolder(result.run.run_dir)
    manifest = folder.require_manifest()
    manifest["adaptive"] = {
        "target_ci_points": target_points,
        "max_repeats": cap,
        "max_rounds": max_rounds,
        "stop_reason": result.stop_reason,
        "rounds": result.rounds,
        "interval": PLANNING_AID,
        "bonferroni_interval": {t: list(ci) for t, ci in result.adjusted.items()},
        "repeats_by_item": result.repeats_by_item,
    }
    folder.write_manifest(manifest)


def format_result(result: AdaptiveResult) -> list[str]:
    lines = []
    for r in result.rounds:
        for t, e in r["tasks"].items():
            lo, hi = e["repeats_min_max"]
            lines.append(
                f"round {r['round']}: {t} {100 * e['score']:.1f}% [{100 * e['ci'][0]:.1f}, "
                f"{100 * e['ci'][1]:.1f}] width {e['width_points']:.1f} points, {e['answers']} answers "
                f"over {e['items']} items ({lo}-{hi} each)"
            )
    lines.append(f"stopped: {result.stop_reason}")
    for t, (lo, hi) in result.adjusted.items():
        lines.append(
            f"{t}: the 95% interval above is a {PLANNING_AID.split(':')[0]}; over every round the cap "
            f"allows (Bonferroni) it is [{100 * lo:.1f}, {100 * hi:.1f}]"
        )
    return lines

"""Precision planning: how many repeats (and items) a paired comparison of two models needs.

The model of a score. Item i has a true pass rate p_i for a model; a run answers it k times and
scores it m_i (the mean of its k 0/1 grades); the score is the mean of m_i over the N items, and
two models are compared PAIRED on the same items through the per-item differences
d_i = m_Ai - m_Bi (as `evalkit compare` does: a paired bootstrap over items). Two quantities
describe the items:

  between  sigma^2 = Var_i(p_i), how much the items differ in difficulty;
  within   w = mean_i p_i (1 - p_i), the sampling noise of one answer (0 under greedy decoding).

(sigma^2 + w = pbar (1 - pbar): a one-answer-per-item pilot cannot tell them apart.) For two
models whose per-item pass rates correlate at rho across items,

  Var(d_i) = Var_i(p_Ai - p_Bi) + (w_A + w_B) / k,   Var_i(p_Ai - p_Bi) = 2 sigma^2 (1 - rho)

when both have the same spread. Two inferences follow, and they differ:

  - about THESE items (is A better than B on this fixed set?): only answer noise counts,
    SE^2 = (w_A + w_B) / (k N); repeats narrow it without limit;
  - about the POPULATION the items stand for (would A beat B on new items like these?): the item
    term stays, SE^2 = (Var_i(p_Ai - p_Bi) + (w_A + w_B) / k) / N; repeats only remove the second
    part, and below SE^2 = Var_i(p_Ai - p_Bi) / N only more items help.

Power of a two-sided level-alpha test of a true difference delta: Phi(delta/SE - z) + Phi(-delta/SE - z)
with z = Phi^-1(1 - alpha/2) (the normal approximation; tests/test_planning.py checks it against a
seeded simulation of the paired test).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

_N = NormalDist()
MAX_REPEATS = 1000


@dataclass(frozen=True)
class ItemSpread:
    """A model's per-item pass rates summarised: mean, between-item and within-item variance."""

    n_items: int
    answers_per_item: float
    mean: float
    between: float  # sigma^2: variance of the true per-item pass rates across items
    within: float  # w: mean of p(1-p), the variance of one answer around its item's pass rate
    source: str  # where the numbers come from: a pilot run, or an assumption


def spread_from_pilot(values_by_item: Mapping[str, Sequence[float]], source: str) -> ItemSpread | None:
    """Between- and within-item variance estimated from a pilot's 0/1 grades per item; None when no
    item has two answers (one answer per item cannot separate difficulty from noise).

    Unbiased per item: m(1-m) k/(k-1) estimates p(1-p); Var_i(m_i) - mean_i(w_i / k_i) estimates
    the spread of the true pass rates (kept at 0 or above)."""
    items = [list(v) for v in values_by_item.values() if v]
    if not items:
        return None
    means = [sum(v) / len(v) for v in items]
    mean = sum(means) / len(means)
    multi = [(m, len(v)) for m, v in zip(means, items, strict=True) if len(v) >= 2]
    if not multi:
        return None
    within = sum(m * (1 - m) * k / (k - 1) for m, k in multi) / len(multi)
    var_means = sum((m - mean) ** 2 for m in means) / max(1, len(means) - 1)
    noise = sum(within / len(v) for v in items) / len(items)
    between = max(0.0, var_means - noise)
    answers = sum(len(v) for v in items) / len(items)
    return ItemSpread(len(items), answers, mean, between, within, source)


def assumed_spread(mean: float, within_share: float, n_items: int, source: str) -> ItemSpread:
    """Spread from an assumed mean pass rate and the share of the per-answer variance
    pbar(1-pbar) that is answer noise (the rest is item difficulty)."""
    total = mean * (1 - mean)
    return ItemSpread(n_items, 1.0, mean, (1 - within_share) * total, within_share * total, source)


def pilot_correlation(
    a: Mapping[str, Sequence[float]], b: Mapping[str, Sequence[float]], sa: ItemSpread, sb: ItemSpread
) -> float | None:
    """Correlation across items of two models' true pass rates: the covariance of their item means
    (answer noise is independent between runs, so it does not bias the covariance) over the
    noise-corrected spreads. None when the items are too few or a spread is 0."""
    shared = sorted(set(a) & set(b))
    if len(shared) < 3 or sa.between <= 0 or sb.between <= 0:
        return None
    ma = [sum(a[i]) / len(a[i]) for i in shared]
    mb = [sum(b[i]) / len(b[i]) for i in shared]
    ca, cb = sum(ma) / len(ma), sum(mb) / len(mb)
    cov = sum((x - ca) * (y - cb) for x, y in zip(ma, mb, strict=True)) / (len(shared) - 1)
    return max(-1.0, min(1.0, cov / math.sqrt(sa.between * sb.between)))


def paired_power(
    n_items: int, repeats: int, delta: float, between_diff: float, within_sum: float, alpha: float
) -> float:
    """Power of the two-sided paired test at level alpha for a true difference ``delta`` (a share,
    0.03 = 3 points). ``between_diff`` = Var_i(p_Ai - p_Bi) (0 for the these-items inference),
    ``within_sum`` = w_A + w_B."""
    var = (between_diff + within_sum / repeats) / n_items
    if var <= 0:
        return 1.0 if delta else alpha
    z = _N.inv_cdf(1 - alpha / 2)
    ratio = abs(delta) / math.sqrt(var)
    return _N.cdf(ratio - z) + _N.cdf(-ratio - z)


def repeats_for_power(
    n_items: int,
    delta: float,
    between_diff: float,
    within_sum: float,
    power: float,
    alpha: float,
    max_repeats: int = MAX_REPEATS,
) -> int | None:
    """The fewest repeats per model per item that reach ``power``; None when even ``max_repeats``
    cannot (the item term alone is too large: only more items help)."""
    if paired_power(n_items, max_repeats, delta, between_diff, within_sum, alpha) < power:
        return None
    lo, hi = 1, max_repeats  # power grows with k: bisect
    while lo < hi:
        mid = (lo + hi) // 2
        if paired_power(n_items, mid, delta, between_diff, within_sum, alpha) >= power:
            hi = mid
        else:
            lo = mid + 1
    return lo


def items_for_power(
    repeats: int, delta: float, between_diff: float, within_sum: float, power: float, alpha: float
) -> int:
    """The fewest items that reach ``power`` with ``repeats`` answers per model per item."""
    z = _N.inv_cdf(1 - alpha / 2) + _N.inv_cdf(power)
    return max(2, math.ceil(z * z * (between_diff + within_sum / repeats) / (delta * delta)))


@dataclass(frozen=True)
class ComparisonPlan:
    n_items: int
    delta: float
    power: float
    alpha: float
    correlation: float
    correlation_source: str  # "estimated from two pilots" | "assumed"
    between_diff: float  # Var_i(p_Ai - p_Bi)
    within_sum: float  # w_A + w_B
    these_items_repeats: int | None
    population_repeats: int | None
    items_needed_at_1: int
    items_needed_at_planned: int | None
    items_floor: int  # items needed with infinitely many repeats
    deterministic: bool  # within-item variance 0: repeats repeat the same answers

    def power_at(self, repeats: int, population: bool = True) -> float:
        between = self.between_diff if population else 0.0
        return paired_power(self.n_items, repeats, self.delta, between, self.within_sum, self.alpha)


def plan_comparison(
    spreads: Sequence[ItemSpread],
    n_items: int,
    delta_points: float,
    power: float = 0.8,
    alpha: float = 0.05,
    correlation: float | None = None,
    assumed_correlation: float = 0.5,
    max_repeats: int = MAX_REPEATS,
    correlation_source: str = "estimated from two pilot runs",
) -> ComparisonPlan:
    """Plan a paired comparison of two models on ``n_items`` items. ``spreads`` holds one model's
    spread (the other is assumed alike) or both models'; ``correlation`` is the across-item
    correlation of their pass rates when estimated, else ``assumed_correlation`` is used."""
    delta = delta_points / 100
    a = spreads[0]
    b = spreads[1] if len(spreads) > 1 else spreads[0]
    rho, rho_source = (
        (correlation, correlation_source) if correlation is not None else (assumed_correlation, "assumed")
    )
    between_diff = max(0.0, a.between + b.between - 2 * rho * math.sqrt(a.between * b.between))
    within_sum = a.within + b.within
    these = repeats_for_power(n_items, delta, 0.0, within_sum, power, alpha, max_repeats)
    pop = repeats_for_power(n_items, delta, between_diff, within_sum, power, alpha, max_repeats)
    z = _N.inv_cdf(1 - alpha / 2) + _N.inv_cdf(power)
    return ComparisonPlan(
        n_items=n_items,
        delta=delta,
        power=power,
        alpha=alpha,
        correlation=rho,
        correlation_source=rho_source,
        between_diff=between_diff,
        within_sum=within_sum,
        these_items_repeats=these if within_sum > 0 else None,
        population_repeats=pop,
        items_needed_at_1=items_for_power(1, delta, between_diff, within_sum, power, alpha),
        items_needed_at_planned=(
            items_for_power(pop, delta, between_diff, within_sum, power, alpha) if pop else None
        ),
        items_floor=max(2, math.ceil(z * z * between_diff / (delta * delta))),
        deterministic=within_sum == 0,
    )


def format_plan(plan: ComparisonPlan, task: str, spreads: Sequence[ItemSpread]) -> list[str]:
    """The plan as the `evalkit plan` command prints it."""
    pts = 100 * plan.delta
    lines = [
        f"task {task}: {plan.n_items} items; to detect a {pts:g}-point difference between two models "
        f"(paired on the same items) with {plan.power:.0%} power, two-sided alpha {plan.alpha:g}",
    ]
    for s in spreads:
        lines.append(
            f"  {s.source}: mean {100 * s.mean:.1f}%, between-item sd {math.sqrt(s.between):.3f}, "
            f"within-item variance {s.within:.3f} ({s.n_items} items, {s.answers_per_item:g} answers/item)"
        )
    lines.append(
        f"  correlation of the two models' per-item pass rates: {plan.correlation:.2f} "
        f"({plan.correlation_source}"
        + (
            "; give --correlation, or a second --pilot of the other model, to change it)"
            if plan.correlation_source == "assumed"
            else ")"
        )
    )
    lines += _these_items_lines(plan) + _population_lines(plan)
    return lines


def _these_items_lines(plan: ComparisonPlan) -> list[str]:
    head = f"about THESE {plan.n_items} items (is one model better on this fixed set; repeats narrow it):"
    if plan.deterministic:
        return [
            head,
            "  answers do not vary between repeats (greedy decoding or likelihood scoring): "
            "1 answer per item; the difference is known exactly once both models answered",
        ]
    k = plan.these_items_repeats
    if k is None:
        return [head, f"  more than {MAX_REPEATS} repeats per model per item"]
    return [
        head,
        f"  {k} repeat{'s' if k > 1 else ''} per model per item (power {plan.power_at(k, False):.0%})",
    ]


def _population_lines(plan: ComparisonPlan) -> list[str]:
    head = (
        "about the POPULATION these items stand for (would it hold on new items like these; only more "
        "items narrow the item part):"
    )
    k = plan.population_repeats
    floor = f"at least {plan.items_floor} items however many repeats"
    if k is None:
        return [
            head,
            f"  not reachable with {plan.n_items} items: the items' own spread needs {floor} "
            f"({plan.items_needed_at_1} with 1 answer per item)",
        ]
    return [
        head,
        f"  {k} repeat{'s' if k > 1 else ''} per model per item (power {plan.power_at(k):.0%}); "
        f"the item count suffices (needs {plan.items_needed_at_planned} at {k} repeats, {floor})",
    ]

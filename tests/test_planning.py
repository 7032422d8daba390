"""The power calculation of `evalkit plan` against a seeded simulation of the paired comparison."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr

from evalkit.run.planning import (
    assumed_spread,
    paired_power,
    pilot_correlation,
    plan_comparison,
    repeats_for_power,
    spread_from_pilot,
)

Z = 1.959963984540054


def _population(rng: np.random.Generator, m: int = 200_000, rho_latent: float = 0.85, shift: float = -0.15):
    """Paired per-item pass rates of two models: a Gaussian copula on probit difficulties."""
    za = rng.standard_normal(m)
    zb = rho_latent * za + math.sqrt(1 - rho_latent**2) * rng.standard_normal(m)
    return ndtr(0.9 * za), ndtr(0.9 * zb + shift)


def _truth(pa: np.ndarray, pb: np.ndarray) -> dict[str, float]:
    return {
        "delta": float(pa.mean() - pb.mean()),
        "between_diff": float(np.var(pa - pb)),
        "within_sum": float(np.mean(pa * (1 - pa)) + np.mean(pb * (1 - pb))),
    }


def _paired_rejections(rng, pa, pb, n_items: int, k: int, reps: int, population: bool) -> float:
    """Share of simulated comparisons in which the paired test (z on per-item differences of the
    two models' k-answer means) rejects 'no difference' at 5%."""
    fixed = rng.choice(len(pa), n_items, replace=False)
    hits = 0
    for _ in range(reps):
        idx = rng.choice(len(pa), n_items, replace=False) if population else fixed
        ma = rng.binomial(k, pa[idx]) / k
        mb = rng.binomial(k, pb[idx]) / k
        d = ma - mb
        if population:  # items as a sample: the spread of the differences
            se = d.std(ddof=1) / math.sqrt(n_items)
        else:  # these items: answer noise only, estimated per item
            w = (ma * (1 - ma) + mb * (1 - mb)) * k / max(1, k - 1)
            se = math.sqrt(w.sum() / k) / n_items
        hits += abs(d.mean()) / se > Z
    return hits / reps


def test_planned_repeats_give_the_promised_power_over_new_items() -> None:
    rng = np.random.default_rng(20261201)
    pa, pb = _population(rng)
    t = _truth(pa, pb)
    n_items = 500
    k = repeats_for_power(n_items, t["delta"], t["between_diff"], t["within_sum"], 0.8, 0.05)
    assert k is not None and 2 <= k <= 20
    predicted = paired_power(n_items, k, t["delta"], t["between_diff"], t["within_sum"], 0.05)
    empirical = _paired_rejections(rng, pa, pb, n_items, k, 1500, population=True)
    assert empirical == pytest.approx(predicted, abs=0.04)
    # one repeat fewer falls short of 80%, in the formula and in the simulation
    fewer = paired_power(n_items, k - 1, t["delta"], t["between_diff"], t["within_sum"], 0.05)
    assert fewer < 0.8
    assert _paired_rejections(rng, pa, pb, n_items, max(1, k - 1), 1500, population=True) < predicted


def test_these_items_power_counts_only_answer_noise() -> None:
    rng = np.random.default_rng(7)
    pa, pb = _population(rng, shift=-0.05)
    n_items, k = 200, 4
    fixed = rng.choice(len(pa), n_items, replace=False)
    a, b = pa[fixed], pb[fixed]
    delta = float(a.mean() - b.mean())
    within = float(np.mean(a * (1 - a)) + np.mean(b * (1 - b)))
    predicted = paired_power(n_items, k, delta, 0.0, within, 0.05)
    rng2 = np.random.default_rng(8)
    hits = 0
    for _ in range(1500):
        d = rng2.binomial(k, a) / k - rng2.binomial(k, b) / k
        hits += abs(d.mean()) / (math.sqrt(within / k / n_items)) > Z
    assert hits / 1500 == pytest.approx(predicted, abs=0.04)


def test_pilot_estimates_recover_the_spread_and_the_correlation() -> None:
    rng = np.random.default_rng(3)
    pa, pb = _population(rng, m=4000)
    k0 = 8
    va = {str(i): list(rng.binomial(1, p, k0).astype(float)) for i, p in enumerate(pa)}
    vb = {str(i): list(rng.binomial(1, p, k0).astype(float)) for i, p in enumerate(pb)}
    sa, sb = spread_from_pilot(va, "a"), spread_from_pilot(vb, "b")
    assert sa is not None and sb is not None
    assert sa.between == pytest.approx(float(np.var(pa)), rel=0.08)
    assert sa.within == pytest.approx(float(np.mean(pa * (1 - pa))), rel=0.05)
    rho = pilot_correlation(va, vb, sa, sb)
    assert rho == pytest.approx(float(np.corrcoef(pa, pb)[0, 1]), abs=0.04)
    # one answer per item cannot separate difficulty from noise
    assert spread_from_pilot({"x": [1.0], "y": [0.0]}, "once") is None


def test_plan_says_when_only_more_items_help() -> None:
    # 30 items, 3 points: the items' own spread is far too large for repeats to matter
    spread = assumed_spread(0.5, 0.3, 30, "assumed")
    plan = plan_comparison([spread], 30, 3.0, correlation=0.7, correlation_source="given")
    assert plan.population_repeats is None and plan.items_floor > 30
    assert plan.these_items_repeats is not None  # about these 30 items, enough repeats do it
    assert plan.power_at(plan.these_items_repeats, population=False) >= 0.8
    greedy = plan_comparison([assumed_spread(0.5, 0.0, 30, "greedy")], 30, 3.0)
    assert greedy.deterministic and greedy.correlation_source == "assumed"

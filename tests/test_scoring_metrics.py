"""Metrics and statistics: pass@k arithmetic, maj@k, mean@k, AMC points, strict/official accuracy,
McNemar and the paired bootstrap."""

from __future__ import annotations

import math
from itertools import combinations

import pytest

from evalkit.scoring.metrics import ScoredRow
from evalkit.scoring.registry import get_metric, is_metric
from evalkit.scoring.stats import mcnemar_exact, paired_bootstrap, pass_all_k, pass_at_k, wilson_interval


def rows_from(spec: dict[str, list[bool]], **meta: object) -> list[ScoredRow]:
    return [
        ScoredRow(sid, rep, ok, meta=dict(meta)) for sid, oks in spec.items() for rep, ok in enumerate(oks)
    ]


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    """Share of the k-subsets of n answers that hold at least one of the c correct ones."""
    answers = [True] * c + [False] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(any(answers[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize(
    "n, c, k", [(5, 0, 1), (5, 1, 1), (5, 2, 2), (10, 3, 4), (8, 8, 3), (6, 1, 6), (7, 4, 5)]
)
def test_pass_at_k_equals_brute_force(n: int, c: int, k: int) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k))


def test_pass_at_k_closed_forms_and_errors() -> None:
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the mean
    assert pass_at_k(200, 1, 100) == pytest.approx(0.5)
    assert pass_at_k(4, 2, 3) == 1.0  # fewer wrong answers than draws
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_pass_mean_maj_metrics() -> None:
    rows = rows_from(
        {"a": [True, False, False, False], "b": [False, False, False, False], "c": [True, True, True, False]}
    )
    p1 = get_metric("pass@1")(rows, {})
    assert p1.value == pytest.approx((0.25 + 0 + 0.75) / 3)
    p2 = get_metric("pass@2")(rows, {})
    assert p2.value == pytest.approx((pass_at_k(4, 1, 2) + 0 + pass_at_k(4, 3, 2)) / 3)
    assert get_metric("pass@k")(rows, {}).extra["k"] == 4
    assert get_metric("pass@k")(rows, {}).value == pytest.approx(2 / 3)
    m2 = get_metric("mean@2")(rows, {})
    assert m2.value == pytest.approx((0.5 + 0 + 1.0) / 3) and m2.n == 6
    # maj@k without answers: strict majority of correct answers (a lower bound, said so)
    maj = get_metric("maj@4")(rows, {})
    assert maj.value == pytest.approx(1 / 3) and "lower bound" in maj.extra["method"]


def test_maj_at_k_votes_on_answers() -> None:
    def r(sid: str, rep: int, ans: str | None, ok: bool, status: str = "ok") -> ScoredRow:
        return ScoredRow(sid, rep, ok, status=status, answer=ans)

    rows = [
        # item a: the correct answer 7 has a plurality (2 of 5), wrong answers split
        r("a", 0, "7", True),
        r("a", 1, "3", False),
        r("a", 2, "\\dfrac{7}{1}", False),
        r("a", 3, "7", True),
        r("a", 4, "5", False),
        # item b: wrong answer 4 wins 2-1; a no-answer does not vote
        r("b", 0, "4", False),
        r("b", 1, "9", True),
        r("b", 2, "4", False),
        r("b", 3, None, False, "no_answer"),
        # item c: a tie between 1 and 2: the earlier one (2, correct) wins
        r("c", 0, "2", True),
        r("c", 1, "1", False),
    ]
    res = get_metric("maj@k")(rows, {})
    assert res.value == pytest.approx(2 / 3)
    assert get_metric("maj@1")(rows, {}).value == pytest.approx(2 / 3)  # first answers: 7 yes, 4 no, 2 yes


def test_metric_families_validate_by_name() -> None:
    for name in ("pass@8", "maj@16", "mean@3", "pass@k", "accuracy", "amc_points"):
        assert is_metric(name)
    for name in ("pass@", "pass@x", "foo@3", "acc"):
        assert not is_metric(name)
    with pytest.raises(KeyError):
        get_metric("pass@x")


def test_accuracy_intervals() -> None:
    one = rows_from({str(i): [i < 30] for i in range(100)})
    res = get_metric("accuracy")(one, {})
    assert res.value == 0.3 and res.extra["interval"] == "wilson"
    assert (res.ci_low, res.ci_high) == pytest.approx(wilson_interval(30, 100))
    rep = rows_from({str(i): [i < 30] * 4 for i in range(100)})
    res4 = get_metric("accuracy")(rep, {})
    assert res4.value == pytest.approx(0.3) and res4.extra["interval"] == "clustered_by_item"
    # Four identical repeats carry no more information than one: the interval must not shrink by 2.
    assert (res4.ci_high - res4.ci_low) > 0.8 * (res.ci_high - res.ci_low)


def test_strict_and_official_compatible_accuracy() -> None:
    rows = [
        ScoredRow("a", 0, True),
        ScoredRow("b", 0, True, status="no_answer"),  # a lucky official guess
        ScoredRow("c", 0, False, status="no_answer"),
        ScoredRow("d", 0, False),
    ]
    assert get_metric("accuracy_strict")(rows, {}).value == 0.25
    off = get_metric("accuracy_official_compatible")(rows, {})
    assert off.value == 0.5 and off.extra["random_guess_hits"] == 1


def test_amc_points() -> None:
    # Contest X: 25 questions, one repeat: 20 correct, 3 blank, 2 wrong -> 120 + 4.5 = 124.5
    rows = [
        ScoredRow(f"x{i}", 0, i < 20, status="abstain" if 20 <= i < 23 else "ok", meta={"contest": "X"})
        for i in range(25)
    ]
    # Contest Y: 25 questions x 2 repeats, points given by the grader: repeat 0 all correct, repeat 1 none
    rows += [
        ScoredRow(f"y{i}", r, r == 0, points=6.0 if r == 0 else 0.0, meta={"contest": "Y"})
        for i in range(25)
        for r in range(2)
    ]
    res = get_metric("amc_points")(rows, {})
    assert res.extra["contests"]["X"]["score"] == pytest.approx(124.5)
    assert res.extra["contests"]["Y"]["score"] == pytest.approx(75.0)
    assert res.value == pytest.approx((124.5 + 75.0) / 2)
    assert res.ci_low < res.value < res.ci_high and res.extra["max"] == 150
    assert res.n_items == 50
    # A contest with fewer items is scaled to 25 questions; the contest field is configurable.
    small = [ScoredRow(f"z{i}", 0, i < 5, meta={"round": "Z"}) for i in range(10)]
    res = get_metric("amc_points")(small, {"contest_field": "round"})
    assert res.value == pytest.approx(25 * 3.0) and res.extra["contests"]["Z"]["scaled"]


def test_mcnemar_exact() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    # b=10, c=0: two-sided p = 2 * 0.5^10
    assert mcnemar_exact(10, 0) == pytest.approx(2 * 0.5**10)
    assert mcnemar_exact(1, 9) == pytest.approx(2 * (1 + 10) / 2**10)


def test_paired_bootstrap() -> None:
    diffs = [1.0] * 30 + [-1.0] * 10 + [0.0] * 60
    mean, lo, hi, p = paired_bootstrap(diffs, n_boot=5000, seed=7)
    assert mean == pytest.approx(0.2)
    assert lo < 0.2 < hi and lo > 0.0  # 30 vs 10 discordant out of 100 is a real difference
    assert p < 0.01
    assert paired_bootstrap(diffs, n_boot=5000, seed=7) == (mean, lo, hi, p)  # seeded
    se = math.sqrt(sum((d - 0.2) ** 2 for d in diffs) / 99 / 100)
    assert (hi - lo) == pytest.approx(2 * 1.96 * se, rel=0.15)
    m0, lo0, hi0, p0 = paired_bootstrap([1.0, -1.0] * 20, n_boot=2000, seed=1)
    assert m0 == 0 and lo0 < 0 < hi0 and p0 > 0.5
    assert paired_bootstrap([0.0] * 10)[3] == 1.0


def test_clustered_interval_never_collapses_and_stays_in_bounds() -> None:
    from evalkit.scoring.stats import clustered_interval, wilson_interval

    # Every answer wrong, 8 repeats of 20 items: as wide as 20 items answered once, not [0, 0].
    mean, lo, hi = clustered_interval({str(i): [0.0] * 8 for i in range(20)})
    assert (mean, lo) == (0.0, 0.0) and hi == pytest.approx(wilson_interval(0, 20)[1]) and hi > 0.1
    mean, lo, hi = clustered_interval({str(i): [1.0] * 8 for i in range(20)})
    assert hi == 1.0 and lo == pytest.approx(wilson_interval(20, 20)[0]) and lo < 0.9
    # A single item answered several times still gets a real interval.
    mean, lo, hi = clustered_interval({"a": [1.0, 0.0, 1.0, 0.0]})
    assert mean == 0.5 and lo < 0.2 and hi > 0.8
    # Repeats that agree within items make the interval no narrower than one answer per item would.
    same = {str(i): [float(i % 2)] * 4 for i in range(40)}
    once = {str(i): [float(i % 2)] for i in range(40)}
    assert clustered_interval(same)[1:] == pytest.approx(clustered_interval(once)[1:], abs=1e-9)


def test_amc_points_interval_when_every_item_scores_alike() -> None:
    from evalkit.scoring.metrics import ScoredRow
    from evalkit.scoring.registry import get_metric

    blank = [ScoredRow(str(i), 0, False, 1.5, "abstain", {"contest": "10A"}) for i in range(25)]
    r = get_metric("amc_points")(blank, {})
    assert r.value == 37.5 and r.ci_low < 30 < 45 < r.ci_high  # not the zero-width [37.5, 37.5]
    right = [ScoredRow(str(i), 0, True, 6.0, "ok", {"contest": "10A"}) for i in range(25)]
    r = get_metric("amc_points")(right, {})
    assert r.value == 150 and r.ci_high == 150 and r.ci_low < 145


def test_pass_all_k_is_the_chance_that_k_draws_are_all_correct() -> None:
    # Brute force over every k-subset of n answers: the share of subsets that are all correct.
    for n in range(1, 8):
        for c in range(n + 1):
            answers = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                subsets = list(combinations(answers, k))
                expected = sum(all(s) for s in subsets) / len(subsets)
                assert pass_all_k(n, c, k) == pytest.approx(expected), (n, c, k)


def test_pass_all_k_metric_sits_below_pass_at_k() -> None:
    rows = [ScoredRow(f"i{i}", r, correct=(i + r) % 3 != 0) for i in range(30) for r in range(4)]
    all4, any4 = get_metric("pass^4")(rows, {}), get_metric("pass@4")(rows, {})
    mean = get_metric("mean@4")(rows, {})
    assert all4.value <= mean.value <= any4.value
    assert all4.value == pytest.approx(0.0)  # every item has one wrong answer among its 4
    assert get_metric("pass^1")(rows, {}).value == pytest.approx(mean.value)  # k=1 is plain accuracy
    assert all4.ci_low is not None and all4.extra["k"] == 4

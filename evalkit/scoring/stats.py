"""Confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Z95 = 1.959963984540054


def wilson_interval(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def clustered_interval(
    values_by_item: Mapping[str, Sequence[float]], z: float = Z95
) -> tuple[float, float, float]:
    """Mean over items of each item's mean of 0/1 values, with a 95% interval clustered by item.

    Every item weighs the same however many answers it has (adaptive sampling gives uncertain items
    more answers; weighting answers would pull the score toward those items). With repeats, answers
    to one item are correlated; treating them as independent would make the interval too narrow.
    The variance of the mean of item means, sum_i (m_i - m)^2 / (k (k - 1)) over k items (the
    cluster-robust variance; with equal answers per item the same as weighting answers), gives an
    effective sample size n_eff = m(1-m) / var (kept between 1 and the number of answers), and the
    interval is Wilson's at n_eff, so it stays inside [0, 1]; when every answer is right or every
    answer is wrong the variance estimate is 0 and n_eff falls back to the number of items, as if
    each had been answered once. Returns (mean, low, high).
    """
    items = [list(v) for v in values_by_item.values() if len(v)]
    n_total = sum(len(v) for v in items)
    if n_total == 0:
        return 0.0, 0.0, 1.0
    item_means = [sum(v) / len(v) for v in items]
    k = len(items)
    mean = sum(item_means) / k
    n_eff = float(k)
    if k >= 2 and 0.0 < mean < 1.0:
        var = sum((m - mean) ** 2 for m in item_means) / (k * (k - 1))
        if var > 0:
            n_eff = min(float(n_total), max(1.0, mean * (1 - mean) / var))
    lo, hi = wilson_interval(mean * n_eff, n_eff, z)  # type: ignore[arg-type]
    return mean, lo, hi


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): the chance that at least one of k answers drawn without
    replacement from n, of which c are correct, is correct: 1 - C(n-c, k) / C(n, k)."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (got n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    # Product form avoids huge binomials: prod_{i=n-c+1}^{n} (1 - k/i)
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def pass_all_k(n: int, c: int, k: int) -> float:
    """Unbiased pass^k: the chance that k answers drawn without replacement from n, of which c are
    correct, are all correct: C(c, k) / C(n, k) (Yao et al. 2024, tau-bench)."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass^k needs 0 <= c <= n and 1 <= k <= n (got n={n}, c={c}, k={k})")
    prob = 1.0
    for i in range(k):  # prod_{i<k} (c - i) / (n - i)
        prob *= (c - i) / (n - i)
    return max(prob, 0.0)


def mean_interval(values: Sequence[float], z: float = Z95) -> tuple[float, float | None, float | None]:
    """Mean of per-item values with a normal-approximation 95% interval (items as the unit)."""
    n = len(values)
    if n == 0:
        return 0.0, None, None
    mean = sum(values) / n
    if n < 2:
        return mean, None, None
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    half = z * math.sqrt(var / n)
    return mean, mean - half, mean + half


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs (b: only A right, c: only B right)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    # P(X <= k) for X ~ Binomial(n, 1/2), doubled.
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_bootstrap(
    diffs: Sequence[float], n_boot: int = 10_000, seed: int = 1234, level: float = 0.95
) -> tuple[float, float, float, float]:
    """Paired bootstrap over items of per-item differences (A - B), seeded.

    Returns (mean difference, interval low, interval high, two-sided p-value for "no difference").
    The interval is the percentile interval of the resampled means; the p-value is that of the
    null-shifted bootstrap (Efron & Tibshirani, ch. 16): the share of resampled means of the
    centred differences at least as far from 0 as the observed mean. Resampling n items with
    replacement is drawn as multinomial counts over the distinct difference values, which has the
    same distribution and costs O(distinct values) per resample instead of O(n).
    """
    import numpy as np

    n = len(diffs)
    if n == 0:
        return 0.0, 0.0, 0.0, 1.0
    arr = np.asarray(diffs, dtype=float)
    mean = float(arr.mean())
    if np.all(arr == 0):
        return 0.0, 0.0, 0.0, 1.0
    values, counts = np.unique(arr, return_counts=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, counts / n, size=n_boot)
    means = np.sort(draws @ values / n)
    alpha = (1 - level) / 2
    lo = float(np.quantile(means, alpha))
    hi = float(np.quantile(means, 1 - alpha))
    # p-value: resampling the differences shifted to mean 0 (the null) is the same as shifting the
    # resampled means; count those at least as far from 0 as the observed mean.
    extreme = int(np.sum(np.abs(means - mean) >= abs(mean) - 1e-12))
    p = min(1.0, (extreme + 1) / (n_boot + 1))
    return mean, lo, hi, p

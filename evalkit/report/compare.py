"""Paired comparison of two runs on the items both answered (``evalkit compare RUN_A RUN_B``).

Two models scored on the same items are correlated through the items (both find the same ones
easy); an unpaired test wastes that and overstates the uncertainty. Per task, items are matched
by (task, sample_id); each item's score is its mean correctness over its repeats. Reported:
the difference A - B, a seeded paired-bootstrap 95% interval, and a p-value: McNemar's exact test
when both runs answered each shared item once (binary outcomes), else the paired bootstrap's.
Errors (status=error) and ungraded records are left out, as in the summaries.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.scoring.stats import mcnemar_exact, paired_bootstrap
from evalkit.store import RECORDS_FILE, RunFolder

ItemKey = tuple[str, str]


@dataclass(frozen=True)
class Comparison:
    task: str
    n_shared: int
    only_a: int
    only_b: int
    score_a: float
    score_b: float
    diff: float  # A - B on shared items
    ci_low: float
    ci_high: float
    p_value: float
    test: str  # mcnemar_exact | paired_bootstrap
    p_bootstrap: float
    a_only_correct: int | None = None  # discordant pairs (binary case)
    b_only_correct: int | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        return d


def load_item_scores(
    run_dir: str | os.PathLike[str],
) -> tuple[dict[ItemKey, list[float]], dict[str, set[int]]]:
    """(task, sample_id) -> correctness per graded repeat, and task -> task versions seen."""
    folder = RunFolder(run_dir)
    if not folder.records_path.is_file():
        raise EvalkitError(
            f"{folder.path}: no {RECORDS_FILE}; give a run folder such as results/runs/<run_id>"
        )
    scores: dict[ItemKey, list[float]] = defaultdict(list)
    versions: dict[str, set[int]] = defaultdict(set)
    for rec in folder.current_records():
        if not rec.ok or rec.primary is None:
            continue
        scores[(rec.task, rec.sample_id)].append(1.0 if rec.primary.grade.correct else 0.0)
        versions[rec.task].add(rec.task_version)
    return scores, versions


def _compare_items(
    task: str,
    a: dict[ItemKey, list[float]],
    b: dict[ItemKey, list[float]],
    keys_a: set[ItemKey],
    keys_b: set[ItemKey],
    n_boot: int,
    seed: int,
    warnings: tuple[str, ...],
) -> Comparison:
    shared = sorted(keys_a & keys_b)
    mean_a = [sum(a[k]) / len(a[k]) for k in shared]
    mean_b = [sum(b[k]) / len(b[k]) for k in shared]
    diffs = [x - y for x, y in zip(mean_a, mean_b, strict=True)]
    diff, lo, hi, p_boot = paired_bootstrap(diffs, n_boot=n_boot, seed=seed)
    binary = bool(shared) and all(len(a[k]) == 1 and len(b[k]) == 1 for k in shared)
    n = len(shared)
    sa = sum(mean_a) / n if n else 0.0
    sb = sum(mean_b) / n if n else 0.0
    a_only = b_only = None
    p_value, test = p_boot, "paired_bootstrap"
    if binary:  # one answer per item on both sides: the discordant pairs decide (McNemar, exact)
        a_only = sum(1 for x, y in zip(mean_a, mean_b, strict=True) if x > y)
        b_only = sum(1 for x, y in zip(mean_a, mean_b, strict=True) if y > x)
        p_value, test = mcnemar_exact(a_only, b_only), "mcnemar_exact"
    return Comparison(
        task=task,
        n_shared=n,
        only_a=len(keys_a - keys_b),
        only_b=len(keys_b - keys_a),
        score_a=sa,
        score_b=sb,
        diff=diff,
        ci_low=lo,
        ci_high=hi,
        p_value=p_value,
        test=test,
        p_bootstrap=p_boot,
        a_only_correct=a_only,
        b_only_correct=b_only,
        warnings=warnings,
    )


def compare_runs(
    run_a: str | os.PathLike[str],
    run_b: str | os.PathLike[str],
    tasks: list[str] | None = None,
    n_boot: int = 10_000,
    seed: int = 1234,
) -> list[Comparison]:
    """One Comparison per task both runs hold (or per task in ``tasks``)."""
    a, va = load_item_scores(run_a)
    b, vb = load_item_scores(run_b)
    tasks_a = {t for t, _ in a}
    tasks_b = {t for t, _ in b}
    chosen = sorted(tasks_a & tasks_b) if not tasks else list(tasks)
    if not chosen:
        raise EvalkitError(
            f"the runs share no task: {run_a} has {', '.join(sorted(tasks_a)) or 'none'}; "
            f"{run_b} has {', '.join(sorted(tasks_b)) or 'none'}"
        )
    out = []
    for task in chosen:
        keys_a = {k for k in a if k[0] == task}
        keys_b = {k for k in b if k[0] == task}
        if not keys_a or not keys_b:
            raise EvalkitError(f"task {task!r} is not in both runs")
        warnings: list[str] = []
        if va.get(task) and vb.get(task) and va[task] != vb[task]:
            warnings.append(
                f"task versions differ ({sorted(va[task])} vs {sorted(vb[task])}): "
                f"prompts or grading may differ"
            )
        if not keys_a & keys_b:
            warnings.append("no shared items")
        out.append(_compare_items(task, a, b, keys_a, keys_b, n_boot, seed, tuple(warnings)))
    return out


def format_comparisons(comparisons: list[Comparison], name_a: str = "A", name_b: str = "B") -> str:
    """A small aligned table for the terminal. The interval is the paired bootstrap's; the p-value is
    McNemar's exact test for one answer per item (else the bootstrap's, also shown as "p boot")."""
    lines = [f"A = {name_a}", f"B = {name_b}", ""]
    header = (
        f"{'task':<24} {'n shared':>8} {'A':>7} {'B':>7} {'A - B':>8} {'95% interval':>19} "
        f"{'p-value':>9}  {'test':<16} {'p boot':>7}"
    )
    lines.append(header)
    for c in comparisons:
        lines.append(
            f"{c.task:<24} {c.n_shared:>8} {c.score_a:>7.3f} {c.score_b:>7.3f} {c.diff:>+8.3f} "
            f"[{c.ci_low:>+7.3f}, {c.ci_high:>+7.3f}] {c.p_value:>9.4f}  {c.test:<16} {c.p_bootstrap:>7.4f}"
        )
        if c.only_a or c.only_b:
            lines.append(f"{'':<24} (not shared: {c.only_a} only in A, {c.only_b} only in B)")
        for w in c.warnings:
            lines.append(f"{'':<24} warning: {w}")
    return "\n".join(lines)

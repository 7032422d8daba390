"""Pre- versus post-cutoff scores of one run, side by side: a large positive gap is a contamination signal.

For each run folder and task, the run's own records are split by each item's date against the
model's cutoff (``--cutoff``, else the cutoff the run was split at, else the catalog), so both sides
share the model, prompt, decoding and grader. Each side gets strict accuracy with a 95% interval from
``evalkit.scoring`` (Wilson with one answer per item, item-clustered with repeats). The gap is
``pre - post`` with a 95% interval by the MOVER method (Zou & Donner 2008): the two sides' intervals
are combined as

    low  = gap - sqrt((pre - pre_low)^2 + (post_high - post)^2)
    high = gap + sqrt((pre_high - pre)^2 + (post - post_low)^2)

With Wilson intervals on both sides this is exactly Newcombe's (1998) hybrid score interval for a
difference of independent proportions (his method 10); with repeats it carries the clustered
intervals through the same formula. Errors are excluded, never counted as wrong answers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.catalog import Cutoff
from evalkit.contamination.split import MIN_POST_ITEMS, catalog_entry_for, classify, entry_cutoff, parse_date
from evalkit.errors import EvalkitError
from evalkit.report.table import format_cell, print_rows
from evalkit.run.summary import scored_rows
from evalkit.scoring.metrics import MetricResult, ScoredRow
from evalkit.scoring.registry import get_metric
from evalkit.store import Record, RunFolder

GAP_COLUMNS = [
    "task", "model", "cutoff", "cutoff_figure", "margin_days",
    "pre_n", "pre_records", "pre_score", "pre_ci_low", "pre_ci_high",
    "post_n", "post_records", "post_score", "post_ci_low", "post_ci_high",
    "gap", "gap_ci_low", "gap_ci_high", "interval", "n_undated", "n_margin", "errors", "warning", "run",
]  # fmt: skip


@dataclass(frozen=True)
class Side:
    """Accuracy of one side of the cutoff: value and 95% interval as fractions."""

    value: float | None
    low: float | None
    high: float | None
    n_items: int
    n_records: int
    interval: str | None  # "wilson" | "clustered_by_item"

    @classmethod
    def of(cls, rows: Sequence[ScoredRow]) -> Side:
        if not rows:
            return cls(None, None, None, 0, 0, None)
        m: MetricResult = get_metric("accuracy")(rows, {})
        return cls(m.value, m.ci_low, m.ci_high, m.n_items, m.n, str(m.extra.get("interval")))


def mover_difference(
    p1: float, l1: float, u1: float, p2: float, l2: float, u2: float
) -> tuple[float, float, float]:
    """``p1 - p2`` and its interval from the two proportions' own intervals (MOVER; Newcombe's method
    10 when both are Wilson intervals)."""
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, max(-1.0, low), min(1.0, high)


def newcombe_interval(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float, float]:
    """Newcombe's hybrid score interval for ``k1/n1 - k2/n2`` (independent samples, one answer each)."""
    from evalkit.scoring.stats import wilson_interval

    if n1 <= 0 or n2 <= 0:
        raise ValueError("both samples need at least one observation")
    l1, u1 = wilson_interval(k1, n1)
    l2, u2 = wilson_interval(k2, n2)
    return mover_difference(k1 / n1, l1, u1, k2 / n2, l2, u2)


def _row_date(row: ScoredRow) -> dt.date | None:
    v = row.meta.get("date")
    if not v:
        return None
    try:
        return dt.date.fromisoformat(str(v)[:10])
    except ValueError:
        return None


def split_rows(
    rows: Sequence[ScoredRow], cutoff: dt.date, margin_days: int = 0
) -> dict[str, list[ScoredRow]]:
    """Scored rows grouped as pre / post / margin / undated by each row's item date."""
    out: dict[str, list[ScoredRow]] = {"pre": [], "post": [], "margin": [], "undated": []}
    for r in rows:
        out[classify(_row_date(r), cutoff, margin_days)].append(r)
    return out


def gap_for_rows(rows: Sequence[ScoredRow], cutoff: dt.date, margin_days: int = 0) -> dict[str, Any]:
    """Pre/post accuracy, counts and the gap with its interval, all as fractions (0-1)."""
    groups = split_rows(rows, cutoff, margin_days)
    pre, post = Side.of(groups["pre"]), Side.of(groups["post"])
    out: dict[str, Any] = {
        "pre": pre,
        "post": post,
        "n_undated": len({r.sample_id for r in groups["undated"]}),
        "n_margin": len({r.sample_id for r in groups["margin"]}),
        "gap": None,
        "gap_low": None,
        "gap_high": None,
        "interval": None,
    }
    if pre.value is not None and post.value is not None:
        assert pre.low is not None and pre.high is not None and post.low is not None and post.high is not None
        d, lo, hi = mover_difference(pre.value, pre.low, pre.high, post.value, post.low, post.high)
        both_wilson = pre.interval == post.interval == "wilson"
        out.update(gap=d, gap_low=lo, gap_high=hi, interval="newcombe" if both_wilson else "mover_clustered")
    return out


def run_cutoff(summary: Mapping[str, Any], manifest: Mapping[str, Any], run_dir: Path) -> Cutoff:
    """The cutoff a run was split at (from its manifest), else the catalog's for its model."""
    filt = manifest.get("filter") or {}
    if filt.get("cutoff"):
        src = filt.get("cutoff_source") or {}
        return Cutoff(
            parse_date(filt["cutoff"]), str(src.get("figure", "run manifest")), str(src.get("text", "")),
            src.get("catalog_id"), bool(src.get("fallback_to_release_date", False)),
        )  # fmt: skip
    model = summary.get("model") or {}
    entry = catalog_entry_for(
        model.get("alias"), manifest.get("model_spec"), model.get("spec"), model.get("model")
    )
    if entry is None:
        raise EvalkitError(
            f"{run_dir}: the model of this run ({model.get('model') or '?'}) is not in the catalog, so its "
            f"cutoff is unknown; pass --cutoff YYYY-MM-DD"
        )
    return entry_cutoff(entry)


def gap_rows(
    run_dirs: Sequence[str | Path], cutoff: dt.date | str | None = None, margin_days: int = 0
) -> list[dict[str, Any]]:
    """One row per (run, task): pre and post scores, counts, intervals and the gap, in percent.

    This is what ``evalkit report --by-cutoff`` prints.
    """
    fixed = parse_date(cutoff) if cutoff is not None else None
    rows_out = []
    for d in run_dirs:
        run_dir = Path(d)
        folder = RunFolder(run_dir)
        summary = folder.require_summary()
        manifest = folder.manifest or {}
        if fixed is not None:
            cut = Cutoff(fixed, "command_line", "--cutoff on the command line", None)
        else:
            cut = run_cutoff(summary, manifest, run_dir)
        model = summary.get("model") or {}
        model_name = model.get("alias") or model.get("model") or "?"
        records = folder.current_records()
        if not records:
            raise EvalkitError(
                f"{run_dir}: no records.jsonl (or it is empty); the gap needs per-item records"
            )
        by_task: dict[str, list[Record]] = {}
        for r in records:
            by_task.setdefault(r.task, []).append(r)
        for task in summary.get("tasks") or sorted(by_task):
            recs = by_task.get(task, [])
            g = gap_for_rows(scored_rows(recs), cut.date, margin_days)
            pre, post = g["pre"], g["post"]
            warning = _warning(pre, post, task, manifest)
            rows_out.append(
                {
                    "task": task,
                    "model": model_name,
                    "cutoff": cut.date.isoformat(),
                    "cutoff_figure": cut.figure
                    + (" (fallback: no published training cutoff)" if cut.fallback else ""),
                    "margin_days": margin_days,
                    "pre_n": pre.n_items,
                    "pre_records": pre.n_records,
                    "pre_score": _pct(pre.value),
                    "pre_ci_low": _pct(pre.low),
                    "pre_ci_high": _pct(pre.high),
                    "post_n": post.n_items,
                    "post_records": post.n_records,
                    "post_score": _pct(post.value),
                    "post_ci_low": _pct(post.low),
                    "post_ci_high": _pct(post.high),
                    "gap": _pct(g["gap"]),
                    "gap_ci_low": _pct(g["gap_low"]),
                    "gap_ci_high": _pct(g["gap_high"]),
                    "interval": g["interval"],
                    "n_undated": g["n_undated"],
                    "n_margin": g["n_margin"],
                    "errors": sum(1 for r in recs if not r.ok),
                    "warning": warning,
                    "run": str(run_dir),
                }
            )
    return rows_out


def _warning(pre: Side, post: Side, task: str, manifest: Mapping[str, Any]) -> str | None:
    split = ((manifest.get("filter") or {}).get("split")) or "all"
    if post.n_items == 0 and pre.n_items == 0:
        return "no dated, graded items"
    if post.n_items == 0:
        return "no post-cutoff items in this run"
    if pre.n_items == 0:
        hint = f" (the run was split {split}; run with --split all to compare)" if split != "all" else ""
        return "no pre-cutoff items in this run" + hint
    if post.n_items < MIN_POST_ITEMS:
        return f"only {post.n_items} post-cutoff items: wide interval"
    return None


def _pct(v: float | None) -> float | None:
    return None if v is None else v * 100.0


def _score(v: float | None, lo: float | None, hi: float | None, signed: bool = False) -> str:
    if v is None:
        return "-"
    if lo is None or hi is None:
        return format_cell(v, signed)
    return f"{format_cell(v, signed)} ({format_cell(lo, signed)} to {format_cell(hi, signed)})"


GAP_HEADERS = [
    "task",
    "model",
    "cutoff",
    "pre n",
    "pre (95% CI)",
    "post n",
    "post (95% CI)",
    "gap (95% CI)",
    "undated",
]
GAP_FOOTER = (
    "scores are strict accuracy in percent; gap = pre - post; pre = dated on or before the cutoff, "
    "post = after cutoff + margin; gap interval: {methods} (MOVER; Newcombe's hybrid score interval "
    "with one answer per item)"
)


def _gap_cells(r: Mapping[str, Any]) -> list[str]:
    return [
        r["task"],
        r["model"],
        r["cutoff"] + (" (release)" if "fallback" in r["cutoff_figure"] else ""),
        str(r["pre_n"]),
        _score(r["pre_score"], r["pre_ci_low"], r["pre_ci_high"]),
        str(r["post_n"]),
        _score(r["post_score"], r["post_ci_low"], r["post_ci_high"]),
        _score(r["gap"], r["gap_ci_low"], r["gap_ci_high"], signed=True),
        str(r["n_undated"]),
    ]


def print_gap_table(
    run_dirs: Sequence[str | Path],
    fmt: str = "table",
    cutoff: dt.date | str | None = None,
    margin_days: int = 0,
) -> list[dict[str, Any]]:
    """Print the pre/post table (table, markdown, csv or json) and return its rows."""
    rows = gap_rows(run_dirs, cutoff, margin_days)
    methods = ", ".join(sorted({r["interval"] for r in rows if r["interval"]})) or "-"
    print_rows(
        rows,
        GAP_HEADERS,
        fmt,
        cells=_gap_cells,
        fields=GAP_COLUMNS,
        left=("task", "model", "cutoff"),
        footer=GAP_FOOTER.format(methods=methods),
        warnings=[f"{r['task']} / {r['model']}: {r['warning']}" for r in rows if r["warning"]],
    )
    return rows

"""``summary.json``: per-task scores with intervals, counts of errors/truncations, breakdowns.

Shape:
  {"run_id", "model": {...BackendInfo, "alias"}, "evalkit_version", "created",
   "tasks": {NAME: {"task", "version", "n_items", "n_records", "repeats", "errors", "truncated",
                    "no_answer", "abstain", "primary", "metrics": {METRIC: MetricResult.to_dict()},
                    "breakdown": {FIELD: {VALUE: {"n": int, METRIC: MetricResult.to_dict()}}},
                    "tokens": {"prompt": int, "completion": int}}}}
Errors are counted and excluded from every metric (never graded as wrong answers).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from evalkit import __version__
from evalkit.scoring.metrics import ScoredRow
from evalkit.scoring.registry import get_metric

SUMMARY_FILE = "summary.json"


def scored_rows(records: Iterable[Mapping[str, Any]]) -> list[ScoredRow]:
    rows = []
    for r in records:
        if r.get("status") != "ok" or r.get("grade") is None:
            continue
        ex = r.get("extraction") or {}
        g = r["grade"]
        rows.append(
            ScoredRow(
                sample_id=str(r["sample_id"]),
                repeat=int(r["repeat"]),
                correct=bool(g["correct"]),
                points=g.get("points"),
                status=ex.get("status", "ok"),
                answer=ex.get("answer"),
                meta={**(r.get("sample") or {}).get("meta", {}), "date": (r.get("sample") or {}).get("date")},
            )
        )
    return rows


def compute_metrics(
    rows: Sequence[ScoredRow], metrics: Sequence[str], options: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    return {m: get_metric(m)(rows, options or {}).to_dict() for m in metrics}


def summarize_task(
    task: str,
    version: int,
    records: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    breakdown: Sequence[str] = (),
    metric_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    rows = scored_rows(records)
    n_items = len({str(r["sample_id"]) for r in records})
    repeats = max((int(r["repeat"]) for r in records), default=-1) + 1
    tokens = {"prompt": 0, "completion": 0}
    errors = truncated = 0
    for r in records:
        if r.get("status") != "ok":
            errors += 1
            continue
        c = r.get("completion") or {}
        u = c.get("usage") or {}
        tokens["prompt"] += int(u.get("prompt_tokens") or 0)
        tokens["completion"] += int(u.get("completion_tokens") or 0)
        if c.get("finish_reason") == "length":
            truncated += 1
    status_counts: dict[str, int] = defaultdict(int)
    for row in rows:
        status_counts[row.status] += 1
    out: dict[str, Any] = {
        "task": task,
        "version": version,
        "n_items": n_items,
        "n_records": len(records),
        "repeats": repeats,
        "errors": errors,
        "truncated": truncated,
        "no_answer": status_counts.get("no_answer", 0),
        "abstain": status_counts.get("abstain", 0),
        "primary": metrics[0],
        "metrics": compute_metrics(rows, metrics, metric_options),
        "tokens": tokens,
        "breakdown": {},
    }
    for field in breakdown:
        groups: dict[str, list[ScoredRow]] = defaultdict(list)
        for row in rows:
            groups[str(row.meta.get(field))].append(row)
        out["breakdown"][field] = {
            value: {"n": len(g), **compute_metrics(g, [metrics[0]], metric_options)}
            for value, g in sorted(groups.items())
        }
    return out


def build_summary(
    run_id: str, model: Mapping[str, Any], tasks: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "model": dict(model),
        "evalkit_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "tasks": dict(tasks),
    }


def summarize_tasks(
    specs: Mapping[str, Any], records: Iterable[Mapping[str, Any]], previous: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Per-task summaries of ``records`` for tasks given as TaskSpecs by name (as a manifest holds
    them); fields summarize_task does not make (e.g. the runner's "split") are carried over from
    ``previous`` (an earlier summary.json)."""
    by_task: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for rec in records:
        by_task[str(rec.get("task"))].append(rec)
    tasks: dict[str, dict[str, Any]] = {}
    for name, spec in specs.items():
        entry = summarize_task(name, spec.version, by_task.get(name, []), spec.metrics, spec.report.breakdown)
        for k, v in (((previous or {}).get("tasks") or {}).get(name) or {}).items():
            entry.setdefault(k, v)
        tasks[name] = entry
    return tasks

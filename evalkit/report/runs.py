"""Aggregate run folders into one table: one row per (run, task).

Each run folder holds ``summary.json`` (see :mod:`evalkit.run.summary`) and usually ``manifest.json``.
A run's model is matched to the catalog (:func:`evalkit.catalog.find_model`) through the alias the
user gave, then the backend's model name, then that name's last path component, so that a local
checkpoint folder named like a hub model still finds its parameter count and cutoff.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import EvalkitError
from evalkit.store import PRIMARY_SCORER, SUMMARY_FILE, RunFolder

if TYPE_CHECKING:
    import pandas as pd

    from evalkit.catalog import ModelEntry


RUN_COLUMNS = [
    "model",
    "name",
    "in_catalog",
    "model_raw",
    "task",
    "scorer",
    "split",
    "metric",
    "n",
    "score",
    "ci_low",
    "ci_high",
    "tokens",
    "tokens_prompt",
    "tokens_completion",
    "completion_per_answer",
    "reasoning_per_answer",
    "errors",
    "truncated",
    "no_answer",
    "censored",
    "upper",
    "upper_ci_low",
    "upper_ci_high",
    "format_gap",
    "repeats",
    "params_total",
    "params_active",
    "status",
    "run_id",
    "run_dir",
]


def is_points_metric(metric: str) -> bool:
    """Metrics in points (AMC: out of 150) are reported as they are; the others are fractions, shown in %."""
    return metric.endswith("points")


def find_run_dirs(paths: Iterable[str | Path]) -> list[Path]:
    """Run folders under the given paths: a folder with summary.json, or any folder holding such folders."""
    found: list[Path] = []
    for p in map(Path, paths):
        if (p / SUMMARY_FILE).is_file():
            found.append(p)
        elif p.is_dir():
            inner = sorted(s.parent for s in p.rglob(SUMMARY_FILE))
            if not inner:
                raise EvalkitError(
                    f"{p}: no summary.json in it or below it; give run folders written by `evalkit run`"
                )
            found.extend(inner)
        else:
            raise EvalkitError(f"{p}: not a run folder (no such directory)")
    return list(dict.fromkeys(found))


def match_model(model: Mapping[str, Any]) -> ModelEntry | None:
    """The catalog entry for a summary's ``model`` block, or None."""
    from evalkit.catalog import match

    return match([model.get("alias"), model.get("model")])


def _scaled(v: Any, scale: float) -> float:
    return float("nan") if v is None else float(v) * scale


def summary_rows(run_dir: Path, metric: str | None = None) -> list[dict[str, Any]]:
    """Rows for one run folder. ``metric`` picks a metric other than each task's primary one (tasks
    that lack it fall back to their primary, and the ``metric`` column says which was used)."""
    folder = RunFolder(run_dir)
    summary = folder.require_summary()
    manifest = folder.manifest or {}
    model = summary.get("model") or {}
    if not isinstance(model, dict):
        raise EvalkitError(f"{run_dir / SUMMARY_FILE}: 'model' should be an object")
    entry = match_model(model)
    raw = str(model.get("alias") or model.get("model") or "?")
    if entry is not None:
        params_total = entry.params_total
        params_active = entry.params_active if entry.params_active is not None else entry.params_total
    else:
        count = model.get("params_total")  # the backend reports a plain count, the catalog billions
        params_total = params_active = (float(count) / 1e9) if count else None
    tasks = summary.get("tasks")
    if not isinstance(tasks, dict):
        raise EvalkitError(
            f"{run_dir / SUMMARY_FILE}: no 'tasks' object; is this a summary written by evalkit?"
        )
    model_cols = {
        "model": entry.id if entry else raw,
        "name": entry.name if entry else raw,
        "in_catalog": entry is not None,
        "model_raw": str(model.get("model") or ""),
        "params_total": params_total,
        "params_active": params_active,
        "status": manifest.get("status", ""),
        "run_id": summary.get("run_id") or run_dir.name,
        "run_dir": str(run_dir),
    }
    rows = []
    for key, t in tasks.items():
        main = {**model_cols, **_task_row(t, key, PRIMARY_SCORER, t, metric), "format_gap": None}
        rows.append(main)
        for name, scorer in (t.get("scorers") or {}).items():  # the same answers read another way
            row = {**model_cols, **_task_row(t, key, name, scorer, metric)}
            row["format_gap"] = _gap(row, main)
            rows.append(row)
    return rows


def _gap(row: Mapping[str, Any], main: Mapping[str, Any]) -> float | None:
    """This scorer's score minus the primary (strict) one's, in points: how much of the score hangs
    on the answer format (mmlu_pro: official-compatible minus strict). None when not comparable."""
    a, b = row.get("score"), main.get("score")
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return None
    if is_points_metric(str(row.get("metric"))) != is_points_metric(str(main.get("metric"))):
        return None
    return float(a) - float(b)


def _task_row(
    t: Mapping[str, Any], key: str, scorer: str, scored: Mapping[str, Any], metric: str | None
) -> dict:
    """The columns of one task (and one of its scorers) in a run's summary."""
    metrics = scored.get("metrics") or {}
    name = metric if metric and metric in metrics else scored.get("primary")
    m = metrics.get(name) or {}
    scale = 1.0 if is_points_metric(str(name)) else 100.0
    tokens = t.get("tokens") or {}
    return {
        "task": t.get("task", key),
        "scorer": scorer,
        "split": t.get("split") or "all",
        "metric": name,
        # Items the score is computed over (items whose every request failed are not among them).
        "n": m.get("n_items") if m.get("n_items") is not None else t.get("n_items"),
        "score": _scaled(m.get("value"), scale),
        "ci_low": _scaled(m.get("ci_low"), scale),
        "ci_high": _scaled(m.get("ci_high"), scale),
        "tokens": int(tokens.get("prompt") or 0) + int(tokens.get("completion") or 0),
        "tokens_prompt": int(tokens.get("prompt") or 0),
        "tokens_completion": int(tokens.get("completion") or 0),
        # Test-time compute: generated tokens per answer, and the reasoning part where reported.
        "completion_per_answer": tokens.get("mean_completion_per_answer"),
        "reasoning_per_answer": tokens.get("mean_reasoning_per_answer"),
        "errors": t.get("errors", 0),
        "truncated": t.get("truncated", 0),
        "no_answer": scored.get("no_answer", 0),
        "repeats": t.get("repeats"),
        **_censoring_cols(t if scorer == PRIMARY_SCORER else {}),
    }


def _censoring_cols(t: Mapping[str, Any]) -> dict[str, Any]:
    """Censored answers and the upper bound of the score (censored answers counted right)."""
    c = t.get("censoring") or {}
    upper = (c.get("bounds") or {}).get("upper") or {}
    scale = 1.0 if is_points_metric(str((c.get("bounds") or {}).get("metric"))) else 100.0
    return {
        "censored": c.get("censored"),
        "upper": _scaled(upper.get("value"), scale),
        "upper_ci_low": _scaled(upper.get("ci_low"), scale),
        "upper_ci_high": _scaled(upper.get("ci_high"), scale),
    }


def load_runs(dirs: Iterable[str | Path], metric: str | None = None) -> pd.DataFrame:
    """One row per (run, task) over run folders (or folders of run folders), scores in percent
    (points for points metrics), with catalog ids and parameter counts where the model is known."""
    import pandas as pd

    rows = [row for d in find_run_dirs(dirs) for row in summary_rows(d, metric)]
    return pd.DataFrame(rows, columns=RUN_COLUMNS)

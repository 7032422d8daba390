"""`evalkit report`: one table over run folders, as a terminal table, markdown, CSV or JSON."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError

COLUMNS = [
    "task",
    "model",
    "split",
    "n",
    "score",
    "ci_low",
    "ci_high",
    "metric",
    "errors",
    "truncated",
    "no_answer",
    "tokens",
    "run_dir",
]


def report_rows(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """One row per (run, task) for run folders, or folders holding run folders."""
    from evalkit.report.runs import find_run_dirs, summary_rows

    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for d in find_run_dirs(paths)
        for row in summary_rows(d)
    ]


# How a metric's value reads in a table: accuracies are shown in percent, AMC in points.
METRIC_LABELS = {
    "accuracy": "accuracy %",
    "accuracy_strict": "accuracy % (strict)",
    "accuracy_official_compatible": "accuracy % (official-compatible)",
    "amc_points": "AMC points /150",
}


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def print_table(run_dirs: Sequence[Path], fmt: str = "table") -> None:
    rows = report_rows(run_dirs)
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    if fmt == "csv":
        import csv

        w = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        return
    headers = ["task", "model", "split", "n", "metric", "score", "95% CI", "errors", "truncated", "no answer"]
    body = [
        [
            r["task"],
            r["model"],
            r["split"],
            _fmt(r["n"]),
            METRIC_LABELS.get(str(r["metric"]), str(r["metric"])),
            _fmt(r["score"]),
            f"{_fmt(r['ci_low'])}-{_fmt(r['ci_high'])}" if r["ci_low"] is not None else "-",
            _fmt(r["errors"]),
            _fmt(r["truncated"]),
            _fmt(r["no_answer"]),
        ]
        for r in rows
    ]
    if fmt == "markdown":
        sys.stdout.write("| " + " | ".join(headers) + " |\n")
        sys.stdout.write("|" + "|".join("---" for _ in headers) + "|\n")
        for b in body:
            sys.stdout.write("| " + " | ".join(b) + " |\n")
        return
    if fmt != "table":
        raise EvalkitError(f"--format {fmt!r}: use table, markdown, csv or json")
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False)
    for h in headers:
        table.add_column(h, justify="right" if h not in ("task", "model", "split", "metric") else "left")
    for b in body:
        table.add_row(*b)
    Console(width=None if sys.stdout.isatty() else 160).print(table)

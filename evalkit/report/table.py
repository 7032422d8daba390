"""`evalkit report`: one table over run folders, and the one table printer every table-printing command
uses (a terminal table, markdown, CSV or JSON)."""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import EvalkitError
from evalkit.store import PRIMARY_SCORER

if TYPE_CHECKING:
    from rich.console import Console

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
    "scorer",
    "censored",
    "upper",
    "upper_ci_low",
    "upper_ci_high",
    "completion_per_answer",
    "reasoning_per_answer",
    "format_gap",
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


def format_cell(v: Any, signed: bool = False) -> str:
    """A table cell: ``-`` for nothing, floats to one decimal (with a sign when ``signed``)."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:+.1f}" if signed else f"{v:.1f}"
    return str(v)


# Wide enough for any row: piped or redirected output is read by programs and pagers, which must
# see whole cells (rich would otherwise fit the table to 80 columns and cut cells to "...").
PIPE_WIDTH = 10_000


def console() -> Console:
    """A rich console on stdout: the terminal's width on a terminal, no width limit otherwise."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else PIPE_WIDTH)


def print_rows(
    rows: Sequence[Mapping[str, Any]],
    headers: Sequence[str],
    fmt: str,
    *,
    cells: Callable[[Mapping[str, Any]], Sequence[str]] | None = None,
    fields: Sequence[str] | None = None,
    left: Collection[str] = (),
    title: str | None = None,
    footer: str = "",
    warnings: Sequence[str] = (),
) -> None:
    """Print a table as json, csv, markdown or a rich terminal table (``fmt`` "table").

    json and csv print ``rows`` as they are (csv: the ``fields`` columns, default ``headers``);
    markdown and table print ``headers`` over each row's ``cells`` (default: the row's values under
    the headers), then ``footer`` and ``warnings``. ``left`` names the left-aligned columns (text);
    the others are numbers, right-aligned. No cell is ever cut short: on a narrow terminal long cells
    fold onto a second line, and piped output has no width limit.
    """
    if fmt == "json":
        sys.stdout.write(json.dumps(list(rows), indent=2, default=str) + "\n")
        return
    if fmt == "csv":
        w = csv.DictWriter(sys.stdout, fieldnames=list(fields or headers), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        return
    if fmt not in ("markdown", "table"):
        raise EvalkitError(f"--format {fmt!r}: use table, markdown, csv or json")
    body = [list(cells(r)) if cells else [format_cell(r.get(h)) for h in headers] for r in rows]
    if fmt == "markdown":
        _print_markdown(headers, body, footer, warnings)
    else:
        _print_rich(headers, body, left, title, footer, warnings)


def _print_markdown(
    headers: Sequence[str], body: Sequence[Sequence[str]], footer: str, warnings: Sequence[str]
) -> None:
    out = sys.stdout
    out.write("| " + " | ".join(headers) + " |\n")
    out.write("|" + "|".join("---" for _ in headers) + "|\n")
    for b in body:
        out.write("| " + " | ".join(b) + " |\n")
    if footer:
        out.write("\n" + footer + "\n")
    for w in warnings:
        out.write(f"- {w}\n")


def _print_rich(
    headers: Sequence[str],
    body: Sequence[Sequence[str]],
    left: Collection[str],
    title: str | None,
    footer: str,
    warnings: Sequence[str],
) -> None:
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for h in headers:
        table.add_column(h, justify="left" if h in left else "right", overflow="fold")
    for b in body:
        table.add_row(*b)
    con = console()
    con.print(table)
    if footer:
        con.print(footer, style="dim")
    for w in warnings:
        con.print(f"[yellow]warning[/yellow] {w}")


REPORT_HEADERS = [
    "task",
    "model",
    "split",
    "n",
    "metric",
    "score",
    "95% CI",
    "errors",
    "truncated",
    "no answer",
    "censored",
    "if censored right",
    "tokens/answer",
    "vs main",
]
# The "vs main" column, explained under the table when a task has a second scorer.
GAP_FOOTER = (
    "vs main: this scorer's score minus the task's primary (strict) one, in points, on the same "
    "answers: how much of the score depends on the answer format (mmlu_pro [official]: "
    "official-compatible minus strict)."
)


def _report_cells(r: Mapping[str, Any]) -> list[str]:
    ci = f"{format_cell(r['ci_low'])}-{format_cell(r['ci_high'])}" if r["ci_low"] is not None else "-"
    task = r["task"] if r.get("scorer", PRIMARY_SCORER) == PRIMARY_SCORER else f"{r['task']} [{r['scorer']}]"
    return [
        task,
        r["model"],
        r["split"],
        format_cell(r["n"]),
        METRIC_LABELS.get(str(r["metric"]), str(r["metric"])),
        format_cell(r["score"]),
        ci,
        format_cell(r["errors"]),
        format_cell(r["truncated"]),
        format_cell(r["no_answer"]),
        format_cell(r.get("censored")),
        _upper_cell(r),
        _tokens_cell(r),
        format_cell(r.get("format_gap"), signed=True),
    ]


def _tokens_cell(r: Mapping[str, Any]) -> str:
    """Generated tokens per answer, with the reasoning part where the server reported it."""
    total, reasoning = r.get("completion_per_answer"), r.get("reasoning_per_answer")
    if total is None:
        return "-"
    return f"{total:.0f}" + (f" ({reasoning:.0f} reasoning)" if reasoning is not None else "")


def _upper_cell(r: Mapping[str, Any]) -> str:
    """The score with censored answers counted right, shown only when some were censored."""
    if not r.get("censored") or r.get("upper") is None:
        return "-"
    return f"{format_cell(r['upper'])} ({format_cell(r['upper_ci_low'])}-{format_cell(r['upper_ci_high'])})"


def print_table(run_dirs: Sequence[Path], fmt: str = "table") -> None:
    """`evalkit report`: one row per (run, task)."""
    rows = report_rows(run_dirs)
    print_rows(
        rows,
        REPORT_HEADERS,
        fmt,
        cells=_report_cells,
        fields=COLUMNS,
        left=("task", "model", "split", "metric"),
        footer=GAP_FOOTER if any(r.get("format_gap") is not None for r in rows) else "",
    )

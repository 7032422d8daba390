"""The one table printer (report/table.py print_rows): json, csv, markdown and a rich table, and whole
cells when the output goes to a pipe rather than a terminal."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from test_contamination_gap import POST_DAY, PRE_DAY, rec
from test_contamination_gap import write_run as write_gap_run
from test_frontier import write_run

from evalkit.errors import EvalkitError
from evalkit.report.table import format_cell, print_rows
from tests.conftest import run_cli

# Longer than any column rich gives a cell at 80 columns, and with no space to wrap at.
LONG_TASK = "competition_math_post_cutoff_amc_and_aime_dated_by_contest_day_with_figures_kept"
ROWS = [
    {"task": LONG_TASK, "n": 12, "score": 41.25, "extra": "not shown"},
    {"task": "t", "n": None, "score": 7.0, "extra": ""},
]
HEADERS = ["task", "n", "score"]


def printed(capsys: pytest.CaptureFixture[str], fmt: str, **kw: object) -> str:
    print_rows(ROWS, HEADERS, fmt, **kw)  # type: ignore[arg-type]
    return capsys.readouterr().out


def test_machine_formats_print_the_rows_as_they_are(capsys: pytest.CaptureFixture[str]) -> None:
    assert json.loads(printed(capsys, "json")) == ROWS
    table = list(csv.DictReader(io.StringIO(printed(capsys, "csv"))))
    assert table[0] == {"task": LONG_TASK, "n": "12", "score": "41.25"}  # headers are the fields
    table = list(csv.DictReader(io.StringIO(printed(capsys, "csv", fields=["task", "extra"]))))
    assert table[1] == {"task": "t", "extra": ""}


def test_markdown_cells_footer_and_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, "markdown", footer="scores in percent", warnings=["t: few items"])
    assert out.splitlines()[:4] == [
        "| task | n | score |",
        "|---|---|---|",
        f"| {LONG_TASK} | 12 | 41.2 |",
        "| t | - | 7.0 |",
    ]
    assert out.endswith("\nscores in percent\n- t: few items\n")
    out = printed(capsys, "markdown", cells=lambda r: [r["task"].upper(), "x", "y"])
    assert "| T | x | y |" in out


def test_rich_table_keeps_every_cell_whole_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, "table", left=["task"], title="demo", warnings=["t: few items"])
    assert LONG_TASK in out and "…" not in out
    assert "demo" in out and "warning t: few items" in out


def test_unknown_format_and_cells() -> None:
    with pytest.raises(EvalkitError, match="use table, markdown, csv or json"):
        print_rows(ROWS, HEADERS, "html")
    assert [format_cell(v) for v in (None, 1.25, 3, "x")] == ["-", "1.2", "3", "x"]
    assert format_cell(2.0, signed=True) == "+2.0" and format_cell(-0.04, signed=True) == "-0.0"


def test_report_through_a_pipe_prints_whole_task_names(tmp_path: Path) -> None:
    """`evalkit report RUN | cat`: the real entry point with stdout a pipe, not a terminal."""
    run = write_run(tmp_path / "run", "org/model", {LONG_TASK: (0.5, 0.4, 0.6, 100)})
    proc = run_cli("report", str(run), env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    assert LONG_TASK in proc.stdout and "…" not in proc.stdout


def test_report_by_cutoff_through_a_pipe_prints_whole_task_names(tmp_path: Path) -> None:
    records = [rec(LONG_TASK, f"a{i}", PRE_DAY, i < 5) for i in range(10)]
    records += [rec(LONG_TASK, f"b{i}", POST_DAY, i < 3) for i in range(10)]
    run = write_gap_run(tmp_path / "run", records, {"alias": "tiny"})
    proc = run_cli("report", "--by-cutoff", "--cutoff", "2024-06-30", str(run), env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    assert LONG_TASK in proc.stdout and "…" not in proc.stdout

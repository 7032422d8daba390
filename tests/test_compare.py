"""`evalkit compare`: paired comparison of two runs on shared items."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from runfolders import record, write_records
from typer.testing import CliRunner

from evalkit.cli import commands_grade
from evalkit.errors import EvalkitError
from evalkit.report.compare import compare_runs, format_comparisons
from evalkit.scoring.stats import mcnemar_exact


def write_run(path: Path, outcomes: dict[tuple[str, str], list[bool | None]], version: int = 1) -> Path:
    """A run folder whose records carry the given grades (None = a request that failed)."""
    recs = [
        record(task, sid, rep, correct=ok, version=version)
        for (task, sid), oks in outcomes.items()
        for rep, ok in enumerate(oks)
    ]
    return write_records(path, recs)


def test_binary_comparison_uses_mcnemar(tmp_path: Path) -> None:
    # 100 shared items: A right and B wrong on 15, the reverse on 5, same outcome on 80.
    a, b = {}, {}
    for i in range(100):
        key = ("t", str(i))
        ra = i < 15 or 20 <= i < 60
        rb = 15 <= i < 20 or 20 <= i < 60
        a[key], b[key] = [ra], [rb]
    a[("t", "only_a")] = [True]
    b[("t", "only_b")] = [False]
    (c,) = compare_runs(write_run(tmp_path / "A", a), write_run(tmp_path / "B", b), n_boot=4000)
    assert c.n_shared == 100 and (c.only_a, c.only_b) == (1, 1)
    assert (c.a_only_correct, c.b_only_correct) == (15, 5)
    assert c.diff == pytest.approx(0.10)
    assert c.score_a == pytest.approx(0.55) and c.score_b == pytest.approx(0.45)
    assert c.test == "mcnemar_exact" and c.p_value == pytest.approx(mcnemar_exact(15, 5))
    assert c.ci_low < 0.10 < c.ci_high
    text = format_comparisons([c], "A", "B")
    assert "+0.100" in text and "mcnemar_exact" in text and "1 only in A" in text


def test_repeats_use_the_bootstrap_and_errors_are_left_out(tmp_path: Path) -> None:
    a = {("t", str(i)): [True, True, False, None] for i in range(40)}
    b = {("t", str(i)): [True, False, False, False] for i in range(40)}
    (c,) = compare_runs(write_run(tmp_path / "A", a), write_run(tmp_path / "B", b), n_boot=2000)
    assert c.test == "paired_bootstrap"
    assert c.score_a == pytest.approx(2 / 3) and c.score_b == pytest.approx(0.25)
    assert c.diff == pytest.approx(2 / 3 - 0.25)
    assert c.p_value < 0.01


def test_version_warning_and_errors(tmp_path: Path) -> None:
    a = write_run(tmp_path / "A", {("t", "1"): [True], ("u", "1"): [True]})
    b = write_run(tmp_path / "B", {("t", "1"): [False]}, version=2)
    (c,) = compare_runs(a, b)
    assert c.task == "t" and any("versions differ" in w for w in c.warnings)
    with pytest.raises(EvalkitError, match="not in both runs"):
        compare_runs(a, b, tasks=["u"])
    d = write_run(tmp_path / "D", {("v", "1"): [True]})
    with pytest.raises(EvalkitError, match="share no task"):
        compare_runs(a, d)
    with pytest.raises(EvalkitError, match="no records.jsonl"):
        compare_runs(a, tmp_path / "nowhere")


def test_compare_command(tmp_path: Path) -> None:
    a = write_run(tmp_path / "A", {("t", str(i)): [i % 2 == 0] for i in range(20)})
    b = write_run(tmp_path / "B", {("t", str(i)): [i % 4 == 0] for i in range(20)})
    app = typer.Typer()
    commands_grade.register(app)
    runner = CliRunner()
    res = runner.invoke(app, ["compare", str(a), str(b)])
    assert res.exit_code == 0, res.output
    assert "n shared" in res.output and "+0.250" in res.output
    res = runner.invoke(app, ["compare", str(a), str(b), "--json", "--seed", "3"])
    data = json.loads(res.output)
    assert data[0]["n_shared"] == 20 and data[0]["diff"] == pytest.approx(0.25)
    assert data[0]["p_value"] == pytest.approx(mcnemar_exact(5, 0))

"""`evalkit report` on a task with a strict and an official-compatible scorer: both rows, and the gap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.report.runs import summary_rows
from evalkit.report.table import print_table


def _metric(value: float, n: int = 100) -> dict:
    return {"value": value, "ci_low": value - 0.05, "ci_high": value + 0.05, "n_items": n}


def make_run(root: Path, name: str, strict: float, official: float) -> Path:
    run = root / name
    run.mkdir(parents=True)
    summary = {
        "run_id": name,
        "model": {"backend": "replay", "model": name, "alias": name},
        "tasks": {
            "mmlu_pro": {
                "task": "mmlu_pro",
                "n_items": 100,
                "primary": "accuracy",
                "metrics": {"accuracy": _metric(strict)},
                "scorers": {
                    "official": {
                        "version": "x",
                        "primary": "accuracy_official_compatible",
                        "metrics": {
                            "accuracy_official_compatible": _metric(official),
                            "accuracy_strict": _metric(strict + 0.01),
                        },
                    }
                },
            },
            "math500": {
                "task": "math500",
                "n_items": 5,
                "primary": "accuracy",
                "metrics": {"accuracy": _metric(0.2, 5)},
            },
        },
    }
    (run / "summary.json").write_text(json.dumps(summary))
    return run


def test_rows_carry_the_gap_between_official_compatible_and_strict(tmp_path: Path) -> None:
    rows = summary_rows(make_run(tmp_path, "m1", strict=0.40, official=0.46))
    by = {(r["task"], r["scorer"]): r for r in rows}
    assert by[("mmlu_pro", "main")]["format_gap"] is None
    assert by[("mmlu_pro", "official")]["format_gap"] == pytest.approx(6.0)  # points
    assert by[("math500", "main")]["format_gap"] is None  # one scorer: no gap


def test_report_shows_both_scorers_and_the_gap_per_model(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    make_run(tmp_path, "m1", strict=0.40, official=0.46)
    make_run(tmp_path, "m2", strict=0.70, official=0.69)
    print_table([tmp_path], fmt="markdown")
    out = capsys.readouterr().out
    assert "| vs main |" in out.splitlines()[0]
    lines = [ln for ln in out.splitlines() if ln.startswith("| mmlu_pro")]
    assert len(lines) == 4
    m1 = [ln for ln in lines if "| m1 |" in ln]
    assert m1[0].startswith("| mmlu_pro | m1 |") and m1[0].rstrip().endswith("| - |")
    assert m1[1].startswith("| mmlu_pro [official] | m1 |") and m1[1].rstrip().endswith("| +6.0 |")
    m2 = [ln for ln in lines if "| m2 |" in ln]
    assert m2[1].rstrip().endswith("| -1.0 |")
    assert "official-compatible minus strict" in out


def test_report_without_a_second_scorer_has_no_gap_footer(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = make_run(tmp_path, "m1", strict=0.4, official=0.5)
    summary = json.loads((run / "summary.json").read_text())
    del summary["tasks"]["mmlu_pro"]["scorers"]
    (run / "summary.json").write_text(json.dumps(summary))
    print_table([tmp_path], fmt="markdown")
    assert "minus strict" not in capsys.readouterr().out

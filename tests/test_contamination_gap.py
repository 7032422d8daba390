"""The pre/post-cutoff gap report on hand-made run folders: its arithmetic, its intervals (checked
against Newcombe's 1998 published examples), repeats, errors, undated items and the cutoff's origin."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from evalkit.errors import EvalkitError
from evalkit.report.cutoff_gap import gap_rows, mover_difference, newcombe_interval, print_gap_table
from evalkit.scoring.stats import clustered_interval, wilson_interval
from tests.conftest import run_cli

PRE_DAY, POST_DAY = "2024-03-01", "2024-11-06"


def rec(task: str, sid: str, date: str | None, correct: bool | None, repeat: int = 0) -> dict:
    """One records.jsonl line; correct=None makes a failed request (status error)."""
    ok = correct is not None
    return {
        "key": f"{task}:{sid}:{repeat}", "task": task, "sample_id": sid, "repeat": repeat,
        "status": "ok" if ok else "error",
        "completion": {"text": "x", "finish_reason": "stop" if ok else "error"},
        "extraction": {"answer": "x", "method": "boxed", "status": "ok"} if ok else None,
        "grade": {"correct": correct, "reason": "", "points": None} if ok else None,
        "sample": {"id": sid, "task": task, "question": "q", "answer": "a", "date": date, "meta": {}},
    }  # fmt: skip


def write_run(d: Path, records: list[dict], model: dict, manifest: dict | None = None) -> Path:
    d.mkdir(parents=True)
    (d / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    tasks = {t: {"task": t, "split": "all"} for t in dict.fromkeys(r["task"] for r in records)}
    (d / "summary.json").write_text(
        json.dumps({"run_id": d.name, "model": model, "tasks": tasks}), encoding="utf-8"
    )
    (d / "manifest.json").write_text(json.dumps(manifest or {"filter": {}}), encoding="utf-8")
    return d


def test_newcombe_matches_published_examples() -> None:
    """Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10."""
    cases = [
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        ((6, 7, 2, 7), (0.0582, 0.8062)),
        ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ]
    for (k1, n1, k2, n2), (lo, hi) in cases:
        d, got_lo, got_hi = newcombe_interval(k1, n1, k2, n2)
        assert d == pytest.approx(k1 / n1 - k2 / n2)
        assert (round(got_lo, 4), round(got_hi, 4)) == (lo, hi)


def test_gap_rows_one_answer_per_item(tmp_path: Path) -> None:
    records = (
        [rec("math", f"p{i}", PRE_DAY, i < 56) for i in range(70)]
        + [rec("math", f"q{i}", POST_DAY, i < 48) for i in range(80)]
        + [rec("math", "u1", None, True), rec("math", "u2", None, False)]  # undated: counted, in neither side
        + [rec("math", "e1", POST_DAY, None), rec("math", "e2", PRE_DAY, None)]  # errors: never wrong answers
    )
    run = write_run(tmp_path / "run", records, {"model": "m"})
    [row] = gap_rows([run], cutoff="2024-06-30")
    assert (row["pre_n"], row["post_n"], row["n_undated"], row["errors"]) == (70, 80, 2, 2)
    assert row["pre_score"] == pytest.approx(80.0) and row["post_score"] == pytest.approx(60.0)
    lo, hi = wilson_interval(56, 70)
    assert (row["pre_ci_low"], row["pre_ci_high"]) == pytest.approx((lo * 100, hi * 100))
    assert row["gap"] == pytest.approx(20.0)
    assert (round(row["gap_ci_low"], 2), round(row["gap_ci_high"], 2)) == (5.24, 33.39)
    assert row["interval"] == "newcombe" and row["cutoff_figure"] == "command_line"
    assert row["warning"] is None


def test_gap_with_repeats_uses_clustered_intervals(tmp_path: Path) -> None:
    # Pre: 40 items x 3 repeats, item i correct on (i % 4) of 3 repeats (capped); post: 30 items x 3.
    records, pre_vals, post_vals = [], {}, {}
    for i in range(40):
        k = min(i % 4, 3)
        pre_vals[f"p{i}"] = [1.0 if r < k else 0.0 for r in range(3)]
        records += [rec("aime", f"p{i}", PRE_DAY, r < k, r) for r in range(3)]
    for i in range(30):
        k = 1 if i % 3 == 0 else 0
        post_vals[f"q{i}"] = [1.0 if r < k else 0.0 for r in range(3)]
        records += [rec("aime", f"q{i}", POST_DAY, r < k, r) for r in range(3)]
    run = write_run(tmp_path / "run", records, {"model": "m"})
    [row] = gap_rows([run], cutoff="2024-06-30")
    p, pl, ph = clustered_interval(pre_vals)
    q, ql, qh = clustered_interval(post_vals)
    d, dl, dh = mover_difference(p, pl, ph, q, ql, qh)
    assert row["pre_records"] == 120 and row["post_records"] == 90
    assert row["interval"] == "mover_clustered"
    assert row["gap"] == pytest.approx(d * 100) and row["gap_ci_low"] == pytest.approx(dl * 100)
    assert row["gap_ci_high"] == pytest.approx(dh * 100)
    # By hand: pre mean = (0+1+2+3)*10/120, post = 10/90; MOVER half-widths from each side's own half-widths.
    assert p == pytest.approx(60 / 120) and q == pytest.approx(10 / 90)
    assert dl == pytest.approx(d - math.sqrt((p - pl) ** 2 + (qh - q) ** 2))


def test_cutoff_from_manifest_then_catalog_then_error(tmp_path: Path) -> None:
    records = [rec("t", f"a{i}", "2024-06-30", True) for i in range(3)] + [
        rec("t", f"b{i}", "2024-07-01", False) for i in range(3)
    ]
    # The cutoff the run was split at wins over the catalog.
    manifest = {
        "filter": {
            "split": "all",
            "cutoff": "2024-07-01",
            "cutoff_source": {"figure": "command_line", "text": "--cutoff"},
        }
    }
    [row] = gap_rows([write_run(tmp_path / "a", records, {"alias": "phi-4"}, manifest)])
    assert row["cutoff"] == "2024-07-01" and row["pre_n"] == 6 and row["post_n"] == 0
    assert row["gap"] is None and "no post-cutoff items" in row["warning"]
    # Else the catalog's cutoff for the run's model (phi-4: 2024-06-30; the cutoff day is pre).
    [row] = gap_rows([write_run(tmp_path / "b", records, {"alias": "phi-4", "model": "microsoft/phi-4"})])
    assert (row["cutoff"], row["cutoff_figure"]) == ("2024-06-30", "knowledge_cutoff")
    assert (row["pre_score"], row["post_score"], row["gap"]) == (100.0, 0.0, 100.0)
    assert "only 3 post-cutoff items" in row["warning"]
    # A model the catalog does not know needs --cutoff.
    run_c = write_run(
        tmp_path / "c", records, {"model": "my-finetune", "spec": "openai:http://h/v1@my-finetune"}
    )
    with pytest.raises(EvalkitError, match="--cutoff YYYY-MM-DD"):
        gap_rows([run_c])
    assert gap_rows([run_c], cutoff="2024-06-30")[0]["post_n"] == 3


def test_margin_days_drop_items_near_the_cutoff(tmp_path: Path) -> None:
    records = [
        rec("t", "a", "2024-06-30", True),
        rec("t", "b", "2024-07-05", True),
        rec("t", "c", "2024-07-20", False),
    ]
    [row] = gap_rows(
        [write_run(tmp_path / "r", records, {"model": "m"})], cutoff="2024-06-30", margin_days=10
    )
    assert (row["pre_n"], row["n_margin"], row["post_n"]) == (1, 1, 1)


def test_print_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = [rec("t", f"a{i}", PRE_DAY, i % 2 == 0) for i in range(10)] + [
        rec("t", f"b{i}", POST_DAY, i < 2) for i in range(10)
    ]
    run = write_run(tmp_path / "r", records, {"alias": "tiny"})
    print_gap_table([run], "markdown", cutoff="2024-06-30")
    out = capsys.readouterr().out
    assert "| t | tiny | 2024-06-30 | 10 | 50.0 (" in out and "| +30.0 (" in out and "newcombe" in out
    rows = print_gap_table([run], "json", cutoff="2024-06-30")
    assert json.loads(capsys.readouterr().out) == rows
    print_gap_table([run], "csv", cutoff="2024-06-30")
    assert capsys.readouterr().out.splitlines()[0].startswith("task,model,cutoff")
    with pytest.raises(EvalkitError, match="no summary.json"):
        gap_rows([tmp_path / "nothing"])


def test_report_by_cutoff_csv(tmp_path: Path) -> None:
    # One command prints the table: `evalkit report --by-cutoff` (there is no second copy).
    records = [rec("t", f"a{i}", PRE_DAY, i < 7) for i in range(10)] + [
        rec("t", f"b{i}", POST_DAY, i < 3) for i in range(10)
    ]
    run = write_run(tmp_path / "r", records, {"alias": "phi-4"})
    r = run_cli("report", "--by-cutoff", str(run), "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert ",70.0," in r.stdout and ",30.0," in r.stdout and ",40.0," in r.stdout  # pre, post, gap


def test_clustered_gap_interval_covers_the_true_gap_in_simulation() -> None:
    # An independent check of the repeats case: items differ in difficulty (each item's pass rate is
    # drawn from a Beta), answers repeat per item, and the 95% interval for pre - post must cover the
    # true population gap about 95% of the time (here: 93-99% of 400 simulated runs).
    import datetime
    import random

    from evalkit.report.cutoff_gap import gap_for_rows
    from evalkit.scoring.metrics import ScoredRow

    rng = random.Random(7)
    n_items, repeats, cut = 60, 4, datetime.date(2024, 6, 30)
    mean_pre, mean_post = 0.7, 0.5  # Beta(7, 3) and Beta(5, 5) means
    covered = 0
    for _ in range(400):
        rows = []
        for side, (a, b), day in (("p", (7, 3), "2024-01-01"), ("q", (5, 5), "2024-12-01")):
            for i in range(n_items):
                rate = rng.betavariate(a, b)
                for k in range(repeats):
                    rows.append(ScoredRow(f"{side}{i}", k, rng.random() < rate, meta={"date": day}))
        g = gap_for_rows(rows, cut)
        covered += g["gap_low"] <= mean_pre - mean_post <= g["gap_high"]
    assert 0.93 <= covered / 400 <= 0.99, covered

"""The runner over the store without a model server: a replayed source run stands in for the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runfolders import record, write_records

from evalkit.run.runner import RunConfig, run_evaluation
from evalkit.scoring.registry import scorer_version
from evalkit.store import RunFolder, Score
from evalkit.types import Extraction, Grade, Sample
from tests.conftest import REPO, run_cli

LETTERS = "ABCD"


def basic_facts_source(root: Path, right_every: int = 2) -> Path:
    """A folder of stored answers to basic_facts: every ``right_every``-th item answered right."""
    items = [json.loads(x) for x in (REPO / "tasks" / "basic_facts.jsonl").read_text().splitlines()]
    recs = []
    for i, it in enumerate(items):
        letter = it["answer"] if i % right_every == 0 else LETTERS[(LETTERS.index(it["answer"]) + 1) % 4]
        sample = Sample(it["id"], "basic_facts", it["question"], it["answer"], tuple(it["options"]))
        recs.append(
            record("basic_facts", it["id"], correct=True, text=f"The answer is ({letter}).", sample=sample)
        )
    return write_records(root / "source", recs)


def _run(source: Path, out: Path, **kw) -> object:
    cfg = RunConfig(
        tasks=["basic_facts"], model=f"replay:{source}", out=out, progress=False, use_cache=False, **kw
    )
    return run_evaluation(cfg)


def test_a_run_over_replayed_answers_grades_them_itself(tmp_path: Path) -> None:
    res = _run(basic_facts_source(tmp_path), tmp_path / "out")
    assert (res.n_requests, res.n_sent, res.n_errors) == (20, 20, 0)
    acc = res.summary["tasks"]["basic_facts"]["metrics"]["accuracy"]["value"]
    assert acc == pytest.approx(0.5)  # the source's stored grades (all "correct") are not trusted
    assert res.summary["tasks"]["basic_facts"]["scoring_versions"] == {
        "main": [scorer_version("choice", "choice")]
    }


def test_resume_regrades_answers_scored_by_older_code(tmp_path: Path) -> None:
    source, out = basic_facts_source(tmp_path), tmp_path / "out"
    _run(source, out)
    folder = RunFolder(out)
    # Pretend the first pass ran older scoring code that graded everything wrong.
    stale = Score(Extraction("A", "old"), Grade(False, "old"), "choice.0+choice.0")
    folder.rewrite([r.replace(scores={"main": stale}) for r in folder.records()])
    res = _run(source, out)
    assert (res.n_sent, res.n_resumed, res.n_regraded) == (0, 20, 20)
    assert {r.primary.version for r in folder.records()} == {scorer_version("choice", "choice")}
    assert res.summary["tasks"]["basic_facts"]["metrics"]["accuracy"]["value"] == pytest.approx(0.5)
    assert _run(source, out).n_regraded == 0  # regraded once, then current


def test_more_repeats_and_a_larger_budget_extend_the_same_folder(tmp_path: Path) -> None:
    source = basic_facts_source(tmp_path)
    first = _run(source, None, results_dir=tmp_path / "runs")
    second = _run(source, None, results_dir=tmp_path / "runs", overrides={"max_tokens": 512})
    assert first.run_dir == second.run_dir and second.n_sent == 20  # new budget, new requests
    budgets = sorted(r.max_tokens for r in RunFolder(first.run_dir).records())
    assert budgets == [256] * 20 + [512] * 20
    assert second.summary["tasks"]["basic_facts"]["n_records"] == 20  # the summary counts this budget


def test_merge_without_a_model_server(tmp_path: Path) -> None:
    source = basic_facts_source(tmp_path, right_every=3)
    whole = _run(source, tmp_path / "whole")
    shards = [str(_run(source, tmp_path / f"s{i}", shard=(i, 2)).run_dir) for i in range(2)]
    r = run_cli("merge", "--out", str(tmp_path / "merged"), *shards)
    assert r.returncode == 0, r.stderr
    merged = json.loads((tmp_path / "merged" / "summary.json").read_text())["tasks"]["basic_facts"]
    assert merged["metrics"] == whole.summary["tasks"]["basic_facts"]["metrics"]
    # A merge killed before its manifest was written can be run again into the same folder.
    (tmp_path / "merged" / "manifest.json").unlink()
    assert run_cli("merge", "--out", str(tmp_path / "merged"), *shards).returncode == 0
    # A folder holding a run of its own is never merged into.
    r = run_cli("merge", "--out", str(whole.run_dir), *shards)
    assert r.returncode == 2 and "already holds records" in r.stderr


def test_a_task_with_two_scorers_grades_each_answer_twice(tmp_path: Path) -> None:
    tdir = tmp_path / "tasks"
    tdir.mkdir()
    (tdir / "basic_facts.jsonl").write_text((REPO / "tasks" / "basic_facts.jsonl").read_text())
    yaml_text = (REPO / "tasks" / "basic_facts.yaml").read_text()
    extra = "scorers:\n  - name: verbatim\n    extract: exact\n    grade: exact\n    metrics: [accuracy]\n"
    (tdir / "basic_facts.yaml").write_text(yaml_text.replace("generation:", extra + "generation:"))
    source = basic_facts_source(tmp_path)
    res = _run(source, tmp_path / "out", tasks_dirs=[str(tdir)])
    assert res.n_sent == 20  # one request per item, whatever the number of scorers
    recs = RunFolder(tmp_path / "out").records()
    assert all(set(r.scores) == {"main", "verbatim"} for r in recs)
    assert {r.scores["verbatim"].version for r in recs} == {"exact.1+exact.1"}
    t = res.summary["tasks"]["basic_facts"]
    assert t["metrics"]["accuracy"]["value"] == pytest.approx(0.5)
    assert t["scorers"]["verbatim"]["metrics"]["accuracy"]["value"] == 0.0  # "The answer is (C)." != "C"
    r = run_cli("report", str(tmp_path / "out"), "--format", "csv")
    assert r.returncode == 0, r.stderr
    import csv
    import io

    rows = [x for x in csv.DictReader(io.StringIO(r.stdout)) if x["task"] == "basic_facts"]
    assert [(x["scorer"], x["metric"]) for x in rows] == [("main", "accuracy"), ("verbatim", "accuracy")]
    assert float(rows[0]["score"]) == pytest.approx(50.0) and float(rows[1]["score"]) == 0.0

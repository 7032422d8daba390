"""`evalkit rescore`: stored completions are re-extracted and re-graded with the current code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import runfolders
import typer
from typer.testing import CliRunner

from evalkit import __version__
from evalkit.cli import commands_grade
from evalkit.errors import EvalkitError
from evalkit.run.rescore import rescore_run
from evalkit.scoring.registry import scorer_version
from evalkit.store import Record, RunFolder
from evalkit.tasks.spec import TaskSpec
from evalkit.types import BackendInfo, Extraction, Sample

MATH_SPEC = {
    "name": "mini_math",
    "version": 2,
    "dataset": {"files": ["mini_math.jsonl"]},
    "fields": {"question": "problem", "answer": "answer", "meta": {"level": "level"}},
    "prompt": {"template": "{{ question }}"},
    "extract": "boxed",
    "grade": {"name": "math", "options": {"timeout_s": 3}},
    "metrics": ["accuracy", "pass@2"],
    "generation": {"stop": ["Question:"], "repeats": 2},
    "report": {"breakdown": ["level"]},
}
CHOICE_SPEC = {
    "name": "mini_choice",
    "version": 1,
    "dataset": {"files": ["mini_choice.jsonl"]},
    "fields": {"question": "question", "answer": "answer", "choices": "options"},
    "prompt": {"template": "{{ question }}"},
    "extract": "choice",
    "grade": "choice",
    "generation": {"stop": ["Question:"]},
}
BACKEND = BackendInfo("replay", "tiny-model")


def record(
    task: str, sid: str, repeat: int, text: str, sample: Sample, *, correct: bool | None, finish: str = "stop"
) -> Record:
    return runfolders.record(
        task, sid, repeat, correct=correct, text=text, sample=sample, finish=finish, answer="stale"
    )


def make_run(root: Path) -> Path:
    run = root / "run1"
    run.mkdir()
    m1 = Sample("m1", "mini_math", "half?", "0.5", meta={"level": 1})
    m2 = Sample("m2", "mini_math", "three?", "3", meta={"level": 2})
    c1 = Sample("c1", "mini_choice", "pick", "B", choices=("1", "2", "3", "4"))
    recs = [
        # graded wrong by "old code", right today
        record("mini_math", "m1", 0, "so \\boxed{\\frac{1}{2}}", m1, correct=False),
        record("mini_math", "m1", 1, "so \\boxed{0.25}", m1, correct=True),  # wrong today
        # the stop sequence hides an invented follow-up question
        record("mini_math", "m2", 0, "\\boxed{3}\nQuestion: what is 2+2?\n\\boxed{4}", m2, correct=False),
        # an error, retried later: the last line per key wins
        record("mini_math", "m2", 1, "", m2, correct=None, finish="error"),
        record("mini_math", "m2", 1, "it is \\boxed{3}", m2, correct=False),
        # an error that stays an error
        record("mini_choice", "c1", 0, "", c1, correct=None, finish="error"),
        record("mini_choice", "c1", 1, "The answer is (B).", c1, correct=False),
    ]
    runfolders.write_records(run, recs)
    manifest = {
        "run_id": "run1",
        "backend": BACKEND.to_dict(),
        "tasks": {
            s["name"]: {
                "path": f"/tasks/{s['name']}.yaml",
                "sha256": "0" * 64,
                "spec": TaskSpec.model_validate(s).model_dump(mode="json"),
            }
            for s in (MATH_SPEC, CHOICE_SPEC)
        },
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    old_summary = {
        "run_id": "run1",
        "model": {**BACKEND.to_dict(), "alias": "tiny"},
        "tasks": {"mini_math": {"split": "post_cutoff", "metrics": {}}},
    }
    (run / "summary.json").write_text(json.dumps(old_summary))
    return run


def test_rescore_regrades_and_keeps_the_old_records(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    old_bytes = (run / "records.jsonl").read_bytes()
    res = rescore_run(run)

    assert res.backup is not None and res.backup.name.startswith("records.pre-rescore-")
    assert res.backup.read_bytes() == old_bytes
    new = {r.key: r for r in RunFolder(run).iter_records()}
    assert len(new) == 6 == res.records  # one line per record
    assert new["mini_math:m1:0"].primary.grade.correct is True
    assert new["mini_math:m1:0"].primary.extraction == Extraction("\\frac{1}{2}", "boxed", "ok")
    assert new["mini_math:m1:0"].primary.version == scorer_version("boxed", "math")  # stamped
    assert new["mini_math:m1:1"].primary.grade.correct is False
    assert new["mini_math:m2:0"].primary.extraction.answer == "3"  # cut at "Question:"
    assert new["mini_math:m2:1"].primary.grade.correct is True  # the retried answer, not the error
    assert new["mini_choice:c1:0"].status == "error" and new["mini_choice:c1:0"].primary is None
    assert new["mini_choice:c1:1"].primary.grade.correct is True
    assert (res.rescored, res.errors_kept) == (5, 1)
    assert res.changed == 5  # every stale verdict flipped
    assert res.before["mini_math"] == 0.25 and res.after["mini_math"] == 0.75

    summary = json.loads((run / "summary.json").read_text())
    t = summary["tasks"]["mini_math"]
    assert t["metrics"]["accuracy"]["value"] == pytest.approx(0.75)
    assert t["metrics"]["pass@2"]["value"] == pytest.approx(1.0)
    assert t["version"] == 2 and t["repeats"] == 2 and t["errors"] == 0
    assert set(t["breakdown"]["level"]) == {"1", "2"}
    assert t["split"] == "post_cutoff"  # fields the runner added are carried over
    c = summary["tasks"]["mini_choice"]
    assert c["errors"] == 1 and c["metrics"]["accuracy"]["value"] == 1.0
    assert summary["model"]["alias"] == "tiny"

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["rescored"]["evalkit_version"] == __version__
    assert manifest["rescored"]["time"] and manifest["rescored"]["records_backup"] == res.backup.name
    assert manifest["rescored"]["history"] == []


def test_rescoring_twice_keeps_history(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    first = rescore_run(run)
    second = rescore_run(run)
    assert second.changed == 0 and second.backup != first.backup and second.backup.exists()
    manifest = json.loads((run / "manifest.json").read_text())
    assert len(manifest["rescored"]["history"]) == 1
    assert manifest["rescored"]["history"][0]["records_backup"] == first.backup.name


def test_rescore_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(EvalkitError, match="not a folder"):
        rescore_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvalkitError, match="no manifest.json"):
        rescore_run(tmp_path / "empty")
    run = make_run(tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["tasks"]["mini_math"]["spec"]["extract"]["name"] = 5
    del manifest["tasks"]["mini_math"]["spec"]["version"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EvalkitError, match="does not validate"):
        rescore_run(run)


def test_rescore_command(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    app = typer.Typer()
    commands_grade.register(app)
    result = CliRunner().invoke(app, ["rescore", str(run)])
    assert result.exit_code == 0, result.output
    assert "rescored 5 records (5 changed correctness; 1 errors kept as errors)" in result.output
    assert "mini_math: accuracy 0.2500 -> 0.7500" in result.output

"""The run store: Record round trips (schemas 1 and 2), torn lines, atomic rewrite, JSON errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evalkit.errors import EvalkitError
from evalkit.store import RECORD_SCHEMA, Record, RunFolder, Score, read_json_file
from evalkit.types import Completion, Extraction, Grade, Sample, Usage


def rec(key: str, v: int = 0, task: str = "t", status: str = "ok") -> Record:
    comp = (
        Completion(f"answer {v}", "stop", Usage(3, v))
        if status == "ok"
        else Completion("", "error", error="x")
    )
    scores = {"main": Score(Extraction("A", "answer_is"), Grade(v % 2 == 0, "r"), "choice.1+choice.1")}
    sample = Sample(key, task, "q?", "A", ("x", "y"))
    scores = scores if status == "ok" else {}
    return Record(key, task, key, 0, status, comp, sample=sample, scores=scores, max_tokens=64)


def test_record_round_trip_keeps_every_field() -> None:
    r = rec("a", 2).replace(censoring="answered", judge={"reply": "B", "prompt_version": 1}, cached=True)
    back = Record.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    assert back.to_dict()["schema"] == RECORD_SCHEMA and back.primary.grade.correct


def test_schema_1_records_stay_readable() -> None:
    # A line as evalkit 0.1 wrote it: one extraction and one grade at the top level, no version.
    old = {
        "key": "k", "task": "t", "task_version": 1, "sample_id": "7", "repeat": 1, "model": "m",
        "status": "ok",
        "completion": {"text": "The answer is (B)", "finish_reason": "stop", "usage": {"prompt_tokens": 5}},
        "extraction": {"answer": "B", "method": "answer_is", "status": "ok"},
        "grade": {"correct": True, "reason": "B == B", "points": None},
        "sample": {"id": "7", "task": "t", "question": "q", "answer": "B", "choices": ["a", "b"]},
        "cached": False, "time": "2026-11-01T00:00:00+00:00",
    }  # fmt: skip
    r = Record.from_dict(old)
    assert r.primary is not None and r.primary.grade.correct and r.primary.version is None
    assert r.primary.extraction.answer == "B" and r.sample.choices == ("a", "b")
    assert r.max_tokens is None and r.id == ("t", "7", 1, "k")
    err = Record.from_dict({**old, "status": "error", "grade": None, "extraction": None})
    assert err.scores == {}


def test_a_newer_schema_is_a_clear_error() -> None:
    with pytest.raises(EvalkitError, match="upgrade evalkit"):
        Record.from_dict({**rec("a").to_dict(), "schema": RECORD_SCHEMA + 1})


def test_torn_line_is_skipped_then_cut_and_last_line_wins(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    folder.append([rec("a", 1), rec("b", 1)])
    with folder.records_path.open("ab") as f:
        f.write(b'{"key": "c", "v"')  # a kill in the middle of a write
    assert [r.key for r in folder.iter_records()] == ["a", "b"]
    folder.append([rec("c", 2), rec("a", 3), rec("a", 4, task="other")])  # same request, other task
    with folder.records_path.open("ab") as f:
        f.write(b'[1, 2]\n{"foo": 1}\n')  # not records: skipped, not a crash
    assert folder.records_path.read_bytes().count(b"\n") == 7
    latest = folder.latest()
    assert latest[("t", "a", 0, "a")].completion.usage.completion_tokens == 3
    assert latest[("other", "a", 0, "a")].completion.usage.completion_tokens == 4
    assert len(latest) == 4 and [r.key for r in folder.records()] == ["a", "b", "c", "a"]


def test_rewrite_is_atomic_and_keeps_a_backup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = RunFolder(tmp_path)
    folder.append([rec("a", 1), rec("b", 1), rec("a", 2)])
    seen: list[bool] = []
    real_replace = os.replace

    def watching_replace(src, dst):  # at every rename, a records file must exist
        seen.append(folder.records_path.is_file())
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", watching_replace)
    backup = folder.rewrite(folder.records(), backup_prefix="records.pre-rescore")
    assert seen == [True]  # one rename, over an existing file
    assert backup is not None and backup.read_bytes().count(b"\n") == 3
    assert folder.records_path.read_bytes().count(b"\n") == 2
    assert not list(tmp_path.glob("*.tmp"))


def test_json_files_have_one_error_policy(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    assert folder.manifest is None and folder.summary is None
    with pytest.raises(EvalkitError, match="no manifest.json here"):
        folder.require_manifest()
    folder.summary_path.write_text('{"tasks": {\n  "x": oops}\n')
    with pytest.raises(EvalkitError, match=r"summary.json:2: summary.json is not valid JSON"):
        folder.summary  # noqa: B018
    folder.manifest_path.write_text("[1]")
    with pytest.raises(EvalkitError, match="must be a JSON object"):
        read_json_file(folder.manifest_path, "manifest.json")
    folder.write_manifest({"run_id": "r"})
    assert folder.manifest == {"run_id": "r"}

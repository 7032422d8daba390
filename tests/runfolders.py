"""Run folders written for tests through the real store (evalkit/store.py)."""

from __future__ import annotations

from pathlib import Path

from evalkit.store import Record, RunFolder, Score
from evalkit.types import Completion, Extraction, Grade, Sample


def record(
    task: str,
    sid: str,
    repeat: int = 0,
    *,
    correct: bool | None,
    text: str = "t",
    sample: Sample | None = None,
    finish: str = "stop",
    version: int = 1,
    answer: str = "A",
) -> Record:
    """One record; ``correct=None`` or ``finish="error"`` makes a failed request (status error)."""
    failed = correct is None or finish == "error"
    comp = Completion("", "error", error="boom") if failed else Completion(text, finish)  # type: ignore[arg-type]
    scores = (
        {} if failed else {"main": Score(Extraction(answer, "old_code"), Grade(bool(correct), "old_code"))}
    )
    return Record(
        key=f"{task}:{sid}:{repeat}",
        task=task,
        sample_id=sid,
        repeat=repeat,
        status="error" if failed else "ok",
        completion=comp,
        task_version=version,
        model="m",
        sample=sample or Sample(sid, task, "q", "A"),
        scores=scores,
    )


def write_records(path: Path, records: list[Record]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    RunFolder(path).append(records)
    return path


def flat_record(r: Record) -> dict:
    """A record as a dict with the primary scorer's extraction and grade at the top (easy to compare)."""
    d = r.to_dict()
    main = d["scores"].get("main") or {}
    return {**d, "extraction": main.get("extraction"), "grade": main.get("grade")}

"""The record store: ``records.jsonl``, one line per (sample, repeat), appended and flushed per answer.

A line is a JSON object:
  key, task, task_version, sample_id, repeat, model (backend identity),
  status: "ok" | "error"  (an error is a request that failed; it is never graded),
  completion: Completion.to_dict(), extraction: {answer, method, status} | null,
  grade: {correct, reason, points} | null, sample: Sample.to_dict(), cached: bool, time: ISO time.
The file is append-only; a record is identified by (task, sample id, repeat, key): two tasks may send
the very same request, two items may render the very same prompt, and a changed prompt is a new
record. When one appears more than once (a retried error, a rescore) the last line wins. A
line cut short by a kill is ignored on read and cut off before the next append; a line that is not
a record (hand-edited, from another tool) is skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evalkit.types import Completion, Extraction, Grade, Request, Sample

RECORDS_FILE = "records.jsonl"


def make_record(
    req: Request,
    sample: Sample,
    task_version: int,
    model_identity: str,
    completion: Completion,
    extraction: Extraction | None,
    grade: Grade | None,
    cached: bool = False,
) -> dict[str, Any]:
    ok = completion.ok
    return {
        "key": req.key,
        "task": req.task,
        "task_version": task_version,
        "sample_id": req.sample_id,
        "repeat": req.repeat,
        "model": model_identity,
        "status": "ok" if ok else "error",
        "completion": completion.to_dict(),
        "extraction": (
            {"answer": extraction.answer, "method": extraction.method, "status": extraction.status}
            if ok and extraction is not None
            else None
        ),
        "grade": (
            {"correct": grade.correct, "reason": grade.reason, "points": grade.points}
            if ok and grade is not None
            else None
        ),
        "sample": sample.to_dict(),
        "cached": cached,
        "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


REQUIRED_FIELDS = ("key", "task", "sample_id", "repeat", "status")


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every complete record line of a records file (a torn last line and non-records are skipped)."""
    if not path.is_file():
        return
    with path.open("rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # torn write from a killed process
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and all(k in rec for k in REQUIRED_FIELDS):
                yield rec


RecordId = tuple[str, str, int, str]


def record_id(task: str, sample_id: str, repeat: int, key: str) -> RecordId:
    return (str(task), str(sample_id), int(repeat), str(key))


def request_record_id(req: Request) -> RecordId:
    return record_id(req.task, req.sample_id, req.repeat, req.key)


def latest_records(path: Path) -> dict[RecordId, dict[str, Any]]:
    """The last record for each (task, sample id, repeat, key)."""
    out: dict[RecordId, dict[str, Any]] = {}
    for r in iter_records(path):
        out[record_id(r["task"], r["sample_id"], r["repeat"], r["key"])] = r
    return out


class RecordWriter:
    """Appends records and flushes each line to the OS, so a kill loses at most in-flight answers."""

    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self._f = path.open("ab")

    def _repair_tail(self) -> None:
        if not self.path.is_file():
            return
        with self.path.open("rb+") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            # Find the last newline and cut the partial line after it.
            pos = size - 1
            chunk = 1 << 16
            while pos > 0:
                start = max(0, pos - chunk)
                f.seek(start)
                data = f.read(pos - start)
                i = data.rfind(b"\n")
                if i != -1:
                    f.truncate(start + i + 1)
                    return
                pos = start
            f.truncate(0)

    def write(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

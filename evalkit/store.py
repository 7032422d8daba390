"""The run folder: the one owner of ``records.jsonl``, ``summary.json`` and ``manifest.json``.

Every reader and writer of a run folder (runner, rescore, merge, replay, the cutoff gap, compare,
report, the viewer) goes through ``RunFolder`` and ``Record``, so the on-disk format has one home.

``records.jsonl`` holds one JSON object per line, appended as answers arrive:

  schema      record format version (RECORD_SCHEMA); a line without it is schema 1 (evalkit 0.1)
  key         the request's cache key (model identity + rendered prompt + output-affecting params)
  task, task_version, sample_id, repeat, model (the backend identity)
  status      "ok" | "error" (an error is a request that failed; it is never graded)
  max_tokens  the token budget the answer was generated under
  completion  Completion.to_dict() (text, finish reason, usage with reasoning tokens, reasoning,
              per-option log-likelihoods for likelihood requests)
  scores      {scorer name: {"extraction": {answer, method, status}, "grade": {correct, reason,
              points}, "version": the extraction+grading code version}}; the primary scorer is "main"
  censoring   None, or the censoring class of the answer (answered / truncated / censored / no_answer)
  judge       None, or the stored reply of a judge model that read the answer
  sample      Sample.to_dict(): the item as it was scored, so rescoring needs no dataset
  cached, time

A record is identified by (task, sample id, repeat, key): two tasks may send the very same request,
two items may render the very same prompt, and a changed prompt or budget is a new record. When one
appears more than once (a retried error, a regrade) the last line wins. A line cut short by a kill is
ignored on read and cut off before the next append; a line that is not a record is skipped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.types import Completion, Extraction, Grade, Sample

RECORDS_FILE = "records.jsonl"
SUMMARY_FILE = "summary.json"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".lock"
RECORD_SCHEMA = 2
PRIMARY_SCORER = "main"

RecordId = tuple[str, str, int, str]  # (task, sample id, repeat, key)
Slot = tuple[str, str, int]  # (task, sample id, repeat): one answer a summary counts
_REQUIRED = ("key", "task", "sample_id", "repeat", "status")


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Score:
    """One scorer's reading of one answer, and the scoring code version that produced it."""

    extraction: Extraction
    grade: Grade
    version: str | None = None  # None: written before evalkit recorded versions

    def to_dict(self) -> dict[str, Any]:
        return {
            "extraction": dataclasses.asdict(self.extraction),
            "grade": dataclasses.asdict(self.grade),
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], version: str | None = None) -> Score:
        ex = d.get("extraction") or {"answer": None, "method": "none", "status": "no_answer"}
        g = d.get("grade") or {}
        return cls(
            Extraction(ex.get("answer"), str(ex.get("method", "none")), ex.get("status", "ok")),
            Grade(bool(g.get("correct")), str(g.get("reason", "")), g.get("points")),
            d.get("version", version),
        )


@dataclass(frozen=True)
class Record:
    """One answer to one (task, sample, repeat) request, as stored in ``records.jsonl``."""

    key: str
    task: str
    sample_id: str
    repeat: int
    status: str  # "ok" | "error"
    completion: Completion
    task_version: int = 1
    model: str = ""
    sample: Sample | None = None
    scores: Mapping[str, Score] = field(default_factory=dict)
    max_tokens: int | None = None
    censoring: str | None = None
    judge: Mapping[str, Any] | None = None
    cached: bool = False
    time: str = ""
    schema: int = RECORD_SCHEMA

    @property
    def id(self) -> RecordId:
        return (self.task, self.sample_id, self.repeat, self.key)

    @property
    def slot(self) -> Slot:
        return (self.task, self.sample_id, self.repeat)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def primary(self) -> Score | None:
        """The main scorer's score (what the task's headline metric reads)."""
        return self.scores.get(PRIMARY_SCORER)

    def replace(self, **changes: Any) -> Record:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "key": self.key,
            "task": self.task,
            "task_version": self.task_version,
            "sample_id": self.sample_id,
            "repeat": self.repeat,
            "model": self.model,
            "status": self.status,
            "max_tokens": self.max_tokens,
            "completion": self.completion.to_dict(),
            "scores": {name: s.to_dict() for name, s in self.scores.items()},
            "censoring": self.censoring,
            "judge": dict(self.judge) if self.judge is not None else None,
            "sample": self.sample.to_dict() if self.sample is not None else None,
            "cached": self.cached,
            "time": self.time,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Record:
        """Read a record line of any known schema (1: evalkit 0.1, one grade; 2: one per scorer)."""
        schema = int(d.get("schema") or 1)
        if schema > RECORD_SCHEMA:
            raise EvalkitError(
                f"a record has schema {schema}, newer than this evalkit reads ({RECORD_SCHEMA}); "
                f"upgrade evalkit (pip install -U evalkit)"
            )
        comp = d.get("completion") or {}
        sample = d.get("sample")
        return cls(
            key=str(d["key"]),
            task=str(d["task"]),
            sample_id=str(d["sample_id"]),
            repeat=int(d["repeat"]),
            status=str(d["status"]),
            completion=Completion.from_dict(comp),
            task_version=int(d.get("task_version") or 1),
            model=str(d.get("model") or ""),
            sample=Sample.from_dict(sample) if isinstance(sample, Mapping) else None,
            scores=_scores_from(d, schema),
            max_tokens=d.get("max_tokens"),
            censoring=d.get("censoring"),
            judge=d.get("judge"),
            cached=bool(d.get("cached")),
            time=str(d.get("time") or ""),
            schema=RECORD_SCHEMA,
        )


def _scores_from(d: Mapping[str, Any], schema: int) -> dict[str, Score]:
    if d.get("status") != "ok":
        return {}
    if schema == 1:  # one extraction and one grade at the top level, no code version
        if d.get("grade") is None:
            return {}
        return {PRIMARY_SCORER: Score.from_dict(d)}
    return {name: Score.from_dict(s) for name, s in (d.get("scores") or {}).items()}


def record_id(task: str, sample_id: str, repeat: int, key: str) -> RecordId:
    return (str(task), str(sample_id), int(repeat), str(key))


def read_json_file(path: Path, what: str, required: bool = True) -> dict[str, Any] | None:
    """One error policy for the run folder's JSON files: a missing optional file is None, a missing
    required one or a broken one is an EvalkitError naming the file (and line) and the fix."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if not required:
            return None
        raise EvalkitError(f"{path}: no {what} here; is this a run folder (results/runs/<run_id>)?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f"{path}:{e.lineno}" if isinstance(e, json.JSONDecodeError) else str(path)
        raise EvalkitError(
            f"{where}: {what} is not valid JSON ({e}); restore it or re-run the command that wrote it"
        ) from None
    if not isinstance(data, dict):
        raise EvalkitError(f"{path}: {what} must be a JSON object")
    return data


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that a reader (or a kill) only ever sees the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _cut_torn_tail(path: Path) -> None:
    """Cut a partial last line (a write killed mid-line) so the next append starts a fresh line."""
    with path.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        pos, chunk = size - 1, 1 << 16
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            i = f.read(pos - start).rfind(b"\n")
            if i != -1:
                f.truncate(start + i + 1)
                return
            pos = start
        f.truncate(0)


def _planned(entry: Mapping[str, Any]) -> tuple[int | None, int]:
    """(token budget, repeats) a manifest's task entry planned."""
    budget = (entry.get("generation") or {}).get("max_tokens")
    if entry.get("repeats_max"):  # per-item repeats (adaptive sampling): the most any item got
        return budget, int(entry["repeats_max"])
    n_items = ((entry.get("data") or {}).get("n_selected")) or 0
    repeats = int(entry.get("n_requests") or 0) // n_items if n_items else 1 << 30
    return budget, repeats


def _standing(attempts: list[Record], budget: int | None, topup: bool) -> Record:
    """Of one slot's records (file order), the one that counts: the latest answer at the run's
    budget; with a top-up, else the answer at the largest budget; else the latest error."""
    at_budget = [r for r in attempts if r.max_tokens in (budget, None)]
    ok_at_budget = [r for r in at_budget if r.ok]
    if ok_at_budget:
        return ok_at_budget[-1]
    ok = [r for r in attempts if r.ok]
    if topup and ok:
        return max(ok, key=lambda r: r.max_tokens or 0)
    return (at_budget or attempts)[-1]


class RecordWriter:
    """Appends records to ``records.jsonl``.

    By default every line goes to the OS as it is written. A run's writer batches instead
    (``batch_records``/``batch_s``): lines wait in memory until ``batch_records`` of them are
    pending or the oldest has waited ``batch_s`` seconds (checked on every write and by
    ``flush_if_due``, which the run calls on a timer), then go out in one write. A kill -9 then loses
    the answers in flight plus at most one batch, which the next run re-sends (DESIGN.md section 5);
    ``close`` writes what is pending.
    """

    def __init__(self, path: Path, fsync: bool = False, batch_records: int = 1, batch_s: float = 0.0) -> None:
        self.path = path
        self.fsync = fsync
        self.batch_records = max(1, int(batch_records))
        self.batch_s = float(batch_s)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file():
            _cut_torn_tail(path)
        self._f = path.open("ab")
        self._pending: list[bytes] = []
        self._oldest = 0.0

    def write(self, record: Record) -> None:
        if not self._pending:
            self._oldest = time.monotonic()
        self._pending.append(_line(record))
        if len(self._pending) >= self.batch_records or time.monotonic() - self._oldest >= self.batch_s:
            self.flush()

    def flush_if_due(self) -> None:
        if self._pending and time.monotonic() - self._oldest >= self.batch_s:
            self.flush()

    def flush(self) -> None:
        """Hand every pending line to the OS (one write call), fsynced when asked."""
        if not self._pending:
            return
        self._f.write(b"".join(self._pending))
        self._pending.clear()
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())

    @property
    def n_pending(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._f.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _line(record: Record) -> bytes:
    return json.dumps(record.to_dict(), ensure_ascii=False).encode("utf-8") + b"\n"


class RunFolderBusy(EvalkitError):
    """Another process is writing this run folder."""


class WriterLock:
    """One writer per run folder: an exclusive ``flock`` on ``<folder>/.lock``.

    The kernel drops the lock when its process dies (kill -9 included), so a lock left by a killed
    run never blocks the next one; the file itself only says who holds it, for the message.
    """

    def __init__(self, folder: Path, what: str) -> None:
        self.path = folder / LOCK_FILE
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> WriterLock:
        import fcntl
        import socket

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise RunFolderBusy(
                f"{self.path.parent} is being written by {holder}; wait for it to finish (or stop it), "
                f"or give this {self.what} another --out folder"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} ({self.what}, since {now_iso()})".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class RunFolder:
    """A run folder on disk: its records, summary and manifest."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def records_path(self) -> Path:
        return self.path / RECORDS_FILE

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_FILE

    def exists(self) -> bool:
        return self.path.is_dir()

    def lock(self, what: str = "run") -> WriterLock:
        """The folder's writer lock (``with folder.lock("rescore"): ...``): every writer holds it."""
        return WriterLock(self.path, what)

    def require(self, what: str = "run folder") -> RunFolder:
        """This folder, or a clear error when it is not a run folder."""
        if not self.path.is_dir():
            raise EvalkitError(f"{self.path}: not a folder; give a {what} such as results/runs/<run_id>")
        return self

    # records -----------------------------------------------------------------------------------
    def iter_records(self) -> Iterator[Record]:
        """Every complete record line in file order (a torn last line and non-records skipped)."""
        if not self.records_path.is_file():
            return
        with self.records_path.open("rb") as f:
            for raw in f:
                if not raw.endswith(b"\n"):
                    break  # torn write from a killed process
                try:
                    d = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue
                if isinstance(d, dict) and all(k in d for k in _REQUIRED):
                    yield Record.from_dict(d)

    def latest(self) -> dict[RecordId, Record]:
        """The last record for each (task, sample id, repeat, key)."""
        return {r.id: r for r in self.iter_records()}

    def records(self) -> list[Record]:
        """The current records: the last line of each record id, in first-seen order."""
        return list(self.latest().values())

    def current_records(self) -> list[Record]:
        """The records that stand for the folder's latest run: one per (task, item, repeat) the
        manifest planned, at the token budget of that run (or, after a ``--topup-censored`` run, the
        slot's answer at the largest budget). Earlier attempts (another budget, more repeats) stay
        in the file but are not counted. Without a manifest every current record counts."""
        records = self.records()
        manifest = self.manifest
        if not manifest:
            return records
        topup = bool((manifest.get("parameters") or {}).get("topup_censored"))
        plan = {name: _planned(entry) for name, entry in (manifest.get("tasks") or {}).items()}
        by_slot: dict[Slot, list[Record]] = {}
        for r in records:
            budget_repeats = plan.get(r.task)
            if budget_repeats is None or r.repeat < budget_repeats[1]:
                by_slot.setdefault(r.slot, []).append(r)
        return [_standing(rs, plan.get(rs[0].task, (None, 0))[0], topup) for rs in by_slot.values()]

    def writer(self, fsync: bool = False) -> RecordWriter:
        return RecordWriter(self.records_path, fsync=fsync)

    def append(self, records: Iterable[Record]) -> int:
        n = 0
        with self.writer() as w:
            for r in records:
                w.write(r)
                n += 1
        return n

    def rewrite(self, records: Iterable[Record], backup_prefix: str | None = None) -> Path | None:
        """Replace ``records.jsonl`` atomically with ``records`` (one line each).

        The old file is kept as ``<backup_prefix>-<UTC time>.jsonl`` (a hard link, or a copy where
        links are not allowed) before the new file replaces it in one rename, so at no moment is
        there no records file. Returns the backup's path.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / (RECORDS_FILE + ".rewrite.tmp")
        with tmp.open("wb") as f:
            for r in records:
                f.write(_line(r))
            f.flush()
            os.fsync(f.fileno())
        backup = None
        if backup_prefix and self.records_path.is_file():
            backup = self._backup_path(backup_prefix)
            try:
                os.link(self.records_path, backup)
            except OSError:
                import shutil

                shutil.copy2(self.records_path, backup)
        os.replace(tmp, self.records_path)
        return backup

    def _backup_path(self, prefix: str) -> Path:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        backup, n = self.path / f"{prefix}-{stamp}.jsonl", 1
        while backup.exists():
            n += 1
            backup = self.path / f"{prefix}-{stamp}-{n}.jsonl"
        return backup

    # summary and manifest --------------------------------------------------------------------------
    @property
    def manifest(self) -> dict[str, Any] | None:
        return read_json_file(self.manifest_path, MANIFEST_FILE, required=False)

    @property
    def summary(self) -> dict[str, Any] | None:
        return read_json_file(self.summary_path, SUMMARY_FILE, required=False)

    def require_manifest(self) -> dict[str, Any]:
        return read_json_file(self.manifest_path, MANIFEST_FILE) or {}

    def require_summary(self) -> dict[str, Any]:
        return read_json_file(self.summary_path, SUMMARY_FILE) or {}

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.manifest_path, dict(manifest))

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.summary_path, dict(summary))

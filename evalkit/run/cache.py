"""Response cache: SQLite in WAL mode, keyed by the request key.

Only successful completions are cached: an error is retried on the next run. Writes are batched:
answers wait in memory until ``batch_records`` are pending or the oldest has waited ``batch_s``
seconds, then go in as one transaction (one commit per batch, not per answer). A kill -9 loses at
most the pending batch: those answers are in the run's records or are re-sent by the next run.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from evalkit.paths import cache_dir
from evalkit.types import Completion


def default_cache_path() -> Path:
    return cache_dir() / "responses.sqlite"


class ResponseCache:
    def __init__(self, path: Path, batch_records: int = 64, batch_s: float = 0.05) -> None:
        self.path = path
        self.batch_records = max(1, int(batch_records))
        self.batch_s = float(batch_s)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses"
            " (key TEXT PRIMARY KEY, model TEXT, completion TEXT NOT NULL,"
            " created REAL)"
        )
        self._pending: dict[str, tuple[str, str, str, float]] = {}
        self._oldest = 0.0

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._pending.get(key)
            if row is None:
                row = self._db.execute("SELECT completion FROM responses WHERE key = ?", (key,)).fetchone()
                blob = row[0] if row else None
            else:
                blob = row[2]
        return Completion.from_dict(json.loads(blob)) if blob else None

    def get_many(self, keys: list[str]) -> dict[str, Completion]:
        out: dict[str, Completion] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                q = f"SELECT key, completion FROM responses WHERE key IN ({','.join('?' * len(chunk))})"
                for k, c in self._db.execute(q, chunk):
                    out[k] = Completion.from_dict(json.loads(c))
            for k in keys:
                if k in self._pending:
                    out[k] = Completion.from_dict(json.loads(self._pending[k][2]))
        return out

    def put(self, key: str, model: str, completion: Completion) -> None:
        if not completion.ok:
            return
        blob = json.dumps(completion.to_dict(), ensure_ascii=False)
        with self._lock:
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending[key] = (key, model, blob, time.time())
            due = len(self._pending) >= self.batch_records or time.monotonic() - self._oldest >= self.batch_s
            if due:
                self._commit()

    def flush_if_due(self) -> None:
        with self._lock:
            if self._pending and time.monotonic() - self._oldest >= self.batch_s:
                self._commit()

    def flush(self) -> None:
        with self._lock:
            self._commit()

    def _commit(self) -> None:
        if not self._pending:
            return
        rows = list(self._pending.values())
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO responses (key, model, completion, created) VALUES (?, ?, ?, ?)", rows
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        self._pending.clear()

    def close(self) -> None:
        with self._lock:
            try:
                self._commit()
            finally:
                self._db.close()

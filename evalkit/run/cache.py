"""Response cache: SQLite in WAL mode, keyed by the request key; every answer is committed on arrival.

Only successful completions are cached: an error is retried on the next run.
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
    def __init__(self, path: Path) -> None:
        self.path = path
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

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute("SELECT completion FROM responses WHERE key = ?", (key,)).fetchone()
        return Completion.from_dict(json.loads(row[0])) if row else None

    def get_many(self, keys: list[str]) -> dict[str, Completion]:
        out: dict[str, Completion] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                q = f"SELECT key, completion FROM responses WHERE key IN ({','.join('?' * len(chunk))})"
                for k, c in self._db.execute(q, chunk):
                    out[k] = Completion.from_dict(json.loads(c))
        return out

    def put(self, key: str, model: str, completion: Completion) -> None:
        if not completion.ok:
            return
        blob = json.dumps(completion.to_dict(), ensure_ascii=False)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, model, completion, created) VALUES (?, ?, ?, ?)",
                (key, model, blob, time.time()),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

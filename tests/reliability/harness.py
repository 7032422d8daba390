"""Helpers of the fault-injection suite (conftest.py re-exports the fixtures): a local
OpenAI-compatible server with a fault mode, small task folders written per test, and the real CLI
started in its own process group (so a test can signal it the way a terminal or Slurm does)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from test_openai_faults import serving_in_thread

from evalkit.store import RunFolder

REPO = Path(__file__).resolve().parents[2]
LETTERS = "ABCD"
N_ITEMS = 40
ITEM = web.RequestKey("item", int)
_NUMBER = re.compile(r"Question number (\d+)")


def model_letter(i: int) -> str:
    """The letter the test server answers item ``i`` with: right for 3 items in 4."""
    return LETTERS[i % 4] if i % 4 != 3 else LETTERS[(i + 1) % 4]


def completion_body(text: str | None, finish: str = "stop") -> dict:
    return {
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 5},
    }


@dataclass
class FakeServer:
    """Answers item i with ``answer(i)`` after ``delay_s``; ``fault(i, attempt)`` may replace the
    answer to the ``attempt``-th request (1-based) for item i by a named fault (see faults.py)."""

    delay_s: float = 0.0
    fault: Callable[[int, int], str | None] | None = None
    attempts: dict[int, int] = field(default_factory=dict)
    answer: Callable[[int], str] = lambda i: f"The answer is ({model_letter(i)})"
    n_calls: int = 0
    seen: list[tuple[int, str | None]] = field(default_factory=list)  # (item, fault)
    auth: list[str] = field(default_factory=list)  # Authorization headers received
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.auth.append(request.headers.get("Authorization", ""))
        if request.path.endswith("/models"):
            return web.json_response({"data": [{"id": "m"}]})
        body = await request.json()
        text = json.dumps(body.get("messages") or body.get("prompt"))
        m = _NUMBER.search(text)
        item = int(m.group(1)) if m else -1
        request[ITEM] = item
        with self.lock:
            self.n_calls += 1
            attempt = self.attempts[item] = self.attempts.get(item, 0) + 1
        name = self.fault(item, attempt) if self.fault else None
        self.seen.append((item, name))
        if name is not None:
            from faults import respond_with_fault

            return await respond_with_fault(name, request, self)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.json_response(completion_body(self.answer(item)))


@pytest.fixture
def fake_server() -> Iterator[Callable[..., tuple[str, FakeServer]]]:
    """``start(**FakeServer fields)`` -> (base URL, server); every server stops after the test."""
    stack: list = []

    def start(**kw) -> tuple[str, FakeServer]:
        server = FakeServer(**kw)
        cm = serving_in_thread(server.handle)
        url = cm.__enter__()
        stack.append(cm)
        return url, server

    yield start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


CHOICE_TASK = """\
name: {name}
version: 1
dataset:
  files: [{name}.jsonl]
fields: {{id: id, question: question, choices: options, answer: answer}}
prompt:
  format: chat
  template: |-
    {{{{ question }}}}
    {{% for o in options %}}({{{{ o.letter }}}}) {{{{ o.text }}}}
    {{% endfor %}}
extract: choice
grade: choice
metrics: [accuracy]
generation: {{max_tokens: 32, temperature: 0.0, repeats: 1}}
"""


def choice_rows(n: int) -> list[dict]:
    return [
        {
            "id": f"q{i:03d}",
            "question": f"Question number {i}: which option?",
            "options": ["w", "x", "y", "z"],
            "answer": LETTERS[i % 4],
        }
        for i in range(n)
    ]


def write_task(
    folder: Path, name: str = "rel_choice", n: int = N_ITEMS, rows: list[dict] | None = None
) -> Path:
    """A choice task of ``n`` items in ``folder`` (its YAML and data file); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(CHOICE_TASK.format(name=name), encoding="utf-8")
    data = rows if rows is not None else choice_rows(n)
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data), encoding="utf-8")
    return folder


@pytest.fixture
def task_dir(tmp_path: Path) -> Path:
    return write_task(tmp_path / "tasks")


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "COLUMNS": "200"}
    return {**env, **(extra or {})}


def start_cli(*args: str, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """The real `evalkit` entry point in its own session and process group (a test signals the group
    as a terminal's Ctrl-C or Slurm's scancel does)."""
    return subprocess.Popen(
        [sys.executable, "-c", "from evalkit.cli import main; main()", *args],
        cwd=str(REPO),
        env=cli_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **popen,
    )


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, **popen
) -> subprocess.CompletedProcess:
    proc = start_cli(*args, env=env, **popen)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"evalkit {' '.join(args)} ran past {timeout} s\n{err[-3000:]}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_args(url: str, tasks: Path, out: Path, *extra: str) -> list[str]:
    return [
        "run",
        "-t",
        "rel_choice",
        "--tasks-dir",
        str(tasks),
        "-m",
        f"openai:{url}@m",
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


def items_of(folder: Path) -> dict[tuple[str, str, int], tuple[str, bool | None]]:
    """(task, item, repeat) -> (status, correct) of the answers that stand for the folder."""
    out = {}
    for r in RunFolder(folder).current_records():
        out[r.slot] = (r.status, r.primary.grade.correct if r.primary else None)
    return out


def assert_clean_records(folder: Path, retried_errors: bool = False) -> None:
    """Every line of records.jsonl is one whole record and no record id appears twice (with
    ``retried_errors``: only an error followed by its retry)."""
    raw = (folder / "records.jsonl").read_bytes()
    assert raw.endswith(b"\n"), "a torn last line was left"
    lines: dict[tuple, list[str]] = {}
    for line in raw.splitlines():
        d = json.loads(line)
        lines.setdefault((d["task"], d["sample_id"], d["repeat"], d["key"]), []).append(d["status"])
    for rid, statuses in lines.items():
        if retried_errors:
            assert all(s == "error" for s in statuses[:-1]), f"{rid} answered twice: {statuses}"
        else:
            assert len(statuses) == 1, f"{rid} written {len(statuses)} times"


def assert_cache_intact(cache_dir: Path) -> None:
    db = cache_dir / "responses.sqlite"
    if not db.exists():
        return
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

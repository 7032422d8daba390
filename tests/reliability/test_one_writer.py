"""One writer per run folder: a second writer (run, top-up, rescore, merge, judge) is refused at once
naming the process that holds the folder; a lock left by a killed process does not block; two runs
on different folders share one response cache correctly."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from harness import assert_cache_intact, assert_clean_records, cli, items_of, run_args, start_cli

from evalkit.run.judge import JudgeOptions, judge_folder
from evalkit.store import RunFolder, RunFolderBusy

pytestmark = pytest.mark.slow  # subprocess runs and real servers: the full tier (make test)


def _running(url: str, task_dir: Path, out: Path):
    """A run that holds ``out`` (its first answer is on disk) for several seconds more."""
    proc = start_cli(*run_args(url, task_dir, out, "--concurrency", "1"))
    deadline = time.monotonic() + 60
    while not (out / "records.jsonl").exists() or not (out / "records.jsonl").read_bytes():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return proc


def _assert_refused(result, holder_pid: int) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"is being written by pid {holder_pid} " in lines[0]


def test_second_writers_are_refused_naming_the_running_process(
    fake_server, task_dir: Path, tmp_path: Path
) -> None:
    url, server = fake_server(delay_s=0.15)
    out, done = tmp_path / "busy", tmp_path / "done"
    assert cli(*run_args(url, task_dir, done, "--limit", "2")).returncode == 0
    proc = _running(url, task_dir, out)
    try:
        n_before = server.n_calls
        _assert_refused(cli(*run_args(url, task_dir, out)), proc.pid)
        _assert_refused(
            cli(*run_args(url, task_dir, out, "--max-tokens", "64", "--topup-censored")), proc.pid
        )
        _assert_refused(cli("rescore", str(out)), proc.pid)
        _assert_refused(cli("merge", str(done), "--out", str(out)), proc.pid)
        with pytest.raises(RunFolderBusy, match=f"pid {proc.pid} "):
            judge_folder(str(out), JudgeOptions(f"openai:{url}@judge", {}, None, 0))
        # The refused commands sent nothing: only the running one's requests reached the server.
        assert all(item >= 0 for item, _ in server.seen[n_before:])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert_clean_records(out)


def test_a_lock_left_by_a_killed_run_does_not_block(fake_server, task_dir: Path, tmp_path: Path) -> None:
    url, _ = fake_server(delay_s=0.05)
    out = tmp_path / "stale"
    proc = _running(url, task_dir, out)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert f"pid {proc.pid} " in (out / ".lock").read_text()  # the file stays; the flock died with it
    r = cli(*run_args(url, task_dir, out, "--concurrency", "8"))
    assert r.returncode == 0, r.stderr
    assert len(items_of(out)) == 40
    assert_clean_records(out)


def test_two_runs_share_one_cache_on_different_folders(fake_server, task_dir: Path, tmp_path: Path) -> None:
    url, server = fake_server(delay_s=0.02)
    cache = tmp_path / "shared-cache"
    env = {"EVALKIT_CACHE_DIR": str(cache)}
    a, b = tmp_path / "a", tmp_path / "b"
    procs = [start_cli(*run_args(url, task_dir, d, "--concurrency", "4"), env=env) for d in (a, b)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert items_of(a) == items_of(b) and len(items_of(a)) == 40
    for d in (a, b):
        assert_clean_records(d)
        assert RunFolder(d).require_manifest()["status"] == "complete"
    assert 40 <= server.n_calls <= 80  # each item asked at most once per run, some answered from cache
    assert_cache_intact(cache)

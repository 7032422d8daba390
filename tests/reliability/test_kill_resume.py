"""Kill and resume: SIGKILL at seeded random moments of `run`, `rescore` and `merge`, each resumed by
the same command; SIGINT and SIGTERM through the process group stop cleanly with one line.

After every kill and resume the folder's answers equal an uninterrupted run's exactly (nothing
lost, nothing twice, no torn line) and the response cache passes SQLite's integrity check.
"""

from __future__ import annotations

import os
import random
import shlex
import signal
import time
from pathlib import Path

import pytest
from harness import (
    N_ITEMS,
    assert_cache_intact,
    assert_clean_records,
    cli,
    items_of,
    run_args,
    start_cli,
)

from evalkit.store import RunFolder

pytestmark = pytest.mark.slow  # subprocess runs and real servers: the full tier (make test)

KILLS = {"run": 0, "rescore": 0, "merge": 0}  # kills survived, for the report at the end


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _wait_for(pred, proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert proc.poll() is None or pred(), "the process ended before the moment to signal it"
        assert time.monotonic() < deadline, "timed out waiting for the process"
        time.sleep(0.005)


def _phase(folder: Path) -> str:
    """Where a kill landed, read from what it left."""
    n = _lines(folder / "records.jsonl")
    manifest = RunFolder(folder).manifest or {}
    if n == 0:
        return "startup"
    if n < N_ITEMS:
        return "requests and record writes"
    if manifest.get("status") in ("complete", "complete_with_errors"):
        return "after the manifest"
    return "summary and manifest writes"


@pytest.fixture
def baseline(fake_server, task_dir: Path, tmp_path: Path):
    url, _ = fake_server(delay_s=0.02)
    out = tmp_path / "baseline"
    t0 = time.monotonic()
    r = cli(
        *run_args(url, task_dir, out, "--concurrency", "4"), env={"EVALKIT_CACHE_DIR": str(tmp_path / "c0")}
    )
    assert r.returncode == 0, r.stderr
    return url, items_of(out), time.monotonic() - t0


def _kill_run_once(url: str, task_dir: Path, out: Path, rng: random.Random, env: dict) -> str:
    args = run_args(url, task_dir, out, "--concurrency", "4")
    proc = start_cli(*args, env=env)
    # Requests are flowing once a first record is on disk; kill somewhere from there to the end
    # (~N_ITEMS/4 * 20 ms of requests, then the summary and the manifest).
    _wait_for(lambda: _lines(out / "records.jsonl") > 0 or proc.poll() is not None, proc)
    time.sleep(rng.uniform(0.0, 0.35))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    return _phase(out)


def _assert_resumes(url: str, task_dir: Path, out: Path, expected: dict, env: dict) -> None:
    r = cli(*run_args(url, task_dir, out, "--concurrency", "4"), env=env)
    assert r.returncode == 0, r.stderr
    assert_clean_records(out)
    assert items_of(out) == expected
    assert RunFolder(out).require_manifest()["status"] == "complete"
    assert_cache_intact(Path(env["EVALKIT_CACHE_DIR"]))


def _kill_runs(baseline, task_dir: Path, tmp_path: Path, n: int, seed: int) -> dict[str, int]:
    url, expected, _ = baseline
    rng = random.Random(seed)
    phases: dict[str, int] = {}
    for k in range(n):
        out = tmp_path / f"killed{k}"
        env = {"EVALKIT_CACHE_DIR": str(tmp_path / f"cache{k}")}
        phase = _kill_run_once(url, task_dir, out, rng, env)
        phases[phase] = phases.get(phase, 0) + 1
        if k % 3 == 2:  # kill the resume too, once in three
            _kill_run_once(url, task_dir, out, rng, env)
            KILLS["run"] += 1
        _assert_resumes(url, task_dir, out, expected, env)
        KILLS["run"] += 1
    return phases


def test_sigkill_during_a_run_then_resume(baseline, task_dir: Path, tmp_path: Path) -> None:
    phases = _kill_runs(baseline, task_dir, tmp_path, n=3, seed=1)
    assert sum(phases.values()) == 3


@pytest.mark.slow
def test_sigkill_at_ten_random_moments_of_runs(baseline, task_dir: Path, tmp_path: Path) -> None:
    phases = _kill_runs(baseline, task_dir, tmp_path, n=10, seed=2026)
    print("kill phases:", phases)
    assert sum(phases.values()) == 10


def test_torn_record_and_leftover_temp_files_are_repaired_on_resume(
    baseline, task_dir: Path, tmp_path: Path
) -> None:
    """What a kill inside a write leaves: half a record line, a half-written summary/manifest temp
    file, a half-written rewrite. The resume cuts the torn line and completes."""
    url, expected, _ = baseline
    out = tmp_path / "torn"
    env = {"EVALKIT_CACHE_DIR": str(tmp_path / "c1")}
    r = cli(*run_args(url, task_dir, out, "--limit", "10"), env=env)
    assert r.returncode == 0, r.stderr
    whole = (out / "records.jsonl").read_bytes()
    last = whole.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    (out / "records.jsonl").write_bytes(whole + last[: len(last) // 2])  # a kill mid-line
    (out / "summary.json.tmp").write_text('{"half": ')
    (out / "manifest.json.tmp").write_text('{"half": ')
    (out / "records.jsonl.rewrite.tmp").write_bytes(last[:30])
    _assert_resumes(url, task_dir, out, expected, env)


def _timed(args: list[str], env: dict) -> float:
    t0 = time.monotonic()
    r = cli(*args, env=env)
    assert r.returncode == 0, r.stderr
    return time.monotonic() - t0


def _kill_at(args: list[str], env: dict, when_s: float) -> None:
    proc = start_cli(*args, env=env)
    time.sleep(when_s)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


@pytest.mark.parametrize("kills", [pytest.param(1, id="1"), pytest.param(3, marks=pytest.mark.slow, id="3")])
def test_sigkill_during_rescore_and_merge(baseline, task_dir: Path, tmp_path: Path, kills: int) -> None:
    url, expected, _ = baseline
    env = {"EVALKIT_CACHE_DIR": str(tmp_path / "c2")}
    shards = [tmp_path / "shard0", tmp_path / "shard1"]
    for i, shard in enumerate(shards):
        r = cli(*run_args(url, task_dir, shard, "--shard", f"{i}/2"), env=env)
        assert r.returncode == 0, r.stderr
    merged = tmp_path / "merged"
    merge = ["merge", *map(str, shards), "--out", str(merged)]
    rescore = ["rescore", str(shards[0])]
    rng = random.Random(kills)
    t_merge, t_rescore = _timed(merge, env), _timed(rescore, env)
    shard0 = items_of(shards[0])
    for _ in range(kills):
        _kill_at(merge, env, rng.uniform(0.5, 1.0) * t_merge)
        assert_clean_records(merged)  # the old file, whole: a rewrite is one rename
        _kill_at(rescore, env, rng.uniform(0.5, 1.0) * t_rescore)
        assert_clean_records(shards[0])
        assert items_of(shards[0]) == shard0
        KILLS["merge"] += 1
        KILLS["rescore"] += 1
        assert cli(*merge, env=env).returncode == 0
        assert cli(*rescore, env=env).returncode == 0
        assert_clean_records(merged)
        assert items_of(merged) == expected
        assert items_of(shards[0]) == shard0
    assert_cache_intact(Path(env["EVALKIT_CACHE_DIR"]))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_and_sigterm_stop_with_one_line_and_resume(
    baseline, task_dir: Path, tmp_path: Path, sig
) -> None:
    url, expected, _ = baseline
    out = tmp_path / "signalled"
    env = {"EVALKIT_CACHE_DIR": str(tmp_path / "c3")}
    proc = start_cli(*run_args(url, task_dir, out, "--concurrency", "2"), env=env)
    _wait_for(lambda: _lines(out / "records.jsonl") >= 4, proc)
    os.killpg(proc.pid, sig)  # the whole group, as Ctrl-C in a terminal or Slurm's scancel
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig]
    assert "Traceback" not in err
    said = [line for line in err.splitlines() if line.startswith("interrupted")]
    assert len(said) == 1, err
    assert f"interrupted by {signal.Signals(sig).name}: " in said[0]
    n_done = int(said[0].split(": ", 1)[1].split()[0])
    assert n_done == len(RunFolder(out).records()) >= 4  # every answer in flight was written whole
    assert_clean_records(out)
    assert RunFolder(out).require_manifest()["stop_reason"] == f"interrupted by {signal.Signals(sig).name}"
    resume = shlex.split(said[0].split("resume with: ", 1)[1])
    assert resume[0] == "evalkit"
    r = cli(*resume[1:], env=env)
    assert r.returncode == 0, r.stderr
    assert items_of(out) == expected
    assert_cache_intact(Path(env["EVALKIT_CACHE_DIR"]))

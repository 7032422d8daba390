"""Disk full and read-only output. Tests run as root here, so a chmod'ed folder blocks nothing: the
run folder sits on a small tmpfs (`mount -t tmpfs -o size=...`), remounted read-only for the second
case; where mounting is not allowed the tests skip and say so. Either way: one line, exit 2, no
traceback, the records written so far stay valid, and a resume after freeing space completes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import assert_clean_records, cli, items_of, run_args, write_task

from evalkit.store import RunFolder

pytestmark = pytest.mark.slow  # subprocess runs and real servers: the full tier (make test)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'not permitted'}); run as root to test")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _remount(mnt: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(mnt)], check=True)


def _assert_one_line_error(r: subprocess.CompletedProcess, words: str) -> None:
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and words in errors[0], r.stderr


def test_disk_full_mid_run_then_resume_after_freeing_space(
    fake_server, tmp_path: Path, small_disk: Path
) -> None:
    url, _ = fake_server()
    tasks = write_task(tmp_path / "tasks", n=120)  # ~1 kB a record: more than 48 kB
    out = small_disk / "run"
    r = cli(*run_args(url, tasks, out, "--concurrency", "4"))
    _assert_one_line_error(r, "no space left on the device")
    assert "run the same command again" in r.stderr
    n_kept = len(RunFolder(out).records())  # every whole line is a valid record (a torn one is skipped)
    assert 0 < n_kept < 120
    _remount(small_disk, "size=4m")
    r = cli(*run_args(url, tasks, out, "--concurrency", "4"))
    assert r.returncode == 0, r.stderr
    assert_clean_records(out)
    assert len(items_of(out)) == 120
    assert RunFolder(out).require_manifest()["status"] == "complete"


def test_read_only_output_is_refused_in_one_line_and_kept(
    fake_server, tmp_path: Path, small_disk: Path
) -> None:
    url, server = fake_server()
    tasks = write_task(tmp_path / "tasks", n=10)
    out = small_disk / "run"
    _remount(small_disk, "size=4m")
    assert cli(*run_args(url, tasks, out, "--limit", "5")).returncode == 0
    before = (out / "records.jsonl").read_bytes()
    _remount(small_disk, "ro")
    n_calls = server.n_calls
    r = cli(*run_args(url, tasks, out, "--limit", "5"))  # done: only the summary and manifest to write
    r2 = cli(*run_args(url, tasks, out))  # 5 more items to send
    for result in (r, r2):
        _assert_one_line_error(result, "read-only")
    assert server.n_calls == n_calls  # refused before any request
    assert (out / "records.jsonl").read_bytes() == before
    _remount(small_disk, "rw")
    assert cli(*run_args(url, tasks, out)).returncode == 0
    assert len(items_of(out)) == 10

"""A faulty OpenAI-compatible server (the test server's fault mode): 429 with and without
Retry-After, 500/502/503, connection resets, stalls past the timeout, truncated and invalid JSON,
empty ``choices``, a 200 that is not a completion, a choice without a message, ``null`` content and a
slow trickle. The run completes; retried items succeed; the unrecoverable ones are status=error,
counted, never graded, and re-tried by the next run; the exit code follows --max-error-rate."""

from __future__ import annotations

from pathlib import Path

import pytest
from faults import BAIT, TRANSIENT
from harness import assert_clean_records, cli, model_letter, run_args

from evalkit.store import RunFolder

pytestmark = pytest.mark.slow  # subprocess runs and real servers: the full tier (make test)

RECOVERED = {i: name for i, name in enumerate(TRANSIENT)}  # item -> fault on its first attempt only
TRICKLE, NULL = len(TRANSIENT), len(TRANSIENT) + 1
UNRECOVERABLE = {36: "503", 37: "reset", 38: "invalid_json", 39: "not_a_completion"}  # every attempt
FAULT_TYPES = sorted({*TRANSIENT, "slow_trickle", "null_content", *UNRECOVERABLE.values()})
OPTIONS = ("--concurrency", "8", "-M", "max_retries=2", "-M", "timeout=1")


def plan(item: int, attempt: int) -> str | None:
    if item in UNRECOVERABLE:
        return UNRECOVERABLE[item]
    if item == TRICKLE:
        return "slow_trickle"
    if item == NULL:
        return "null_content"
    return RECOVERED.get(item) if attempt == 1 else None


def _check_records(out: Path, errors: set[int]) -> None:
    assert_clean_records(out, retried_errors=True)
    for r in RunFolder(out).current_records():
        item = int(r.sample_id[1:])
        if item in errors:
            assert r.status == "error" and not r.scores, r
            assert r.completion.error  # the failure is recorded, never graded
            continue
        assert r.ok, (item, r.completion.error)
        if item == NULL:  # a well-formed completion saying nothing: an empty answer, graded wrong
            assert r.completion.text == "" and r.primary.extraction.status == "no_answer"
            continue
        # Graded from the real answer, never from an error body (each says "The answer is (A)").
        assert r.completion.text == f"The answer is ({model_letter(item)})", (item, r.completion.text)
        assert BAIT not in r.completion.text or model_letter(item) == "A"
        assert r.primary.grade.correct == (model_letter(item) == "ABCD"[item % 4])


def test_faulty_server_run_completes_counts_errors_and_retries_them(
    fake_server, task_dir: Path, tmp_path: Path
) -> None:
    url, server = fake_server(fault=plan)
    out = tmp_path / "faulty"
    r = cli(*run_args(url, task_dir, out, *OPTIONS))
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert "4 of 40 requests failed (10.0% > --max-error-rate 0.0%)" in r.stderr
    _check_records(out, set(UNRECOVERABLE))
    assert RunFolder(out).require_summary()["tasks"]["rel_choice"]["errors"] == 4
    assert RunFolder(out).require_manifest()["status"] == "complete_with_errors"
    injected = {name for _, name in server.seen if name}
    assert injected == set(FAULT_TYPES)

    # Within --max-error-rate: the same failures, exit 0; only the 4 errors were sent again.
    before = server.n_calls
    r = cli(*run_args(url, task_dir, out, *OPTIONS, "--max-error-rate", "0.1"))
    assert r.returncode == 0, r.stderr
    assert {item for item, _ in server.seen[before:]} == set(UNRECOVERABLE)
    _check_records(out, set(UNRECOVERABLE))

    # The server recovers: the next run re-sends only the errors, and they succeed.
    server.fault = lambda item, attempt: "slow_trickle" if item == TRICKLE else None
    before = server.n_calls
    r = cli(*run_args(url, task_dir, out, *OPTIONS))
    assert r.returncode == 0, r.stderr
    assert sorted(item for item, _ in server.seen[before:]) == sorted(UNRECOVERABLE)
    _check_records(out, set())
    assert RunFolder(out).require_manifest()["status"] == "complete"

"""End to end against a real OpenAI-compatible server (llama-cpp-python) serving a real model
(SmolLM2-135M-Instruct): run, report, resume after kill -9, replay, and CLI error messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from evalkit.store import Record, RunFolder
from tests.conftest import REPO, free_port, run_cli

pytestmark = pytest.mark.slow  # real server processes and CLI subprocesses

GREEDY = ["-M", "body.repeat_penalty=1.0"]  # llama.cpp's default 1.1 is not greedy decoding


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def records(run: Path) -> list[Record]:
    return RunFolder(run).records()


@dataclass(frozen=True)
class ServedRun:
    out: Path
    model: str
    accuracy: float
    stderr: str


@pytest.fixture(scope="module")
def served_run(llama_server: str, tmp_path_factory: pytest.TempPathFactory) -> ServedRun:
    """basic_facts answered once by the real server; the tests below read, resume, replay and merge it."""
    root = tmp_path_factory.mktemp("served")
    out, model = root / "run", f"openai:{llama_server}@smollm2"
    env = {"EVALKIT_CACHE_DIR": str(root / "cache")}
    r = run_cli("run", "-t", "basic_facts", "-m", model, *GREEDY, "--out", str(out), "--no-progress", env=env)
    assert r.returncode == 0, r.stderr
    acc = json.loads((out / "summary.json").read_text())["tasks"]["basic_facts"]["metrics"]["accuracy"][
        "value"
    ]
    return ServedRun(out, model, acc, r.stderr)


def _run(*args: str) -> subprocess.CompletedProcess:
    return run_cli("run", "-t", "basic_facts", *args, "--no-progress")


def test_run_writes_records_summary_and_manifest(served_run: ServedRun) -> None:
    out = served_run.out
    assert "sent 20" in served_run.stderr and "errors: 0" in served_run.stderr
    recs = records(out)
    assert len(recs) == 20 and {x.status for x in recs} == {"ok"}
    assert all(x.completion.usage.completion_tokens > 0 for x in recs)
    assert all(x.completion.latency_s > 0 for x in recs)
    assert all(x.max_tokens == 256 and x.primary.version for x in recs)  # budget and scoring code recorded
    france = next(x for x in recs if x.sample_id == "bf-01")
    assert "Paris" in france.completion.text and france.primary.grade.correct is True

    t = json.loads((out / "summary.json").read_text())["tasks"]["basic_facts"]
    assert t["n_items"] == 20 and t["errors"] == 0
    acc = t["metrics"]["accuracy"]
    assert acc["value"] == pytest.approx(sum(x.primary.grade.correct for x in recs) / 20)
    assert acc["ci_low"] <= acc["value"] <= acc["ci_high"]
    assert set(t["breakdown"]["category"]) == {"arithmetic", "everyday", "geography", "science"}

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["backend"]["identity"].startswith("openai:smollm2@-#")
    task_m = manifest["tasks"]["basic_facts"]
    assert len(task_m["sha256"]) == 64 and len(task_m["data"]["sha256"]) == 64
    assert task_m["generation"]["max_tokens"] == 256
    assert "evalkit" in manifest["environment"]["packages"]


def test_the_same_command_sends_nothing_and_reports(served_run: ServedRun) -> None:
    out = served_run.out
    r = _run("-m", served_run.model, *GREEDY, "--out", str(out))
    assert r.returncode == 0 and "sent 0" in r.stderr and "already done 20" in r.stderr
    assert len(lines(out / "records.jsonl")) == 20
    for fmt, needle in (
        ("markdown", "| basic_facts | smollm2-135m |"),
        ("csv", "basic_facts,smollm2-135m,all,20,"),
    ):
        rep = run_cli("report", str(out), "--format", fmt)
        assert rep.returncode == 0 and needle in rep.stdout, rep.stdout


def test_a_changed_task_is_refused_in_the_same_folder(served_run: ServedRun, tmp_path: Path) -> None:
    # Reusing the folder after the task changed would mix old grades with the new definition.
    tdir = tmp_path / "changed"
    tdir.mkdir()
    (tdir / "basic_facts.jsonl").write_text((REPO / "tasks" / "basic_facts.jsonl").read_text())
    (tdir / "basic_facts.yaml").write_text(
        (REPO / "tasks" / "basic_facts.yaml").read_text().replace("version: 1", "version: 2")
    )
    r = _run("--tasks-dir", str(tdir), "-m", served_run.model, *GREEDY, "--out", str(served_run.out))
    assert r.returncode == 2 and "task basic_facts changed since" in r.stderr and "Traceback" not in r.stderr


def test_replay_rescores_without_the_server(served_run: ServedRun, tmp_path: Path) -> None:
    r = _run("-m", f"replay:{served_run.out}", "--out", str(tmp_path / "replay"))
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "replay" / "summary.json").read_text())
    assert s["tasks"]["basic_facts"]["metrics"]["accuracy"]["value"] == served_run.accuracy


def test_shards_merge_into_exactly_the_unsharded_run(served_run: ServedRun, tmp_path: Path) -> None:
    shards = []
    for i in range(3):
        sd = tmp_path / f"shard{i}"
        rs = _run("-m", f"replay:{served_run.out}", "--shard", f"{i}/3", "--out", str(sd))
        assert rs.returncode == 0, rs.stderr
        shards.append(str(sd))
    merged = tmp_path / "merged"
    rm = run_cli("merge", "--out", str(merged), *shards)
    assert rm.returncode == 0, rm.stderr
    sm = json.loads((merged / "summary.json").read_text())["tasks"]["basic_facts"]
    assert sm["n_items"] == 20 and sm["metrics"]["accuracy"]["value"] == served_run.accuracy
    assert len(lines(merged / "records.jsonl")) == 20
    rp = run_cli("merge", "--out", str(tmp_path / "partial"), *shards[:2])
    assert rp.returncode == 0 and "shards not given: 2" in rp.stderr


def test_limit_applies_before_sharding(served_run: ServedRun, tmp_path: Path) -> None:
    # The shards of --limit 9 cover exactly those 9 items.
    lim = []
    for i in range(2):
        sd = tmp_path / f"lim{i}"
        r = _run("-m", f"replay:{served_run.out}", "--limit", "9", "--shard", f"{i}/2", "--out", str(sd))
        assert r.returncode == 0, r.stderr
        lim.append(str(sd))
    assert run_cli("merge", "--out", str(tmp_path / "lim"), *lim).returncode == 0
    assert sorted(x.sample_id for x in records(tmp_path / "lim")) == [f"bf-{i:02d}" for i in range(1, 10)]


def test_two_tasks_sending_the_same_requests_each_keep_their_grades(
    served_run: ServedRun, tmp_path: Path
) -> None:
    # Each request goes out once, and each task keeps its own records, graded by its own grader.
    tdir = tmp_path / "tasks"
    tdir.mkdir()
    twin = (
        (REPO / "tasks" / "basic_facts.yaml")
        .read_text()
        .replace("name: basic_facts", "name: basic_facts_exact")
    )
    (tdir / "basic_facts_exact.yaml").write_text(
        twin.replace("grade: choice", "grade: exact").replace("extract: choice", "extract: exact")
    )
    (tdir / "basic_facts.jsonl").write_text((REPO / "tasks" / "basic_facts.jsonl").read_text())
    both = tmp_path / "both"
    r = _run(
        "-t",
        "basic_facts_exact",
        "--tasks-dir",
        str(tdir),
        "-m",
        f"replay:{served_run.out}",
        "--out",
        str(both),
    )
    assert r.returncode == 0, r.stderr
    assert "(sent 20," in r.stderr
    recs = records(both)
    assert len(recs) == 40 and {x.task for x in recs} == {"basic_facts", "basic_facts_exact"}
    s = json.loads((both / "summary.json").read_text())["tasks"]
    assert s["basic_facts"]["metrics"]["accuracy"]["value"] == served_run.accuracy
    by_task = {t: {x.sample_id: x for x in recs if x.task == t} for t in ("basic_facts", "basic_facts_exact")}
    for sid, x in by_task["basic_facts"].items():
        y = by_task["basic_facts_exact"][sid]
        assert x.key == y.key and x.completion.text == y.completion.text
        assert y.primary.extraction.method == "whole_text" and x.primary.extraction.method != "whole_text"


def test_kill_9_mid_run_then_resume_loses_and_duplicates_nothing(llama_server: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [
        "run",
        "-t",
        "basic_facts",
        "-m",
        f"openai:{llama_server}@smollm2",
        *GREEDY,
        "--repeats",
        "3",
        "--temperature",
        "0.7",
        "--concurrency",
        "2",
        "--out",
        str(out),
        "--no-progress",
    ]
    env = {**os.environ}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from evalkit.cli import main; main()", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    records = out / "records.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if records.is_file() and records.read_bytes().count(b"\n") >= 10:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = records.read_bytes().count(b"\n")
    assert 10 <= n_before < 60, f"kill came too late to test anything ({n_before} records)"

    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    recs = lines(records)
    keys = [x["key"] for x in recs]
    assert len(keys) == 60 == len(set(keys)), "each (item, repeat) recorded exactly once"
    assert {(x["sample_id"], x["repeat"]) for x in recs} == {
        (f"bf-{i:02d}", k) for i in range(1, 21) for k in range(3)
    }
    assert f"already done {n_before}" in r.stderr
    summary = json.loads((out / "summary.json").read_text())
    t = summary["tasks"]["basic_facts"]
    assert t["repeats"] == 3 and t["metrics"]["accuracy"]["extra"]["interval"] == "clustered_by_item"
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["resumed"]) == 1 and manifest["status"] == "complete"


def _assert_clean_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    err_lines = [x for x in r.stderr.strip().splitlines() if x.strip()]
    assert 1 <= len(err_lines) <= 3, r.stderr
    for n in needles:
        assert n in r.stderr, (n, r.stderr)


def test_cli_errors_are_short_and_actionable(tmp_path: Path) -> None:
    port = free_port()
    _assert_clean_error(
        run_cli("run", "-t", "no_such_task", "-m", "openai:http://127.0.0.1:1/v1@m"),
        "unknown task 'no_such_task'",
        "--tasks-dir",
    )
    _assert_clean_error(
        run_cli("run", "-t", "basic_facts", "-m", "gpt-imaginary"),
        "unknown backend or alias",
        "openai:<base_url>@<model>",
    )
    _assert_clean_error(
        run_cli(
            "run",
            "-t",
            "basic_facts",
            "-m",
            f"openai:http://127.0.0.1:{port}/v1@m",
            "--out",
            str(tmp_path / "x"),
        ),
        "cannot reach the OpenAI-compatible server",
        f"127.0.0.1:{port}",
    )
    broken = tmp_path / "tasks"
    broken.mkdir()
    good = (REPO / "tasks" / "basic_facts.yaml").read_text().replace("name: basic_facts", "name: mytask")
    (broken / "mytask.yaml").write_text(good.replace("version: 1", "versoin: 1"))
    _assert_clean_error(
        run_cli("run", "-t", "mytask", "--tasks-dir", str(broken), "-m", "openai:http://127.0.0.1:1/v1@m"),
        "does not validate",
        "mytask.yaml",
        "versoin",
    )
    (broken / "mytask.yaml").write_text(good)
    _assert_clean_error(
        run_cli("run", "-t", "mytask", "--tasks-dir", str(broken), "-m", "openai:http://127.0.0.1:1/v1@m"),
        "basic_facts.jsonl",
        "not found",
    )
    _assert_clean_error(
        run_cli("run", "-t", "basic_facts", "-m", "openai:http://127.0.0.1:1/v1@m", "-M", "nonsense"),
        "key=value",
    )
    _assert_clean_error(run_cli("report", str(tmp_path)), "no summary.json")
    _assert_clean_error(
        run_cli("run", "-t", "basic_facts", "-m", "openai:http://127.0.0.1:1/v1@m", "-M", "concurrency=abc"),
        "concurrency=abc",
        "integer",
    )
    _assert_clean_error(
        run_cli(
            "run", "-t", "basic_facts", "-m", "openai:http://127.0.0.1:1/v1@m", "-M", "body.temperature=1"
        ),
        "body.temperature",
        "--temperature",
    )
    # Credentials in the URL or in extra request fields never reach files or messages.
    leak = tmp_path / "leak"
    r = run_cli(
        "run",
        "-t",
        "basic_facts",
        "-m",
        f"openai:http://user:hunter2@127.0.0.1:{port}/v1@m",
        "-M",
        "body.api_key=sk-LEAK123",
        "--out",
        str(leak),
    )
    _assert_clean_error(r, "cannot reach")
    assert "hunter2" not in r.stderr
    for f in leak.iterdir():
        text = f.read_text()
        assert "hunter2" not in text and "sk-LEAK123" not in text, f
    # --debug shows the traceback instead.
    r = run_cli("--debug", "run", "-t", "no_such_task", "-m", "openai:http://127.0.0.1:1/v1@m")
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_completion_endpoint_with_stop_sequences(llama_server: str, tmp_path: Path) -> None:
    """A plain-prompt (completion) task goes to /v1/completions and honours stop sequences."""
    tdir = tmp_path / "tasks"
    tdir.mkdir()
    (tdir / "facts.jsonl").write_text((REPO / "tasks" / "basic_facts.jsonl").read_text())
    yaml_text = (REPO / "tasks" / "basic_facts.yaml").read_text()
    yaml_text = yaml_text.replace("name: basic_facts", "name: facts_completion").replace(
        "basic_facts.jsonl", "facts.jsonl"
    )
    yaml_text = yaml_text.replace("  format: chat", "  format: completion").replace(
        "  temperature: 0.0", '  temperature: 0.0\n  stop: ["\\n\\n", "Question:"]'
    )
    yaml_text = yaml_text.replace("{% endfor %}", "{% endfor %}Answer:")
    (tdir / "facts_completion.yaml").write_text(yaml_text)
    out = tmp_path / "run"
    r = run_cli(
        "run",
        "-t",
        "facts_completion",
        "--tasks-dir",
        str(tdir),
        "-m",
        f"openai:{llama_server}@smollm2",
        *GREEDY,
        "--limit",
        "5",
        "--out",
        str(out),
        "--no-progress",
    )
    assert r.returncode == 0, r.stderr
    recs = lines(out / "records.jsonl")
    assert len(recs) == 5 and all(x["status"] == "ok" for x in recs)
    assert all(
        "\n\n" not in x["completion"]["text"] and "Question:" not in x["completion"]["text"] for x in recs
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tasks"]["facts_completion"]["generation"]["stop"] == ["\n\n", "Question:"]


def test_merge_refuses_shards_of_different_evaluations(llama_server: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    assert (
        run_cli(
            "run",
            "-t",
            "basic_facts",
            "-m",
            f"openai:{llama_server}@smollm2",
            *GREEDY,
            "--limit",
            "6",
            "--out",
            str(src),
            "--no-progress",
        ).returncode
        == 0
    )

    def shard(name: str, spec: str, *extra: str) -> str:
        d = tmp_path / name
        r = run_cli(
            "run",
            "-t",
            "basic_facts",
            "-m",
            f"replay:{src}",
            "--limit",
            "6",
            "--shard",
            spec,
            *extra,
            "--out",
            str(d),
            "--no-progress",
        )
        assert r.returncode in (0, 1), r.stderr
        return str(d)

    a0, a1 = shard("a0", "0/2"), shard("a1", "1/2")
    b1 = shard("b1", "1/2", "--max-tokens", "8")
    c0 = shard("c0", "0/3")
    for dirs, needle in (
        ((a0, b1), "parameters differ"),
        ((a0, a1, c0), "different shardings"),
        ((a0, a0), "twice"),
    ):
        r = run_cli("merge", "--out", str(tmp_path / "m"), *dirs)
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr
    manifest = json.loads((Path(a1) / "manifest.json").read_text())
    manifest["status"] = "running"
    (Path(a1) / "manifest.json").write_text(json.dumps(manifest))
    r = run_cli("merge", "--out", str(tmp_path / "m"), a0, a1)
    assert r.returncode == 2 and "did not finish" in r.stderr

"""Cache keys, few-shot selection, dataset loading through a data folder, the record store."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from evalkit.errors import DataError
from evalkit.run.cache import ResponseCache
from evalkit.run.plan import plan_task, request_key
from evalkit.tasks.data import load_hub_split, resolve_data_dir
from evalkit.tasks.loader import load_task_file
from evalkit.tasks.samples import load_fewshot_pool, load_samples, select_fewshot
from evalkit.types import Completion, GenParams, Message, Usage

MSG = (Message("user", "What is 2+2?"),)


def test_cache_key_changes_with_what_changes_output() -> None:
    p = GenParams(max_tokens=16)
    base = request_key("openai:m@r1", MSG, None, p, 0)
    assert base == request_key("openai:m@r1", MSG, None, GenParams(max_tokens=16), 0)
    assert base != request_key("openai:other@r1", MSG, None, p, 0)  # model
    assert base != request_key("openai:m@r2", MSG, None, p, 0)  # revision
    assert base != request_key("openai:m@r1", MSG, None, p, 1)  # repeat
    assert base != request_key("openai:m@r1", (Message("user", "What is 2+3?"),), None, p, 0)
    assert base != request_key("openai:m@r1", MSG, None, GenParams(max_tokens=17), 0)
    assert base != request_key("openai:m@r1", MSG, None, GenParams(max_tokens=16, temperature=0.5), 0)
    assert base != request_key("openai:m@r1", MSG, None, GenParams(max_tokens=16, stop=("Q:",)), 0)
    assert base != request_key("openai:m@r1", None, "What is 2+2?", p, 0)  # chat vs completion


def _task(tmp_path: Path, extra: str = "", rows: list[dict] | None = None) -> Path:
    rows = rows or [
        {
            "id": f"q{i}",
            "question": f"Question {i}?",
            "options": ["w", "x", "y", "z"],
            "answer": "B",
            "cat": "a" if i % 2 else "b",
        }
        for i in range(6)
    ]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    y = tmp_path / "t.yaml"
    y.write_text(
        textwrap.dedent(
            """\
            name: tiny
            version: 1
            dataset: {files: [items.jsonl]}
            fields: {id: id, question: question, choices: options, answer: answer, meta: {cat: cat}}
            prompt:
              template: "{% for e in fewshot %}{{ e.question }} {{ e.answer }}\\n{% endfor %}{{ question }}"
            """
        )
        + extra
        + "extract: choice\ngrade: choice\n"
    )
    return y


def _plan(t, repeats=None, overrides=None, limit=None):
    samples, loaded = load_samples(t, None)
    return plan_task(t, "openai:m@-", None, samples[:limit], loaded, len(samples), repeats, overrides)


def test_run_id_names_the_evaluation_not_its_extent(tmp_path: Path) -> None:
    # The folder is named by what defines the evaluation; concurrency never enters it, and repeats
    # and the token budget extend the same folder (each record carries its own).
    from evalkit.run.runner import RunConfig, run_id_for
    from evalkit.types import BackendInfo

    t = load_task_file(_task(tmp_path))
    info = BackendInfo("openai", "m")
    p = _plan(t)

    def rid(**kw):
        return run_id_for(info, [p], RunConfig(tasks=["tiny"], model="x", **kw))

    base = rid()
    assert rid(concurrency=64) == base
    assert rid(repeats=5) == base
    assert rid(overrides={"max_tokens": 4096}) == base
    assert rid(limit=3) != base
    assert rid(overrides={"temperature": 0.7}) != base
    assert run_id_for(BackendInfo("openai", "other"), [p], RunConfig(tasks=["tiny"], model="x")) != base


def test_request_keys_cover_budget_and_repeat(tmp_path: Path) -> None:
    t = load_task_file(_task(tmp_path))
    a, b = _plan(t), _plan(t, overrides={"max_tokens": 77})
    assert not {r.key for r in a.requests} & {r.key for r in b.requests}
    assert [r.key for r in _plan(t).requests] == [r.key for r in a.requests]


def test_repeats_expand_and_limit(tmp_path: Path) -> None:
    t = load_task_file(_task(tmp_path))
    p = _plan(t, repeats=3, limit=4)
    assert len(p.requests) == 12 and len({r.key for r in p.requests}) == 12
    assert {r.repeat for r in p.requests} == {0, 1, 2}
    assert p.n_available == 6


def test_fewshot_never_contains_the_item_itself(tmp_path: Path) -> None:
    # The few-shot pool is the evaluated file itself: the worst case for leakage.
    y = _task(tmp_path)
    y.write_text(
        y.read_text().replace("prompt:\n", "prompt:\n  fewshot: {k: 3, files: [items.jsonl], same: cat}\n")
    )
    t = load_task_file(y)
    samples, _ = load_samples(t, None)
    pool = load_fewshot_pool(t, None)
    for s in samples:
        shots = select_fewshot(t.spec, s, pool)
        assert len(shots) == 2  # 3 items share the category, minus the item itself
        assert all(e.id != s.id and e.question != s.question for e in shots)
        assert all(e.meta["cat"] == s.meta["cat"] for e in shots)


def test_fewshot_excludes_same_text_under_another_id(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "question": "Same?", "options": ["1", "2"], "answer": "A", "cat": "x"},
        {"id": "b", "question": "  same? ", "options": ["1", "2"], "answer": "A", "cat": "x"},
        {"id": "c", "question": "Other?", "options": ["1", "2"], "answer": "B", "cat": "x"},
    ]
    y = _task(tmp_path, rows=rows)
    y.write_text(y.read_text().replace("prompt:\n", "prompt:\n  fewshot: {k: 5, files: [items.jsonl]}\n"))
    t = load_task_file(y)
    samples, _ = load_samples(t, None)
    shots = select_fewshot(t.spec, samples[0], load_fewshot_pool(t, None))
    assert [e.id for e in shots] == ["c"]


def test_local_file_falls_back_to_data_dir_local(tmp_path: Path) -> None:
    y = _task(tmp_path)
    data = tmp_path / "data" / "local"
    data.mkdir(parents=True)
    (tmp_path / "items.jsonl").rename(data / "items.jsonl")
    t = load_task_file(y)
    with pytest.raises(DataError) as e:
        load_samples(t, None)
    assert "items.jsonl" in str(e.value) and "<data-dir>/local/" in str(e.value)
    samples, loaded = load_samples(t, resolve_data_dir(str(tmp_path / "data")))
    assert len(samples) == 6 and str(data / "items.jsonl") in loaded.source


def test_missing_column_names_the_field(tmp_path: Path) -> None:
    y = _task(tmp_path)
    y.write_text(y.read_text().replace("question: question", "question: problem"))
    t = load_task_file(y)
    with pytest.raises(DataError, match=r"no column 'problem'.*fix fields.question"):
        load_samples(t, None)


def test_bad_json_line_is_reported_with_line_number(tmp_path: Path) -> None:
    y = _task(tmp_path)
    with (tmp_path / "items.jsonl").open("a") as f:
        f.write("{not json\n")
    with pytest.raises(DataError, match=r"items.jsonl:7: not valid JSON"):
        load_samples(load_task_file(y), None)


def test_hub_mirror_is_used_offline(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    rows = load_hub_split("TIGER-Lab/MMLU-Pro", None, "validation", "abc123", shared_data)
    assert len(rows.rows) == 70 and "cot_content" in rows.rows[0]
    assert rows.source.startswith("mirror ") and rows.revision == "abc123" and len(rows.sha256) == 64
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"


def test_hub_without_mirror_gives_actionable_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    (tmp_path / "hf").mkdir()
    with pytest.raises(DataError) as e:
        load_hub_split("nobody/no-such-dataset", None, "test", "abc", tmp_path)
    msg = str(e.value)
    assert "nobody/no-such-dataset" in msg and "<data-dir>/hf/nobody/no-such-dataset/test.jsonl" in msg


def test_response_cache_roundtrip_and_errors_not_cached(tmp_path: Path) -> None:
    c = ResponseCache(tmp_path / "r.sqlite")
    c.put("k1", "m", Completion("hi", "stop", Usage(3, 1), latency_s=0.1))
    c.put("k2", "m", Completion("", "error", error="boom", error_kind="transient"))
    assert c.get("k1").text == "hi" and c.get("k1").usage.prompt_tokens == 3
    assert c.get("k2") is None
    assert set(c.get_many(["k1", "k2", "k3"])) == {"k1"}
    c.close()
    journal = ResponseCache(tmp_path / "r.sqlite")._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"


def test_secrets_never_reach_the_manifest() -> None:
    from evalkit.run.manifest import redact_argv
    from evalkit.secrets import redact_mapping as redact
    from evalkit.secrets import redact_spec

    assert redact_spec("lmeval:openai-chat-completions,model=m,api_key=sk-123") == (
        "lmeval:openai-chat-completions,model=m,api_key=<redacted>"
    )
    assert redact({"api_key_env": "OPENAI_API_KEY", "token": "abc"}) == {
        "api_key_env": "OPENAI_API_KEY",
        "token": "<redacted>",
    }
    for argv in (
        ["-M", "body.api_key=sk-9"],
        ["--model-arg=body.api_key=sk-9"],
        ["-Mbody.token=sk-9"],
        ["-m", "openai:http://u:sk-9@h/v1@m"],
        ["--model=lmeval:x,api_key=sk-9"],
    ):
        redacted = redact_argv(["evalkit", "run", *argv])
        assert "sk-9" not in " ".join(redacted) and "<redacted>" in " ".join(redacted), redacted

"""Reasoning models: censored answers counted and bounded, and top-up of the censored ones, against a
scripted OpenAI-compatible server (exact protocol cases: reasoning_content, finish_reason=length,
reasoning without its closing tag) and against llama.cpp with a tiny budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web
from test_openai_faults import serving_in_thread

from evalkit.run.summary import censoring_warnings
from evalkit.store import Record, RunFolder, Score
from evalkit.types import Completion, Extraction, Grade, Sample
from tests.conftest import REPO, run_cli

# item -> (content, reasoning_content, finish_reason) at a small budget; at a large one every item
# answers (A). Gold is A everywhere.
SMALL_BUDGET = {
    "answered": ("The answer is (A).", "Let me think: it is A.", "stop"),
    "reasoning_field_cut": ("", "Long reasoning that never ends", "length"),
    "think_tag_unclosed": ("<think>I keep thinking and thinking", None, "length"),
    "finished_no_answer": ("I cannot decide between them.", None, "stop"),
    "answered_then_cut": ("The answer is (A) because the first option", None, "length"),
    "wrong": ("<think>hmm</think>The answer is (B).", None, "stop"),
}
LARGE = 1000


def scripted_server(seen: list[tuple[str, int]]):
    async def handler(request: web.Request) -> web.Response:
        body = await request.json()
        text = body["messages"][-1]["content"]
        item = next(k for k in SMALL_BUDGET if f"[{k}]" in text)
        seen.append((item, body["max_tokens"]))
        content, reasoning, finish = SMALL_BUDGET[item]
        if body["max_tokens"] >= LARGE:
            content, reasoning, finish = "The answer is (A).", "thought it through", "stop"
        message = {"role": "assistant", "content": content}
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        usage = {
            "prompt_tokens": 10,
            "completion_tokens": 20,
            "completion_tokens_details": {"reasoning_tokens": 12},
        }
        return web.json_response(
            {"choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}
        )

    return handler


def reasoning_task(root: Path) -> Path:
    tdir = root / "tasks"
    tdir.mkdir()
    rows = [
        {
            "id": k,
            "question": f"[{k}] Which letter?",
            "options": ["a", "b", "c", "d"],
            "answer": "A",
            "category": "x",
        }
        for k in SMALL_BUDGET
    ]
    (tdir / "think.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    yaml_text = (REPO / "tasks" / "basic_facts.yaml").read_text()
    yaml_text = yaml_text.replace("name: basic_facts", "name: think").replace(
        "basic_facts.jsonl", "think.jsonl"
    )
    (tdir / "think.yaml").write_text(yaml_text)
    return tdir


def test_censoring_classes_bounds_and_topup(tmp_path: Path) -> None:
    tdir, out, seen = reasoning_task(tmp_path), tmp_path / "run", []
    env = {"EVALKIT_CACHE_DIR": str(tmp_path / "cache")}
    with serving_in_thread(scripted_server(seen)) as url:
        args = ["run", "-t", "think", "--tasks-dir", str(tdir), "-m", f"openai:{url}@m", "--out", str(out)]
        first = run_cli(*args, "--max-tokens", "50", "--no-progress", env=env)
        assert first.returncode == 0, first.stderr
        recs = {r.sample_id: r for r in RunFolder(out).records()}
        assert {k: r.censoring for k, r in recs.items()} == {
            "answered": "answered",
            "reasoning_field_cut": "censored",  # the server put the cut reasoning in its own field
            "think_tag_unclosed": "censored",  # the cut reasoning came in the content field
            "finished_no_answer": "no_answer",
            "answered_then_cut": "answered",  # answered, and flagged truncated by its finish reason
            "wrong": "answered",
        }
        assert recs["answered_then_cut"].completion.finish_reason == "length"
        c = json.loads((out / "summary.json").read_text())["tasks"]["think"]["censoring"]
        assert (c["answered"], c["answered_truncated"], c["censored"], c["no_answer"]) == (3, 1, 2, 1)
        reported, upper = c["bounds"]["reported"], c["bounds"]["upper"]
        assert reported["value"] == pytest.approx(2 / 6) and upper["value"] == pytest.approx(4 / 6)
        assert upper["ci_low"] <= upper["value"] <= upper["ci_high"] and c["budgets"] == {"50": 6}
        assert "2 answers (33%) were cut off by the token budget" in first.stderr
        assert "--topup-censored" in first.stderr

        seen.clear()
        second = run_cli(*args, "--max-tokens", str(LARGE), "--topup-censored", "--no-progress", env=env)
        assert second.returncode == 0, second.stderr
        assert sorted(seen) == [("reasoning_field_cut", LARGE), ("think_tag_unclosed", LARGE)]  # only those
    folder = RunFolder(out)
    assert len(folder.records()) == 8  # the earlier attempts are kept
    t = json.loads((out / "summary.json").read_text())["tasks"]["think"]
    assert t["censoring"]["budgets"] == {"1000": 2, "50": 4}  # which budget each grade came from
    assert t["censoring"]["censored"] == 0 and t["metrics"]["accuracy"]["value"] == pytest.approx(4 / 6)
    assert json.loads((out / "manifest.json").read_text())["parameters"]["topup_censored"] is True
    assert t["tokens"]["mean_reasoning_per_answer"] == 12 and t["tokens"]["reasoning_missing"] == 0
    # A rescore counts the answers that stand (one per item), not the earlier attempts beside them.
    assert run_cli("rescore", str(out)).returncode == 0
    after = json.loads((out / "summary.json").read_text())["tasks"]["think"]
    assert after["n_records"] == 6 and after["metrics"] == t["metrics"]


def _rec(sid: str, status: str, finish: str = "stop", correct: bool = False) -> Record:
    answer = "A" if status == "ok" else None
    return Record(
        key=sid, task="t", sample_id=sid, repeat=0, status="ok", completion=Completion("x", finish),  # type: ignore[arg-type]
        sample=Sample(sid, "t", "q", "A"),
        scores={"main": Score(Extraction(answer, "m", status), Grade(correct, ""), "v")},  # type: ignore[arg-type]
    )  # fmt: skip


def test_bounds_arithmetic_on_hand_made_records() -> None:
    from evalkit.run.summary import summarize_task
    from evalkit.tasks.spec import TaskSpec

    spec = TaskSpec.model_validate(
        {
            "name": "t",
            "version": 1,
            "dataset": {"files": ["x.jsonl"]},
            "fields": {"question": "q", "answer": "a"},
            "prompt": {"template": "{{ question }}"},
            "extract": "choice",
            "grade": "choice",
        }
    )
    recs = (
        [_rec(f"r{i}", "ok", correct=True) for i in range(4)]
        + [_rec(f"c{i}", "truncated", "length") for i in range(3)]
        + [_rec(f"n{i}", "no_answer") for i in range(2)]
        + [_rec("w", "ok")]
    )
    c = summarize_task(spec, recs)["censoring"]
    assert (c["censored"], c["no_answer"], c["answered"]) == (3, 2, 5)
    assert c["bounds"]["reported"]["value"] == pytest.approx(0.4)
    assert c["bounds"]["upper"]["value"] == pytest.approx(
        0.7
    )  # censored counted right; no_answer stays wrong
    lines = censoring_warnings({"tasks": {"t": {"censoring": c}}})
    assert len(lines) == 1 and "between 40.0 and 70.0" in lines[0]
    assert censoring_warnings({"tasks": {"t": {"censoring": {**c, "censored_share": 0.01}}}}) == []


def test_llama_cpp_with_a_tiny_budget_censors_answers(llama_server: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = run_cli(
        "run", "-t", "basic_facts", "-m", f"openai:{llama_server}@smollm2", "-M", "body.repeat_penalty=1.0",
        "--max-tokens", "2", "--limit", "6", "--out", str(out), "--no-progress",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    recs = RunFolder(out).records()
    assert all(x.completion.finish_reason == "length" for x in recs)
    t = json.loads((out / "summary.json").read_text())["tasks"]["basic_facts"]
    # Two tokens: an answer is either already out ("C", a lone letter: answered, truncated) or not yet.
    censored = sum(x.censoring == "censored" for x in recs)
    assert t["censoring"]["censored"] == censored >= 1
    assert t["censoring"]["answered"] + censored == 6 and t["censoring"]["answered_truncated"] == 6 - censored
    assert "cut off by the token budget" in r.stderr


def test_reasoning_controls_are_sent_and_separate_identities() -> None:
    import asyncio

    from evalkit.backends import make_backend
    from evalkit.errors import BackendError
    from evalkit.types import GenParams, Message, Request

    bodies: list[dict] = []

    async def handler(request: web.Request) -> web.Response:
        if request.method == "GET":
            return web.json_response({"data": []})
        bodies.append(await request.json())
        usage = {
            "prompt_tokens": 3,
            "completion_tokens": 9,
            "completion_tokens_details": {"reasoning_tokens": 7},
        }
        msg = {"role": "assistant", "content": "B", "reasoning_content": "thinking"}
        return web.json_response({"choices": [{"message": msg, "finish_reason": "stop"}], "usage": usage})

    def spec(url: str) -> str:
        return f"openai:{url}@qwen3"

    with serving_in_thread(handler) as url:
        opts = {
            "enable_thinking": "false",
            "chat_template_kwargs.thinking_budget": "256",
            "reasoning_effort": "high",
        }
        b = make_backend(spec(url), {**opts, "thinking_budget": "512"})
        req = Request("k", "t", "s", 0, GenParams(max_tokens=8), messages=(Message("user", "hi"),))
        [c] = asyncio.run(b.generate([req]))
        asyncio.run(b.aclose())
        assert bodies[0]["chat_template_kwargs"] == {"enable_thinking": False, "thinking_budget": 256}
        assert bodies[0]["reasoning_effort"] == "high" and bodies[0]["thinking_token_budget"] == 512
        assert c.reasoning == "thinking" and c.usage.reasoning_tokens == 7 and c.text == "B"
        ids = {
            make_backend(spec(url), o).info.identity
            for o in (
                {},
                {"enable_thinking": "true"},
                {"enable_thinking": "false"},
                {"reasoning_effort": "low"},
            )
        }
        assert len(ids) == 4  # the cache and run folder never mix thinking and non-thinking answers
        with pytest.raises(BackendError, match="reasoning_effort"):
            make_backend(spec(url), {"reasoning_effort": "extreme"})

"""The LLM-judge fallback: only rule misses are asked (plus a seeded audit sample), failures are left
out and never scored wrong, censored answers are never sent, replies are stored so a later rescore
needs no model; a scripted judge for exact behaviour, SmolLM2 through llama.cpp for the mechanics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web
from runfolders import record, write_records
from test_openai_faults import serving_in_thread

from evalkit.run.judge import JUDGE_PROMPT_VERSION, judge_messages, parse_reply
from evalkit.run.runner import RunConfig, run_evaluation
from evalkit.store import RunFolder
from evalkit.types import Sample
from tests.conftest import REPO, run_cli

ITEMS = [json.loads(x) for x in (REPO / "tasks" / "basic_facts.jsonl").read_text().splitlines()]
GOLD = {it["id"]: it["answer"] for it in ITEMS}
# What the "model" wrote for the first 8 items; the other 12 answer in the rules' format.
TEXTS = {
    "bf-01": "My pick is the third option, Paris.",  # a miss the judge reads: C (right)
    "bf-02": "Seven days, so the second one.",  # a miss the judge reads: B (right)
    "bf-03": "It is the red one, obviously the first.",  # a miss the judge reads: B (wrong reading)
    "bf-04": "Hard to say.",  # a miss the judge cannot read: NONE
    "bf-05": "JUDGE-FAILS: I would say the last one.",  # the judge call fails: left out
    "bf-06": "The answer is",  # cut off at the budget: censored, never sent to the judge
}
JUDGE_SAYS = {"bf-01": "ANSWER: C", "bf-02": "answer: (B)", "bf-03": "ANSWER: B", "bf-04": "ANSWER: NONE"}


def source_run(root: Path) -> Path:
    recs = []
    for it in ITEMS:
        sid = it["id"]
        text = TEXTS.get(sid, f"The answer is ({it['answer']}).")
        sample = Sample(sid, "basic_facts", it["question"], it["answer"], tuple(it["options"]))
        finish = "length" if sid == "bf-06" else "stop"
        recs.append(record("basic_facts", sid, correct=True, text=text, sample=sample, finish=finish))
    return write_records(root / "source", recs)


def judge_server(asked: list[str]):
    async def handler(request: web.Request) -> web.Response:
        if request.method == "GET":  # the backend's reachability check
            return web.json_response({"data": [{"id": "judge"}]})
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        sid = next((s for s, t in TEXTS.items() if prompt.endswith(t)), "answered")
        asked.append(sid)
        if sid == "bf-05":
            return web.json_response({"error": {"message": "bad request"}}, status=400)
        reply = JUDGE_SAYS.get(sid, "ANSWER: A")
        return web.json_response(
            {"choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}]}
        )

    return handler


def evaluated(root: Path) -> Path:
    out = root / "run"
    cfg = RunConfig(tasks=["basic_facts"], model=f"replay:{source_run(root)}", out=out, progress=False)
    run_evaluation(cfg)
    return out


def test_parse_reply_reads_only_the_answer_line() -> None:
    letters = ("A", "B", "C", "D")
    assert parse_reply("ANSWER: C", letters) == "C" and parse_reply("Answer: (b).", letters) == "B"
    assert parse_reply("ANSWER: NONE", letters) is None and parse_reply("C is right", letters) is None
    assert parse_reply("ANSWER: E", letters) is None  # outside the item's options
    assert parse_reply("ANSWER: \\frac{1}{2}", None) == "\\frac{1}{2}"
    msgs = judge_messages(Sample("1", "t", "Pick?", "A", ("x", "y")), "long response", letters=True)
    assert "(A) x\n(B) y" in msgs[0].content and "do not say whether" in msgs[0].content


def test_only_rule_misses_are_asked_and_failures_are_left_out(tmp_path: Path) -> None:
    out, asked = evaluated(tmp_path), []
    env = {"EVALKIT_CACHE_DIR": str(tmp_path / "cache")}
    with serving_in_thread(judge_server(asked)) as url:
        r = run_cli("rescore", str(out), "--judge", f"openai:{url}@judge", "--judge-audit", "0", env=env)
        assert r.returncode == 0, r.stderr
        assert sorted(asked) == ["bf-01", "bf-02", "bf-03", "bf-04", "bf-05"]  # not bf-06 (censored)
        assert "asked about 5 answers the rules could not read, read 3, 1 failed" in r.stderr
        asked.clear()
        again = run_cli("rescore", str(out), "--judge", f"openai:{url}@judge", "--judge-audit", "0", env=env)
        assert again.returncode == 0 and asked == ["bf-05"]  # judged once; only the failure is retried
    recs = {x.sample_id: x for x in RunFolder(out).records()}
    assert recs["bf-01"].judge["answer"] == "C" and recs["bf-01"].scores["judged"].grade.correct
    assert recs["bf-01"].judge["prompt_version"] == JUDGE_PROMPT_VERSION
    assert recs["bf-03"].scores["judged"].grade.correct is False  # evalkit's grader decides, not the judge
    assert "judged" not in recs["bf-04"].scores and recs["bf-04"].judge["status"] == "no_answer"
    assert recs["bf-05"].judge["status"] == "error" and recs["bf-06"].judge is None
    t = json.loads((out / "summary.json").read_text())["tasks"]["basic_facts"]
    assert t["metrics"]["accuracy"]["value"] == pytest.approx(14 / 20)  # rule-only
    j = t["judge"]
    assert (j["asked"], j["read"], j["failed"], j["rescued"]) == (5, 3, 1, 2)
    assert j["metrics"]["accuracy"]["value"] == pytest.approx(16 / 19)  # the failure left out, not wrong
    assert j["metrics"]["accuracy"]["n_items"] == 19

    # Rescoring afterwards needs no model: the stored replies are graded again.
    r = run_cli("rescore", str(out))
    assert r.returncode == 0, r.stderr
    t = json.loads((out / "summary.json").read_text())["tasks"]["basic_facts"]
    assert t["judge"]["rescued"] == 2 and t["judge"]["metrics"]["accuracy"]["value"] == pytest.approx(16 / 19)


def test_audit_sample_and_cap(tmp_path: Path) -> None:
    out, asked = evaluated(tmp_path), []
    env = {"EVALKIT_CACHE_DIR": str(tmp_path / "cache")}
    with serving_in_thread(judge_server(asked)) as url:
        r = run_cli("rescore", str(out), "--judge", f"openai:{url}@judge", "--judge-audit", "4", env=env)
    assert r.returncode == 0, r.stderr
    assert asked.count("answered") == 4  # the audit sample of answers the rules read
    audit = json.loads((out / "summary.json").read_text())["tasks"]["basic_facts"]["judge"]["audit"]
    # The scripted judge says A for every read answer: it agrees where the rules' grade matches.
    assert audit["n"] == 4 and 0 <= audit["agree"] <= 4
    capped = tmp_path / "capped"
    capped.mkdir()
    out2 = evaluated(capped)
    with serving_in_thread(judge_server([])) as url:
        r = run_cli("rescore", str(out2), "--judge", f"openai:{url}@judge", "--judge-max-items", "2", env=env)
    assert r.returncode == 0 and "left out by --judge-max-items" in r.stderr


def test_a_real_local_model_as_judge(llama_server: str, tmp_path: Path) -> None:
    # SmolLM2-135M as the judge: the mechanics (requests, stored replies, summary), not its quality.
    out = evaluated(tmp_path)
    r = run_cli("rescore", str(out), "--judge", f"openai:{llama_server}@smollm2", "--judge-audit", "2")
    assert r.returncode == 0, r.stderr
    judged = [x for x in RunFolder(out).records() if x.judge]
    assert len(judged) == 7 and all(x.judge["reply"] is not None for x in judged)
    assert json.loads((out / "summary.json").read_text())["tasks"]["basic_facts"]["judge"]["asked"] == 5

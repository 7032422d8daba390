"""The request engine's throughput features: the AIMD limit of ``--concurrency auto``, the
prefix-cache-friendly order (prefix reuse counted at a real local server), repeats of one prompt
as one ``n=k`` request, and batched record writes. No timing assertions."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiohttp import web
from test_openai_faults import ok_body, serve

from evalkit.run.engine import AdaptiveLimit, batches, order_for_prefix_cache, prefix_key
from evalkit.run.runner import RunConfig, run_evaluation
from evalkit.store import RecordWriter, RunFolder
from evalkit.types import GenParams, Request

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def server_thread(handler: Callable[[web.Request], object]) -> Iterator[str]:
    loop = asyncio.new_event_loop()
    box: dict = {}
    started = threading.Event()

    def main() -> None:
        asyncio.set_event_loop(loop)
        box["runner"], box["url"] = loop.run_until_complete(serve(handler))
        started.set()
        loop.run_forever()

    t = threading.Thread(target=main, daemon=True)
    t.start()
    assert started.wait(10)
    try:
        yield box["url"]
    finally:
        asyncio.run_coroutine_threadsafe(box["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)


def req(prompt: str, sample: str, repeat: int = 0, seed: int | None = None, temp: float = 0.7) -> Request:
    return Request(
        key=f"{sample}/{repeat}/{seed}",
        task="t",
        sample_id=sample,
        repeat=repeat,
        params=GenParams(max_tokens=8, temperature=temp, seed=seed),
        prompt=prompt,
    )


# -- AIMD -----------------------------------------------------------------------------------------
def test_aimd_grows_while_latency_holds_and_halves_on_pushback() -> None:
    lim = AdaptiveLimit(ceiling=64, start=4)
    for _ in range(200):
        lim.on_answer(0.05, pushed_back=False)
    grown = lim.limit
    assert 4 < grown <= 64
    lim.on_answer(0.0, pushed_back=True)
    assert lim.limit == pytest.approx(grown / 2)
    lim.on_answer(0.0, pushed_back=True)  # the same overload (within one round trip) counts once
    assert lim.limit == pytest.approx(grown / 2)
    held = lim.limit
    for _ in range(50):
        lim.on_answer(0.5, pushed_back=False)  # ten times the best latency: the server queues
    assert lim.limit == held
    for _ in range(10_000):
        lim.on_answer(0.05, pushed_back=False)
    assert lim.limit == 64  # never above the ceiling
    for _ in range(20):
        lim._last_cut = 0.0
        lim.backoff()
    assert lim.limit == 1  # never below one


def test_concurrency_auto_converges_below_a_server_that_refuses_above_its_cap(tmp_path: Path) -> None:
    cap = 6
    state = {"inflight": 0, "peak_ok": 0, "refused": 0}

    async def handler(request: web.Request) -> web.Response:
        if request.method == "GET":
            return web.json_response({"data": [{"id": "m"}]})
        await request.read()
        if state["inflight"] >= cap:
            state["refused"] += 1
            return web.json_response({"error": "busy"}, status=429)
        state["inflight"] += 1
        state["peak_ok"] = max(state["peak_ok"], state["inflight"])
        try:
            await asyncio.sleep(0.01)
        finally:
            state["inflight"] -= 1
        return web.json_response(ok_body())

    with server_thread(handler) as url:
        cfg = RunConfig(
            tasks=["basic_facts"],
            model=f"openai:{url}@m",
            model_args={"max_retries": "20"},
            out=tmp_path / "run",
            concurrency="auto",
            repeats=15,
            overrides={"temperature": 0.5},
            use_cache=False,
            progress=False,
        )
        res = run_evaluation(cfg)
    assert res.n_errors == 0 and res.n_requests == 300
    assert state["refused"] > 0  # it found the cap ...
    assert state["peak_ok"] <= cap  # ... and the server never served more than it allows


# -- order ----------------------------------------------------------------------------------------
def shared_prefix_chars(prompts: list[str]) -> int:
    """What a one-slot prefix cache reuses: the common prefix of each prompt with the one before."""
    total = 0
    for a, b in zip(prompts, prompts[1:], strict=False):
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        total += n
    return total


def test_order_puts_shared_prefixes_and_repeats_together() -> None:
    rng = random.Random(0)
    cats = {c: f"Exemplars for {c}: " + "x" * 500 for c in ("law", "math", "physics")}
    reqs = [req(cats[c] + f" item {i}", f"{c}{i}", r) for c in cats for i in range(10) for r in range(3)]
    rng.shuffle(reqs)
    ordered = order_for_prefix_cache(reqs)
    assert sorted(map(id, ordered)) == sorted(map(id, reqs))  # the same requests, reordered
    # each category is one contiguous run, and the repeats of an item are adjacent and in order
    runs = [prefix_key(r)[:20] for r in ordered]
    assert sum(1 for a, b in zip(runs, runs[1:], strict=False) if a != b) == len(cats) - 1
    for i in range(0, len(ordered), 3):
        assert [r.repeat for r in ordered[i : i + 3]] == [0, 1, 2]
        assert len({r.sample_id for r in ordered[i : i + 3]}) == 1
    before = shared_prefix_chars([r.prompt for r in reqs])
    assert shared_prefix_chars([r.prompt for r in ordered]) > 2 * before


def test_prefix_reuse_counted_at_the_server(tmp_path: Path) -> None:
    """basic_facts with a long per-category preamble (the shape of MMLU-Pro's per-category
    5-shot block), its categories interleaved in the file: the server sees each category's
    prompts together."""
    tdir = tmp_path / "tasks"
    tdir.mkdir()
    (tdir / "basic_facts.jsonl").write_text((REPO / "tasks" / "basic_facts.jsonl").read_text())
    (tdir / "prefix_facts.yaml").write_text(
        "name: prefix_facts\nversion: 1\ndataset: {files: [basic_facts.jsonl]}\n"
        "fields: {id: id, question: question, choices: options, answer: answer, meta: {category: category}}\n"
        "prompt:\n  format: completion\n  template: |-\n"
        "    Worked examples about {{ category }}: " + "an exemplar question and its answer. " * 40 + "\n"
        "    Question: {{ question }}\nextract: choice\ngrade: choice\ngeneration: {max_tokens: 8}\n"
    )
    prompts: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        if request.method == "GET":
            return web.json_response({"data": [{"id": "m"}]})
        prompts.append((await request.json())["prompt"])
        return web.json_response(ok_body())

    with server_thread(handler) as url:
        cfg = RunConfig(
            tasks=["prefix_facts"],
            model=f"openai:{url}@m",
            tasks_dirs=[str(tdir)],
            out=tmp_path / "run",
            concurrency=1,
            use_cache=False,
            progress=False,
        )
        run_evaluation(cfg)
    assert len(prompts) == 20
    items = [json.loads(x) for x in (REPO / "tasks" / "basic_facts.jsonl").read_text().splitlines()]
    file_order = [next(p for p in prompts if it["question"] in p) for it in items]
    categories_in_file = [it["category"] for it in items]
    switches = sum(1 for a, b in zip(categories_in_file, categories_in_file[1:], strict=False) if a != b)
    assert switches > len(set(categories_in_file))  # interleaved in the file
    assert shared_prefix_chars(prompts) > 1.5 * shared_prefix_chars(file_order)


# -- n=k --------------------------------------------------------------------------------------------
def test_repeats_group_only_when_unseeded_and_sampled() -> None:
    reqs = [req("p", "s1", r) for r in range(3)] + [req("q", "s2", r, seed=7) for r in range(3)]
    reqs += [req("g", "s3", r, temp=0.0) for r in range(2)]
    got = batches(reqs, 1, group_repeats=True)
    assert [len(b) for b in got] == [3, 1, 1, 1, 1, 1]
    assert [r.repeat for r in got[0]] == [0, 1, 2]
    assert [len(b) for b in batches(reqs, 1)] == [1] * 8  # a backend that does not group


@pytest.mark.parametrize("honours_n", [True, False])
def test_n_k_request_for_repeats_with_own_records_and_cache_entries(tmp_path: Path, honours_n: bool) -> None:
    bodies: list[dict] = []

    async def handler(request: web.Request) -> web.Response:
        if request.method == "GET":
            return web.json_response({"data": [{"id": "m"}]})
        body = await request.json()
        bodies.append(body)
        n = body.get("n", 1) if honours_n else 1  # llama.cpp's server answers one choice
        choices = [
            {"index": i, "message": {"role": "assistant", "content": f"The answer is ({'ABCD'[i % 4]})"}}
            for i in range(n)
        ]
        return web.json_response({"choices": choices, "usage": {"prompt_tokens": 5}})

    # Tasks seed their requests by default (seed 1234, repeat r gets 1234 + r): one n=k request has
    # one seed, so seeded repeats go one by one. This copy of basic_facts samples unseeded.
    tdir = tmp_path / "tasks"
    tdir.mkdir()
    (tdir / "basic_facts.jsonl").write_text((REPO / "tasks" / "basic_facts.jsonl").read_text())
    yaml_text = (REPO / "tasks" / "basic_facts.yaml").read_text()
    (tdir / "basic_facts.yaml").write_text(yaml_text.replace("generation:\n", "generation:\n  seed: null\n"))
    cache = tmp_path / "cache.sqlite"
    with server_thread(handler) as url:
        cfg = RunConfig(
            tasks=["basic_facts"],
            tasks_dirs=[str(tdir)],
            model=f"openai:{url}@m",
            out=tmp_path / "run",
            repeats=4,
            overrides={"temperature": 0.8},
            cache_path=cache,
            progress=False,
        )
        res = run_evaluation(cfg)
        n_first = len(bodies)
        again = run_evaluation(RunConfig(**{**cfg.__dict__, "out": tmp_path / "run2"}))
    assert res.n_errors == 0 and res.n_requests == 80
    recs = RunFolder(tmp_path / "run").records()
    assert len(recs) == 80 and len({r.key for r in recs}) == 80  # one record and key per repeat
    if honours_n:
        assert n_first == 20 and all(b["n"] == 4 for b in bodies[:n_first])
        by_item = {}
        for r in recs:
            by_item.setdefault(r.sample_id, set()).add(r.completion.text)
        assert all(len(v) == 4 for v in by_item.values())  # repeat i got choice i
    else:
        # the first n=4 request came back with one choice: evalkit stops asking and sends singly
        assert n_first == 1 + 80 and sum("n" in b for b in bodies[:n_first]) == 1
    # every repeat has its own cache entry: the second folder is answered from the cache
    assert again.n_sent == 0 and again.n_cached == 80 and len(bodies) == n_first


# -- batched writes -----------------------------------------------------------------------------------
def test_record_writer_batches_and_writes_everything_on_close(tmp_path: Path) -> None:
    from evalkit.store import Record
    from evalkit.types import Completion

    path = tmp_path / "records.jsonl"
    rec = Record("k", "t", "s", 0, "ok", Completion("x", "stop"))
    w = RecordWriter(path, batch_records=3, batch_s=3600)
    w.write(rec.replace(key="k0"))
    w.write(rec.replace(key="k1"))
    assert path.read_bytes() == b"" and w.n_pending == 2  # waiting for a full batch
    w.write(rec.replace(key="k2"))
    assert path.read_bytes().count(b"\n") == 3 and w.n_pending == 0
    w.write(rec.replace(key="k3"))
    w.batch_s = 0.0
    w.flush_if_due()  # the run's timer: a batch that has waited long enough goes out
    assert path.read_bytes().count(b"\n") == 4
    w.write(rec.replace(key="k4"))
    w.batch_s = 3600
    w.write(rec.replace(key="k5"))
    w.close()
    assert [r.key for r in RunFolder(tmp_path).iter_records()] == [f"k{i}" for i in range(6)]

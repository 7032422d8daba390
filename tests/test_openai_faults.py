"""Retry and error classification of the OpenAI-compatible backend against a local HTTP server
that injects faults (429 with Retry-After, 400, 500, slow answers), the loglikelihood protocol
(echoed prompt logprobs) against the same server and against llama.cpp's, and the concurrency
knob. Fakes are for fault injection and exact protocol cases only; the real-model path is tested
against llama.cpp's server here and in test_e2e_server.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from aiohttp import web
from builders import ll_request

from evalkit.backends import make_backend, parse_spec
from evalkit.backends.openai import OpenAIBackend
from evalkit.backends.retry import RetryPolicy, backoff_delay, classify_status, parse_retry_after
from evalkit.errors import BackendError, NotSupported
from evalkit.types import GenParams, Message, Request


def make_req(i: int = 0, prompt: str | None = None) -> Request:
    msgs = None if prompt else (Message("user", f"question {i}"),)
    return Request(
        key=f"k{i}",
        task="t",
        sample_id=str(i),
        repeat=0,
        params=GenParams(max_tokens=8),
        messages=msgs,
        prompt=prompt,
    )


def ll_req(prompt: str | None, continuations: tuple[str, ...], key: str = "ll") -> Request:
    messages = None if prompt is not None else (Message("user", "hi"),)
    return ll_request(key, continuations, prompt=prompt, messages=messages)


def ok_body(text: str = "The answer is (B)") -> dict:
    return {
        "choices": [
            {"message": {"role": "assistant", "content": text}, "text": text, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 4},
    }


async def serve(handler: Callable[[web.Request], object]) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/v1/{tail:.*}", handler)  # type: ignore[arg-type]
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/v1"


def backend(url: str, **kw) -> OpenAIBackend:
    return OpenAIBackend(
        url,
        "m",
        retry_policy=RetryPolicy(max_retries=kw.pop("max_retries", 3), base_delay_s=0.01, max_delay_s=0.05),
        **kw,
    )


@asynccontextmanager
async def serving(
    handler: Callable[[web.Request], object],
    build: Callable[[str], OpenAIBackend] | None = None,
    **backend_kw,
) -> AsyncIterator[OpenAIBackend]:
    """The fault-injection server and a backend talking to it (``backend(url, **backend_kw)``
    unless ``build`` makes another), both closed on the way out."""
    runner, url = await serve(handler)
    b = build(url) if build is not None else backend(url, **backend_kw)
    try:
        yield b
    finally:
        await b.aclose()
        await runner.cleanup()


@contextmanager
def serving_in_thread(handler: Callable[[web.Request], object]) -> Iterator[str]:
    """The server on its own event loop in a thread, for a client in another process; yields the URL."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict[str, object] = {}

    def main() -> None:
        asyncio.set_event_loop(loop)
        box["runner"], box["url"] = loop.run_until_complete(serve(handler))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert started.wait(10), "the test server did not start"
    try:
        yield str(box["url"])
    finally:
        asyncio.run_coroutine_threadsafe(box["runner"].cleanup(), loop).result(10)  # type: ignore[union-attr]
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_429_with_retry_after_then_success() -> None:
    calls: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(time.monotonic())
        if len(calls) <= 2:
            return web.json_response({"error": "slow down"}, status=429, headers={"Retry-After": "0.3"})
        return web.json_response(ok_body())

    async def main() -> None:
        async with serving(handler) as b:
            [c] = await b.generate([make_req()])
        assert c.ok and c.text == "The answer is (B)"
        assert c.attempts == 3
        assert c.usage.prompt_tokens == 5 and c.usage.completion_tokens == 4
        # Retry-After was honoured: each retry waited at least 0.3 s.
        assert calls[1] - calls[0] >= 0.28 and calls[2] - calls[1] >= 0.28

    asyncio.run(main())


def test_400_is_not_retried_and_becomes_error() -> None:
    calls = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(1)
        return web.json_response({"error": {"message": "bad model name"}}, status=400)

    async def main() -> None:
        async with serving(handler) as b:
            [c] = await b.generate([make_req()])
        assert not c.ok and c.finish_reason == "error"
        assert (
            c.error_kind == "fatal" and "HTTP 400" in (c.error or "") and "bad model name" in (c.error or "")
        )
        assert len(calls) == 1

    asyncio.run(main())


def test_500_retried_until_limit_then_error() -> None:
    calls = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(1)
        return web.Response(status=503, text="overloaded")

    async def main() -> None:
        async with serving(handler, max_retries=2) as b:
            [c] = await b.generate([make_req()])
        assert not c.ok and c.error_kind == "transient" and c.attempts == 3
        assert len(calls) == 3

    asyncio.run(main())


@pytest.mark.slow  # seconds each (sandbox time limits, real data, full charts): the full tier
def test_timeout_is_transient_and_retried() -> None:
    calls = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(1)
        if len(calls) == 1:
            await asyncio.sleep(2)
        return web.json_response(ok_body("fine"))

    async def main() -> None:
        async with serving(handler, timeout=0.5) as b:
            [c] = await b.generate([make_req()])
        assert c.ok and c.text == "fine" and c.attempts == 2

    asyncio.run(main())


def test_request_body_and_completion_endpoint() -> None:
    bodies: list[tuple[str, dict]] = []

    async def handler(request: web.Request) -> web.Response:
        bodies.append((request.path, await request.json()))
        assert request.headers.get("Authorization") == "Bearer sekrit"
        return web.json_response({"choices": [{"text": " 42", "finish_reason": "length"}]})

    def build(url: str) -> OpenAIBackend:
        return OpenAIBackend(url, "m", api_key_env="TEST_EVALKIT_KEY", extra_body={"repeat_penalty": 1.0})

    async def main() -> None:
        req = Request(
            key="k",
            task="t",
            sample_id="1",
            repeat=2,
            prompt="Q: 6*7?\nA:",
            params=GenParams(max_tokens=8, temperature=0.0, seed=10, stop=("a", "b", "c", "d", "e")),
        )
        async with serving(handler, build) as b:
            [c] = await b.generate([req])
        assert c.text == " 42" and c.finish_reason == "length"
        path, body = bodies[0]
        assert path == "/v1/completions"
        assert body["prompt"] == "Q: 6*7?\nA:" and body["max_tokens"] == 8
        assert body["seed"] == 12  # seed + repeat: repeats of one item are distinct samples
        assert body["stop"] == ["a", "b", "c", "d"]  # the API takes 4; the rest are cut client-side
        assert body["repeat_penalty"] == 1.0

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEST_EVALKIT_KEY", "sekrit")
        asyncio.run(main())


def test_unreachable_server_fails_fast_with_clear_message() -> None:
    from tests.conftest import free_port

    async def main() -> None:
        b = backend(f"http://127.0.0.1:{free_port()}/v1")
        try:
            with pytest.raises(BackendError, match="cannot reach the OpenAI-compatible server"):
                await b.check()
        finally:
            await b.aclose()

    asyncio.run(main())


def holding_handler(target: int, peak: dict[str, int]) -> Callable[[web.Request], object]:
    """Answers chat and completion requests, holding each until ``target`` are in flight at once
    (or 20 s passed, when fewer ever arrive): ``peak`` then shows how many the client sent at once,
    with no timing in the assertion."""
    full: asyncio.Event | None = None

    async def handler(request: web.Request) -> web.Response:
        nonlocal full
        if request.path.endswith("/models"):
            return web.json_response({"data": [{"id": "m"}]})
        full = full or asyncio.Event()
        peak["now"] += 1
        peak["max"] = max(peak["max"], peak["now"])
        if peak["now"] >= target:
            full.set()
        try:
            await asyncio.wait_for(full.wait(), timeout=20)
        except asyncio.TimeoutError:
            pass
        finally:
            peak["now"] -= 1
        return web.json_response(ok_body("The answer is (B)"))

    return handler


def test_many_concurrent_requests_share_one_pool() -> None:
    peak = {"now": 0, "max": 0}

    async def main() -> None:
        from evalkit.run.engine import execute

        got = []

        async def on_done(req: Request, comp) -> None:
            got.append((req.key, comp.ok))

        async with serving(
            holding_handler(16, peak), build=lambda url: make_backend(f"openai:{url}@m", {}, 16)
        ) as b:
            assert b.max_concurrency == 16
            await execute(b, [make_req(i) for i in range(64)], on_done)
        assert len(got) == 64 and all(ok for _, ok in got)
        assert len({k for k, _ in got}) == 64
        assert peak["max"] == 16

    asyncio.run(main())


def test_run_concurrency_64_puts_64_requests_in_flight(tmp_path: Path) -> None:
    """`evalkit run --concurrency 64` (the README's first example) keeps 64 requests in flight,
    above the openai backend's default pool of 32, through the real console entry point."""
    from tests.conftest import run_cli

    items = [{"id": f"q{i}", "question": f"Question {i}?", "answer": "B"} for i in range(80)]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    (tmp_path / "flight.yaml").write_text(
        "name: flight\nversion: 1\ndataset: {files: [items.jsonl]}\n"
        "fields: {id: id, question: question, answer: answer}\n"
        'prompt: {format: chat, template: "{{ question }}"}\nextract: exact\ngrade: exact\n'
        "generation: {max_tokens: 4}\n"
    )
    peak = {"now": 0, "max": 0}
    with serving_in_thread(holding_handler(64, peak)) as url:
        proc = run_cli(
            "run", "-t", "flight", "--tasks-dir", str(tmp_path), "-m", f"openai:{url}@m",
            "--concurrency", "64", "--out", str(tmp_path / "run"), "--no-progress", "--no-cache",
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert peak["max"] == 64


def test_one_concurrency_knob() -> None:
    """--concurrency sizes the connection pool; -M concurrency is the same setting, so the two
    may only agree; the engine refuses more than the backend was built for instead of capping."""
    from evalkit.run.engine import worker_count

    spec = "openai:http://127.0.0.1:1/v1@m"
    assert make_backend(spec).max_concurrency == 32
    assert make_backend(spec, {}, concurrency=64).max_concurrency == 64
    assert make_backend(spec, {"concurrency": "8"}).max_concurrency == 8
    assert make_backend(spec, {"concurrency": "8"}, concurrency=8).max_concurrency == 8
    with pytest.raises(BackendError, match="--concurrency 16 and --model-arg concurrency=8 disagree"):
        make_backend(spec, {"concurrency": "8"}, concurrency=16)
    b = make_backend(spec, {}, concurrency=64)
    assert worker_count(b) == worker_count(b, 64) == 64 and worker_count(b, 10) == 10
    with pytest.raises(
        BackendError, match="--concurrency 64: this openai backend takes at most 32 requests at once"
    ):
        worker_count(make_backend(spec), 64)


# --- loglikelihood: echoed prompt logprobs ----------------------------------------------------

TOKEN = re.compile(r"\s?[^\s]+|\s")
# log p the fake server gives each token (by its text without the leading space); others get -1.
LOGPROB = {"4": -0.25, "5": -2.5, "maybe": -0.75}


def echo_handler(bodies: list[dict]) -> Callable[[web.Request], object]:
    """/completions with echo in OpenAI's legacy logprobs format: the prompt's tokens (the first
    has no logprob), then one generated token; top_logprobs make " 4" the greedy choice after "A:"."""

    async def handler(request: web.Request) -> web.Response:
        body = await request.json()
        bodies.append(body)
        text = body["prompt"]
        tokens = TOKEN.findall(text) + ["\n"]  # the one generated token (max_tokens=1)
        offsets, pos = [], 0
        for t in tokens:
            offsets.append(pos)
            pos += len(t)
        lps = [None] + [LOGPROB.get(t.strip(), -1.0) for t in tokens[1:]]
        tops = [None] + [
            {" 4": -0.25, t: lp} if t in (" 4", " 5") else {t: lp}
            for t, lp in zip(tokens[1:], lps[1:], strict=True)
        ]
        logprobs = {"tokens": tokens, "text_offset": offsets, "token_logprobs": lps, "top_logprobs": tops}
        return web.json_response(
            {"choices": [{"text": text + "\n", "logprobs": logprobs, "finish_reason": "length"}]}
        )

    return handler


def test_loglikelihood_from_echoed_prompt_logprobs() -> None:
    """The echo/offset arithmetic on an exact case: only tokens inside the continuation count (not
    the prompt's, not the generated one), summed; greedy when each is the top token."""
    bodies: list[dict] = []
    prompt = "Q: What is 2+2?\nA:"

    async def main() -> None:
        async with serving(echo_handler(bodies), extra_body={"repeat_penalty": 1.0}) as b:
            [c] = await b.loglikelihood([ll_req(prompt, (" 4", " 5 maybe", " 4 maybe"))])
            assert c.ok, c.error
            assert c.logprobs == (-0.25, -2.5 - 0.75, -0.25 - 0.75)
            assert c.greedy == (True, False, True)
            assert c.attempts == 3  # one request per continuation
            assert [body["prompt"] for body in bodies] == [
                prompt + " 4",
                prompt + " 5 maybe",
                prompt + " 4 maybe",
            ]
            assert all(
                body["echo"] is True and body["logprobs"] == 1 and body["max_tokens"] == 1
                and body["temperature"] == 0.0 and body["repeat_penalty"] == 1.0 and body["model"] == "m"
                for body in bodies
            )  # fmt: skip
            with pytest.raises(NotSupported, match="plain prompt"):
                await b.loglikelihood([ll_req(None, (" 4",))])

    asyncio.run(main())


def test_loglikelihood_without_echo_support_is_an_error() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"choices": [{"text": " 4", "finish_reason": "length"}]})

    async def main() -> None:
        async with serving(handler) as b:
            [c] = await b.loglikelihood([ll_req("Q:", (" 4",))])
        assert not c.ok and c.error_kind == "fatal" and "echo unsupported" in (c.error or "")

    asyncio.run(main())


@pytest.mark.slow  # starts the llama.cpp server (session fixture) when no other test has
def test_loglikelihood_against_llama_cpp(llama_server: str) -> None:
    """The same arithmetic on a real server: the memorised fact wins, and a two-token continuation
    scores the sum of its tokens scored one after the other."""

    async def main() -> None:
        b = make_backend(f"openai:{llama_server}@smollm2")
        try:
            p = "The capital of France is"
            [c] = await b.loglikelihood([ll_req(p, (" Paris", " Banana", " Paris."))])
            [d] = await b.loglikelihood([ll_req(p + " Paris", (".",))])
        finally:
            await b.aclose()
        assert c.ok and d.ok, (c.error, d.error)
        paris, banana, paris_dot = c.logprobs
        assert paris > banana and all(x < 0 for x in c.logprobs)
        assert paris_dot == pytest.approx(paris + d.logprobs[0], abs=0.05)

    asyncio.run(main())


def test_classification_and_backoff() -> None:
    assert classify_status(200) is None
    assert classify_status(429) == "rate_limit"
    assert classify_status(500) == classify_status(503) == classify_status(408) == "transient"
    assert classify_status(400) == classify_status(401) == classify_status(404) == "fatal"
    assert parse_retry_after("7") == 7.0
    now = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("soon") is None
    pol = RetryPolicy(base_delay_s=1, max_delay_s=8)
    import random

    rng = random.Random(0)
    for attempt in range(1, 8):
        d = backoff_delay(attempt, pol, None, rng)
        ceiling = min(8, 2 ** (attempt - 1))
        assert ceiling / 2 <= d <= ceiling
    assert backoff_delay(1, pol, 20.0, rng) == 20.0


def test_spec_parsing_errors() -> None:
    with pytest.raises(BackendError, match="needs a base URL and a model name"):
        parse_spec("openai:http://x/v1")
    with pytest.raises(BackendError, match="must start with http"):
        parse_spec("openai:localhost:8000/v1@m")
    with pytest.raises(BackendError, match="unknown backend or alias"):
        parse_spec("gpt5-turbo-ultra")
    with pytest.raises(BackendError, match="unknown --model-arg concurency for the openai backend"):
        make_backend("openai:http://127.0.0.1:1/v1@m", {"concurency": "8"})
    b = make_backend("openai:http://127.0.0.1:1/v1@m", {"concurrency": "8", "body.top_k": "1"})
    assert b.max_concurrency == 8 and b.extra_body == {"top_k": 1}


def test_identity_covers_what_changes_answers() -> None:
    def ident(spec: str, **opts: str) -> str:
        return make_backend(spec, opts).info.identity

    a = ident("openai:http://127.0.0.1:8000/v1@m")
    assert a.startswith("openai:m@-#")
    assert a == ident(
        "openai:http://127.0.0.1:8000/v1@m", concurrency="4", timeout="30"
    )  # not output-affecting
    assert a != ident("openai:http://127.0.0.1:8000/v1@m", **{"body.repeat_penalty": "1.0"})
    assert a != ident("openai:http://127.0.0.1:9000/v1@m")  # another server may serve other weights
    # A revision label vouches for the weights: the URL no longer matters, extra fields still do.
    r1 = ident("openai:http://127.0.0.1:8000/v1@m", revision="q4")
    assert r1 == "openai:m@q4" == ident("openai:http://10.0.0.9:1/v1@m", revision="q4")
    assert r1 != ident("openai:http://127.0.0.1:8000/v1@m", revision="q4", **{"body.top_k": "1"})
    with pytest.raises(BackendError, match="evalkit sets this field itself"):
        make_backend("openai:http://127.0.0.1:8000/v1@m", {"body.temperature": "0.7"})
    with pytest.raises(BackendError, match="expected an integer"):
        make_backend("openai:http://127.0.0.1:8000/v1@m", {"concurrency": "0"})

"""Retry and error classification of the OpenAI-compatible backend against a local HTTP server
that injects faults (429 with Retry-After, 400, 500, slow answers). Fakes are for fault injection only;
the real-model path is tested against llama.cpp's server in test_e2e_server.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable

import pytest
from aiohttp import web

from evalkit.backends import parse_spec
from evalkit.backends.openai import OpenAIBackend
from evalkit.backends.retry import RetryPolicy, backoff_delay, classify_status, parse_retry_after
from evalkit.errors import BackendError
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


def ok_body(text: str = "The answer is (B)") -> dict:
    return {
        "choices": [
            {"message": {"role": "assistant", "content": text}, "text": text, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 4},
    }


async def serve(handler: Callable[[web.Request], web.StreamResponse]) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/v1/{tail:.*}", handler)
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


def test_429_with_retry_after_then_success() -> None:
    calls: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(time.monotonic())
        if len(calls) <= 2:
            return web.json_response({"error": "slow down"}, status=429, headers={"Retry-After": "0.3"})
        return web.json_response(ok_body())

    async def main() -> None:
        runner, url = await serve(handler)
        b = backend(url)
        try:
            [c] = await b.generate([make_req()])
        finally:
            await b.aclose()
            await runner.cleanup()
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
        runner, url = await serve(handler)
        b = backend(url)
        try:
            [c] = await b.generate([make_req()])
        finally:
            await b.aclose()
            await runner.cleanup()
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
        runner, url = await serve(handler)
        b = backend(url, max_retries=2)
        try:
            [c] = await b.generate([make_req()])
        finally:
            await b.aclose()
            await runner.cleanup()
        assert not c.ok and c.error_kind == "transient" and c.attempts == 3
        assert len(calls) == 3

    asyncio.run(main())


def test_timeout_is_transient_and_retried() -> None:
    calls = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(1)
        if len(calls) == 1:
            await asyncio.sleep(2)
        return web.json_response(ok_body("fine"))

    async def main() -> None:
        runner, url = await serve(handler)
        b = backend(url, timeout=0.5)
        try:
            [c] = await b.generate([make_req()])
        finally:
            await b.aclose()
            await runner.cleanup()
        assert c.ok and c.text == "fine" and c.attempts == 2

    asyncio.run(main())


def test_request_body_and_completion_endpoint() -> None:
    bodies: list[tuple[str, dict]] = []

    async def handler(request: web.Request) -> web.Response:
        bodies.append((request.path, await request.json()))
        assert request.headers.get("Authorization") == "Bearer sekrit"
        return web.json_response({"choices": [{"text": " 42", "finish_reason": "length"}]})

    async def main(monkeypatch_env: None) -> None:
        runner, url = await serve(handler)
        b = OpenAIBackend(url, "m", api_key_env="TEST_EVALKIT_KEY", extra_body={"repeat_penalty": 1.0})
        req = Request(
            key="k",
            task="t",
            sample_id="1",
            repeat=2,
            prompt="Q: 6*7?\nA:",
            params=GenParams(max_tokens=8, temperature=0.0, seed=10, stop=("a", "b", "c", "d", "e")),
        )
        try:
            [c] = await b.generate([req])
        finally:
            await b.aclose()
            await runner.cleanup()
        assert c.text == " 42" and c.finish_reason == "length"
        path, body = bodies[0]
        assert path == "/v1/completions"
        assert body["prompt"] == "Q: 6*7?\nA:" and body["max_tokens"] == 8
        assert body["seed"] == 12  # seed + repeat: repeats of one item are distinct samples
        assert body["stop"] == ["a", "b", "c", "d"]  # the API takes 4; the rest are cut client-side
        assert body["repeat_penalty"] == 1.0

    mp = pytest.MonkeyPatch()
    mp.setenv("TEST_EVALKIT_KEY", "sekrit")
    try:
        asyncio.run(main(None))
    finally:
        mp.undo()


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


def test_many_concurrent_requests_share_one_pool() -> None:
    in_flight = {"now": 0, "max": 0}

    async def handler(request: web.Request) -> web.Response:
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        await asyncio.sleep(0.05)
        in_flight["now"] -= 1
        return web.json_response(ok_body())

    async def main() -> None:
        from evalkit.run.engine import execute

        runner, url = await serve(handler)
        b = OpenAIBackend(url, "m", concurrency=16)
        got = []

        async def on_done(req: Request, comp) -> None:
            got.append((req.key, comp.ok))

        try:
            await execute(b, [make_req(i) for i in range(64)], on_done, concurrency=16)
        finally:
            await b.aclose()
            await runner.cleanup()
        assert len(got) == 64 and all(ok for _, ok in got)
        assert len({k for k, _ in got}) == 64
        assert 8 <= in_flight["max"] <= 16

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
    from evalkit.backends import make_backend

    with pytest.raises(BackendError, match="needs a base URL and a model name"):
        parse_spec("openai:http://x/v1")
    with pytest.raises(BackendError, match="must start with http"):
        parse_spec("openai:localhost:8000/v1@m")
    with pytest.raises(BackendError, match="unknown backend or alias"):
        parse_spec("gpt5-turbo-ultra")
    with pytest.raises(BackendError, match="unknown option for the openai backend"):
        make_backend("openai:http://127.0.0.1:1/v1@m", {"concurency": "8"})
    b = make_backend("openai:http://127.0.0.1:1/v1@m", {"concurrency": "8", "body.top_k": "1"})
    assert b.max_concurrency == 8 and b.extra_body == {"top_k": 1}


def test_identity_covers_what_changes_answers() -> None:
    from evalkit.backends import make_backend

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

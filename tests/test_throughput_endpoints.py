"""Several base URLs for one model (``openai:<url>,<url>@model``): requests spread by outstanding
load, an endpoint that stops answering is set aside and its requests go to the others, it comes
back when it answers again; the identity is the model's, not the addresses'. Real local HTTP
servers (aiohttp), one of them stopped mid-run and started again on the same port."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from pathlib import Path

from aiohttp import web
from test_openai_faults import make_req, ok_body

from evalkit.backends import make_backend, parse_spec
from evalkit.backends.openai import OpenAIBackend
from evalkit.backends.retry import RetryPolicy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replica:
    """One OpenAI-compatible server on a fixed port that can be stopped and started again."""

    def __init__(self, name: str, delay: float = 0.01) -> None:
        self.name, self.delay, self.port = name, delay, free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.served = 0
        self.outstanding = 0
        self.peak = 0
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        if request.method == "GET":
            return web.json_response({"data": [{"id": "m", "owned_by": "test"}]})
        await request.read()
        self.outstanding += 1
        self.peak = max(self.peak, self.outstanding)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.outstanding -= 1
        self.served += 1
        return web.json_response(ok_body(f"The answer is (B) from {self.name}"))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/v1/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


def pool_backend(replicas: list[Replica], **kw) -> OpenAIBackend:
    return OpenAIBackend(
        [r.url for r in replicas],
        "m",
        retry_policy=RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=0.05),
        **kw,
    )


def test_spec_with_several_base_urls_and_identity_of_the_model() -> None:
    spec = parse_spec("openai:http://a:8000/v1,http://b:8000/v1@m")
    assert spec.kind == "openai" and spec.model_names() == ["m"]
    b = make_backend(spec)
    assert b.base_urls == ["http://a:8000/v1", "http://b:8000/v1"]
    # Replicas of one model: the identity does not name the addresses, so adding one keeps the
    # run folder and the cache; a revision label makes it equal to the one-URL identity too.
    three = make_backend("openai:http://a:8000/v1,http://b:8000/v1,http://c:8000/v1@m")
    assert b.info.identity == three.info.identity == "openai:m@-"
    assert make_backend(spec, {"revision": "q4"}).info.identity == "openai:m@q4"
    assert make_backend("openai:http://a:8000/v1@m", {"revision": "q4"}).info.identity == "openai:m@q4"
    assert make_backend("openai:http://a:8000/v1@m").info.identity != "openai:m@-"  # one URL: as before


def test_requests_spread_by_outstanding_load_with_a_limit_per_endpoint() -> None:
    async def main() -> None:
        reps = [Replica("a"), Replica("b"), Replica("c", delay=0.05)]  # c is five times slower
        for r in reps:
            await r.start()
        b = pool_backend(reps, concurrency=24, endpoint_concurrency=6)
        try:
            out = await asyncio.gather(*(b.generate([make_req(i)]) for i in range(240)))
        finally:
            await b.aclose()
            for r in reps:
                await r.stop()
        assert all(c[0].ok for c in out)
        assert sum(r.served for r in reps) == 240
        assert max(r.peak for r in reps) <= 6  # the per-endpoint limit holds
        # least outstanding first: the slow replica holds its requests longer, so gets fewer
        assert reps[2].served < reps[0].served and reps[2].served < reps[1].served
        assert min(r.served for r in reps) > 0

    asyncio.run(main())


def test_an_endpoint_killed_mid_run_loses_nothing_and_comes_back() -> None:
    async def main() -> None:
        reps = [Replica("a"), Replica("b"), Replica("c")]
        for r in reps:
            await r.start()
        b = pool_backend(reps, concurrency=12)
        done: list = []

        async def one(i: int) -> None:
            done.append((await b.generate([make_req(i)]))[0])

        try:
            first = [asyncio.create_task(one(i)) for i in range(150)]
            while len(done) < 40:
                await asyncio.sleep(0.005)
            await reps[1].stop()  # b stops answering mid-run: connection refused
            served_b = reps[1].served
            await asyncio.gather(*first)
            assert reps[1].served == served_b
            await reps[1].start()  # b recovers
            await asyncio.sleep(1.2)  # longer than its cool-off so far
            await asyncio.gather(*(one(i) for i in range(150, 300)))
        finally:
            await b.aclose()
            for r in reps:
                await r.stop()
        assert len(done) == 300 and all(c.ok for c in done), [c.error for c in done if not c.ok][:3]
        assert all(c.attempts == 1 for c in done)  # a move to another replica is not a model retry
        assert reps[1].served > served_b  # traffic came back after the recovery
        texts = Counter(c.text.rsplit(" ", 1)[-1] for c in done)
        assert set(texts) == {"a", "b", "c"}

    asyncio.run(main())


def test_run_through_three_servers_with_one_stopped(tmp_path: Path) -> None:
    """A whole `evalkit run` against three replicas, one stopped after the first answers."""
    import threading

    from evalkit.run.runner import RunConfig, run_evaluation
    from evalkit.store import RunFolder

    loop = asyncio.new_event_loop()
    reps = [Replica("a", 0.02), Replica("b", 0.02), Replica("c", 0.02)]

    def serve() -> None:
        asyncio.set_event_loop(loop)
        for r in reps:
            loop.run_until_complete(r.start())
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    stopper_done = threading.Event()

    def stop_b_later() -> None:
        while sum(r.served for r in reps) < 5:
            threading.Event().wait(0.005)
        asyncio.run_coroutine_threadsafe(reps[1].stop(), loop).result(10)
        stopper_done.set()

    threading.Thread(target=stop_b_later, daemon=True).start()
    try:
        while not all(r.runner for r in reps):
            threading.Event().wait(0.01)
        cfg = RunConfig(
            tasks=["basic_facts"],
            model="openai:" + ",".join(r.url for r in reps) + "@m",
            out=tmp_path / "run",
            concurrency=4,
            use_cache=False,
            progress=False,
        )
        res = run_evaluation(cfg)
    finally:
        for r in reps:
            asyncio.run_coroutine_threadsafe(r.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
    assert stopper_done.is_set()
    assert res.n_errors == 0 and res.n_sent == res.n_requests == 20
    recs = RunFolder(tmp_path / "run").records()
    assert len(recs) == 20 and all(r.ok for r in recs)
    manifest = RunFolder(tmp_path / "run").require_manifest()
    assert manifest["backend"]["identity"] == "openai:m@-"
    assert manifest["backend"]["extra"]["base_urls"] == [r.url for r in reps]
    # what the server says about itself (owned_by in /v1/models, the Server header) is recorded
    assert manifest["backend"]["extra"]["server"]["engine"] == "test"
    assert "aiohttp" in manifest["backend"]["extra"]["server"]["server_header"]


def test_serving_engine_and_version_from_what_the_server_reports() -> None:
    from evalkit.backends.openai import server_info_from

    models = b'{"data": [{"id": "m", "owned_by": "vllm", "max_model_len": 32768}]}'
    vllm = server_info_from("m", {"Server": "uvicorn"}, models, {"/version": {"version": "0.11.0"}})
    assert vllm == {"engine": "vllm", "version": "0.11.0", "max_model_len": 32768, "server_header": "uvicorn"}
    props = {"/props": {"build_info": "b6000-abc", "default_generation_settings": {}}}
    llama = server_info_from("m", {}, b'{"data": [{"id": "m", "owned_by": "llamacpp"}]}', props)
    assert llama == {"engine": "llama.cpp", "version": "b6000-abc"}
    sglang = server_info_from(
        "m", {}, b'{"data": [{"id": "m", "owned_by": "sglang"}]}', {"/get_server_info": {"version": "0.5.1"}}
    )
    assert sglang == {"engine": "sglang", "version": "0.5.1"}
    assert server_info_from("m", {}, b"not json", {}) == {}

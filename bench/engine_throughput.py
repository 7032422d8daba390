"""Throughput of evalkit's run pipeline against a local OpenAI-compatible server that answers in
50 ms, side by side with the possible rate (concurrency / 0.05 s) and, when lm-eval is installed,
lm-eval's `local-chat-completions` model on the same server and items.

    .venv/bin/python bench/engine_throughput.py [--items 600] [--delay 0.05] [--concurrency 8 32 128]

The server runs in its own process, so client and server share the 2 cores as they would for a
local deployment; the numbers are requests per second over the whole run (plan, HTTP, grading,
records on disk).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _serve(port: int, delay: float) -> None:
    import asyncio

    from aiohttp import web

    async def chat(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(delay)
        return web.json_response(
            {
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "The answer is (B)"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 20, "completion_tokens": 5},
            }
        )

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "m"}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=1024)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_task(folder: Path, n: int) -> None:
    with (folder / "bench_items.jsonl").open("w") as f:
        for i in range(n):
            f.write(
                json.dumps(
                    {"id": str(i), "q": f"Item {i}: which letter?", "options": ["w", "x", "y", "z"], "a": "B"}
                )
                + "\n"
            )
    (folder / "bench_task.yaml").write_text(
        "name: bench_task\nversion: 1\ndataset: {files: [bench_items.jsonl]}\n"
        "fields: {id: id, question: q, choices: options, answer: a}\n"
        'prompt:\n  template: "{{ question }}"\nextract: choice\ngrade: choice\n'
        "generation: {max_tokens: 16}\n"
    )


def bench_evalkit(url: str, tasks_dir: Path, out: Path, concurrency: int) -> float:
    from evalkit.run.runner import RunConfig, run_evaluation

    cfg = RunConfig(
        tasks=["bench_task"],
        model=f"openai:{url}@m",
        tasks_dirs=[str(tasks_dir)],
        out=out,
        concurrency=concurrency,
        use_cache=False,
        progress=False,
    )
    t0 = time.perf_counter()
    res = run_evaluation(cfg)
    elapsed = time.perf_counter() - t0
    assert res.n_errors == 0 and res.n_sent == res.n_requests
    return res.n_requests / elapsed


def bench_lmeval(url: str, n: int, concurrency: int) -> float | None:
    """lm-eval's own client on the same server: generate_until over n chat requests."""
    try:
        from lm_eval.api.instance import Instance
        from lm_eval.models.api_models import JsonChatStr
        from lm_eval.models.openai_completions import LocalChatCompletion
    except ImportError:
        return None
    lm = LocalChatCompletion(
        base_url=f"{url}/chat/completions",
        model="m",
        num_concurrent=concurrency,
        max_retries=1,
        tokenized_requests=False,
    )
    reqs = [
        Instance(
            "generate_until",
            {},
            (
                JsonChatStr(json.dumps([{"role": "user", "content": f"Item {i}: which letter?"}])),
                {"until": [], "max_gen_toks": 16},
            ),
            i,
        )
        for i in range(n)
    ]
    t0 = time.perf_counter()
    lm.generate_until(reqs, disable_tqdm=True)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=600)
    ap.add_argument("--delay", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[8, 32, 128])
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    port = _free_port()
    server = mp.get_context("spawn").Process(target=_serve, args=(port, args.delay), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        _write_task(tmpd, args.items)
        for c in args.concurrency:
            possible = c / args.delay
            ek = bench_evalkit(url, tmpd, tmpd / f"run{c}", c)
            le = bench_lmeval(url, min(args.items, 300), c)
            rows.append((c, possible, ek, le))
    server.terminate()
    print(f"{args.items} requests per run, server delay {args.delay * 1000:.0f} ms, {os.cpu_count()} cores")
    print(
        f"{'conc':>5} {'possible/s':>11} {'evalkit/s':>10} {'% possible':>11} "
        f"{'lm-eval/s':>10} {'evalkit/lm-eval':>16}"
    )
    for c, possible, ek, le in rows:
        le_s = f"{le:10.1f}" if le else f"{'n/a':>10}"
        ratio = f"{ek / le:16.2f}" if le else f"{'n/a':>16}"
        print(f"{c:5d} {possible:11.0f} {ek:10.1f} {100 * ek / possible:10.0f}% {le_s} {ratio}")


if __name__ == "__main__":
    main()

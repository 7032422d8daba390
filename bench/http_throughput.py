"""evalkit against lm-eval on the same MMLU-Pro items and the same local OpenAI-compatible server.

    .venv/bin/python bench/http_throughput.py [--items 3000] [--delay 0.05] [--runs 3]
        [--concurrency 1 8 32 128 512] [--data-dir ../shared/data] [--no-lmeval] [--aimd]

A test server (its own process, fixed latency, `/v1/completions`) answers every request; both
harnesses evaluate the same items with the real 5-shot MMLU-Pro prompts: evalkit's `mmlu_pro` task
and lm-eval's own `mmlu_pro` YAMLs (copied, with ``dataset_path: json`` pointed at the same local
files, and the tasks renamed so they do not clash with lm-eval's built-in ones), through
`local-completions`. Both run as a user would run them, one command each, `--no-cache` for evalkit.

The server timestamps the first request and the last answer, so each command splits into
start-up (process start to first request) and the request phase (first request to last answer).
The request-phase rate is compared with the most the concurrency allows (concurrency / latency).
Items scale with the concurrency (about 94 per concurrent request, at most --items) so that low
concurrencies do not take minutes. Each cell is the median of --runs runs.

``--aimd`` instead runs ``evalkit run --concurrency auto`` against a server that answers 429 above a
set concurrency, and prints the limit the run converged to.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MMLU_PRO = Path("hf/TIGER-Lab/MMLU-Pro")


# -- the test server ----------------------------------------------------------------------------
def _serve(port: int, delay: float, max_concurrent: int | None) -> None:
    import asyncio

    from aiohttp import web

    stats = {"first": None, "last": None, "n": 0, "rejected": 0, "inflight": 0, "peak": 0}

    def answer() -> dict:
        return {
            "id": "x",
            "object": "text_completion",
            "model": "m",
            "choices": [{"index": 0, "text": " The answer is (B).", "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 6},
        }

    async def completions(request: web.Request) -> web.Response:
        await request.read()
        now = time.time()
        if stats["first"] is None:
            stats["first"] = now
        if max_concurrent is not None and stats["inflight"] >= max_concurrent:
            stats["rejected"] += 1
            return web.json_response({"error": "too many requests"}, status=429)
        stats["inflight"] += 1
        stats["peak"] = max(stats["peak"], stats["inflight"])
        try:
            await asyncio.sleep(delay)
        finally:
            stats["inflight"] -= 1
        stats["n"] += 1
        stats["last"] = time.time()
        return web.json_response(answer())

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "m", "object": "model"}]})

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(stats)

    async def reset(request: web.Request) -> web.Response:
        stats.update(first=None, last=None, n=0, rejected=0, inflight=0, peak=0)
        return web.json_response(stats)

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/stats", get_stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=4096)


class Server:
    def __init__(self, delay: float, max_concurrent: int | None = None) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = mp.get_context("spawn").Process(
            target=_serve, args=(self.port, delay, max_concurrent), daemon=True
        )
        self.proc.start()
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def _call(self, path: str, method: str = "GET") -> dict:
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def reset(self) -> None:
        self._call("/reset", "POST")

    def stats(self) -> dict:
        return self._call("/stats")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(5)


# -- the items ----------------------------------------------------------------------------------
def write_subset(src: Path, dest: Path, n: int) -> int:
    """The first ``n / 14`` test items of every category (and the whole validation split, the
    exemplars) under ``dest`` in the layout evalkit's --data-dir reads; returns the item count."""
    by_cat: dict[str, list[str]] = defaultdict(list)
    with (src / MMLU_PRO / "test.jsonl").open(encoding="utf-8") as f:
        for line in f:
            by_cat[json.loads(line)["category"]].append(line)
    per = max(1, n // len(by_cat))
    (dest / MMLU_PRO).mkdir(parents=True, exist_ok=True)
    lines = [line for cat in sorted(by_cat) for line in by_cat[cat][:per]]
    (dest / MMLU_PRO / "test.jsonl").write_text("".join(lines), encoding="utf-8")
    shutil.copy(src / MMLU_PRO / "validation.jsonl", dest / MMLU_PRO / "validation.jsonl")
    return len(lines)


def write_lmeval_tasks(data: Path, dest: Path) -> None:
    """lm-eval's own mmlu_pro YAMLs, renamed mmlu_pro_local*, reading ``data``'s JSON files."""
    import lm_eval

    src = Path(lm_eval.__file__).parent / "tasks" / "mmlu_pro"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "utils.py", dest / "utils.py")
    files = {split: str((data / MMLU_PRO / f"{split}.jsonl").resolve()) for split in ("test", "validation")}
    template = (src / "_default_template_yaml").read_text()
    template = template.replace(
        "dataset_path: TIGER-Lab/MMLU-Pro",
        "dataset_path: json\ndataset_kwargs:\n  data_files:\n"
        + "".join(f"    {k}: {v}\n" for k, v in files.items()),
    )
    (dest / "_default_template_yaml").write_text(template)
    for f in src.glob("*.yaml"):
        text = f.read_text().replace("mmlu_pro", "mmlu_pro_local")
        (dest / f.name.replace("mmlu_pro", "mmlu_pro_local")).write_text(text)


# -- one command, timed -------------------------------------------------------------------------
def timed(cmd: list[str], server: Server, env: dict[str, str], keep_stderr: bool = False) -> dict:
    server.reset()
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    s = server.stats()
    phase = (s["last"] - s["first"]) if s["first"] and s["last"] else float("nan")
    out = {"wall": wall, "startup": (s["first"] or t0) - t0, "phase": phase, "n": s["n"], "peak": s["peak"]}
    return out if not keep_stderr else {**out, "stderr": proc.stderr}


def evalkit_cmd(url: str, data: Path, out: Path, c: int | str) -> list[str]:
    return [
        sys.executable, "-m", "evalkit", "run", "--task", "mmlu_pro", "--data-dir", str(data),
        "--model", f"openai:{url}/v1@m", "--concurrency", str(c), "--no-cache", "--no-progress",
        "--out", str(out),
    ]  # fmt: skip


def lmeval_cmd(url: str, tasks: Path, out: Path, c: int) -> list[str]:
    lm_eval = Path(sys.executable).with_name("lm_eval")
    args = (
        f"base_url={url}/v1/completions,model=m,num_concurrent={c},tokenized_requests=False,"
        "tokenizer_backend=None,max_retries=3"
    )
    return [
        str(lm_eval), "--model", "local-completions", "--model_args", args, "--tasks", "mmlu_pro_local",
        "--include_path", str(tasks), "--output_path", str(out),
    ]  # fmt: skip


def median_of(results: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


def items_for(c: int, most: int) -> int:
    return min(most, max(100, 94 * c))


def bench(args: argparse.Namespace, env: dict[str, str]) -> list[dict]:
    server = Server(args.delay)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmpd = Path(tmp)
            for c in args.concurrency:
                data = tmpd / f"data{c}"
                n = write_subset(Path(args.data_dir), data, items_for(c, args.items))
                write_lmeval_tasks(data, tmpd / f"lmtasks{c}")
                ek, le = [], []
                for r in range(args.runs):
                    ek.append(timed(evalkit_cmd(server.url, data, tmpd / f"ek{c}-{r}", c), server, env))
                    if not args.no_lmeval:
                        cmd = lmeval_cmd(server.url, tmpd / f"lmtasks{c}", tmpd / f"le{c}-{r}", c)
                        le.append(timed(cmd, server, env))
                row = {"c": c, "n": n, "limit": c / args.delay, "ek": median_of(ek)}
                row["le"] = median_of(le) if le else None
                rows.append(row)
                print_row(row, flush=True)
    finally:
        server.stop()
    return rows


HEADER = (
    f"{'conc':>5} {'items':>6} {'limit/s':>8} |"
    f" {'evalkit wall':>12} {'start':>6} {'req/s':>7} {'%limit':>7} |"
    f" {'lm-eval wall':>12} {'start':>6} {'req/s':>7} {'%limit':>7} | {'wall x':>6} {'req/s x':>7}"
)


def print_row(row: dict, flush: bool = False) -> None:
    ek, le, n, lim = row["ek"], row["le"], row["n"], row["limit"]
    ek_rate = n / ek["phase"]
    line = (
        f"{row['c']:5d} {n:6d} {lim:8.0f} | {ek['wall']:11.1f}s {ek['startup']:5.2f}s {ek_rate:7.0f}"
        f" {100 * ek_rate / lim:6.0f}% |"
    )
    if le:
        le_rate = n / le["phase"]
        line += (
            f" {le['wall']:11.1f}s {le['startup']:5.1f}s {le_rate:7.0f} {100 * le_rate / lim:6.0f}% |"
            f" {le['wall'] / ek['wall']:5.1f}x {ek_rate / le_rate:6.2f}x"
        )
    print(line, flush=flush)


def bench_aimd(args: argparse.Namespace, env: dict[str, str]) -> None:
    """``--concurrency auto`` against a server that refuses (429) above ``--aimd-cap`` in flight."""
    server = Server(args.delay, max_concurrent=args.aimd_cap)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            n = write_subset(Path(args.data_dir), data, args.items)
            out = Path(tmp) / "run"
            r = timed(evalkit_cmd(server.url, data, out, "auto"), server, env, keep_stderr=True)
            s = server.stats()
            settled = [x for x in r["stderr"].splitlines() if x.startswith("--concurrency auto:")]
            print(
                f"--concurrency auto, server refuses above {args.aimd_cap} in flight, {n} items: "
                f"{n / r['phase']:.0f} req/s ({100 * n / r['phase'] / (args.aimd_cap / args.delay):.0f}% of "
                f"the {args.aimd_cap / args.delay:.0f}/s the cap allows), {s['rejected']} refused (retried), "
                f"peak {s['peak']} in flight"
            )
            print("\n".join(settled) or "(no --concurrency auto line on stderr)")
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=3000)
    ap.add_argument("--delay", type=float, default=0.05)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128, 512])
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--no-lmeval", action="store_true")
    ap.add_argument("--aimd", action="store_true", help="run the --concurrency auto convergence check")
    ap.add_argument("--aimd-cap", type=int, default=48)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the server process is stopped too
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("EVALKIT_CACHE_DIR", tempfile.mkdtemp(prefix="evalkit-bench-cache-"))
    if args.aimd:
        bench_aimd(args, env)
        return
    print(f"server latency {args.delay * 1000:.0f} ms, {os.cpu_count()} cores, median of {args.runs} runs")
    print(HEADER, flush=True)
    bench(args, env)
    print("wall x: lm-eval's wall time / evalkit's; req/s x: evalkit's request-phase rate / lm-eval's")


if __name__ == "__main__":
    main()

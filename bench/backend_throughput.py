"""Greedy generation throughput: evalkit's hf backend vs lm-eval's `hf` model (HFLM.generate_until).

Both run the same model (by default the tiny Llama from tests/tinymodel.py, trained into a temp
dir; or any local model folder with --model), the same prompts, the same batch size, greedy, the
same max new tokens, on CPU in float32. Each side runs in its own fresh process, gets a warm-up
call, then the best of --rounds timed runs. Tokens are counted with the model's tokenizer on each
side's output text, so both are counted the same way. Also prints how many outputs agree exactly
(greedy should agree).

    .venv/bin/python bench/backend_throughput.py [--items 64] [--max-tokens 48] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # tinymodel lives with the tests

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Prompt stems the tiny model half-knows: it continues some with a memorised fact and rambles on others.
STEMS = [
    "The capital of",
    "The capital of France is",
    "Water boils at",
    "The largest",
    "Bees",
    "Two plus two",
    "The sky on a clear",
    "The chemical symbol",
    "What is the capital of Japan? The",
    "Honey and gold and",
    "Tokyo, Rome, Cairo,",
    "The planet",
]


def make_prompts(n: int) -> list[str]:
    """n distinct prompts of varied lengths (so batches need real left padding)."""
    return [f"{'Note ' * (i % 5)}{STEMS[i % len(STEMS)]}" for i in range(n)]


def run_evalkit(model_dir: Path, prompts: list[str], max_tokens: int, batch_size: int, rounds: int):
    from evalkit.backends.hf import HFBackend, HFOptions
    from evalkit.types import GenParams, Request

    opts = HFOptions(batch_size=batch_size, device="cpu", dtype="float32")
    backend = HFBackend.for_target(str(model_dir), opts).load()
    reqs = [
        Request(
            key=str(i),
            task="bench",
            sample_id=str(i),
            repeat=0,
            params=GenParams(max_tokens=max_tokens),
            prompt=p,
        )
        for i, p in enumerate(prompts)
    ]

    async def call(rs):
        # the engine hands a backend batch_size requests per call
        out = []
        for i in range(0, len(rs), batch_size):
            out += await backend.generate(rs[i : i + batch_size])
        return out

    asyncio.run(call(reqs[:batch_size]))  # warm-up
    best, texts = float("inf"), []
    for _ in range(rounds):
        t0 = time.perf_counter()
        comps = asyncio.run(call(reqs))
        best = min(best, time.perf_counter() - t0)
        texts = [c.text for c in comps]
        assert all(c.ok for c in comps), [c.error for c in comps if not c.ok][:3]
    return best, texts


def run_lmeval(model_dir: Path, prompts: list[str], max_tokens: int, batch_size: int, rounds: int):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    # add_bos_token=True: encode prompts as evalkit (and the tokenizer's own default) does
    lm = HFLM(
        pretrained=str(model_dir), device="cpu", dtype="float32", batch_size=batch_size, add_bos_token=True
    )
    gen_kwargs = {"until": [], "max_gen_toks": max_tokens, "do_sample": False}
    insts = [
        Instance(request_type="generate_until", doc={}, arguments=(p, dict(gen_kwargs)), idx=i)
        for i, p in enumerate(prompts)
    ]
    lm.generate_until(insts[:batch_size], disable_tqdm=True)  # warm-up
    best, texts = float("inf"), []
    for _ in range(rounds):
        t0 = time.perf_counter()
        texts = lm.generate_until(insts, disable_tqdm=True)
        best = min(best, time.perf_counter() - t0)
    return best, texts


def run_side(side: str, model_dir: Path, args: argparse.Namespace) -> dict:
    """One side in a fresh process, so neither inherits the other's torch threads or allocator."""
    cmd = [sys.executable, __file__, "--side", side, "--model", str(model_dir)]
    cmd += ["--items", str(args.items), "--max-tokens", str(args.max_tokens)]
    cmd += ["--batch-size", str(args.batch_size), "--rounds", str(args.rounds)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{side} side failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, help="local HF model folder (default: build the tiny test model)")
    ap.add_argument("--items", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--threads",
        type=int,
        help="torch threads per side (default: torch's choice; 1 is steadier on a busy machine)",
    )
    ap.add_argument("--side", choices=["evalkit", "lmeval"], help=argparse.SUPPRESS)  # child process
    args = ap.parse_args()

    if args.side:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        prompts = make_prompts(args.items)
        run = run_evalkit if args.side == "evalkit" else run_lmeval
        seconds, texts = run(args.model, prompts, args.max_tokens, args.batch_size, args.rounds)
        print(json.dumps({"seconds": seconds, "texts": texts}))
        return

    import torch
    import transformers
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="evalkit-bench-") as tmp:
        model_dir = args.model
        if model_dir is None:
            from tinymodel import build_tiny_model

            t0 = time.perf_counter()
            model_dir = build_tiny_model(Path(tmp) / "tiny")
            print(f"built the tiny test model in {time.perf_counter() - t0:.1f} s: {model_dir}")
        tok = AutoTokenizer.from_pretrained(model_dir)
        load_before = os.getloadavg()[0]
        ek = run_side("evalkit", model_dir, args)
        lm = run_side("lmeval", model_dir, args)
        load_after = os.getloadavg()[0]

    def n_tokens(texts: list[str]) -> int:
        return sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)

    ek_tok, lm_tok = n_tokens(ek["texts"]), n_tokens(lm["texts"])
    ek_rate, lm_rate = ek_tok / ek["seconds"], lm_tok / lm["seconds"]
    agree = sum(a == b for a, b in zip(ek["texts"], lm["texts"], strict=True))
    print(
        f"\n{args.items} prompts, greedy, max {args.max_tokens} new tokens, batch size {args.batch_size}, "
        f"CPU float32, {args.threads or torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"transformers {transformers.__version__}; best of {args.rounds}, each side in its own process; "
        f"load average {load_before:.1f} before, {load_after:.1f} after "
        "(other work on the machine skews both)"
    )
    print(f"{'':28}{'seconds':>10}{'tokens':>10}{'tokens/s':>12}")
    print(f"{'evalkit hf backend':28}{ek['seconds']:10.3f}{ek_tok:10d}{ek_rate:12.1f}")
    print(f"{'lm-eval hf (HFLM)':28}{lm['seconds']:10.3f}{lm_tok:10d}{lm_rate:12.1f}")
    print(f"ratio evalkit / lm-eval tokens/s: {ek_rate / lm_rate:.2f}x")
    print(f"identical outputs: {agree}/{args.items}")


if __name__ == "__main__":
    main()

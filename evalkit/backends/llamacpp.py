"""llama.cpp in process: ``llamacpp:<file.gguf>`` through llama-cpp-python (in the test extra).

The default runtime for a catalog model pulled as a GGUF (``--model smollm2-135m``): llama.cpp
runs the quantised weights as they are, where the hf backend first dequantises them into float32
transformers (seconds at the first request, and slower generation on a CPU).

Sampling is plain: temperature, top_p and the seed as the task gives them, with llama.cpp's extra
samplers off (top_k 0, min_p 0, repeat_penalty 1), so greedy decoding is the argmax at every step
as in the hf backend. Chat prompts go through the chat template stored in the GGUF.
Loglikelihood: a second context keeps every position's logits (``logits_all``), created only
when a task asks for log-likelihoods; each continuation's log-probability is summed over the
tokens of ``prompt + continuation`` after the prompt's own tokens.

Options (``--model-arg key=value``): n_ctx (default 4096), n_threads (default: half the CPU count, as
llama.cpp's own default: its threads spin while they wait, and more threads than free cores made
generation five to ten times slower on a busy 2-core machine),
batch_size (alias of --concurrency; llama-cpp-python runs one sequence at a time, so only 1).
"""

from __future__ import annotations

import asyncio
import math
import os
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from evalkit.backends import BackendSpec
from evalkit.backends.base import BackendBase
from evalkit.backends.local import local_fingerprint
from evalkit.backends.options import one_concurrency, option_int, reject_unknown
from evalkit.console import note
from evalkit.errors import BackendError, NotSupported
from evalkit.types import BackendInfo, Completion, Request, Usage

OPTIONS = ("n_ctx", "n_threads", "batch_size")


class LlamaCppBackend(BackendBase):
    batch_size = 1
    max_concurrency = 1

    def __init__(self, path: Path, model_name: str, n_ctx: int = 4096, n_threads: int | None = None) -> None:
        if not path.is_file() or path.suffix != ".gguf":
            raise BackendError(f"llamacpp:{path}: not a .gguf file; give the path of a GGUF model file")
        self.path = path
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, (os.cpu_count() or 2) // 2)
        # llama.cpp's CPU build runs its threads through OpenMP, whose default wait policy spins:
        # on a busy 2-core machine that made a 100-token prompt take 2.5-7 s instead of 0.5 s.
        # Read once when the library loads, so it is set before the first import.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import llama_cpp

        self.info = BackendInfo(
            backend="llamacpp",
            model=model_name,
            revision=local_fingerprint(path.parent, path.name),
            extra={"file": str(path), "runtime": f"llama-cpp-python {llama_cpp.__version__}", "n_ctx": n_ctx},
        )
        self._llm: Any = None
        self._scorer: Any = None  # the logits_all context, for loglikelihood
        # llama.cpp is not thread-safe: one thread runs every call, off the event loop.
        self._worker = ThreadPoolExecutor(1, "evalkit-llamacpp")
        self._rng = random.Random()

    @classmethod
    def from_spec(
        cls, spec: BackendSpec, options: dict[str, Any], concurrency: int | None = None
    ) -> LlamaCppBackend:
        reject_unknown("llamacpp", options, set(OPTIONS))
        size = one_concurrency("llamacpp", concurrency, "batch_size", options)
        if size not in (None, 1):
            raise BackendError(
                f"--concurrency {size}: the llamacpp backend runs one sequence at a time; "
                "give 1 or leave it out"
            )
        target = spec.target
        if spec.alias:
            from evalkit.catalog import find_model
            from evalkit.catalog.pull import ensure_pulled

            entry = find_model(spec.alias)
            if entry is not None and entry.pull:
                target = str(ensure_pulled(entry))
        kwargs: dict[str, Any] = {}
        if "n_ctx" in options:
            kwargs["n_ctx"] = option_int("n_ctx", options["n_ctx"], 64)
        if "n_threads" in options:
            kwargs["n_threads"] = option_int("n_threads", options["n_threads"], 1)
        path = Path(target).expanduser()
        return cls(path, spec.alias or path.name, **kwargs)

    # -- the model, loaded on first use ----------------------------------------------------------
    def _load(self, logits_all: bool = False) -> Any:
        from llama_cpp import Llama

        if logits_all:
            if self._scorer is None:
                self._scorer = Llama(
                    str(self.path), n_ctx=self.n_ctx, n_threads=self.n_threads, logits_all=True, verbose=False
                )
            return self._scorer
        if self._llm is None:
            note(f"loading {self.path.name} (llama.cpp)")
            self._llm = Llama(str(self.path), n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False)
        return self._llm

    def _generate_here(self, req: Request) -> Completion:
        llm = self._load()
        p = req.params
        seed = p.seed + req.repeat if p.seed is not None else self._rng.randrange(1 << 31)
        kw: dict[str, Any] = {
            "max_tokens": p.max_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "top_k": 0,
            "min_p": 0.0,
            "repeat_penalty": 1.0,
            "seed": seed,
            "stop": list(p.stop) or None,
        }
        try:
            if req.messages is not None:
                msgs = [{"role": m.role, "content": m.content} for m in req.messages]
                out = llm.create_chat_completion(messages=msgs, **kw)
                choice = out["choices"][0]
                text = (choice.get("message") or {}).get("content") or ""
            else:
                out = llm.create_completion(req.prompt or "", **kw)
                choice = out["choices"][0]
                text = choice.get("text") or ""
        except ValueError as e:  # llama-cpp-python raises ValueError for a prompt over n_ctx
            return Completion.failed(f"llama.cpp: {e}", "fatal")
        usage = out.get("usage") or {}
        return Completion(
            text=text,
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
            usage=Usage(usage.get("prompt_tokens"), usage.get("completion_tokens")),
        )

    def _loglikelihood_here(self, req: Request) -> Completion:
        if req.prompt is None:
            raise NotSupported("loglikelihood needs a plain prompt (prompt.format: completion)")
        llm = self._load(logits_all=True)
        ctx = llm.tokenize(req.prompt.encode("utf-8"), add_bos=True, special=False)
        sums, greedy = [], []
        for cont in req.continuations:
            whole = llm.tokenize((req.prompt + cont).encode("utf-8"), add_bos=True, special=False)
            if len(whole) > self.n_ctx:
                return Completion.failed(f"prompt and continuation exceed n_ctx={self.n_ctx} tokens")
            n = 0
            while n < min(len(ctx), len(whole)) and ctx[n] == whole[n]:
                n += 1
            n = max(1, n)  # the first token has no prediction to score
            llm.reset()
            llm.eval(whole)
            total, is_greedy = 0.0, True
            for pos in range(n, len(whole)):
                row = llm.scores[pos - 1]
                top = float(row.max())
                logz = top + math.log(float(sum_exp(row, top)))
                total += float(row[whole[pos]]) - logz
                is_greedy = is_greedy and int(row.argmax()) == whole[pos]
            sums.append(total)
            greedy.append(is_greedy)
        return Completion(text="", finish_reason="stop", logprobs=tuple(sums), greedy=tuple(greedy))

    # -- the Backend protocol ----------------------------------------------------------------------
    async def _run(self, fn: Any, reqs: Sequence[Request]) -> list[Completion]:
        loop = asyncio.get_running_loop()
        out = []
        for r in reqs:
            out.append(await loop.run_in_executor(self._worker, fn, r))
        return out

    async def generate(self, reqs: Sequence[Request]) -> list[Completion]:
        return await self._run(self._generate_here, reqs)

    async def loglikelihood(self, reqs: Sequence[Request]) -> list[Completion]:
        return await self._run(self._loglikelihood_here, reqs)

    async def aclose(self) -> None:
        self._worker.shutdown(wait=True)
        for llm in (self._llm, self._scorer):
            if llm is not None:
                llm.close()
        self._llm = self._scorer = None


def sum_exp(row: Any, shift: float) -> float:
    import numpy as np

    return float(np.exp(row - shift).sum())

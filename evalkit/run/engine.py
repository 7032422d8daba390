"""Async engine: runs Requests through a backend with bounded concurrency.

Batches of ``backend.batch_size`` requests are handed to up to ``concurrency`` workers. Each
Completion is passed to ``on_done`` as soon as it arrives (the caller caches and records it), so a
killed process loses at most the requests in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from evalkit.backends.base import Backend
from evalkit.errors import BackendError, NotSupported
from evalkit.types import Completion, Request

OnDone = Callable[[Request, Completion], Awaitable[None]]

# When this many of the first answers are all errors, stop: the model name, URL or key is wrong,
# and sending thousands more requests would only record thousands of identical errors.
EARLY_ABORT_AFTER = 16


def batches(reqs: Sequence[Request], size: int) -> list[list[Request]]:
    size = max(1, size)
    # Group by kind so one backend call never mixes generate and loglikelihood.
    out: list[list[Request]] = []
    for kind in ("generate", "loglikelihood"):
        same = [r for r in reqs if r.kind == kind]
        out += [same[i : i + size] for i in range(0, len(same), size)]
    return out


async def execute(
    backend: Backend,
    reqs: Sequence[Request],
    on_done: OnDone,
    concurrency: int | None = None,
) -> None:
    limit = max(1, min(concurrency or backend.max_concurrency, backend.max_concurrency))
    queue: asyncio.Queue[list[Request]] = asyncio.Queue()
    for b in batches(reqs, backend.batch_size):
        queue.put_nowait(b)
    state = {"done": 0, "errors": 0, "first_error": None}

    async def call(batch: list[Request]) -> list[Completion]:
        try:
            if batch[0].kind == "loglikelihood":
                result = await backend.loglikelihood(batch)
            else:
                result = await backend.generate(batch)
        except (NotSupported, BackendError):
            raise
        except Exception as e:  # a backend bug must not lose the other answers: record it as errors
            msg = f"{type(e).__name__}: {e}"
            return [Completion("", "error", error=msg, error_kind="fatal") for _ in batch]
        if len(result) != len(batch):
            msg = f"backend returned {len(result)} completions for {len(batch)} requests"
            return [Completion("", "error", error=msg, error_kind="fatal") for _ in batch]
        return result

    async def worker() -> None:
        while True:
            try:
                batch = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            for req, comp in zip(batch, await call(batch), strict=True):
                await on_done(req, comp)
                state["done"] += 1
                if not comp.ok:
                    state["errors"] += 1
                    state["first_error"] = state["first_error"] or comp.error
            if state["done"] >= EARLY_ABORT_AFTER and state["errors"] == state["done"]:
                raise BackendError(
                    f"the first {state['done']} requests all failed; first error: {state['first_error']}\n"
                    f"check the model name, URL and API key; answers so far are saved"
                )

    workers = [asyncio.create_task(worker()) for _ in range(limit)]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise

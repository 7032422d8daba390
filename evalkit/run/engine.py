"""Async engine: runs Requests through a backend with bounded concurrency.

Batches of ``backend.batch_size`` requests are handed to workers, one backend call each at a time.
Each Completion is passed to ``on_done`` as soon as it arrives (the caller caches and records it),
so a killed process loses at most the requests in flight.

How many requests are in flight is the backend's: the run's ``--concurrency`` reached it at
construction (``make_backend``) as ``max_concurrency`` calls of ``batch_size`` requests.
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


def worker_count(backend: Backend, concurrency: int | None = None) -> int:
    """Backend calls in flight at once: ``max_concurrency``, or enough calls of ``batch_size``
    requests to hold ``concurrency`` requests. More than the backend was built for is an error,
    never a silent cap: its pool (or its one model) could not take them."""
    if concurrency is None:
        return max(1, backend.max_concurrency)
    calls = -(-max(1, concurrency) // max(1, backend.batch_size))
    if calls > backend.max_concurrency:
        most = backend.max_concurrency * backend.batch_size
        raise BackendError(
            f"--concurrency {concurrency}: this {backend.info.backend} backend takes at most {most} "
            f"requests at once (max_concurrency={backend.max_concurrency}, batch_size={backend.batch_size}; "
            f"make_backend(..., concurrency=N) builds a backend for N)"
        )
    return calls


async def _call(backend: Backend, batch: list[Request]) -> list[Completion]:
    """One backend call; a failure of the call becomes one error Completion per request."""
    try:
        if batch[0].kind == "loglikelihood":
            result = await backend.loglikelihood(batch)
        else:
            result = await backend.generate(batch)
    except (NotSupported, BackendError):
        raise
    except Exception as e:  # a backend bug must not lose the other answers: record it as errors
        return [Completion.failed(f"{type(e).__name__}: {e}") for _ in batch]
    if len(result) != len(batch):
        msg = f"backend returned {len(result)} completions for {len(batch)} requests"
        return [Completion.failed(msg) for _ in batch]
    return result


class _Tally:
    """Answers so far, to stop early when every one of the first answers failed."""

    def __init__(self) -> None:
        self.done = 0
        self.errors = 0
        self.first_error: str | None = None

    def add(self, comp: Completion) -> None:
        self.done += 1
        if not comp.ok:
            self.errors += 1
            self.first_error = self.first_error or comp.error

    def check(self) -> None:
        if self.done >= EARLY_ABORT_AFTER and self.errors == self.done:
            raise BackendError(
                f"the first {self.done} requests all failed; first error: {self.first_error}\n"
                f"check the model name, URL and API key; answers so far are saved"
            )


async def execute(
    backend: Backend,
    reqs: Sequence[Request],
    on_done: OnDone,
    concurrency: int | None = None,
) -> None:
    """Send ``reqs``; ``concurrency`` (requests in flight) defaults to what the backend was built for."""
    limit = worker_count(backend, concurrency)
    queue: asyncio.Queue[list[Request]] = asyncio.Queue()
    for b in batches(reqs, backend.batch_size):
        queue.put_nowait(b)
    tally = _Tally()

    async def worker() -> None:
        while True:
            try:
                batch = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            for req, comp in zip(batch, await _call(backend, batch), strict=True):
                await on_done(req, comp)
                tally.add(comp)
            tally.check()

    workers = [asyncio.create_task(worker()) for _ in range(limit)]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise

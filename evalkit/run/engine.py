"""Async engine: runs Requests through a backend with bounded concurrency.

Batches of ``backend.batch_size`` requests are handed to workers, one backend call each at a time.
Each Completion is passed to ``on_done`` as soon as it arrives (the caller caches and records it),
so a killed process loses at most the requests in flight (and the caller's unwritten batch).

How many requests are in flight is the backend's: the run's ``--concurrency`` reached it at
construction (``make_backend``) as ``max_concurrency`` calls of ``batch_size`` requests. With
``--concurrency auto`` an AIMD limit (``AdaptiveLimit``) holds the calls in flight below that
ceiling: it grows while latency holds and halves when the server pushes back (429, 503, timeouts).

Order: requests that share a prompt prefix go out next to each other (``order_for_prefix_cache``),
so a server's prefix cache (vLLM/SGLang automatic prefix caching, llama.cpp's prompt cache) finds
the shared few-shot block warm; a backend that sets ``groups_repeats`` gets the repeats of one
prompt as one call (``n=k`` on an OpenAI-compatible server).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from evalkit.backends.base import Backend
from evalkit.errors import BackendError, NotSupported
from evalkit.types import Completion, Request

OnDone = Callable[[Request, Completion], Awaitable[None]]

# When this many of the first answers are all errors, stop: the model name, URL or key is wrong,
# and sending thousands more requests would only record thousands of identical errors.
EARLY_ABORT_AFTER = 16
AUTO = "auto"


def prefix_key(req: Request) -> str:
    """What the server's prefix cache sees first: the prompt, or the chat messages in order."""
    if req.prompt is not None:
        return req.prompt
    return "\x00".join(f"{m.role}\x01{m.content}" for m in req.messages or ())


def order_for_prefix_cache(reqs: Sequence[Request]) -> list[Request]:
    """Requests sorted by their prompt text, repeats of one prompt kept in repeat order.

    A sort by text is the order of a walk through the prompts' prefix tree: prompts sharing the
    longest prefix (one MMLU-Pro category's instruction and 5-shot exemplars, the repeats of one
    item) end up adjacent, so while one group is in flight its shared prefix stays cached.
    """
    return sorted(reqs, key=lambda r: (r.kind, prefix_key(r), r.repeat))


def _repeat_group(req: Request) -> tuple | None:
    """Requests with the same group can be one ``n=k`` call: same prompt and parameters, and no
    per-repeat seed (one request has one seed; seeded repeats must each keep their own)."""
    if req.kind != "generate" or req.params.seed is not None or req.params.temperature <= 0:
        return None
    return (req.task, req.sample_id, prefix_key(req), req.params)


def batches(reqs: Sequence[Request], size: int, group_repeats: bool = False) -> list[list[Request]]:
    size = max(1, size)
    # Group by kind so one backend call never mixes generate and loglikelihood.
    out: list[list[Request]] = []
    for kind in ("generate", "loglikelihood"):
        same = [r for r in reqs if r.kind == kind]
        if group_repeats and size == 1:
            out += _group_repeats(same)
        else:
            out += [same[i : i + size] for i in range(0, len(same), size)]
    return out


def _group_repeats(reqs: list[Request]) -> list[list[Request]]:
    groups: dict[tuple, list[Request]] = {}
    out: list[list[Request]] = []
    for r in reqs:
        g = _repeat_group(r)
        if g is None:
            out.append([r])
        elif g in groups:
            groups[g].append(r)
        else:
            groups[g] = [r]
            out.append(groups[g])
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


class AdaptiveLimit:
    """Additive increase, multiplicative decrease of the calls in flight (``--concurrency auto``).

    Each answer that comes back within ``latency_slack`` times the lowest latency seen adds
    ``1/limit`` (so about one more call in flight per round trip); a push-back from the server (a
    429 or 503, a timeout: ``backoff``) halves the limit, at most once per round trip so a burst of
    refusals from one overload counts once. The limit stays within [1, ceiling].
    """

    def __init__(self, ceiling: int, start: int = 4, latency_slack: float = 2.0) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = float(min(self.ceiling, max(1, start)))
        self.latency_slack = latency_slack
        self.in_flight = 0
        self.best_latency: float | None = None
        self.trace: list[int] = [int(self.limit)]
        self._last_cut = 0.0
        self._cond: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def acquire(self) -> None:
        cond = self._condition()
        async with cond:
            await cond.wait_for(lambda: self.in_flight < int(self.limit))
            self.in_flight += 1

    async def release(self) -> None:
        cond = self._condition()
        async with cond:
            self.in_flight -= 1
            cond.notify_all()

    def on_answer(self, latency_s: float, pushed_back: bool) -> None:
        if pushed_back:
            self.backoff()
            return
        if latency_s > 0:
            self.best_latency = latency_s if self.best_latency is None else min(self.best_latency, latency_s)
            if latency_s > self.latency_slack * self.best_latency:
                return  # the server is queueing: hold the limit
        self.limit = min(float(self.ceiling), self.limit + 1.0 / self.limit)

    def backoff(self) -> None:
        """The server pushed back: halve the limit (once per round trip)."""
        now = time.monotonic()
        round_trip = self.best_latency or 0.05
        if now - self._last_cut < round_trip:
            return
        self._last_cut = now
        self.limit = max(1.0, self.limit / 2)
        self.trace.append(int(self.limit))

    def sample(self) -> None:
        self.trace.append(int(self.limit))


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


def _adaptive_for(
    backend: Backend, concurrency: int | str | None, adaptive: AdaptiveLimit | None
) -> tuple[int, AdaptiveLimit | None]:
    """Workers to start, and the AIMD limit (``--concurrency auto``) that holds them back, if any."""
    if concurrency == AUTO and adaptive is None:
        adaptive = AdaptiveLimit(backend.max_concurrency)
    workers = worker_count(backend, None if concurrency == AUTO else concurrency)  # type: ignore[arg-type]
    if adaptive is None:
        return workers, None
    # The backend reports push-backs it retried (a 429 answered on the second attempt is still a
    # sign to slow down); one without the hook is judged by its final answers only.
    if hasattr(backend, "on_pushback"):
        backend.on_pushback = adaptive.backoff  # type: ignore[attr-defined]
    return max(workers, adaptive.ceiling), adaptive


async def _limited_call(backend: Backend, batch: list[Request], adaptive: AdaptiveLimit) -> list[Completion]:
    await adaptive.acquire()
    try:
        result = await _call(backend, batch)
    finally:
        await adaptive.release()
    for comp in result:
        pushed = not comp.ok and comp.error_kind in ("rate_limit", "transient")
        adaptive.on_answer(comp.latency_s if comp.attempts == 1 else 0.0, pushed)
    return result


async def execute(
    backend: Backend,
    reqs: Sequence[Request],
    on_done: OnDone,
    concurrency: int | str | None = None,
    adaptive: AdaptiveLimit | None = None,
) -> None:
    """Send ``reqs``; ``concurrency`` (requests in flight) defaults to what the backend was built for.

    ``"auto"`` (or an ``adaptive`` limit) sends up to the backend's ceiling, as far as the limit
    allows at each moment."""
    limit, adaptive = _adaptive_for(backend, concurrency, adaptive)
    queue: asyncio.Queue[list[Request]] = asyncio.Queue()
    for b in batches(reqs, backend.batch_size, getattr(backend, "groups_repeats", False)):
        queue.put_nowait(b)
    tally = _Tally()
    sample_every = max(1, len(reqs) // 20)

    async def worker() -> None:
        while True:
            try:
                batch = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if adaptive is None:
                result = await _call(backend, batch)
            else:
                result = await _limited_call(backend, batch, adaptive)
            for req, comp in zip(batch, result, strict=True):
                await on_done(req, comp)
                tally.add(comp)
                if adaptive is not None and tally.done % sample_every == 0:
                    adaptive.sample()
            tally.check()

    workers = [asyncio.create_task(worker()) for _ in range(limit)]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise

"""Run an evaluation: open the run, find what is pending, send, record, finish.

Re-running the same command resumes: the run folder is named by a hash of what defines the
evaluation (model, tasks, data, what changes the prompt), finished (sample, repeat) pairs are read
back from its records, answers already in the response cache are recorded without calling the
model, and only the rest is sent. The token budget and the number of repeats are recorded per
record, not in the folder's name, so a larger budget or extra repeats extend the same folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.backends import make_backend, parse_spec
from evalkit.backends.base import Backend
from evalkit.console import note
from evalkit.errors import EvalkitError
from evalkit.interrupt import Interrupted, deferred_to
from evalkit.run.cache import ResponseCache, default_cache_path
from evalkit.run.engine import AUTO, AdaptiveLimit, execute, order_for_prefix_cache
from evalkit.run.grading import CENSORED, TaskScorer
from evalkit.run.manifest import build_manifest, environment
from evalkit.run.plan import TaskPlan, plan_task
from evalkit.run.progress import Progress
from evalkit.run.summary import build_summary, summarize_task
from evalkit.secrets import redact_mapping, redact_spec, redact_text
from evalkit.store import Record, RecordId, RecordWriter, RunFolder, Slot, now_iso
from evalkit.tasks.data import resolve_data_dir
from evalkit.tasks.loader import LoadedTask
from evalkit.tasks.registry import discover
from evalkit.types import BackendInfo, Completion, Request, Sample

SampleFilter = Callable[[LoadedTask, list[Sample]], tuple[list[Sample], dict[str, Any]]]
# Parameters that extend a run folder instead of naming a new one (recorded per record).
EXTENDING_OVERRIDES = ("max_tokens",)


@dataclass
class RunConfig:
    tasks: list[str]
    model: str
    model_args: dict[str, str] = field(default_factory=dict)
    data_dir: str | None = None
    tasks_dirs: list[str] = field(default_factory=list)
    limit: int | None = None
    repeats: int | None = None
    out: Path | None = None
    results_dir: Path = Path("results/runs")
    concurrency: int | str | None = None  # requests in flight, or "auto" (AIMD)
    max_error_rate: float = 0.0
    overrides: dict[str, Any] = field(default_factory=dict)  # max_tokens, temperature, ...
    shard: tuple[int, int] | None = None  # (i, n): keep items whose position % n == i
    use_cache: bool = True
    cache_path: Path | None = None
    progress: bool = True
    sample_filter: SampleFilter | None = None  # split at a cutoff, exclusions (contamination)
    filter_info: dict[str, Any] = field(default_factory=dict)  # recorded in the manifest
    # With a larger --max-tokens than an earlier pass: re-send only the censored answers.
    topup_censored: bool = False
    # task -> sample id -> repeats, for items given their own count (run/adaptive.py, --target-ci)
    repeats_by_item: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]
    n_requests: int
    n_sent: int
    n_cached: int
    n_resumed: int
    n_errors: int
    elapsed_s: float
    n_regraded: int = 0

    @property
    def error_rate(self) -> float:
        return self.n_errors / self.n_requests if self.n_requests else 0.0


def slug(text: str, n: int = 40) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")
    return s[-n:] if len(s) > n else s


def run_id_for(info: BackendInfo, plans: list[TaskPlan], cfg: RunConfig) -> str:
    """Deterministic: the same evaluation of the same model on the same data names the same folder.

    In: the model identity, each task's file and data hashes, the item selection (limit, shard,
    split filters) and the generation overrides that change answers' distribution. Out: repeats and
    the token budget, which only extend a folder (each record carries its own).
    """
    overrides = {k: v for k, v in cfg.overrides.items() if k not in EXTENDING_OVERRIDES}
    payload = {
        "model": info.identity,
        "tasks": [[p.task.spec.name, p.task.sha256, p.data_sha256] for p in plans],
        "limit": cfg.limit,
        "overrides": overrides,
        "shard": cfg.shard,
        "filter": cfg.filter_info,
    }
    h = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:10]
    tasks = "+".join(p.task.spec.name for p in plans)
    return f"{slug(info.model)}__{slug(tasks, 60)}__{h}"


def _apply_shard(samples: list[Sample], shard: tuple[int, int] | None) -> list[Sample]:
    if shard is None:
        return samples
    i, n = shard
    return [s for k, s in enumerate(samples) if k % n == i]


def prepare(cfg: RunConfig) -> tuple[Backend, list[TaskPlan]]:
    """Load tasks and data, build the backend, plan every request (no model call yet)."""
    from evalkit.tasks.samples import load_samples

    index = discover(cfg.tasks_dirs)
    tasks = [index.get(name) for name in dict.fromkeys(cfg.tasks)]  # a task named twice runs once
    data_dir = resolve_data_dir(cfg.data_dir)
    spec = parse_spec(cfg.model)
    # Data first: a missing file should fail before a model spends a minute loading.
    loaded_tasks = []
    for t in tasks:
        samples, loaded = load_samples(t, data_dir)
        n_available = len(samples)
        info: dict[str, Any] = {}
        if cfg.sample_filter is not None:
            samples, info = cfg.sample_filter(t, samples)
        if cfg.limit is not None:
            samples = samples[: cfg.limit]  # before sharding: the shards of --limit N cover those N items
        loaded_tasks.append((t, _apply_shard(samples, cfg.shard), loaded, n_available, info))
    backend = make_backend(spec, cfg.model_args, concurrency=cfg.concurrency)
    plans = []
    for t, samples, loaded, n_available, info in loaded_tasks:
        identity, per_item = backend.info.identity, cfg.repeats_by_item.get(t.spec.name)
        plan = plan_task(
            t, identity, data_dir, samples, loaded, n_available, cfg.repeats, cfg.overrides, per_item
        )
        plan.excluded = info
        plans.append(plan)
    return backend, plans


# 1. open the run ---------------------------------------------------------------------------------
def run_folder_for(cfg: RunConfig, backend: Backend, plans: list[TaskPlan]) -> RunFolder:
    return RunFolder(cfg.out or (cfg.results_dir / run_id_for(backend.info, plans, cfg)))


def open_run(cfg: RunConfig, folder: RunFolder, backend: Backend, plans: list[TaskPlan]) -> dict[str, Any]:
    """Check that ``folder`` holds this evaluation (or nothing yet) and start its manifest."""
    info = backend.info
    previous = folder.manifest
    _refuse_other_evaluation(folder, previous, info.identity, plans)
    manifest = build_manifest(
        run_id_for(info, plans, cfg), cfg, info.to_dict(), plans, previous, environment()
    )
    folder.write_manifest(manifest)
    return manifest


def _refuse_other_evaluation(
    folder: RunFolder, previous: dict[str, Any] | None, identity: str, plans: list[TaskPlan]
) -> None:
    before_identity = ((previous or {}).get("backend") or {}).get("identity")
    if before_identity not in (None, identity):
        raise EvalkitError(
            f"{folder.path} holds a run of {before_identity}, not {identity}; choose another --out folder"
        )
    for p in plans:
        before = ((previous or {}).get("tasks") or {}).get(p.task.spec.name) or {}
        if before.get("sha256") not in (None, p.task.sha256):
            raise EvalkitError(
                f"task {p.task.spec.name} changed since {folder.path} was written (YAML sha256 "
                f"{before['sha256'][:12]} -> {p.task.sha256[:12]}); its answers there were graded under the "
                f"old definition. Use another --out (the default folder is named after the task file's hash)"
            )


# 2. find what is pending -------------------------------------------------------------------------
@dataclass
class Pending:
    to_send: list[Request]  # one request per distinct cache key
    waiting: dict[str, list[Request]]  # cache key -> the requests its answer serves
    from_cache: list[tuple[Request, Completion]]
    stale: list[Record]  # answered, but graded by other scoring code: regraded without a model call
    n_resumed: int


def answers_for(
    requests: list[Request], latest: dict[RecordId, Record], topup: bool
) -> dict[RecordId, Record]:
    """The record that stands for each planned request: its own, or with ``topup`` (a larger budget
    than an earlier pass) the slot's answer at the largest earlier budget. Answered slots keep their
    earlier answer; the caller re-sends only the censored ones."""
    out: dict[RecordId, Record] = {}
    earlier: dict[Slot, Record] = {}
    if topup:
        for rec in latest.values():
            best = earlier.get(rec.slot)
            if rec.ok and (best is None or (rec.max_tokens or 0) >= (best.max_tokens or 0)):
                earlier[rec.slot] = rec
    for r in requests:
        rid = (r.task, r.sample_id, r.repeat, r.key)
        own = latest.get(rid)
        if own is not None and own.ok:
            out[rid] = own
        elif (r.task, r.sample_id, r.repeat) in earlier:
            out[rid] = earlier[(r.task, r.sample_id, r.repeat)]
        elif own is not None:
            out[rid] = own  # an error: counted, never graded, retried by the next run
    return out


def find_pending(
    folder: RunFolder,
    requests: list[Request],
    scorers: dict[str, TaskScorer],
    cache: ResponseCache | None,
    topup: bool = False,
) -> Pending:
    current = answers_for(requests, folder.latest(), topup)

    def is_done(r: Request) -> bool:
        rec = current.get((r.task, r.sample_id, r.repeat, r.key))
        if rec is None or not rec.ok:
            return False
        return rec.key == r.key or rec.censoring != CENSORED  # an earlier censored answer is topped up

    todo = [r for r in requests if not is_done(r)]
    stale = [
        rec
        for r in requests
        if is_done(r)
        and not scorers[r.task].is_current(rec := current[(r.task, r.sample_id, r.repeat, r.key)])
    ]
    hits = cache.get_many([r.key for r in todo]) if cache else {}
    # Two tasks can send the very same request (one prompt, several tasks): it goes to the model
    # once and its answer is recorded for each task.
    waiting: dict[str, list[Request]] = {}
    to_send, from_cache = [], []
    for req in todo:
        comp = hits.get(req.key)
        if comp is not None:
            from_cache.append((req, comp))
            continue
        if req.key not in waiting:
            to_send.append(req)
        waiting.setdefault(req.key, []).append(req)
    return Pending(to_send, waiting, from_cache, stale, len(requests) - len(todo))


# 3 and 4. send and record ------------------------------------------------------------------------
# A run's records and cache entries go to disk in batches of this many answers or after this long,
# whichever comes first: one write (and one SQLite commit) per batch instead of per answer. A kill -9
# loses at most one batch besides what is in flight; the next run re-sends those requests.
WRITE_BATCH_RECORDS = 64
WRITE_BATCH_S = 0.05


class Recorder:
    """Scores each answer and appends its records; math grading runs on worker threads.

    The math grader blocks on its sandbox processes, so its tasks are scored on worker threads (one
    per sandbox worker keeps them all busy) while the event loop keeps feeding the backend. The
    other graders are microseconds of pure Python: a thread hop would cost more than they do, so
    they run on the event loop, but behind the sending: an answer waits in a short queue that a
    background task works off one answer per turn of the loop, so a response that frees a slot for
    the next request is never stuck behind a burst of scoring and serialising. The queue never holds
    more than one write batch (``WRITE_BATCH_RECORDS``): beyond that the answer is recorded at once,
    so a kill -9 still loses at most the requests in flight and one batch.
    """

    def __init__(
        self,
        writer: RecordWriter,
        scorers: dict[str, TaskScorer],
        samples: dict[tuple[str, str], Sample],
        identity: str,
        cache: ResponseCache | None,
        progress: Progress,
    ) -> None:
        self.writer, self.scorers, self.samples = writer, scorers, samples
        self.identity, self.cache, self.progress = identity, cache, progress
        self.waiting: dict[str, list[Request]] = {}
        self.n_sent = 0
        self.threaded = any(s.uses_sandbox for s in scorers.values())
        self._pool = ThreadPoolExecutor(self._start_sandbox() if self.threaded else 1, "evalkit-score")
        self._queue: deque[tuple[Request, Completion]] = deque()
        self._wake: asyncio.Event | None = None
        self._drainer: asyncio.Task[None] | None = None

    @staticmethod
    def _start_sandbox() -> int:
        from evalkit.scoring.sandbox import default_sandbox

        sandbox = default_sandbox()
        sandbox.start()  # pay the ~1.5 s start-up before the first answer, not during the run
        return sandbox.size

    def _record(self, req: Request, comp: Completion, cached: bool) -> Record:
        sample = self.samples[(req.task, req.sample_id)]
        return self.scorers[req.task].record(req, sample, comp, self.identity, cached)

    def record_cached(self, req: Request, comp: Completion) -> None:
        self.writer.write(self._record(req, comp, cached=True))
        self.progress.advance(True)

    def regrade(self, records: list[Record]) -> None:
        for rec in self._pool.map(lambda r: self.scorers[r.task].regrade(r), records):
            self.writer.write(rec)

    def _record_answer(self, sent: Request, comp: Completion) -> None:
        """Cache, score and write one answer (every request it serves) on the event loop."""
        if self.cache is not None:
            self.cache.put(sent.key, self.identity, comp)
        for req in self.waiting.pop(sent.key, [sent]):
            self.writer.write(self._record(req, comp, False))
            self.progress.advance(comp.ok)

    async def on_answer(self, sent: Request, comp: Completion) -> None:
        self.n_sent += 1
        if self.threaded:
            await self._on_answer_threaded(sent, comp)
            return
        self._queue.append((sent, comp))
        if len(self._queue) >= WRITE_BATCH_RECORDS:
            self.drain()
        elif self._drainer is None:
            self._wake = asyncio.Event()
            self._drainer = asyncio.create_task(self._drain_in_background())
        if self._wake is not None:
            self._wake.set()

    async def _on_answer_threaded(self, sent: Request, comp: Completion) -> None:
        if self.cache is not None:
            self.cache.put(sent.key, self.identity, comp)
        loop = asyncio.get_running_loop()
        for req in self.waiting.pop(sent.key, [sent]):
            if self.scorers[req.task].uses_sandbox:
                rec = await loop.run_in_executor(self._pool, self._record, req, comp, False)
            else:
                rec = self._record(req, comp, False)
            self.writer.write(rec)
            self.progress.advance(comp.ok)

    async def _drain_in_background(self) -> None:
        assert self._wake is not None
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            self._record_answer(*self._queue.popleft())
            await asyncio.sleep(0)  # let the responses that arrived meanwhile send their next request

    def drain(self) -> None:
        """Record every queued answer now."""
        while self._queue:
            self._record_answer(*self._queue.popleft())

    async def finish(self) -> None:
        """Stop the background task and record what is still queued."""
        if self._drainer is not None:
            self._drainer.cancel()
            await asyncio.gather(self._drainer, return_exceptions=True)
            self._drainer = None
        self.drain()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


async def _flush_on_timer(writer: RecordWriter, cache: ResponseCache | None) -> None:
    """Write out a batch that has waited ``WRITE_BATCH_S`` even when no further answer comes."""
    while True:
        await asyncio.sleep(WRITE_BATCH_S)
        writer.flush_if_due()
        if cache is not None:
            cache.flush_if_due()


async def send_and_record(
    cfg: RunConfig,
    backend: Backend,
    folder: RunFolder,
    plans: list[TaskPlan],
    scorers: dict[str, TaskScorer],
    pending: Pending,
    cache: ResponseCache | None,
) -> int:
    """Record cached answers and stale grades, send the rest; returns how many requests were sent."""
    samples = {(p.task.spec.name, s.id): s for p in plans for s in p.samples}
    progress = Progress(len(pending.from_cache) + sum(map(len, pending.waiting.values())), cfg.progress)
    writer = RecordWriter(folder.records_path, batch_records=WRITE_BATCH_RECORDS, batch_s=WRITE_BATCH_S)
    with writer:
        recorder = Recorder(writer, scorers, samples, backend.info.identity, cache, progress)
        flusher = asyncio.create_task(_flush_on_timer(writer, cache))
        try:
            recorder.regrade(pending.stale)
            for req, comp in pending.from_cache:
                recorder.record_cached(req, comp)
            recorder.waiting = pending.waiting
            if pending.to_send:
                await backend.check()  # a wrong URL or model name fails once, not once per request
                adaptive = AdaptiveLimit(backend.max_concurrency) if cfg.concurrency == AUTO else None
                ordered = order_for_prefix_cache(pending.to_send)
                await execute(backend, ordered, recorder.on_answer, cfg.concurrency, adaptive)
                if adaptive is not None:
                    note(
                        f"--concurrency auto: the limit settled at {int(adaptive.limit)} requests in flight "
                        f"(over the run: {' '.join(map(str, adaptive.trace))})"
                    )
        finally:
            await recorder.finish()  # also on a stop: what was answered is recorded
            flusher.cancel()
            progress.close()
            recorder.close()
            if cache is not None:
                cache.flush()
    return recorder.n_sent


# 5. finish ---------------------------------------------------------------------------------------
def write_run_summary(
    folder: RunFolder,
    plans: list[TaskPlan],
    info: BackendInfo,
    model_spec: str,
    final: dict[RecordId, Record],
    topup: bool = False,
) -> dict[str, Any]:
    """summary.json over the records (``final``: the folder's latest) that stand for this run's
    planned requests."""
    tasks = {}
    for p in plans:
        recs = list(answers_for(p.requests, final, topup).values())  # one per (item, repeat)
        tasks[p.task.spec.name] = summarize_task(p.task.spec, recs)
        tasks[p.task.spec.name]["split"] = p.excluded.get("split", "all") if p.excluded else "all"
    model = {
        **redact_mapping(info.to_dict()),
        "alias": parse_spec(model_spec).alias,
        "spec": redact_spec(model_spec),
    }
    if model.get("params_total") is None:
        # A backend that never loaded its model this time (nothing left to send) cannot count the
        # parameters: keep the count an earlier pass of this run recorded.
        before = (folder.summary or {}).get("model") or {}
        if before.get("identity") == model.get("identity"):
            model["params_total"] = before.get("params_total")
    summary = build_summary(folder.path.name, model, tasks)
    folder.write_summary(summary)
    return summary


def finish_run(
    folder: RunFolder,
    manifest: dict[str, Any],
    plans: list[TaskPlan],
    backend: Backend,
    cfg: RunConfig,
    counts: dict[str, int],
) -> tuple[dict[str, Any], int]:
    final = folder.latest()  # read once: the summary and the error count both come from it
    summary = write_run_summary(folder, plans, backend.info, cfg.model, final, cfg.topup_censored)
    # What the backend learnt while running (the serving engine and version, the parameter count).
    manifest["backend"] = redact_mapping(backend.info.to_dict())
    requests = [r for p in plans for r in p.requests]
    current = answers_for(requests, final, cfg.topup_censored)
    ids = [(r.task, r.sample_id, r.repeat, r.key) for r in requests]
    n_errors = sum(1 for i in ids if i in current and not current[i].ok)
    manifest.update(
        status="complete" if n_errors == 0 else "complete_with_errors",
        finished=now_iso(),
        counts={**counts, "requests": len(ids), "errors": n_errors},
    )
    folder.write_manifest(manifest)
    return summary, n_errors


async def _run_async(cfg: RunConfig, backend: Backend, plans: list[TaskPlan]) -> RunResult:
    folder = run_folder_for(cfg, backend, plans)
    try:
        lock = folder.lock("run").acquire()  # one writer per folder: refused at once, before anything
    except BaseException:
        await backend.aclose()
        raise
    task = asyncio.current_task()
    assert task is not None
    try:
        # SIGINT/SIGTERM cancel this task at its next await, never inside a record write.
        with deferred_to(task) as received:
            try:
                return await _run_locked(cfg, backend, plans, folder)
            except asyncio.CancelledError:
                if not received:
                    raise
                raise _interrupted(folder, plans, cfg, received[0]) from None
    finally:
        lock.release()


def _interrupted(folder: RunFolder, plans: list[TaskPlan], cfg: RunConfig, signum: int) -> Interrupted:
    """The Interrupted to raise after a signal stopped the run: the manifest says which signal, the
    message how many answers are kept."""
    stopped = Interrupted(signum)
    manifest = folder.manifest
    if manifest is not None:
        manifest.update(status="stopped", stopped=now_iso(), stop_reason=f"interrupted by {stopped.name}")
        folder.write_manifest(manifest)
    requests = [r for p in plans for r in p.requests]
    current = answers_for(requests, folder.latest(), cfg.topup_censored)
    n_done = sum(
        1 for r in requests if (rec := current.get((r.task, r.sample_id, r.repeat, r.key))) and rec.ok
    )
    stopped.done = f"{n_done} of {len(requests)} answers done and saved in {folder.path}"
    return stopped


async def _run_locked(
    cfg: RunConfig, backend: Backend, plans: list[TaskPlan], folder: RunFolder
) -> RunResult:
    t_start = time.perf_counter()
    manifest = open_run(cfg, folder, backend, plans)
    requests = [r for p in plans for r in p.requests]
    scorers = {p.task.spec.name: TaskScorer(p.task.spec) for p in plans}
    cache = None
    if cfg.use_cache and backend.cacheable:
        cache = ResponseCache(cfg.cache_path or default_cache_path())
        manifest["cache"] = str(cache.path)
    try:
        pending = find_pending(folder, requests, scorers, cache, cfg.topup_censored)
        n_sent = await send_and_record(cfg, backend, folder, plans, scorers, pending, cache)
    except BaseException as e:
        # Answers so far are saved; the manifest says the run stopped and why.
        reason = redact_text(f"{type(e).__name__}: {str(e)[:300]}")
        manifest.update(status="stopped", stopped=now_iso(), stop_reason=reason)
        folder.write_manifest(manifest)
        raise
    finally:
        if cache is not None:
            cache.close()
        await backend.aclose()
    counts = {
        "sent": n_sent,
        "from_cache": len(pending.from_cache),
        "resumed": pending.n_resumed,
        "regraded": len(pending.stale),
    }
    summary, n_errors = finish_run(folder, manifest, plans, backend, cfg, counts)
    elapsed = time.perf_counter() - t_start
    return RunResult(
        run_dir=folder.path,
        summary=summary,
        n_requests=len(requests),
        n_sent=n_sent,
        n_cached=len(pending.from_cache),
        n_resumed=pending.n_resumed,
        n_errors=n_errors,
        elapsed_s=elapsed,
        n_regraded=len(pending.stale),
    )


def run_evaluation(cfg: RunConfig) -> RunResult:
    """Synchronous entry point used by the CLI and tests."""
    backend, plans = prepare(cfg)
    return asyncio.run(_run_async(cfg, backend, plans))

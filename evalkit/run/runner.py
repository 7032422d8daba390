"""Run an evaluation: plan -> engine -> cache -> records.jsonl -> summary.json -> manifest.json.

Re-running the same command resumes: the run folder is named by a hash of everything that
defines the run, finished (sample, repeat) pairs are read back from records.jsonl, answers already
in the response cache are recorded without calling the model, and only the rest is sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.backends import make_backend, parse_spec
from evalkit.backends.base import Backend
from evalkit.errors import EvalkitError
from evalkit.run.cache import ResponseCache, default_cache_path
from evalkit.run.engine import execute
from evalkit.run.manifest import MANIFEST_FILE, environment, now_iso, read_manifest, write_json_atomic
from evalkit.run.plan import TaskPlan, plan_task
from evalkit.run.records import RECORDS_FILE, RecordWriter, latest_records, make_record, request_record_id
from evalkit.run.summary import SUMMARY_FILE, build_summary, summarize_task
from evalkit.scoring.registry import score_completion
from evalkit.secrets import redact_mapping, redact_spec, redact_text
from evalkit.tasks.data import resolve_data_dir
from evalkit.tasks.loader import LoadedTask
from evalkit.tasks.registry import discover
from evalkit.types import Completion, Request, Sample, ScoringContext

SampleFilter = Callable[[LoadedTask, list[Sample]], tuple[list[Sample], dict[str, Any]]]


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
    concurrency: int | None = None
    max_error_rate: float = 0.0
    overrides: dict[str, Any] = field(default_factory=dict)  # max_tokens, temperature, ...
    shard: tuple[int, int] | None = None  # (i, n): keep items whose position % n == i
    use_cache: bool = True
    cache_path: Path | None = None
    progress: bool = True
    sample_filter: SampleFilter | None = None  # split at a cutoff, exclusions (contamination)
    filter_info: dict[str, Any] = field(default_factory=dict)  # recorded in the manifest


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

    @property
    def error_rate(self) -> float:
        return self.n_errors / self.n_requests if self.n_requests else 0.0


def slug(text: str, n: int = 40) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")
    return s[-n:] if len(s) > n else s


def run_id_for(identity: str, plans: list[TaskPlan], cfg: RunConfig) -> str:
    """Deterministic: the same command on the same data and model gives the same folder."""
    payload = {
        "model": identity,
        "tasks": [[p.task.spec.name, p.task.sha256, p.data_sha256] for p in plans],
        "limit": cfg.limit,
        "repeats": cfg.repeats,
        "overrides": cfg.overrides,
        "shard": cfg.shard,
        "filter": cfg.filter_info,
    }
    h = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:10]
    model_name = identity.split(":", 1)[1].rsplit("@", 1)[0]
    tasks = "+".join(p.task.spec.name for p in plans)
    return f"{slug(model_name)}__{slug(tasks, 60)}__{h}"


class _Progress:
    """A rich progress bar on stderr: done/total, rate, ETA, errors."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.enabled = enabled and total > 0
        self.errors = 0
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._p = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("[red]{task.fields[errors]}"),
            console=Console(file=sys.stderr),
            transient=False,
        )
        self._t0 = time.perf_counter()
        self._p.start()
        self._id = self._p.add_task("evaluating", total=total, rate="", errors="")

    def advance(self, ok: bool) -> None:
        if not self.enabled:
            return
        if not ok:
            self.errors += 1
        done = self._p.tasks[0].completed + 1
        rate = done / max(1e-9, time.perf_counter() - self._t0)
        self._p.update(
            self._id,
            advance=1,
            rate=f"{rate:.2f} req/s",
            errors=f"{self.errors} errors" if self.errors else "",
        )

    def close(self) -> None:
        if self.enabled:
            self._p.stop()


def score_record(
    task: LoadedTask, req: Request, sample: Sample, completion: Completion, identity: str, cached: bool
) -> dict[str, Any]:
    extraction = grade = None
    if completion.ok:
        extraction, grade = score_completion(
            completion,
            sample,
            task.spec.extract.name,
            task.spec.grade.name,
            ScoringContext.for_task(task.spec),
        )
    return make_record(req, sample, task.spec.version, identity, completion, extraction, grade, cached)


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
    backend = make_backend(spec, cfg.model_args)
    plans = []
    for t, samples, loaded, n_available, info in loaded_tasks:
        plan = plan_task(
            t,
            backend.info.identity,
            data_dir,
            None,
            cfg.repeats,
            cfg.overrides,
            samples=samples,
            loaded=loaded,
            n_available=n_available,
        )
        plan.excluded = info
        plans.append(plan)
    return backend, plans


async def _run_async(cfg: RunConfig, backend: Backend, plans: list[TaskPlan]) -> RunResult:
    t_start = time.perf_counter()
    identity = backend.info.identity
    run_id = run_id_for(identity, plans, cfg)
    run_dir = cfg.out or (cfg.results_dir / run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    records_path = run_dir / RECORDS_FILE

    previous = read_manifest(run_dir)
    if previous and previous.get("backend", {}).get("identity") not in (None, identity):
        raise EvalkitError(
            f"{run_dir} holds a run of {previous['backend']['identity']}, not {identity}; "
            f"choose another --out folder"
        )
    for p in plans:
        before = ((previous or {}).get("tasks") or {}).get(p.task.spec.name) or {}
        if before.get("sha256") not in (None, p.task.sha256):
            raise EvalkitError(
                f"task {p.task.spec.name} changed since {run_dir} was written (YAML sha256 "
                f"{before['sha256'][:12]} -> {p.task.sha256[:12]}); its answers there were graded under the old "
                f"definition. Use another --out (the default folder is named after the task file's hash)"
            )
    env = environment()  # package versions and git state: a few subprocesses, so once
    manifest: dict[str, Any] = {
        "run_id": run_id,
        "evalkit_version": env["packages"].get("evalkit"),
        "status": "running",
        "started": (previous or {}).get("started", now_iso()),
        "resumed": [*(previous or {}).get("resumed", []), *([now_iso()] if previous else [])],
        "finished": None,
        "backend": redact_mapping(backend.info.to_dict()),
        "model_spec": redact_spec(cfg.model),
        "model_args": redact_mapping(cfg.model_args),
        "parameters": {
            "limit": cfg.limit,
            "repeats": cfg.repeats,
            "overrides": cfg.overrides,
            "concurrency": cfg.concurrency,
            "shard": list(cfg.shard) if cfg.shard else None,
            "max_error_rate": cfg.max_error_rate,
        },
        "filter": cfg.filter_info,
        "tasks": {
            p.task.spec.name: {
                "path": str(p.task.path),
                "sha256": p.task.sha256,
                "version": p.task.spec.version,
                "spec": p.task.spec.model_dump(mode="json"),
                "data": {
                    "source": p.data_source,
                    "revision": p.data_revision,
                    "sha256": p.data_sha256,
                    "n_available": p.n_available,
                    "n_selected": len(p.samples),
                    "excluded": p.excluded,
                },
                "generation": p.requests[0].params.to_dict() if p.requests else None,
                "n_requests": len(p.requests),
            }
            for p in plans
        },
        "environment": env,
        "cache": None,
    }
    write_json_atomic(run_dir / MANIFEST_FILE, manifest)

    by_task = {p.task.spec.name: p for p in plans}
    samples = {(p.task.spec.name, s.id): s for p in plans for s in p.samples}
    all_reqs = [r for p in plans for r in p.requests]
    existing = latest_records(records_path)
    done = {k for k, r in existing.items() if r.get("status") == "ok"}
    pending = [r for r in all_reqs if request_record_id(r) not in done]
    n_resumed = len(all_reqs) - len(pending)

    cache = None
    if cfg.use_cache and getattr(backend, "cacheable", True):
        cache = ResponseCache(cfg.cache_path or default_cache_path())
        manifest["cache"] = str(cache.path)
    counts = {"sent": 0, "cached": 0, "errors": 0}
    progress = _Progress(len(pending), cfg.progress)
    # The math grader blocks on its sandbox processes, so its tasks are scored on worker threads (one
    # per sandbox worker keeps them all busy) while the event loop keeps feeding the backend. The
    # other graders are microseconds of pure Python: a thread hop would cost more than they do.
    threaded = {p.task.spec.name for p in plans if p.task.spec.grade.name == "math"}
    n_scorers = 1
    if threaded:
        from evalkit.scoring.sandbox import default_sandbox

        sandbox = default_sandbox()
        sandbox.start()  # pay the ~1.5 s start-up before the first answer, not during the run
        n_scorers = sandbox.size
    scorer = ThreadPoolExecutor(max_workers=n_scorers, thread_name_prefix="evalkit-score")
    loop = asyncio.get_running_loop()
    try:
        with RecordWriter(records_path) as writer:
            hits = cache.get_many([r.key for r in pending]) if cache else {}
            # Two tasks can send the very same request (mmlu_pro and mmlu_pro_official share their
            # prompt): it goes to the model once and its answer is recorded for each task.
            waiting: dict[str, list[Request]] = {}
            to_send = []
            for req in pending:
                comp = hits.get(req.key)
                if comp is None:
                    if req.key not in waiting:
                        to_send.append(req)
                    waiting.setdefault(req.key, []).append(req)
                    continue
                task = by_task[req.task].task
                writer.write(
                    score_record(task, req, samples[(req.task, req.sample_id)], comp, identity, True)
                )
                counts["cached"] += 1
                progress.advance(True)

            async def on_done(sent: Request, comp: Completion) -> None:
                if cache is not None:
                    cache.put(sent.key, identity, comp)
                counts["sent"] += 1
                for req in waiting.pop(sent.key, [sent]):
                    task = by_task[req.task].task
                    args = (task, req, samples[(req.task, req.sample_id)], comp, identity, False)
                    if req.task in threaded:
                        rec = await loop.run_in_executor(scorer, score_record, *args)
                    else:
                        rec = score_record(*args)
                    writer.write(rec)
                    if not comp.ok:
                        counts["errors"] += 1
                    progress.advance(comp.ok)

            if to_send:
                check = getattr(backend, "check", None)
                if check is not None:
                    await check()
                await execute(backend, to_send, on_done, cfg.concurrency)
    except BaseException as e:
        # Answers so far are saved; the manifest says the run stopped and why.
        manifest.update(
            status="stopped",
            stopped=now_iso(),
            stop_reason=redact_text(f"{type(e).__name__}: {str(e)[:300]}"),
        )
        write_json_atomic(run_dir / MANIFEST_FILE, manifest)
        raise
    finally:
        progress.close()
        scorer.shutdown(wait=True)
        if cache is not None:
            cache.close()
        await backend.aclose()

    summary = write_summary(run_dir, plans, backend, cfg.model)
    final = latest_records(records_path)
    keys = {request_record_id(r) for r in all_reqs}
    n_errors = sum(1 for k in keys if k in final and final[k].get("status") != "ok")
    manifest.update(
        status="complete" if n_errors == 0 else "complete_with_errors",
        finished=now_iso(),
        counts={
            "requests": len(all_reqs),
            "sent": counts["sent"],
            "from_cache": counts["cached"],
            "resumed": n_resumed,
            "errors": n_errors,
        },
    )
    write_json_atomic(run_dir / MANIFEST_FILE, manifest)
    return RunResult(
        run_dir,
        summary,
        len(all_reqs),
        counts["sent"],
        counts["cached"],
        n_resumed,
        n_errors,
        time.perf_counter() - t_start,
    )


def write_summary(run_dir: Path, plans: list[TaskPlan], backend: Backend, model_spec: str) -> dict[str, Any]:
    final = latest_records(run_dir / RECORDS_FILE)
    tasks = {}
    for p in plans:
        recs = [final[request_record_id(r)] for r in p.requests if request_record_id(r) in final]
        spec = p.task.spec
        tasks[spec.name] = summarize_task(spec.name, spec.version, recs, spec.metrics, spec.report.breakdown)
        tasks[spec.name]["split"] = p.excluded.get("split", "all") if p.excluded else "all"
    alias = parse_spec(model_spec).alias
    model = {**redact_mapping(backend.info.to_dict()), "alias": alias, "spec": redact_spec(model_spec)}
    if model.get("params_total") is None:
        # A backend that never loaded its model this time (nothing left to send) cannot count the
        # parameters: keep the count an earlier pass of this run recorded.
        try:
            before = json.loads((run_dir / SUMMARY_FILE).read_text(encoding="utf-8")).get("model") or {}
        except (OSError, json.JSONDecodeError):
            before = {}
        if before.get("identity") == model.get("identity"):
            model["params_total"] = before.get("params_total")
    summary = build_summary(run_dir.name, model, tasks)
    write_json_atomic(run_dir / SUMMARY_FILE, summary)
    return summary


def run_evaluation(cfg: RunConfig) -> RunResult:
    """Synchronous entry point used by the CLI and tests."""
    backend, plans = prepare(cfg)
    return asyncio.run(_run_async(cfg, backend, plans))

"""Re-extract and re-grade a run's stored completions with the current scoring code (no model call).

``rescore_run(run_dir)``:
  - reads ``manifest.json`` (its ``tasks.<name>.spec`` is the TaskSpec the run used) and the last
    record per key of ``records.jsonl``;
  - scores every ``status=ok`` record again through ``score_completion`` (the runner's path);
    ``status=error`` records stay errors, records of tasks missing from the manifest are kept as is;
  - keeps the old file as ``records.pre-rescore-<UTC timestamp>.jsonl`` and writes the new
    ``records.jsonl`` (one line per key), then ``summary.json``;
  - records ``rescored`` in the manifest: time, evalkit version, the backup's name, counts
    (earlier rescores are kept under ``rescored.history``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit import __version__
from evalkit.errors import EvalkitError
from evalkit.run.manifest import MANIFEST_FILE, write_json_atomic
from evalkit.run.records import RECORDS_FILE, latest_records
from evalkit.run.summary import SUMMARY_FILE, build_summary, summarize_tasks
from evalkit.scoring.registry import score_completion
from evalkit.types import Completion, Sample, ScoringContext


@dataclass
class RescoreResult:
    run_dir: Path
    records: int = 0  # records written
    rescored: int = 0  # ok records scored again
    errors_kept: int = 0  # status=error records left as they were
    unknown_task: int = 0  # records whose task is not in the manifest (kept as they were)
    changed: int = 0  # records whose correctness changed
    backup: Path | None = None
    before: dict[str, float] = field(default_factory=dict)  # task -> accuracy before
    after: dict[str, float] = field(default_factory=dict)  # task -> accuracy after
    summary: dict[str, Any] = field(default_factory=dict)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalkitError(f"{path}: no {what} here; is this a run folder (results/runs/<run_id>)?") from None
    except json.JSONDecodeError as e:
        raise EvalkitError(f"{path}:{e.lineno}: {what} is not valid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise EvalkitError(f"{path}: {what} must be a JSON object")
    return data


def _accuracy(records: list[dict[str, Any]]) -> dict[str, float]:
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in records:
        if r.get("status") == "ok" and r.get("grade"):
            h = hits[str(r.get("task"))]
            h[0] += bool(r["grade"].get("correct"))
            h[1] += 1
    return {t: (c / n if n else 0.0) for t, (c, n) in hits.items()}


def rescore_run(
    run_dir: str | os.PathLike[str],
    workers: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> RescoreResult:
    """Rescore ``run_dir`` in place (see the module docstring). ``workers`` threads share the math
    sandbox's worker processes."""
    from evalkit.tasks.spec import TaskSpec

    run = Path(run_dir)
    if not run.is_dir():
        raise EvalkitError(f"{run}: not a folder; give a run folder such as results/runs/<run_id>")
    manifest_path = run / MANIFEST_FILE
    manifest = _read_json(manifest_path, "manifest.json")
    records_path = run / RECORDS_FILE
    if not records_path.is_file():
        raise EvalkitError(f"{records_path}: no records to rescore")
    specs: dict[str, TaskSpec] = {}
    for name, entry in (manifest.get("tasks") or {}).items():
        spec = (entry or {}).get("spec")
        if spec is None:
            raise EvalkitError(f"{manifest_path}: tasks.{name} has no 'spec'; this run cannot be rescored")
        try:
            specs[name] = TaskSpec.model_validate(spec)
        except Exception as e:  # pydantic.ValidationError, but keep the message short
            raise EvalkitError(f"{manifest_path}: tasks.{name}.spec does not validate: {e}") from None

    old = list(latest_records(records_path).values())
    result = RescoreResult(run, before=_accuracy(old))
    contexts = {name: ScoringContext.for_task(s) for name, s in specs.items()}

    def rescore_one(rec: dict[str, Any]) -> dict[str, Any]:
        spec = specs[rec["task"]]
        if not isinstance(rec.get("sample"), dict):
            raise EvalkitError(
                f"{records_path}: record {rec.get('key')!r} ({rec['task']}) has no 'sample'; "
                f"it was not written by `evalkit run` and cannot be rescored"
            )
        completion = Completion.from_dict(rec.get("completion") or {})
        sample = Sample.from_dict(rec["sample"])
        try:
            extraction, grade = score_completion(
                completion, sample, spec.extract.name, spec.grade.name, contexts[rec["task"]]
            )
        except (KeyError, ValueError) as e:
            raise EvalkitError(
                f"{records_path}: record {rec.get('key')!r} ({rec['task']}): cannot score: {e}"
            ) from None
        new = dict(rec)
        new["extraction"] = {
            "answer": extraction.answer,
            "method": extraction.method,
            "status": extraction.status,
        }
        new["grade"] = {"correct": grade.correct, "reason": grade.reason, "points": grade.points}
        return new

    todo = [i for i, r in enumerate(old) if r.get("status") == "ok" and r.get("task") in specs]
    result.errors_kept = sum(1 for r in old if r.get("status") != "ok")
    result.unknown_task = sum(1 for r in old if r.get("status") == "ok" and r.get("task") not in specs)
    new_records = list(old)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="evalkit-rescore") as pool:
        for done, (i, rec) in enumerate(
            zip(todo, pool.map(rescore_one, [old[i] for i in todo]), strict=True), 1
        ):
            new_records[i] = rec
            if progress is not None:
                progress(done, len(todo))
    result.rescored = len(todo)
    result.changed = sum(
        1
        for i in todo
        if bool((old[i].get("grade") or {}).get("correct")) != bool(new_records[i]["grade"]["correct"])
    )

    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    backup = run / f"records.pre-rescore-{stamp}.jsonl"
    n = 1
    while backup.exists():
        n += 1
        backup = run / f"records.pre-rescore-{stamp}-{n}.jsonl"
    tmp = run / (RECORDS_FILE + ".rescore.tmp")
    with tmp.open("wb") as f:
        for rec in new_records:
            f.write(json.dumps(rec, ensure_ascii=False).encode("utf-8") + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(records_path, backup)
    os.replace(tmp, records_path)
    result.backup = backup
    result.records = len(new_records)
    result.after = _accuracy(new_records)

    # summary.json: every task the manifest knows, with the fields summarize_task does not make
    # (e.g. the runner's "split") carried over from the previous summary.
    old_summary: dict[str, Any] = {}
    if (run / SUMMARY_FILE).is_file():
        try:
            old_summary = json.loads((run / SUMMARY_FILE).read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old_summary = {}
    tasks = summarize_tasks(specs, new_records, old_summary)
    model = old_summary.get("model") or manifest.get("backend") or {}
    summary = build_summary(str(manifest.get("run_id") or run.name), model, tasks)
    summary["rescored"] = True
    write_json_atomic(run / SUMMARY_FILE, summary)
    result.summary = summary

    entry = {
        "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "evalkit_version": __version__,
        "records_backup": backup.name,
        "rescored": result.rescored,
        "changed": result.changed,
        "errors_kept": result.errors_kept,
    }
    previous_entry = manifest.get("rescored")
    history = []
    if isinstance(previous_entry, dict):
        history = [
            *previous_entry.get("history", []),
            {k: v for k, v in previous_entry.items() if k != "history"},
        ]
    manifest["rescored"] = {**entry, "history": history}
    write_json_atomic(manifest_path, manifest)
    return result

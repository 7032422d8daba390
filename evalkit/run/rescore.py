"""Re-extract and re-grade a run's stored completions with the current scoring code (no model call).

``rescore_run(run_dir)``:
  - reads ``manifest.json`` (its ``tasks.<name>.spec`` is the TaskSpec the run used) and the
    current records;
  - scores every ``status=ok`` record again through the runner's TaskScorer (every scorer of the
    task, each grade stamped with its code version); errors stay errors, records of tasks missing
    from the manifest are kept as they are;
  - rewrites ``records.jsonl`` atomically (one line per record), keeping the old file as
    ``records.pre-rescore-<UTC timestamp>.jsonl``, then ``summary.json``;
  - records ``rescored`` in the manifest: time, evalkit version, the backup's name, counts
    (earlier rescores are kept under ``rescored.history``).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit import __version__
from evalkit.errors import EvalkitError
from evalkit.run.grading import TaskScorer
from evalkit.run.summary import build_summary, summarize_tasks
from evalkit.store import Record, RunFolder, now_iso


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


def _accuracy(records: Sequence[Record]) -> dict[str, float]:
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in records:
        if r.ok and r.primary is not None:
            h = hits[r.task]
            h[0] += r.primary.grade.correct
            h[1] += 1
    return {t: (c / n if n else 0.0) for t, (c, n) in hits.items()}


def manifest_specs(folder: RunFolder, manifest: dict[str, Any]) -> dict[str, Any]:
    """The TaskSpec of every task a run's manifest recorded (what its records were graded under)."""
    from evalkit.tasks.spec import TaskSpec

    specs = {}
    for name, entry in (manifest.get("tasks") or {}).items():
        spec = (entry or {}).get("spec")
        if spec is None:
            raise EvalkitError(
                f"{folder.manifest_path}: tasks.{name} has no 'spec'; this run cannot be rescored"
            )
        try:
            specs[name] = TaskSpec.model_validate(spec)
        except Exception as e:  # pydantic.ValidationError, but keep the message short
            raise EvalkitError(f"{folder.manifest_path}: tasks.{name}.spec does not validate: {e}") from None
    return specs


def _regrade(folder: RunFolder, scorers: dict[str, TaskScorer], rec: Record) -> Record:
    if rec.sample is None:
        raise EvalkitError(
            f"{folder.records_path}: record {rec.key!r} ({rec.task}) has no 'sample'; "
            f"it was not written by `evalkit run` and cannot be rescored"
        )
    try:
        return scorers[rec.task].regrade(rec)
    except (KeyError, ValueError) as e:
        raise EvalkitError(
            f"{folder.records_path}: record {rec.key!r} ({rec.task}): cannot score: {e}"
        ) from None


def _correct(rec: Record) -> bool:
    return bool(rec.primary and rec.primary.grade.correct)


def rescore_run(
    run_dir: str | os.PathLike[str],
    workers: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> RescoreResult:
    """Rescore ``run_dir`` in place (see the module docstring). ``workers`` threads share the math
    sandbox's worker processes."""
    folder = RunFolder(run_dir).require()
    with folder.lock("rescore"):
        return _rescore_locked(folder, workers, progress)


def _rescore_locked(
    folder: RunFolder, workers: int, progress: Callable[[int, int], None] | None
) -> RescoreResult:
    manifest = folder.require_manifest()
    if not folder.records_path.is_file():
        raise EvalkitError(f"{folder.records_path}: no records to rescore")
    specs = manifest_specs(folder, manifest)
    scorers = {name: TaskScorer(spec) for name, spec in specs.items()}
    old = folder.records()
    result = RescoreResult(folder.path, before=_accuracy(folder.current_records()))
    todo = [i for i, r in enumerate(old) if r.ok and r.task in specs]
    result.errors_kept = sum(1 for r in old if not r.ok)
    result.unknown_task = sum(1 for r in old if r.ok and r.task not in specs)
    new = list(old)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="evalkit-rescore") as pool:
        regraded = pool.map(lambda r: _regrade(folder, scorers, r), [old[i] for i in todo])
        for done, (i, rec) in enumerate(zip(todo, regraded, strict=True), 1):
            new[i] = rec
            if progress is not None:
                progress(done, len(todo))
    result.rescored = len(todo)
    result.changed = sum(1 for i in todo if _correct(old[i]) != _correct(new[i]))
    result.backup = folder.rewrite(new, backup_prefix="records.pre-rescore")
    result.records = len(new)
    result.after = _accuracy(folder.current_records())
    result.summary = write_rescored_summary(folder, manifest, specs, folder.current_records())
    _note_in_manifest(folder, manifest, result)
    return result


def write_rescored_summary(
    folder: RunFolder,
    manifest: dict[str, Any],
    specs: dict[str, Any],
    records: list[Record],
    rescored: bool = True,
) -> dict[str, Any]:
    """summary.json over ``records`` (after a rescore or a judge pass)."""
    # Every task the manifest knows, with the fields summarize_task does not make (e.g. the
    # runner's "split") carried over from the previous summary.
    try:
        old_summary = folder.summary or {}
    except EvalkitError:  # a broken summary is what a rescore replaces
        old_summary = {}
    tasks = summarize_tasks(specs, records, old_summary)
    model = old_summary.get("model") or manifest.get("backend") or {}
    summary = build_summary(str(manifest.get("run_id") or folder.path.name), model, tasks)
    summary["rescored"] = rescored or bool(old_summary.get("rescored"))
    folder.write_summary(summary)
    return summary


def _note_in_manifest(folder: RunFolder, manifest: dict[str, Any], result: RescoreResult) -> None:
    entry = {
        "time": now_iso(),
        "evalkit_version": __version__,
        "records_backup": result.backup.name if result.backup else None,
        "rescored": result.rescored,
        "changed": result.changed,
        "errors_kept": result.errors_kept,
    }
    previous = manifest.get("rescored")
    history = []
    if isinstance(previous, dict):
        history = [*previous.get("history", []), {k: v for k, v in previous.items() if k != "history"}]
    manifest["rescored"] = {**entry, "history": history}
    folder.write_manifest(manifest)

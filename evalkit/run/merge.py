"""Merge the run folders of a sharded evaluation (`evalkit run --shard i/n`) into one.

Shards of one evaluation share the model identity and the task definitions; their records are
disjoint by (task, sample id, repeat, key), so the merge is exact: concatenate, keep the last record
per id, and recompute every summary from the merged records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.run.rescore import manifest_specs
from evalkit.run.summary import build_summary, summarize_tasks
from evalkit.store import MANIFEST_FILE, Record, RecordId, RunFolder, now_iso


@dataclass
class MergeResult:
    out: Path
    records: int
    shards: list[list[int] | None] = field(default_factory=list)
    missing_shards: list[int] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def _fingerprint(manifest: dict[str, Any]) -> dict[str, Any]:
    """What shards of one evaluation share: model, task files, data, output-affecting parameters, filters."""
    params = {
        k: v
        for k, v in (manifest.get("parameters") or {}).items()
        if k not in ("shard", "concurrency", "max_error_rate")
    }
    tasks = manifest.get("tasks") or {}
    return {
        "model": (manifest.get("backend") or {}).get("identity"),
        "task files": {n: t.get("sha256") for n, t in tasks.items()},
        "data": {n: (t.get("data") or {}).get("sha256") for n, t in tasks.items()},
        "parameters": params,
        "filters": manifest.get("filter") or {},
    }


def _shard_manifests(run_dirs: Sequence[Path]) -> list[dict[str, Any]]:
    manifests = []
    for d in run_dirs:
        m = RunFolder(d).manifest
        if m is None:
            raise EvalkitError(f"{d}: no {MANIFEST_FILE}; give run folders written by `evalkit run`")
        manifests.append(m)
    return manifests


def _refuse_other_evaluations(run_dirs: Sequence[Path], manifests: list[dict[str, Any]]) -> None:
    fingerprint = _fingerprint(manifests[0])
    for d, m in zip(run_dirs, manifests, strict=True):
        if m.get("status") not in ("complete", "complete_with_errors"):
            raise EvalkitError(
                f"{d}: the run did not finish (status {m.get('status')!r}); run its command again first"
            )
        fp = _fingerprint(m)
        for what in fingerprint:
            if fp[what] != fingerprint[what]:
                raise EvalkitError(
                    f"{d}: its {what} differ from {run_dirs[0]}'s; "
                    f"only shards of one evaluation can be merged"
                )


def _missing_shards(shards: list[list[int] | None]) -> list[int]:
    sizes = {s[1] for s in shards if s}
    if len(sizes) > 1 or (sizes and None in shards):
        raise EvalkitError(
            f"the folders come from different shardings ({sorted(map(str, shards))}); "
            f"merge one --shard i/n set"
        )
    indexes = [s[0] for s in shards if s]
    if len(indexes) != len(set(indexes)):
        raise EvalkitError("the same shard is given twice")
    return sorted(set(range(sizes.pop())) - set(indexes)) if sizes else []


def _check_target(out: RunFolder) -> None:
    # A folder an earlier (perhaps killed) merge wrote can be merged into again: the result is the
    # same. Anything else holding records is somebody's run.
    manifest = out.manifest
    earlier_merge = manifest is None or "merged_from" in manifest
    if out.records_path.exists() and not earlier_merge:
        raise EvalkitError(f"{out.path} already holds records; merge into a new folder")


def merge_runs(out: Path, run_dirs: Sequence[Path]) -> MergeResult:
    if not run_dirs:
        raise EvalkitError("give the shard run folders to merge")
    manifests = _shard_manifests(run_dirs)
    _refuse_other_evaluations(run_dirs, manifests)
    shards = [(m.get("parameters") or {}).get("shard") for m in manifests]
    missing = _missing_shards(shards)
    target = RunFolder(out)
    with target.lock("merge"):
        _check_target(target)
        return _merge_into(target, run_dirs, manifests, shards, missing)


def _merge_into(
    target: RunFolder,
    run_dirs: Sequence[Path],
    manifests: list[dict[str, Any]],
    shards: list[list[int] | None],
    missing: list[int],
) -> MergeResult:
    merged: dict[RecordId, Record] = {}
    for d in run_dirs:
        merged.update(RunFolder(d).latest())
    target.rewrite(merged.values())
    first = manifests[0]
    n_errors = sum(1 for r in merged.values() if not r.ok)
    manifest = {
        **first,
        "run_id": target.path.name,
        "parameters": {**(first.get("parameters") or {}), "shard": None},
        "merged_from": [
            {"run": str(d), "shard": s, "run_id": m.get("run_id")}
            for d, s, m in zip(run_dirs, shards, manifests, strict=True)
        ],
        "missing_shards": missing,
        "merged": now_iso(),
        "counts": {"records": len(merged), "errors": n_errors},
        "status": "partial" if missing else ("complete" if n_errors == 0 else "complete_with_errors"),
    }
    target.write_manifest(manifest)
    previous = RunFolder(run_dirs[0]).summary or {}
    specs = manifest_specs(RunFolder(run_dirs[0]), first)
    tasks = summarize_tasks(specs, target.current_records(), previous)
    summary = build_summary(target.path.name, previous.get("model") or first.get("backend") or {}, tasks)
    target.write_summary(summary)
    return MergeResult(target.path, len(merged), shards, missing, summary)

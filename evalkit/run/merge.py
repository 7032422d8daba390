"""Merge the run folders of a sharded evaluation (`evalkit run --shard i/n`) into one.

Shards of one evaluation share the model identity and the task definitions; their records are
disjoint by (task, key), so the merge is exact: concatenate, keep the last record per (task, key),
and recompute every summary from the merged records.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.run.manifest import MANIFEST_FILE, now_iso, read_manifest, write_json_atomic
from evalkit.run.records import RECORDS_FILE, RecordId, RecordWriter, latest_records
from evalkit.run.summary import SUMMARY_FILE, build_summary, summarize_tasks
from evalkit.tasks.spec import TaskSpec


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


def merge_runs(out: Path, run_dirs: Sequence[Path]) -> MergeResult:
    if not run_dirs:
        raise EvalkitError("give the shard run folders to merge")
    manifests = []
    for d in run_dirs:
        m = read_manifest(Path(d))
        if m is None:
            raise EvalkitError(f"{d}: no readable {MANIFEST_FILE}; give run folders written by `evalkit run`")
        manifests.append(m)
    first = manifests[0]
    fingerprint = _fingerprint(first)
    for d, m in zip(run_dirs, manifests, strict=True):
        if m.get("status") not in ("complete", "complete_with_errors"):
            raise EvalkitError(
                f"{d}: the run did not finish (status {m.get('status')!r}); run its command again first"
            )
        fp = _fingerprint(m)
        for what in fingerprint:
            if fp[what] != fingerprint[what]:
                raise EvalkitError(
                    f"{d}: its {what} differ from {run_dirs[0]}'s; only shards of one evaluation can be merged"
                )
    shards = [(m.get("parameters") or {}).get("shard") for m in manifests]
    sizes = {s[1] for s in shards if s}
    if len(sizes) > 1 or (sizes and None in shards):
        raise EvalkitError(
            f"the folders come from different shardings ({sorted(map(str, shards))}); merge one --shard i/n set"
        )
    indexes = [s[0] for s in shards if s]
    if len(indexes) != len(set(indexes)):
        raise EvalkitError("the same shard is given twice")
    missing = sorted(set(range(sizes.pop())) - set(indexes)) if sizes else []
    out = Path(out)
    if (out / RECORDS_FILE).exists():
        raise EvalkitError(f"{out} already holds records; merge into a new folder")
    merged: dict[RecordId, dict[str, Any]] = {}
    for d in run_dirs:
        merged.update(latest_records(Path(d) / RECORDS_FILE))
    with RecordWriter(out / RECORDS_FILE) as w:
        for rec in merged.values():
            w.write(rec)
    specs = {name: TaskSpec.model_validate(t["spec"]) for name, t in (first.get("tasks") or {}).items()}
    previous = (
        json.loads((Path(run_dirs[0]) / SUMMARY_FILE).read_text())
        if (Path(run_dirs[0]) / SUMMARY_FILE).is_file()
        else {}
    )
    tasks = summarize_tasks(specs, merged.values(), previous)
    model = previous.get("model") or first.get("backend") or {}
    summary = build_summary(out.name, model, tasks)
    write_json_atomic(out / SUMMARY_FILE, summary)
    n_errors = sum(1 for r in merged.values() if r.get("status") != "ok")
    manifest = {
        **first,
        "run_id": out.name,
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
    write_json_atomic(out / MANIFEST_FILE, manifest)
    return MergeResult(out, len(merged), shards, missing, summary)

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
from evalkit.run.records import RECORDS_FILE, RecordWriter, latest_records
from evalkit.run.summary import build_summary, summarize_tasks
from evalkit.tasks.spec import TaskSpec

SUMMARY_FILE = "summary.json"


@dataclass
class MergeResult:
    out: Path
    records: int
    shards: list[list[int] | None] = field(default_factory=list)
    missing_shards: list[int] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


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
    identity = first.get("backend", {}).get("identity")
    task_shas = {name: t.get("sha256") for name, t in (first.get("tasks") or {}).items()}
    for d, m in zip(run_dirs, manifests, strict=True):
        if m.get("backend", {}).get("identity") != identity:
            raise EvalkitError(f"{d}: a run of {m.get('backend', {}).get('identity')}, not {identity}; shards must share the model")
        shas = {name: t.get("sha256") for name, t in (m.get("tasks") or {}).items()}
        if shas != task_shas:
            raise EvalkitError(f"{d}: its tasks or task files differ from {run_dirs[0]}'s; shards must share them")
    shards = [(m.get("parameters") or {}).get("shard") for m in manifests]
    n = {s[1] for s in shards if s}
    missing: list[int] = []
    if len(n) == 1:
        total = n.pop()
        missing = sorted(set(range(total)) - {s[0] for s in shards if s})
    out = Path(out)
    if (out / RECORDS_FILE).exists():
        raise EvalkitError(f"{out} already holds records; merge into a new folder")
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for d in run_dirs:
        merged.update(latest_records(Path(d) / RECORDS_FILE))
    with RecordWriter(out / RECORDS_FILE) as w:
        for rec in merged.values():
            w.write(rec)
    specs = {name: TaskSpec.model_validate(t["spec"]) for name, t in (first.get("tasks") or {}).items()}
    previous = json.loads((Path(run_dirs[0]) / SUMMARY_FILE).read_text()) if (Path(run_dirs[0]) / SUMMARY_FILE).is_file() else {}
    tasks = summarize_tasks(specs, merged.values(), previous)
    model = previous.get("model") or first.get("backend") or {}
    summary = build_summary(out.name, model, tasks)
    write_json_atomic(out / SUMMARY_FILE, summary)
    manifest = {
        **first,
        "run_id": out.name,
        "parameters": {**(first.get("parameters") or {}), "shard": None},
        "merged_from": [{"run": str(d), "shard": s, "run_id": m.get("run_id")} for d, s, m in zip(run_dirs, shards, manifests, strict=True)],
        "missing_shards": missing,
        "merged": now_iso(),
        "counts": {"records": len(merged), "errors": sum(1 for r in merged.values() if r.get("status") != "ok")},
    }
    write_json_atomic(out / MANIFEST_FILE, manifest)
    return MergeResult(out, len(merged), shards, missing, summary)

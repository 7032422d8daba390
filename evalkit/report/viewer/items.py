"""Per-item data for the viewer: a small index per (run, task) and the items in chunks.

The index (one row per record: id, repeat, verdict, flags, facets, date, a snippet of the question,
the extracted answer and the gold) is what the item list, filters and quick search read; the
chunks (``CHUNK_SIZE`` items each) hold prompts and completions and load only when an item in
them is opened, so a 12,032-item run opens as fast as a small one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.report.viewer.prompts import PromptRenderer, Rendered, share_prefixes
from evalkit.store import RECORDS_FILE, Record, RunFolder

CHUNK_SIZE = 200
SNIPPET = 160  # characters of the question kept in the index for the list and quick search
FACET_NAMES = ("category", "subject", "type", "level", "competition", "contest", "src")
MAX_FACET_VALUES = 60  # a meta field with more distinct values is an id, not a category
BACKUP_GLOB = "records.pre-rescore-*.jsonl"

FLAGS = {
    "wrong": 1,
    "no_answer": 2,
    "truncated": 4,
    "censored": 8,
    "error": 16,
    "post_cutoff": 32,
    "disagree": 64,  # scorers disagree on the verdict
    "judged": 128,  # a judge model's reply is stored
}


@dataclass
class TaskItems:
    """One (run, task): the index, the chunks, and counts the leaderboard shows."""

    index: dict[str, Any]
    chunks: list[list[dict[str, Any]]]
    counts: dict[str, Any] = field(default_factory=dict)


def verdict(rec: Record) -> str:
    """ "error", "none" (no answer found: graded wrong), "right" or "wrong" (or "ungraded")."""
    if not rec.ok:
        return "error"
    s = rec.primary
    if s is None:
        return "ungraded"
    if s.grade.correct:
        return "right"
    return "none" if s.extraction.status in ("no_answer", "abstain") else "wrong"


def record_flags(rec: Record, cutoff: dt.date | None) -> int:
    s = rec.primary
    f = 0
    v = verdict(rec)
    if v in ("wrong", "none"):
        f |= FLAGS["wrong"]
    if v == "none" or rec.censoring == "no_answer":
        f |= FLAGS["no_answer"]
    status = s.extraction.status if s else None
    if rec.ok and (rec.completion.finish_reason == "length" or status == "truncated"):
        f |= FLAGS["truncated"]
    if rec.censoring == "truncated":
        f |= FLAGS["truncated"]
    if rec.censoring == "censored":
        f |= FLAGS["censored"]
    if not rec.ok:
        f |= FLAGS["error"]
    date = rec.sample.date if rec.sample else None
    if cutoff is not None and date is not None and date > cutoff:
        f |= FLAGS["post_cutoff"]
    if len({sc.grade.correct for sc in rec.scores.values()}) > 1:
        f |= FLAGS["disagree"]
    if rec.judge:
        f |= FLAGS["judged"]
    return f


def facet_fields(records: Sequence[Record], breakdown: Sequence[str]) -> list[str]:
    """Meta fields worth a filter: the task's breakdown fields, then common category names, when
    the items have a few distinct values of them."""
    names = list(dict.fromkeys([*breakdown, *FACET_NAMES]))
    out = []
    for name in names:
        values = {str(r.sample.meta.get(name)) for r in records if r.sample and name in r.sample.meta}
        if 1 < len(values) <= MAX_FACET_VALUES:
            out.append(name)
    return out[:3]


def _snippet(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()[:SNIPPET]


def _score_dict(rec: Record) -> dict[str, Any]:
    return {
        name: {
            "answer": s.extraction.answer,
            "method": s.extraction.method,
            "status": s.extraction.status,
            "correct": s.grade.correct,
            "reason": s.grade.reason,
            "points": s.grade.points,
            "version": s.version,
        }
        for name, s in rec.scores.items()
    }


def item_detail(rec: Record, rendered: Rendered) -> dict[str, Any]:
    """Everything the item page shows for one record (the prompt as [role, prefix, rest] later)."""
    c, s = rec.completion, rec.sample
    return {
        "id": rec.sample_id,
        "repeat": rec.repeat,
        "status": rec.status,
        "error": c.error,
        "question": s.question if s else None,
        "choices": list(s.choices) if s and s.choices else None,
        "gold": s.answer if s else None,
        "date": s.date.isoformat() if s and s.date else None,
        "meta": {k: v for k, v in (s.meta.items() if s else ()) if v not in (None, "")},
        "prompt": rendered.messages,
        "prompt_note": rendered.note,
        "prompt_verified": rendered.verified,
        "completion": c.text,
        "reasoning": c.reasoning,
        "finish": c.finish_reason,
        "usage": {
            "prompt": c.usage.prompt_tokens,
            "completion": c.usage.completion_tokens,
            "reasoning": c.usage.reasoning_tokens,
        },
        "latency_s": round(c.latency_s, 3) if c.latency_s else None,
        "max_tokens": rec.max_tokens,
        "scores": _score_dict(rec),
        "censoring": rec.censoring,
        "judge": dict(rec.judge) if rec.judge else None,
        "model": rec.model,
    }


def _index_row(rec: Record, flags: int, facets: list[str], values: dict[str, list[str]]) -> list[Any]:
    s, p = rec.sample, rec.primary
    codes = []
    for name in facets:
        v = str(s.meta.get(name)) if s and name in s.meta else ""
        if v not in values[name]:
            values[name].append(v)
        codes.append(values[name].index(v))
    return [
        rec.sample_id,
        rec.repeat,
        verdict(rec),
        flags,
        codes,
        s.date.isoformat() if s and s.date else "",
        _snippet(s.question) if s else "",
        (p.extraction.answer if p else None) or "",
        s.answer if s else "",
        p.grade.points if p else None,
    ]


INDEX_COLUMNS = ["id", "repeat", "verdict", "flags", "facets", "date", "snippet", "answer", "gold", "points"]


def _share_prompts(details: list[dict[str, Any]], groups: list[str]) -> list[str]:
    """Replace each prompt message's long shared prefix by a reference: [role, prefix index, rest]."""
    width = max((len(d["prompt"] or ()) for d in details), default=0)
    prefixes: list[str] = []
    for pos in range(width):
        texts = [d["prompt"][pos][1] if d["prompt"] and len(d["prompt"]) > pos else None for d in details]
        found, which = share_prefixes(texts, groups)
        base = len(prefixes)
        prefixes.extend(found)
        for d, w in zip(details, which, strict=True):
            if d["prompt"] and len(d["prompt"]) > pos:
                role, text = d["prompt"][pos]
                cut = len(found[w]) if w >= 0 else 0
                d["prompt"][pos] = [role, base + w if w >= 0 else -1, text[cut:]]
    return prefixes


def build_task_items(
    task: str,
    records: Sequence[Record],
    renderer: PromptRenderer | None,
    cutoff: dt.date | None,
    breakdown: Sequence[str] = (),
    group_field: str | None = None,
) -> TaskItems:
    """The index and chunks of one task's records (in run order)."""
    facets = facet_fields(records, breakdown)
    values: dict[str, list[str]] = {name: [] for name in facets}
    rows, details = [], []
    for rec in records:
        rendered = renderer.render(rec) if renderer is not None else Rendered(None, "no task spec")
        rows.append(_index_row(rec, record_flags(rec, cutoff), facets, values))
        details.append(item_detail(rec, rendered))
    groups = [str(r.sample.meta.get(group_field)) if group_field and r.sample else "" for r in records]
    prefixes = _share_prompts(details, groups)
    chunks = [details[i : i + CHUNK_SIZE] for i in range(0, len(details), CHUNK_SIZE)]
    index = {
        "task": task,
        "n": len(rows),
        "chunk_size": CHUNK_SIZE,
        "columns": INDEX_COLUMNS,
        "facets": [{"name": n, "values": values[n]} for n in facets],
        "prefixes": prefixes,
        "rows": rows,
        "prompt_problem": renderer.problem if renderer is not None else "no task spec in the manifest",
        "cutoff": cutoff.isoformat() if cutoff else None,
    }
    return TaskItems(index, chunks, _counts(records))


def _counts(records: Sequence[Record]) -> dict[str, Any]:
    """Counts the summary lacks: censoring classes, judge replies, per-scorer accuracy."""
    censored = sum(r.censoring == "censored" for r in records)
    judged = [r for r in records if r.judge]
    judge_right = [r.judge.get("correct") for r in judged if isinstance(r.judge.get("correct"), bool)]
    scorers: dict[str, list[bool]] = {}
    for r in records:
        if r.ok:
            for name, s in r.scores.items():
                scorers.setdefault(name, []).append(s.grade.correct)
    return {
        "censored": censored,
        "censoring_present": any(r.censoring is not None for r in records),
        "judged": len(judged),
        "judge_accuracy": (sum(judge_right) / len(judge_right)) if judge_right else None,
        "rule_accuracy_judged": (
            sum(bool(r.primary and r.primary.grade.correct) for r in judged) / len(judged) if judged else None
        ),
        "scorers": {name: {"n": len(v), "accuracy": sum(v) / len(v)} for name, v in scorers.items() if v},
    }


class _Backup(RunFolder):
    """A rescore's backup of ``records.jsonl``, read through the store like the records file."""

    def __init__(self, path: Path) -> None:
        super().__init__(path.parent)
        self._file = path

    @property
    def records_path(self) -> Path:
        return self._file


def _grade_view(rec: Record | None) -> dict[str, Any] | None:
    if rec is None:
        return None
    p = rec.primary
    return {
        "status": rec.status,
        "answer": p.extraction.answer if p else None,
        "method": p.extraction.method if p else None,
        "correct": p.grade.correct if p else None,
        "reason": p.grade.reason if p else None,
        "version": p.version if p else None,
    }


def rescore_changes(run_dir: Path, current: Sequence[Record]) -> dict[str, Any] | None:
    """What the latest rescore changed: each record whose primary grade or extracted answer differs
    between the newest ``records.pre-rescore-*.jsonl`` backup and the current records."""
    backups = sorted(run_dir.glob(BACKUP_GLOB))
    if not backups:
        return None
    before = {r.id: r for r in _Backup(backups[-1]).records()}
    changes = []
    for rec in current:
        old = before.get(rec.id)
        a, b = _grade_view(old), _grade_view(rec)
        if old is not None and a is not None and b is not None:
            same = (a["correct"], a["answer"], a["status"]) == (b["correct"], b["answer"], b["status"])
            if same:
                continue
        changes.append({"task": rec.task, "id": rec.sample_id, "repeat": rec.repeat, "old": a, "new": b})
    return {
        "backup": backups[-1].name,
        "backups": [b.name for b in backups],
        "records_file": RECORDS_FILE,
        "n_compared": len(current),
        "changes": changes,
    }

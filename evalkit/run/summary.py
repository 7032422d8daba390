"""``summary.json``'s content: per-task scores with intervals, counts, breakdowns (one builder).

Shape:
  {"run_id", "model": {...BackendInfo, "alias"}, "evalkit_version", "created",
   "tasks": {NAME: {"task", "version", "n_items", "n_records", "repeats", "errors", "truncated",
                    "no_answer", "abstain", "primary", "metrics": {METRIC: MetricResult.to_dict()},
                    "scorers": {SCORER: {"version", "metrics": {...}}} (scorers beside "main"),
                    "scoring_versions": {SCORER: [versions seen]},
                    "breakdown": {FIELD: {VALUE: {"n": int, METRIC: MetricResult.to_dict()}}},
                    "tokens": {"prompt": int, "completion": int}}}}
Errors are counted and excluded from every metric (never graded as wrong answers). The runner,
rescore and merge all build summaries here; the store writes them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from evalkit import __version__
from evalkit.run.grading import ANSWERED, CENSORED, JUDGED, NO_ANSWER, censoring_class
from evalkit.scoring.grade import AMC_POINTS
from evalkit.scoring.metrics import ScoredRow
from evalkit.scoring.registry import get_metric
from evalkit.store import PRIMARY_SCORER, Record


def scored_rows(records: Iterable[Record], scorer: str = PRIMARY_SCORER) -> list[ScoredRow]:
    """One row per graded answer, as the metrics read them (errors and ungraded records left out)."""
    rows = []
    for r in records:
        score = r.scores.get(scorer) if r.ok else None
        if score is None:
            continue
        sample = r.sample
        meta = {
            **(sample.meta if sample else {}),
            "date": sample.date.isoformat() if sample and sample.date else None,
        }
        rows.append(
            ScoredRow(
                sample_id=r.sample_id,
                repeat=r.repeat,
                correct=score.grade.correct,
                points=score.grade.points,
                status=score.extraction.status,
                answer=score.extraction.answer,
                meta=meta,
            )
        )
    return rows


def compute_metrics(
    rows: Sequence[ScoredRow], metrics: Sequence[str], options: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    return {m: get_metric(m)(rows, options or {}).to_dict() for m in metrics}


def _counts(records: Sequence[Record]) -> dict[str, Any]:
    tokens: dict[str, Any] = {"prompt": 0, "completion": 0, "reasoning": 0}
    errors = truncated = reported = 0
    for r in records:
        if not r.ok:
            errors += 1
            continue
        usage = r.completion.usage
        tokens["prompt"] += int(usage.prompt_tokens or 0)
        tokens["completion"] += int(usage.completion_tokens or 0)
        if usage.reasoning_tokens is not None:
            tokens["reasoning"] += usage.reasoning_tokens
            reported += 1
        truncated += r.completion.finish_reason == "length"
    answered = len(records) - errors
    # Reasoning tokens come from the server's usage; where it does not report them they are missing,
    # not zero: the mean is over the answers that report them.
    tokens["reasoning_reported"] = reported
    tokens["reasoning_missing"] = answered - reported
    tokens["mean_completion_per_answer"] = tokens["completion"] / answered if answered else None
    tokens["mean_reasoning_per_answer"] = tokens["reasoning"] / reported if reported else None
    return {"errors": errors, "truncated": truncated, "tokens": tokens}


def _scoring_versions(records: Sequence[Record]) -> dict[str, list[str | None]]:
    seen: dict[str, set[str | None]] = defaultdict(set)
    for r in records:
        for name, s in r.scores.items():
            seen[name].add(s.version)
    return {name: sorted(v, key=str) for name, v in sorted(seen.items())}


def _extra_scorers(spec: Any, records: Sequence[Record]) -> dict[str, Any]:
    """Each extra scorer's metrics over the same answers (e.g. MMLU-Pro's official-compatible reading)."""
    out = {}
    for scorer in spec.all_scorers()[1:]:
        rows = scored_rows(records, scorer.name)
        out[scorer.name] = {
            "extract": scorer.extract.name,
            "grade": scorer.grade.name,
            "primary": scorer.metrics[0],
            "no_answer": sum(1 for r in rows if r.status == "no_answer"),
            "metrics": compute_metrics(rows, scorer.metrics),
        }
    return out


# A run whose censored share is above this says so (with the fix) when it finishes.
CENSORED_WARN_SHARE = 0.05


def _censoring_of(r: Record) -> str | None:
    if not r.ok or r.primary is None:
        return None
    return r.censoring or censoring_class(r.primary.extraction)


def _counted_right(row: ScoredRow) -> ScoredRow:
    points = AMC_POINTS["correct"] if row.points is not None else None
    return dataclasses.replace(row, correct=True, points=points)


def _censoring(spec: Any, records: Sequence[Record], rows: Sequence[ScoredRow]) -> dict[str, Any]:
    """Counts per censoring class and the primary metric's bounds: censored answers counted wrong
    (the reported score) and counted right (the upper bound), each with its interval."""
    classes = {(r.sample_id, r.repeat): _censoring_of(r) for r in records}
    counts = Counter(c for c in classes.values() if c)
    truncated_answered = sum(
        1
        for r in records
        if classes[(r.sample_id, r.repeat)] == ANSWERED and r.completion.finish_reason == "length"
    )
    censored = {k for k, c in classes.items() if c == CENSORED}
    upper_rows = [_counted_right(row) if (row.sample_id, row.repeat) in censored else row for row in rows]
    metric = spec.metrics[0]
    graded = sum(counts.values())
    return {
        ANSWERED: counts.get(ANSWERED, 0),
        "answered_truncated": truncated_answered,
        CENSORED: counts.get(CENSORED, 0),
        NO_ANSWER: counts.get(NO_ANSWER, 0),
        "censored_share": counts.get(CENSORED, 0) / graded if graded else 0.0,
        "bounds": {
            "metric": metric,
            "reported": compute_metrics(rows, [metric])[metric],  # censored answers counted wrong
            "upper": compute_metrics(upper_rows, [metric])[metric],  # censored answers counted right
        },
        # Which budget each graded answer came from (a top-up mixes several); "unknown" before 0.2.
        "budgets": dict(sorted(Counter(str(r.max_tokens or "unknown") for r in records if r.ok).items())),
    }


def _judge(spec: Any, records: Sequence[Record]) -> dict[str, Any] | None:
    """Rule-only beside judge-rescued: the primary metric with each rule miss the judge read graded
    from the judge's answer; items whose judge call failed are left out (never scored wrong)."""
    judged = [r for r in records if r.ok and r.judge]
    if not judged:
        return None
    rescue = [r for r in judged if r.judge.get("role") == "rescue"]
    audit_asked = [r for r in judged if r.judge.get("role") == "audit"]
    audit = [r for r in audit_asked if r.judge.get("status") == "ok"]
    failed = {(r.sample_id, r.repeat) for r in rescue if r.judge.get("status") == "error"}
    rows = {(row.sample_id, row.repeat): row for row in scored_rows(records)}
    rows.update({(row.sample_id, row.repeat): row for row in scored_rows(records, JUDGED)})
    kept = [row for k, row in rows.items() if k not in failed]
    metric = spec.metrics[0]
    agree = sum(
        1 for r in audit if r.judge.get("correct") == (r.primary is not None and r.primary.grade.correct)
    )
    first = judged[0].judge
    return {
        "model": first.get("model"),
        "prompt_version": first.get("prompt_version"),
        "asked": len(rescue),
        "read": sum(1 for r in rescue if r.judge.get("status") == "ok"),
        "failed": len(failed),
        "rescued": sum(1 for r in rescue if JUDGED in r.scores and r.scores[JUDGED].grade.correct),
        "metric": metric,
        "metrics": compute_metrics(kept, [metric]),
        # Agreement over the audited answers the judge could read (the rest are counted apart).
        "audit": {
            "asked": len(audit_asked),
            "n": len(audit),
            "agree": agree,
            "agreement": agree / len(audit) if audit else None,
        },
    }


def _breakdown(rows: Sequence[ScoredRow], fields: Sequence[str], metric: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in fields:
        groups: dict[str, list[ScoredRow]] = defaultdict(list)
        for row in rows:
            groups[str(row.meta.get(name))].append(row)
        out[name] = {
            value: {"n": len(g), **compute_metrics(g, [metric])} for value, g in sorted(groups.items())
        }
    return out


def summarize_task(spec: Any, records: Sequence[Record]) -> dict[str, Any]:
    """The summary entry of one task (``spec``: its TaskSpec) over its current records."""
    rows = scored_rows(records)
    status_counts: dict[str, int] = defaultdict(int)
    for row in rows:
        status_counts[row.status] += 1
    counts = _counts(records)
    metrics = list(spec.metrics)
    return {
        "task": spec.name,
        "version": spec.version,
        "n_items": len({r.sample_id for r in records}),
        "n_records": len(records),
        "repeats": max((r.repeat for r in records), default=-1) + 1,
        "errors": counts["errors"],
        "truncated": counts["truncated"],
        "no_answer": status_counts.get("no_answer", 0),
        "abstain": status_counts.get("abstain", 0),
        "primary": metrics[0],
        "metrics": compute_metrics(rows, metrics),
        "scorers": _extra_scorers(spec, records),
        "censoring": _censoring(spec, records, rows),
        "judge": _judge(spec, records),
        "scoring_versions": _scoring_versions(records),
        "tokens": counts["tokens"],
        "breakdown": _breakdown(rows, spec.report.breakdown, metrics[0]),
    }


def build_summary(
    run_id: str, model: Mapping[str, Any], tasks: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "model": dict(model),
        "evalkit_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "tasks": dict(tasks),
    }


def summarize_tasks(
    specs: Mapping[str, Any], records: Iterable[Record], previous: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Per-task summaries of ``records`` for tasks given as TaskSpecs by name (as a manifest holds
    them); fields summarize_task does not make (e.g. the runner's "split") are carried over from
    ``previous`` (an earlier summary.json)."""
    by_task: dict[str, list[Record]] = defaultdict(list)
    for rec in records:
        by_task[rec.task].append(rec)
    tasks: dict[str, dict[str, Any]] = {}
    for name, spec in specs.items():
        entry = summarize_task(spec, by_task.get(name, []))
        for k, v in (((previous or {}).get("tasks") or {}).get(name) or {}).items():
            entry.setdefault(k, v)
        tasks[name] = entry
    return tasks


def censoring_warnings(summary: Mapping[str, Any], threshold: float = CENSORED_WARN_SHARE) -> list[str]:
    """One line per task whose share of censored answers is above ``threshold``, with the fix."""
    lines = []
    for name, t in (summary.get("tasks") or {}).items():
        c = t.get("censoring") or {}
        if c.get("censored_share", 0.0) <= threshold:
            continue
        budgets = ", ".join(
            sorted(c.get("budgets") or {}, key=lambda b: (not b.isdigit(), int(b) if b.isdigit() else 0))
        )
        bounds = c.get("bounds") or {}
        low, high = (bounds.get(k, {}).get("value") for k in ("reported", "upper"))
        span = (
            f"; the score lies between {100 * low:.1f} and {100 * high:.1f}"
            if None not in (low, high)
            else ""
        )
        lines.append(
            f"{name}: {c['censored']} answers ({c['censored_share']:.0%}) were cut off by the token budget "
            f"(max_tokens {budgets}) before an answer{span}; raise --max-tokens and add --topup-censored "
            f"to re-send only those"
        )
    return lines

"""Grade a JSON-lines file of (pred, gold[, choices]) through the runner's scoring path.

Used by ``evalkit grade``. Each line is a JSON object with ``pred`` (a full model response or a
bare answer), ``gold``, and for multiple choice optionally ``choices`` (the option texts);
optional ``id``, ``meta`` (a mapping, e.g. ``{"contest": "2024_12A"}``) and ``finish_reason``.
Every line is checked before anything is graded, so a bad line fails fast with file:line.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.scoring.registry import ScoringContext, score_completion
from evalkit.scoring.stats import wilson_interval
from evalkit.types import Completion, Sample

# --kind -> (extractor, grader)
KINDS: dict[str, tuple[str, str]] = {
    "math": ("boxed", "math"),
    "choice": ("choice", "choice"),
    "integer": ("integer", "integer"),
}


@dataclass(frozen=True)
class GradeSetup:
    """Which components grade the lines, with which settings."""

    name: str  # the task name or the kind
    extractor: str
    grader: str
    ctx: ScoringContext = field(default_factory=ScoringContext)


@dataclass
class GradeReport:
    n: int = 0
    correct: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    def summary_lines(self) -> list[str]:
        lo, hi = wilson_interval(self.correct, self.n)
        rate = self.n / self.seconds if self.seconds > 0 else float("inf")
        lines = [
            f"graded {self.n} lines: accuracy {self.accuracy:.4f} ({self.correct}/{self.n}), "
            f"95% interval [{lo:.4f}, {hi:.4f}]",
            "extraction: " + ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items())),
            "reasons: " + ", ".join(f"{k} {v}" for k, v in self.reasons.most_common()),
            f"time: {self.seconds:.2f} s ({rate:.0f} lines/s)",
        ]
        return lines


def setup_for(
    kind: str | None, task: str | None, tasks_dirs: Sequence[str | os.PathLike[str]] = ()
) -> GradeSetup:
    """The extractor/grader for ``--kind`` or for a task (its extractor options, stop sequences and
    grader options)."""
    if kind is not None and kind not in KINDS:
        raise EvalkitError(f"--kind must be one of {', '.join(KINDS)} (got {kind!r})")
    if task is None:
        if kind is None:
            raise EvalkitError("give --kind (math, choice or integer) or --task NAME")
        ex, gr = KINDS[kind]
        return GradeSetup(kind, ex, gr)
    from evalkit.tasks import discover

    loaded = discover(tasks_dirs).get(task)
    spec = loaded.spec
    if kind is not None and KINDS[kind][1] != spec.grade.name:
        raise EvalkitError(
            f"--kind {kind} grades with {KINDS[kind][1]!r} but task {spec.name!r} grades with "
            f"{spec.grade.name!r}; drop --kind to use the task's settings"
        )
    ctx = ScoringContext.for_task(spec)
    return GradeSetup(spec.name, spec.extract.name, spec.grade.name, ctx)


def read_lines(path: str | os.PathLike[str]) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-empty line; EvalkitError naming file:line on bad input."""
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EvalkitError(f"{p}: no such file") from None
    except UnicodeDecodeError as e:
        raise EvalkitError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    out = []
    for i, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise EvalkitError(f"{p}:{i}: not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise EvalkitError(f"{p}:{i}: each line must be a JSON object with 'pred' and 'gold'")
        for key in ("pred", "gold"):
            if key not in obj or obj[key] is None:
                raise EvalkitError(f"{p}:{i}: missing field {key!r} (each line needs 'pred' and 'gold')")
        if not isinstance(obj["pred"], str):
            raise EvalkitError(f"{p}:{i}: 'pred' must be a string (the model's response or answer)")
        if not isinstance(obj["gold"], (str, int, float)) or isinstance(obj["gold"], bool):
            raise EvalkitError(f"{p}:{i}: 'gold' must be a string or a number")
        ch = obj.get("choices")
        if ch is not None and not (
            isinstance(ch, list) and all(isinstance(c, (str, int, float)) for c in ch)
        ):
            raise EvalkitError(f"{p}:{i}: 'choices' must be a list of option texts")
        if obj.get("meta") is not None and not isinstance(obj["meta"], Mapping):
            raise EvalkitError(f"{p}:{i}: 'meta' must be an object")
        fr = obj.get("finish_reason", "stop")
        if fr not in ("stop", "length"):
            raise EvalkitError(f"{p}:{i}: 'finish_reason' must be 'stop' or 'length'")
        out.append((i, obj))
    if not out:
        raise EvalkitError(f"{p}: no lines to grade")
    return out


def _gold_text(g: Any) -> str:
    if isinstance(g, float) and g.is_integer():
        return str(int(g))
    return str(g)


def grade_lines(
    lines: Sequence[tuple[int, dict[str, Any]]], setup: GradeSetup, threads: int = 4, source: str = "input"
) -> tuple[list[dict[str, Any]], GradeReport]:
    """Grade each line; return the lines with ``correct``, ``reason`` and ``extracted`` added
    (and ``points`` when the grader gives points)."""

    def one(item: tuple[int, dict[str, Any]]) -> dict[str, Any]:
        lineno, obj = item
        choices = obj.get("choices")
        sample = Sample(
            id=str(obj.get("id", lineno)),
            task=setup.name,
            question="",
            answer=_gold_text(obj["gold"]),
            choices=tuple(str(c) for c in choices) if choices is not None else None,
            meta=dict(obj.get("meta") or {}),
        )
        completion = Completion(text=obj["pred"], finish_reason=obj.get("finish_reason", "stop"))
        try:
            extraction, grade = score_completion(completion, sample, setup.extractor, setup.grader, setup.ctx)
        except ValueError as e:
            raise EvalkitError(f"{source}:{lineno}: {e}") from None
        out = dict(obj)
        out["correct"] = grade.correct
        out["reason"] = grade.reason
        out["extracted"] = extraction.answer
        if grade.points is not None:
            out["points"] = grade.points
        out["_status"] = extraction.status
        return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="evalkit-grade") as pool:
        results = list(pool.map(one, lines))
    report = GradeReport(seconds=time.perf_counter() - t0)
    for r in results:
        report.n += 1
        report.correct += bool(r["correct"])
        report.statuses[r.pop("_status")] += 1
        report.reasons[r["reason"]] += 1
    return results, report

"""The body of ``evalkit grade``: a JSON-lines file of (pred, gold[, choices]) graded through the
runner's scoring path.

Each line is a JSON object with ``pred`` (a full model response or a bare answer), ``gold``, and
for multiple choice optionally ``choices`` (the option texts); optional ``id``, ``meta`` (a
mapping, e.g. ``{"contest": "2024_12A"}``) and ``finish_reason``.
Every line is checked before anything is graded, so a bad line fails fast with file:line.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.jsonl import read_jsonl
from evalkit.scoring.registry import score_completion
from evalkit.scoring.sandbox import SandboxStats, default_sandbox_stats
from evalkit.scoring.stats import wilson_interval
from evalkit.types import Completion, Sample, ScoringContext

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
    sandbox: SandboxStats | None = None  # the math sandbox's counts, when a check needed it

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
        if self.sandbox is not None:
            sb = self.sandbox
            lines.append(
                f"math sandbox: {sb.checks} checks, {sb.timeouts} timeouts, {sb.crashes} crashes, "
                f"{sb.memory_kills} memory kills, {sb.started} workers started"
            )
        return lines


def read_lines(path: str | os.PathLike[str]) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-empty line; EvalkitError naming file:line on bad input."""
    out = [(i, obj) for i, obj in read_jsonl(path) if _check_line(path, i, obj)]
    if not out:
        raise EvalkitError(f"{path}: no lines to grade")
    return out


def _check_line(path: str | os.PathLike[str], i: int, obj: Mapping[str, Any]) -> bool:
    """True for a well-formed line; EvalkitError naming file:line otherwise."""
    where = f"{path}:{i}"
    for key in ("pred", "gold"):
        if key not in obj or obj[key] is None:
            raise EvalkitError(f"{where}: missing field {key!r} (each line needs 'pred' and 'gold')")
    if not isinstance(obj["pred"], str):
        raise EvalkitError(f"{where}: 'pred' must be a string (the model's response or answer)")
    if not isinstance(obj["gold"], (str, int, float)) or isinstance(obj["gold"], bool):
        raise EvalkitError(f"{where}: 'gold' must be a string or a number")
    ch = obj.get("choices")
    if ch is not None and not (isinstance(ch, list) and all(isinstance(c, (str, int, float)) for c in ch)):
        raise EvalkitError(f"{where}: 'choices' must be a list of option texts")
    if obj.get("meta") is not None and not isinstance(obj["meta"], Mapping):
        raise EvalkitError(f"{where}: 'meta' must be an object")
    if obj.get("finish_reason", "stop") not in ("stop", "length"):
        raise EvalkitError(f"{where}: 'finish_reason' must be 'stop' or 'length'")
    return True


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
    report = GradeReport(seconds=time.perf_counter() - t0, sandbox=default_sandbox_stats())
    for r in results:
        report.n += 1
        report.correct += bool(r["correct"])
        report.statuses[r.pop("_status")] += 1
        report.reasons[r["reason"]] += 1
    return results, report

"""Graders (named; task YAMLs refer to them by name)."""

from __future__ import annotations

import re

from evalkit.scoring.registry import ScoringContext, register_grader
from evalkit.types import Extraction, Grade, Sample


def _no_answer(extraction: Extraction) -> Grade | None:
    if extraction.answer is None:
        return Grade(False, extraction.status)
    return None


def normalize_text(s: str) -> str:
    return re.sub(r"\s+", " ", s.strip().strip(".").lower())


@register_grader("exact")
def grade_exact(extraction: Extraction, sample: Sample, ctx: ScoringContext) -> Grade:
    """Case- and whitespace-insensitive string equality."""
    if (g := _no_answer(extraction)) is not None:
        return g
    ok = normalize_text(extraction.answer or "") == normalize_text(sample.answer)
    return Grade(ok, "match" if ok else "mismatch")


@register_grader("choice")
def grade_choice(extraction: Extraction, sample: Sample, ctx: ScoringContext) -> Grade:
    """Letter equality."""
    if (g := _no_answer(extraction)) is not None:
        return g
    ok = (extraction.answer or "").strip().upper() == sample.answer.strip().upper()
    return Grade(ok, "match" if ok else "mismatch")

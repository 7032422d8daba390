"""The ``exact`` extractor: the whole answer text, for short-answer tasks."""

from __future__ import annotations

from evalkit.scoring.extractors._common import finish
from evalkit.scoring.registry import register_extractor
from evalkit.scoring.text import answer_text
from evalkit.types import Completion, Extraction, Sample, ScoringContext


def _example_exact(answer: str, boxed: bool) -> str:
    return answer  # the whole text is the answer: no reasoning before it


@register_extractor("exact", version=1, example_answer=_example_exact)
def extract_exact(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
    """The whole answer text, stripped (for short-answer tasks)."""
    text, truncated = answer_text(completion, ctx.stop)
    text = text.strip()
    return finish(text or None, "whole_text", completion, truncated)

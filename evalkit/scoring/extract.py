"""Answer extractors (named; task YAMLs refer to them by name)."""

from __future__ import annotations

import re

from evalkit.scoring.registry import ScoringContext, register_extractor
from evalkit.scoring.text import answer_text
from evalkit.types import Completion, Extraction, Sample


def _finish(answer: str | None, method: str, completion: Completion, truncated: bool) -> Extraction:
    if truncated:
        return Extraction(None, "truncated_in_reasoning", "truncated")
    if answer is None:
        status = "truncated" if completion.finish_reason == "length" else "no_answer"
        return Extraction(None, "none", status)
    return Extraction(answer, method, "ok")


@register_extractor("exact")
def extract_exact(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
    """The whole answer text, stripped (for short-answer tasks)."""
    text, truncated = answer_text(completion, ctx.stop)
    text = text.strip()
    return _finish(text or None, "whole_text", completion, truncated)


@register_extractor("choice")
def extract_choice(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
    """A multiple-choice letter limited to the item's own options; the last explicit answer wins."""
    text, truncated = answer_text(completion, ctx.stop)
    letters = sample.letters or ("A", "B", "C", "D", "E")
    cls = "".join(letters)
    patterns = [
        ("answer_is", rf"answer is:?\s*\(?\**\s*([{cls}])\b"),
        ("answer_colon", rf"answer:\s*\(?\**\s*([{cls}])\b"),
        ("boxed", rf"\\boxed\{{\s*(?:\\text\{{)?\s*([{cls}])\s*\}}"),
    ]
    for method, pat in patterns:
        found = re.findall(pat, text, flags=re.IGNORECASE)
        if found:
            return _finish(found[-1].upper(), method, completion, truncated)
    return _finish(None, "none", completion, truncated)

"""What every extractor shares: the abstention marker, the final ``Extraction``, and the cleaning of
the text that follows "the answer is"."""

from __future__ import annotations

import re

from evalkit.scoring.latex import find_boxes, strip_math_delimiters, unwrap_commands
from evalkit.types import Completion, Extraction

ABSTAIN = "\x00abstain"  # internal marker for an explicit "blank" answer

# The reasoning an example answer (``example_answer``, read by `evalkit tasks check`) opens with.
EXAMPLE_REASONING = "Let's think step by step. We work through the problem carefully and check each step."


def finish(answer: str | None, method: str, completion: Completion, truncated: bool) -> Extraction:
    """The Extraction for what was found: an answer, an abstention, nothing, or a cut-off text."""
    if truncated:
        return Extraction(None, "truncated_in_reasoning", "truncated")
    if answer == ABSTAIN:
        return Extraction(None, method, "abstain")
    if answer is None:
        status = "truncated" if completion.finish_reason == "length" else "no_answer"
        return Extraction(None, "none", status)
    return Extraction(answer, method, "ok")


def is_blank(s: str) -> bool:
    t = unwrap_commands(strip_math_delimiters(s)).strip().strip("*.() ").lower()
    return t in ("blank", "leave blank", "left blank")


_DELIMITERS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"), ("**", "**"))
_ANSWER_IS_PREFIX_RE = re.compile(r"^(?:the\s+final\s+answer\s+is|the\s+answer\s+is)\s*:?\s*", re.IGNORECASE)
_SENTENCE_END_RE = re.compile(r"\.(?:\s|$)")


def _delimited(s: str) -> str | None:
    """The leading ``$...$``/``\\(...\\)``/``\\[...\\]``/``**...**``/``\\boxed{}`` group of ``s``, if any."""
    for a, b in _DELIMITERS:
        if s.startswith(a):
            j = s.find(b, len(a))
            while b == "$" and j > 0 and s[j - 1] == "\\":  # `$\$36$`: an escaped dollar is text
                j = s.find(b, j + 1)
            if j > len(a):
                return s[len(a) : j]
            return None
    if s.startswith("\\boxed") or s.startswith("\\fbox"):
        box = find_boxes(s)
        if box and box[0].start == 0:
            return box[0].content
    return None


def clean_answer(raw: str) -> str | None:
    """The answer in the text that follows "answer is": a formula, a bold span, or the sentence."""
    s = _ANSWER_IS_PREFIX_RE.sub("", raw.strip())
    inner = _delimited(s)
    if inner is not None:
        s = inner
    else:
        # Up to the end of the sentence: a full stop followed by a space (decimals have none).
        m = _SENTENCE_END_RE.search(s)
        if m:
            s = s[: m.start()]
    s = s.strip().strip("*").strip()
    s = strip_math_delimiters(s)
    s = s.rstrip(" \t.,;:").strip()
    if len(s) >= 2 and s[0] == "$" and s[-1] == "$":
        s = s[1:-1].strip()
    return s or None

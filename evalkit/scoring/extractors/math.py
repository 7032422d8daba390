"""Extractors for math answers: ``boxed`` (MATH, AMC open answers), ``answer_line`` (Minerva's
"The final answer is X. I hope it is correct.") and ``integer`` (AIME).

All three read the text after the reasoning split and the stop-sequence cut (``answer_text``).
Every regular expression has bounded repetition, so a megabyte of adversarial text is searched in
linear time, and at most ``_MAX_LINE_CANDIDATES`` anchors are tried, from the end.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from evalkit.scoring.extractors._common import ABSTAIN, EXAMPLE_REASONING, clean_answer, finish, is_blank
from evalkit.scoring.latex import last_box, strip_math_delimiters, unwrap_commands
from evalkit.scoring.registry import register_extractor
from evalkit.scoring.text import answer_text
from evalkit.types import Completion, Extraction, Sample, ScoringContext

# ---------------------------------------------------------------------------------------------
# Answer lines: Minerva's "Final Answer: The final answer is X. I hope it is correct.",
# "The answer is X", "Answer: X", bold.

_MAX_LINE_CANDIDATES = 200
_HOPE_RE = re.compile(r"I hope it is correct", re.IGNORECASE)
_FINAL_IS = "final answer is"
_ANSWER_RE = re.compile(
    r"\b(?:(?:final|correct|the)\s{1,3})?answer(?:\s{1,3}(?:is|would\s{1,3}be|should\s{1,3}be|will\s{1,3}be)"
    r"(?:[ \t]{0,3}:)?|[ \t]{0,3}(?:\*\*)?[ \t]{0,3}[:\uff1a])(?:[ \t]{0,3}\*\*)?[ \t]{0,3}\n?[ \t]{0,3}\n?"
    r"(?P<ans>[^\n]{1,500})",
    re.IGNORECASE,
)
_BOLD_RE = re.compile(r"\*\*(?P<ans>[^*\n]{1,300})\*\*")
_BOLD_LABEL_RE = re.compile(r"^(?:final\s+)?answer\s*:\s*", re.IGNORECASE)
_PROSE_WORD_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")


def _minerva(text: str) -> str | None:
    """The X of the last "final answer is X. I hope it is correct" (Minerva's format).

    Anchored on the closing sentence and searched backwards on its line, so the cost stays linear
    in the text even when it repeats "final answer is" a hundred thousand times.
    """
    hopes = list(_HOPE_RE.finditer(text))
    for h in reversed(hopes[-_MAX_LINE_CANDIDATES:]):
        start = max(0, h.start() - 520)
        window = text[start : h.start()]
        line = window[window.rfind("\n") + 1 :]
        i = line.lower().rfind(_FINAL_IS)
        if i == -1:
            continue
        raw = line[i + len(_FINAL_IS) :].lstrip(" \t:")
        raw = raw.rstrip()
        if raw.endswith("."):
            raw = raw[:-1]
        ans = clean_answer(raw) if raw.strip() else None
        if ans:
            return ans
    return None


def find_answer_line(text: str) -> tuple[str, str] | None:
    """(answer, method) from a stated answer line; the last explicit one wins over earlier drafts."""
    ans = _minerva(text)
    if ans:
        return ans, "minerva"
    for m in reversed(list(_ANSWER_RE.finditer(text))[-_MAX_LINE_CANDIDATES:]):
        ans = clean_answer(m.group("ans"))
        if ans:
            return ans, "answer_line"
    bolds = list(_BOLD_RE.finditer(text))
    if bolds:
        ans = clean_answer(bolds[-1].group("ans"))
        if ans:
            ans = _BOLD_LABEL_RE.sub("", ans).strip()
            if ans:
                return ans, "bold"
    return None


def _bare(text: str, max_chars: int) -> str | None:
    """A short one-line output is the answer itself (``evalkit grade`` on bare answers, terse models)."""
    s = text.strip()
    if not s or "\n" in s or len(s) > max_chars or "\\boxed" in s or "\\fbox" in s:
        return None
    if len(_PROSE_WORD_RE.findall(s)) > 3:
        return None  # a sentence, not an answer
    return clean_answer(s)


def _math_answer(text: str, opts: Mapping[str, Any]) -> tuple[str | None, str]:
    """The last box, else (``fallback: answer_line``) the stated answer line, else (``bare``) a
    short one-line output; a blank one is ABSTAIN."""
    box = last_box(text)
    if box is not None and box.content.strip():
        if is_blank(box.content):
            return ABSTAIN, "boxed"
        return box.content.strip(), "boxed"
    fallback = opts.get("fallback", "answer_line")
    if fallback not in ("answer_line", "none", None):
        raise ValueError(f"extract option fallback: {fallback!r} is not 'answer_line' or 'none'")
    if fallback == "answer_line":
        line = find_answer_line(text)
        if line is not None:
            if is_blank(line[0]):
                return ABSTAIN, line[1]
            return line
    if opts.get("bare", True):
        ans = _bare(text, int(opts.get("bare_max_chars", 100)))
        if ans is not None:
            if is_blank(ans):
                return ABSTAIN, "bare"
            return ans, "bare"
    return None, "none"


def _example_boxed(answer: str, boxed: bool) -> str:
    return f"{EXAMPLE_REASONING}\nPutting it together, the answer is \\boxed{{{answer}}}."


@register_extractor(
    "boxed", options=("fallback", "bare", "bare_max_chars"), version=1, example_answer=_example_boxed
)
def extract_boxed(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
    """The last ``\\boxed{}``/``\\fbox{}`` (balanced braces, nested braces, ``\\boxed 5``).

    Options: ``fallback: answer_line`` (default; ``none`` to require a box) takes the stated
    answer line when there is no box; ``bare: true`` (default) takes a short one-line output as
    the answer itself. ``\\boxed{blank}`` is an explicit abstention (status ``abstain``).
    """
    text, truncated = answer_text(completion, ctx.stop)
    ans, method = _math_answer(text, ctx.extract_options)
    return finish(ans, method, completion, truncated)


def _example_answer_line(answer: str, boxed: bool) -> str:
    return (
        f"{EXAMPLE_REASONING}\nTherefore the result follows.\n"
        f"Final Answer: The final answer is ${answer}$. I hope it is correct."
    )


@register_extractor(
    "answer_line", options=("bare", "bare_max_chars"), version=1, example_answer=_example_answer_line
)
def extract_answer_line(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
    """The stated answer: Minerva's "The final answer is X. I hope it is correct.", "The answer is
    X", "Answer: X", then the last bold span; the last explicit statement wins."""
    text, truncated = answer_text(completion, ctx.stop)
    line = find_answer_line(text)
    if line is not None:
        return finish(ABSTAIN if is_blank(line[0]) else line[0], line[1], completion, truncated)
    if ctx.extract_options.get("bare", True):
        ans = _bare(text, int(ctx.extract_options.get("bare_max_chars", 100)))
        if ans is not None:
            return finish(ans, "bare", completion, truncated)
    return finish(None, "none", completion, truncated)


# ---------------------------------------------------------------------------------------------
# Integers (AIME: 0-999)

_INT_TEXT_RE = re.compile(r"[+-]?\d+(?:\.0+)?")
_INT_SPACING_RE = re.compile(r"\\[,;! ]|\{,\}|\s")
_DEGREES_RE = re.compile(r"(?:\^\{?\\circ\}?|°)$")
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+")
_LAST_INT_RE = re.compile(r"(?<![\w.])[+-]?\d{1,3}(?:,\d{3})+(?![\w,])|(?<![\w.])[+-]?\d+(?![\w])")


def parse_integer(s: str) -> int | None:
    """``033`` -> 33, ``1,000`` / ``1\\,000`` / ``1{,}000`` -> 1000, ``\\text{33}`` -> 33, ``33.0`` -> 33."""
    t = unwrap_commands(strip_math_delimiters(s))
    t = _INT_SPACING_RE.sub(lambda m: "," if m.group(0) in ("\\,", "{,}") else "", t)
    t = _DEGREES_RE.sub("", t)
    t = t.strip().rstrip(".")
    if t.startswith("(") and t.endswith(")"):
        t = t[1:-1].strip()  # AoPS style `\textbf{(245) }`
    if _THOUSANDS_RE.fullmatch(t):
        t = t.replace(",", "")
    if len(t) > 50 or not _INT_TEXT_RE.fullmatch(t):
        return None
    return int(t.split(".")[0])


def _example_integer(answer: str, boxed: bool) -> str:
    if boxed:
        return _example_boxed(answer, boxed)
    return f"{EXAMPLE_REASONING}\nThe answer is {answer}."


@register_extractor("integer", options=("last_number", "bare"), version=1, example_answer=_example_integer)
def extract_integer(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
    """An integer answer (AIME 0-999): the last box, else the stated answer line, else a bare
    number; ``last_number: true`` also accepts the last integer in the text.

    A box holding something that is not an integer is returned as written (method ``*_not_integer``)
    so the record shows what the model answered; the ``integer`` grader marks it wrong.
    """
    text, truncated = answer_text(completion, ctx.stop)
    opts = ctx.extract_options
    ans, method = _math_answer(text, {"fallback": "answer_line", "bare": opts.get("bare", True)})
    if method == "bare" and ans not in (None, ABSTAIN) and parse_integer(ans) is None:
        ans, method = None, "none"  # a short sentence is not a bare integer answer
    if ans is None and opts.get("last_number", False):
        nums = list(_LAST_INT_RE.finditer(text))
        if nums:
            ans, method = nums[-1].group(0), "last_number"
    if ans is None or ans == ABSTAIN:
        return finish(ans, method, completion, truncated)
    n = parse_integer(ans)
    if n is None:
        return finish(ans, f"{method}_not_integer", completion, truncated)
    return finish(str(n), method, completion, truncated)

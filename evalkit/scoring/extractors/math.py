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
from evalkit.scoring.latex import (
    answer_shape,
    gold_answer,
    last_box,
    read_boxes,
    strip_math_delimiters,
    unwrap_commands,
)
from evalkit.scoring.registry import register_extractor
from evalkit.scoring.text import answer_text, strip_chat_tokens
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
# Words of any script (`answer`, `réponse`, `答案`); digits, `_` and LaTeX command names are not.
_PROSE_WORD_RE = re.compile(r"(?<![\\\w])[^\W\d_]{2,}")


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
    # A bold span followed by a colon is a heading (`**Conclusion**: ...`, `**结论**：`), not an answer.
    bolds = [b for b in _BOLD_RE.finditer(text) if text[b.end() : b.end() + 1] not in (":", "\uff1a")]
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
    words = prose_words(s)
    if len(words) > 3 or (words and _SENTENCE_START_RE.match(s)):
        return None  # a sentence, not an answer: the weak rules read its final value
    if words and any(c.isdigit() for c in s):
        return None  # `Answer $9$`, `10 dollars`, `Das Ergebnis ist 2,75 m`: the value, by rule 4-5
    return clean_answer(s)


# ---------------------------------------------------------------------------------------------
# The cascade. An answer is the first of, in priority order:
#   1. boxed          the last \boxed{} (several joined boxes as one answer: latex.read_boxes);
#                     a "final answer is X" statement written after the last box wins over it
#   2. final answer   Minerva's "Final Answer: The final answer is X. I hope it is correct.",
#                     "the answer is X", "Answer: X", "**Answer:** X", "X is the answer", the
#                     last bold span; a sentence after the phrase gives its value ("The largest
#                     $n$ is 34" -> 34)
#   3. bare           a short one-line output that is an answer, not a sentence
#   4. last math      (weak) the last $..$, $$..$$, \(..\), \[..\] of the final sentence
#   5. last number    (weak) the last number or formula (`x ≥ 5`, `2/3`, `3:30 PM`) of the
#                     final sentence; 4 and 5 take whichever ends last
# The weak rules never apply to an output cut at the token limit (finish_reason=length): the
# last number of a cut-off sentence is a lucky guess, not an answer. Chat-template tokens and
# the invented turns after them are removed first (text.strip_chat_tokens).

_SENTENCE_START_RE = re.compile(
    r"(?:so|thus|hence|therefore|then|the|we|this|it|that|in|and|which|finally|here|our|a|an)\b",
    re.IGNORECASE,
)
# "X is the answer": anchored on the phrase, X read backwards from it within a short window.
_IS_ANSWER_ANCHOR_RE = re.compile(
    r"[ \t]{1,3}is[ \t]{1,3}(?:the|our|my)[ \t]{1,3}(?:final[ \t]{1,3})?answer\b", re.IGNORECASE
)
_BEFORE_ANCHOR_RE = re.compile(r"(?:\$[^$\n]{1,200}\$|\\\([^\n]{1,200}?\\\)|[^\s$]{1,60})$")
_FINAL_AFTER_BOX_RE = re.compile(r"final\s{1,3}answer\s{0,3}(?:is|:)", re.IGNORECASE)
_VALUE_AFTER_RE = re.compile(r"(?:\s(?:is|are|equals|was|be|gives|of)\s|=)", re.IGNORECASE)
_TAIL_CHARS = 3000


_LATEX_NAME_RE = re.compile(r"\\[A-Za-z]+\*?(?:\s*\{[A-Za-z* ~]{0,20}\})?")


def prose_words(s: str) -> list[str]:
    """The words of ``s`` outside math: math spans, LaTeX commands and their name arguments
    (``\\begin{pmatrix}``, ``\\text{cm}``) are not prose."""
    return _PROSE_WORD_RE.findall(_LATEX_NAME_RE.sub(" ", _MATH_SPAN_RE.sub(" ", s)))


def is_answer_statement(text: str) -> str | None:
    """Rule 2b: ``X is the answer`` / ``Hence 16 is the final answer``."""
    for m in reversed(list(_IS_ANSWER_ANCHOR_RE.finditer(text))[-_MAX_LINE_CANDIDATES:]):
        before = _BEFORE_ANCHOR_RE.search(text[max(0, m.start() - 220) : m.start()])
        ans = clean_answer(before.group(0)) if before else None
        if ans and any(c.isdigit() or c == "\\" for c in ans):
            return ans
    return None


def value_of_sentence(ans: str) -> str:
    """The value a stated sentence gives: ``The largest $n$ is 34`` -> ``34``, ``Jane started 3
    hours ago`` -> ``3``; an answer that is not a sentence is returned unchanged."""
    if len(prose_words(ans)) < 2:
        return ans
    rest = ans
    cuts = list(_VALUE_AFTER_RE.finditer(_MATH_SPAN_RE.sub(lambda m: "x" * len(m.group(0)), ans)))
    if cuts:
        rest = ans[cuts[-1].end() :]
    found = final_value(rest, first=True) or final_value(ans)
    return found[0] if found else ans


def final_answer_phrase(text: str) -> tuple[str, str] | None:
    """Rule 2: the stated final answer (see the cascade above)."""
    line = find_answer_line(text)
    if line is None:
        ans = is_answer_statement(text)
        line = (ans, "answer_is") if ans else None
    if line is None:
        return None
    ans, method = line
    if not is_blank(ans):
        ans = value_of_sentence(ans)
    return ans, method


# Math spans: $$..$$, \[..\], \(..\), $..$ (not `\$`); linear: bounded, non-nested alternatives.
_MATH_SPAN_RE = re.compile(
    r"(?<!\\)\$\$(?P<dd>[^$]{1,2000}?)\$\$|\\\[(?P<sb>.{1,2000}?)\\\]|\\\((?P<rb>.{1,2000}?)\\\)"
    r"|(?<![\\$])\$(?!\$)(?P<d>(?:\\\$|[^$]){1,1000}?)(?<!\\)\$",
    re.DOTALL,
)
# Sentence ends outside math: a full stop, ! or ? before a space or the end, a CJK full stop, ！ or ？,
# or a line break.
_SENTENCE_END_RE2 = re.compile(r"[.!?](?=\s|$)|[\u3002\uff01\uff1f]|\n")
# A formula outside math: numbers (grouped, decimal, fraction, percent, currency), clock times,
# one-letter variables, operators and unicode math; runs of these between words.
_FORMULA_RE = re.compile(
    r"(?:(?<![A-Za-z'\u2019])[A-Za-z](?![A-Za-z'\u2019])|\\(?:d|t)?frac|\\sqrt|[$€£¥]?\d[\d,.:/]*%?|[√∛π∞≤≥≠∈±×÷°²³½⅓⅔¼¾\-+*/^=<>()\[\]{}]"
    r"|\s(?=[\w√π$€£(\[\-+=<>≤≥≠∈]))+"
)
_AM_PM_RE = re.compile(r"(?<![A-Za-z])([AaPp])\.\s?([Mm])\.")  # `a.m.` ends no sentence
_CLOCK_SUFFIX_RE = re.compile(r"\s*(?:[AaPp]\.?[Mm])(?![A-Za-z])")
_ARTICLE_RE = re.compile(r"^(?:[aAI])\s+")


def _spans(text: str) -> list[tuple[int, int, str]]:
    out = []
    for m in _MATH_SPAN_RE.finditer(text):
        inner = next(g for g in m.groups() if g is not None)
        if inner.strip():
            out.append((m.start(), m.end(), inner.strip()))
    return out


def final_value(sentence: str, first: bool = False) -> tuple[str, str] | None:
    """Rules 4 and 5 on one sentence: the last (or ``first``) math span or formula, whichever ends
    last (starts first); (answer, ``last_math`` | ``last_number``)."""
    spans = _spans(sentence)
    masked = sentence
    for a, b, _ in spans:
        masked = masked[:a] + "\x01" * (b - a) + masked[b:]
    found: list[tuple[int, int, str, str]] = [(a, b, inner, "last_math") for a, b, inner in spans]
    for m in _FORMULA_RE.finditer(masked):
        run = m.group(0).strip().strip("*").rstrip(".,;:!?=").strip()  # `**3**`: markdown bold
        run = _ARTICLE_RE.sub("", run)
        if not run or not any(c.isdigit() or c in "√∛π∞½⅓⅔¼¾" for c in run):
            continue
        end = m.end()
        suffix = _CLOCK_SUFFIX_RE.match(masked, end)
        if suffix and ":" in run:
            run, end = run + " " + suffix.group(0).strip(), suffix.end()
        found.append((m.start(), end, _balance_parens(run), "last_number"))
    if not found:
        return None
    pick = min(found, key=lambda x: x[0]) if first else max(found, key=lambda x: x[1])
    return pick[2], pick[3]


def _balance_parens(run: str) -> str:
    """A formula cut out of prose keeps no unmatched bracket at its ends (`(so 5` -> `5`)."""
    for _ in range(3):
        for a, b in ("()", "[]", "{}"):
            if run.startswith(a) and run.count(a) > run.count(b):
                run = run[1:].strip()
            if run.endswith(b) and run.count(b) > run.count(a):
                run = run[:-1].strip()
    return run


def final_sentence_value(text: str) -> tuple[str, str] | None:
    """Rules 4-5: the value of the final sentence that holds one (at most two sentences without a
    value, such as "I hope it is correct.", are skipped)."""
    tail = _AM_PM_RE.sub(lambda m: m.group(1) + m.group(2), text[-_TAIL_CHARS:])
    spans = _spans(tail)
    masked = tail
    for a, b, _ in spans:
        masked = masked[:a] + "\x01" * (b - a) + masked[b:]
    cuts = [0] + [m.end() for m in _SENTENCE_END_RE2.finditer(masked)] + [len(tail)]
    sentences = [tail[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if tail[a:b].strip()]
    for sentence in list(reversed(sentences))[:3]:
        found = final_value(sentence)
        if found is not None:
            return found
    return None


def repair_braces(ans: str) -> str:
    """Broken LaTeX at the end of an answer: a trailing backslash, closing braces or brackets that
    close nothing (``23)``), up to two unclosed ``{`` (``\\sqrt{2`` -> ``\\sqrt{2}``); a
    whole-answer box unwrapped."""
    s = ans.rstrip()
    while s.endswith("\\") and not s.endswith("\\\\"):
        s = s[:-1].rstrip()
    depth = 0
    for c in re.sub(r"\\[{}\\]", "", s):
        depth += 1 if c == "{" else -1 if c == "}" else 0
    while depth < 0 and s.endswith("}"):
        s, depth = s[:-1].rstrip(), depth + 1
    if 0 < depth <= 2:
        s += "}" * depth
    while s[-1:] in (")", "]") and s.count("(") + s.count("[") < s.count(")") + s.count("]"):
        s = s[:-1].rstrip()  # `23)`: a bracket that closes nothing
    box = last_box(s)
    if box is not None and box.start == 0 and box.end == len(s):
        s = box.content.strip()
    return s


def extract_math_answer(
    text: str,
    *,
    finish_reason: str = "stop",
    gold_shape: tuple[str, int] | None = None,
    fallback: str | None = "answer_line",
    bare: bool = True,
    bare_max_chars: int = 100,
    weak: bool = True,
) -> tuple[str | None, str]:
    """(answer, method) by the cascade above; ABSTAIN for an explicit blank, None for nothing.
    ``weak=False`` leaves out rules 4-5 (the integer extractor has its own ``last_number``)."""
    text = strip_chat_tokens(text)
    boxed = read_boxes(text, gold_shape)
    if boxed is not None and boxed[0].strip():
        if fallback == "answer_line":
            after = text[boxed[2] :]
            if _FINAL_AFTER_BOX_RE.search(after):
                stated = final_answer_phrase(after)
                if stated is not None and stated[0] and not is_blank(stated[0]):
                    return stated
        return (ABSTAIN if is_blank(boxed[0]) else boxed[0]), boxed[1]
    if fallback == "answer_line":
        stated = final_answer_phrase(text)
        if stated is not None:
            ans = stated[0]
            return (ABSTAIN if is_blank(ans) else _finish_answer(ans, finish_reason)), stated[1]
    if bare:
        ans = _bare(text, bare_max_chars)
        if ans is not None:
            return (ABSTAIN if is_blank(ans) else _finish_answer(ans, finish_reason)), "bare"
    if weak and fallback == "answer_line" and finish_reason != "length":
        found = final_sentence_value(text)
        if found is not None:
            return _finish_answer(found[0], finish_reason), found[1]
    return None, "none"


def _finish_answer(ans: str, finish_reason: str) -> str:
    # A cut-off `\boxed{5` may be the start of 56: only a finished output has its braces repaired.
    return ans if finish_reason == "length" else repair_braces(ans)


def _math_answer(
    text: str, opts: Mapping[str, Any], sample: Sample, finish_reason: str, weak: bool = True
) -> tuple[str | None, str]:
    """The cascade with the extractor's options (``fallback``, ``bare``, ``bare_max_chars``)."""
    fallback = opts.get("fallback", "answer_line")
    if fallback not in ("answer_line", "none", None):
        raise ValueError(f"extract option fallback: {fallback!r} is not 'answer_line' or 'none'")
    shape = answer_shape(gold_answer(sample.answer))
    return extract_math_answer(
        text,
        finish_reason=finish_reason,
        gold_shape=shape,
        fallback=fallback,
        bare=bool(opts.get("bare", True)),
        bare_max_chars=int(opts.get("bare_max_chars", 100)),
        weak=weak,
    )


def _example_boxed(answer: str, boxed: bool) -> str:
    return f"{EXAMPLE_REASONING}\nPutting it together, the answer is \\boxed{{{answer}}}."


@register_extractor(
    "boxed", options=("fallback", "bare", "bare_max_chars"), version=3, example_answer=_example_boxed
)
def extract_boxed(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
    """The math answer by the cascade above: the last ``\\boxed{}``/``\\fbox{}`` (balanced
    braces, nested braces, ``\\boxed 5``; several joined boxes in the gold's shape), the stated
    final answer, a bare answer, the final sentence's value.

    Options: ``fallback: answer_line`` (default; ``none`` to require a box) allows the rules after
    the box; ``bare: true`` (default) takes a short one-line output as the answer itself.
    ``\\boxed{blank}`` is an explicit abstention (status ``abstain``).
    """
    text, truncated = answer_text(completion, ctx.stop)
    ans, method = _math_answer(text, ctx.extract_options, sample, completion.finish_reason or "stop")
    return finish(ans, method, completion, truncated)


def _example_answer_line(answer: str, boxed: bool) -> str:
    return (
        f"{EXAMPLE_REASONING}\nTherefore the result follows.\n"
        f"Final Answer: The final answer is ${answer}$. I hope it is correct."
    )


@register_extractor(
    "answer_line", options=("bare", "bare_max_chars"), version=3, example_answer=_example_answer_line
)
def extract_answer_line(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
    """The stated answer (rule 2 of the cascade): Minerva's "The final answer is X. I hope it is
    correct.", "The answer is X", "Answer: X", the last bold span; the last explicit statement
    wins; then a bare answer."""
    text, truncated = answer_text(completion, ctx.stop)
    text = strip_chat_tokens(text)
    line = final_answer_phrase(text)
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


@register_extractor("integer", options=("last_number", "bare"), version=3, example_answer=_example_integer)
def extract_integer(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
    """An integer answer (AIME 0-999): the last box, else the stated answer line, else a bare
    number; ``last_number: true`` also accepts the last integer in the text.

    A box holding something that is not an integer is returned as written (method ``*_not_integer``)
    so the record shows what the model answered; the ``integer`` grader marks it wrong.
    """
    text, truncated = answer_text(completion, ctx.stop)
    opts = ctx.extract_options
    ans, method = _math_answer(
        text,
        {"fallback": "answer_line", "bare": opts.get("bare", True)},
        sample,
        completion.finish_reason or "stop",
        weak=False,
    )
    if method == "bare" and ans not in (None, ABSTAIN) and parse_integer(ans) is None:
        ans, method = None, "none"  # a short sentence is not a bare integer answer
    if ans is None and opts.get("last_number", False):
        nums = list(_LAST_INT_RE.finditer(strip_chat_tokens(text)))
        if nums:
            ans, method = nums[-1].group(0), "last_number"
    if ans is None or ans == ABSTAIN:
        return finish(ans, method, completion, truncated)
    n = parse_integer(ans)
    if n is None:
        return finish(ans, f"{method}_not_integer", completion, truncated)
    return finish(str(n), method, completion, truncated)

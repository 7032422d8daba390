"""Answer extractors (named; task YAMLs refer to them by name).

Every extractor first splits off the reasoning (``<think>...</think>`` is never searched) and cuts
the text at the task's stop sequences (``ctx.stop``), even where the backend ignored them: base
models given few-shot prompts keep writing invented questions with their own answers.

Every regular expression here has bounded repetition, so a megabyte of adversarial text is
searched in linear time.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from functools import lru_cache

from evalkit.scoring.latex import find_boxes, last_box, strip_math_delimiters, unwrap_commands
from evalkit.scoring.registry import ScoringContext, register_extractor
from evalkit.scoring.text import answer_text
from evalkit.types import Completion, Extraction, Sample

ABSTAIN = "\x00abstain"  # internal marker for an explicit "blank" answer


def _finish(answer: str | None, method: str, completion: Completion, truncated: bool) -> Extraction:
    if truncated:
        return Extraction(None, "truncated_in_reasoning", "truncated")
    if answer == ABSTAIN:
        return Extraction(None, method, "abstain")
    if answer is None:
        status = "truncated" if completion.finish_reason == "length" else "no_answer"
        return Extraction(None, "none", status)
    return Extraction(answer, method, "ok")


def _is_blank(s: str) -> bool:
    t = unwrap_commands(strip_math_delimiters(s)).strip().strip("*.() ").lower()
    return t in ("blank", "leave blank", "left blank")


# ---------------------------------------------------------------------------------------------
# Answer lines: Minerva's "Final Answer: The final answer is X. I hope it is correct.",
# "The answer is X", "Answer: X", bold.

_HOPE_RE = re.compile(r"I hope it is correct", re.IGNORECASE)
_FINAL_IS = "final answer is"
_ANSWER_RE = re.compile(
    r"\b(?:(?:final|correct|the)\s{1,3})?answer(?:\s{1,3}(?:is|would\s{1,3}be|should\s{1,3}be|will\s{1,3}be)"
    r"(?:[ \t]{0,3}:)?|[ \t]{0,3}(?:\*\*)?[ \t]{0,3}[:\uff1a])(?:[ \t]{0,3}\*\*)?[ \t]{0,3}\n?[ \t]{0,3}\n?"
    r"(?P<ans>[^\n]{1,500})",
    re.IGNORECASE,
)
_BOLD_RE = re.compile(r"\*\*(?P<ans>[^*\n]{1,300})\*\*")


def _delimited(s: str) -> str | None:
    """The leading ``$...$``/``\\(...\\)``/``\\[...\\]``/``**...**``/``\\boxed{}`` group of ``s``, if any."""
    for a, b in (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"), ("**", "**")):
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
    s = raw.strip()
    s = re.sub(r"^(?:the\s+final\s+answer\s+is|the\s+answer\s+is)\s*:?\s*", "", s, flags=re.IGNORECASE)
    inner = _delimited(s)
    if inner is not None:
        s = inner
    else:
        # Up to the end of the sentence: a full stop followed by a space (decimals have none).
        m = re.search(r"\.(?:\s|$)", s)
        if m:
            s = s[: m.start()]
    s = s.strip().strip("*").strip()
    s = strip_math_delimiters(s)
    s = s.rstrip(" \t.,;:").strip()
    if len(s) >= 2 and s[0] == "$" and s[-1] == "$":
        s = s[1:-1].strip()
    return s or None


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


_MAX_LINE_CANDIDATES = 200


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
            ans = re.sub(r"^(?:final\s+)?answer\s*:\s*", "", ans, flags=re.IGNORECASE).strip()
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


_PROSE_WORD_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")


@register_extractor("exact")
def extract_exact(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
    """The whole answer text, stripped (for short-answer tasks)."""
    text, truncated = answer_text(completion, ctx.stop)
    text = text.strip()
    return _finish(text or None, "whole_text", completion, truncated)


def _math_answer(text: str, opts: dict) -> tuple[str | None, str]:
    box = last_box(text)
    if box is not None and box.content.strip():
        if _is_blank(box.content):
            return ABSTAIN, "boxed"
        return box.content.strip(), "boxed"
    fallback = opts.get("fallback", "answer_line")
    if fallback not in ("answer_line", "none", None):
        raise ValueError(f"extract option fallback: {fallback!r} is not 'answer_line' or 'none'")
    if fallback == "answer_line":
        line = find_answer_line(text)
        if line is not None:
            if _is_blank(line[0]):
                return ABSTAIN, line[1]
            return line
    if opts.get("bare", True):
        ans = _bare(text, int(opts.get("bare_max_chars", 100)))
        if ans is not None:
            if _is_blank(ans):
                return ABSTAIN, "bare"
            return ans, "bare"
    return None, "none"


@register_extractor("boxed", options=("fallback", "bare", "bare_max_chars"))
def extract_boxed(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
    """The last ``\\boxed{}``/``\\fbox{}`` (balanced braces, nested braces, ``\\boxed 5``).

    Options: ``fallback: answer_line`` (default; ``none`` to require a box) takes the stated
    answer line when there is no box; ``bare: true`` (default) takes a short one-line output as
    the answer itself. ``\\boxed{blank}`` is an explicit abstention (status ``abstain``).
    """
    text, truncated = answer_text(completion, ctx.stop)
    ans, method = _math_answer(text, dict(ctx.extract_options))
    return _finish(ans, method, completion, truncated)


@register_extractor("answer_line", options=("bare", "bare_max_chars"))
def extract_answer_line(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
    """The stated answer: Minerva's "The final answer is X. I hope it is correct.", "The answer is
    X", "Answer: X", then the last bold span; the last explicit statement wins."""
    text, truncated = answer_text(completion, ctx.stop)
    line = find_answer_line(text)
    if line is not None:
        return _finish(ABSTAIN if _is_blank(line[0]) else line[0], line[1], completion, truncated)
    if ctx.extract_options.get("bare", True):
        ans = _bare(text, int(ctx.extract_options.get("bare_max_chars", 100)))
        if ans is not None:
            return _finish(ans, "bare", completion, truncated)
    return _finish(None, "none", completion, truncated)


# ---------------------------------------------------------------------------------------------
# Integers (AIME: 0-999)

_INT_TEXT_RE = re.compile(r"[+-]?\d+(?:\.0+)?")


def parse_integer(s: str) -> int | None:
    """``033`` -> 33, ``1,000`` / ``1\\,000`` / ``1{,}000`` -> 1000, ``\\text{33}`` -> 33, ``33.0`` -> 33."""
    t = unwrap_commands(strip_math_delimiters(s))
    t = re.sub(r"\\[,;! ]|\{,\}|\s", lambda m: "," if m.group(0) in ("\\,", "{,}") else "", t)
    t = re.sub(r"(?:\^\{?\\circ\}?|°)$", "", t)
    t = t.strip().rstrip(".")
    if t.startswith("(") and t.endswith(")"):
        t = t[1:-1].strip()  # AoPS style `\textbf{(245) }`
    if re.fullmatch(r"[+-]?\d{1,3}(?:,\d{3})+", t):
        t = t.replace(",", "")
    if len(t) > 50 or not _INT_TEXT_RE.fullmatch(t):
        return None
    return int(t.split(".")[0])


_LAST_INT_RE = re.compile(r"(?<![\w.])[+-]?\d{1,3}(?:,\d{3})+(?![\w,])|(?<![\w.])[+-]?\d+(?![\w])")


@register_extractor("integer", options=("last_number", "bare"))
def extract_integer(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
    """An integer answer (AIME 0-999): the last box, else the stated answer line, else a bare
    number; ``last_number: true`` also accepts the last integer in the text.

    A box holding something that is not an integer is returned as written (method ``*_not_integer``)
    so the record shows what the model answered; the ``integer`` grader marks it wrong.
    """
    text, truncated = answer_text(completion, ctx.stop)
    opts = dict(ctx.extract_options)
    ans, method = _math_answer(text, {"fallback": "answer_line", "bare": opts.get("bare", True)})
    if method == "bare" and ans not in (None, ABSTAIN) and parse_integer(ans) is None:
        ans, method = None, "none"  # a short sentence is not a bare integer answer
    if ans is None and opts.get("last_number", False):
        nums = list(_LAST_INT_RE.finditer(text))
        if nums:
            ans, method = nums[-1].group(0), "last_number"
    if ans is None or ans == ABSTAIN:
        return _finish(ans, method, completion, truncated)
    n = parse_integer(ans)
    if n is None:
        return _finish(ans, f"{method}_not_integer", completion, truncated)
    return _finish(str(n), method, completion, truncated)


# ---------------------------------------------------------------------------------------------
# Multiple choice


def _norm_option(s: str) -> str:
    t = unwrap_commands(strip_math_delimiters(s.strip()))
    t = t.replace("\\dfrac", "\\frac").replace("\\%", "%")
    t = re.sub(r"\s+", " ", t).strip().rstrip(".").strip()
    t = strip_math_delimiters(t)
    return t.lower()


def option_letters(sample: Sample, ctx: ScoringContext) -> str:
    """The letters the item allows: from its options, else the ``letters`` option, else A-J."""
    opt = ctx.extract_options.get("letters")
    if sample.choices:
        return "".join(sample.letters)
    if isinstance(opt, int):
        return "".join(chr(ord("A") + i) for i in range(opt))
    if isinstance(opt, str) and opt:
        return opt.upper()
    return "ABCDEFGHIJ"


@lru_cache(maxsize=64)
def _choice_regexes(letters: str) -> tuple[re.Pattern[str], ...]:
    cls = f"[{letters}{letters.lower()}]"
    # After an anchor: decorations, then the letter, then no further word character.
    token = (
        r"(?P<pre>(?:\*\*|__|\\boxed\s{0,2}\{|\\textbf\{|\\text\{|\\mathrm\{|\$|\\\(){0,3})"
        rf"[ \t]{{0,2}}(?P<paren>[(\[])?[ \t]{{0,2}}(?P<let>{cls})(?![A-Za-z0-9_])"
    )
    anchor = re.compile(
        r"\b(?P<kw>answer|choice|option)(?:[ \t]{0,3}\*\*)?[ \t]{0,3}"
        r"(?P<verb>is|would\s{1,3}be|should\s{1,3}be|will\s{1,3}be|[:\uff1a]|=)(?:[ \t]{0,3}:)?"
        r"(?:[ \t]{0,3}\*\*)?\s{0,4}(?:(?:option|choice|letter)[ \t]{1,3})?",
        re.IGNORECASE,
    )
    bold = re.compile(
        rf"(?:\*\*|__)[ \t]{{0,2}}(?P<paren>\()?(?P<let>[{letters}])\)?[.:)]?[ \t]{{0,2}}(?:\*\*|__)"
        rf"|\\textbf\{{[ \t]{{0,2}}(?P<paren2>\()?(?P<let2>[{letters}])\)?[ \t]{{0,2}}\}}"
    )
    lone = re.compile(
        rf"(?:(?:option|choice)[ \t]{{1,3}})?(?P<paren>\()?(?P<let>{cls})(?(paren)\))[.:)]?(?:[ \t]{{1,3}}(?P<rest>.{{1,500}}))?",
        re.IGNORECASE,
    )
    return re.compile(token), anchor, bold, lone


# "the answer is (A) or (B)": a hedge between two letters is no answer (the ")" may still follow).
_AMBIGUOUS_RE = re.compile(
    r"\)?[ \t]{1,3}(?:or|and|/)[ \t]{1,3}\(?[A-Za-z]\)?(?![A-Za-z0-9])(?=[ \t]*(?:[.,;:!?]|\n|$))"
)


def _letter_ok(m: re.Match[str], text: str) -> bool:
    """A lower-case letter counts only when decorated or at the end of a sentence ("the answer is a
    number" is English, not option A)."""
    let = m.group("let")
    if m.group("paren") or m.group("pre"):
        return True
    if let == "I" and re.match(r"[ \t]+[a-z']", text[m.end() : m.end() + 3]):
        return False  # "Answer: I think ..." is the pronoun
    if let.isupper():
        return True
    nxt = text[m.end() : m.end() + 2]
    if nxt == "" or nxt[0] == "\n":
        return True
    return nxt[0] in ".,;:)" and (len(nxt) < 2 or nxt[1] in " \n\t")


_MAX_CANDIDATES = 200


class _OptionIndex:
    """The item's option texts, normalised once per completion."""

    def __init__(self, options: Sequence[str], letters: str) -> None:
        self.options = list(options)
        self.by_text: dict[str, list[str]] = {}
        for i, o in enumerate(self.options):
            n = _norm_option(o)
            if n and i < len(letters):
                self.by_text.setdefault(n, []).append(letters[i])

    def letter_of(self, text: str) -> str | None:
        hits = self.by_text.get(_norm_option(text), [])
        return hits[0] if len(hits) == 1 else None

    def __bool__(self) -> bool:
        return bool(self.options)

    def __len__(self) -> int:
        return len(self.options)

    def __getitem__(self, i: int) -> str:
        return self.options[i]


def _option_from_content(content: str, letters: str, options: _OptionIndex) -> str | None:
    """A letter from an answer written as text: ``B``, ``(B)``, ``\\textbf{(B)} 42``, or an option's text."""
    t = unwrap_commands(strip_math_delimiters(content))
    t = re.sub(r"\\[ ,;!]|~", " ", t).strip().strip("*").strip()
    if _is_blank(t):
        return ABSTAIN
    m = re.fullmatch(rf"\(?([{letters}{letters.lower()}])\)?[.:)]?", t)
    if m:
        return m.group(1).upper()
    m = re.match(rf"\(([{letters}])\)|([{letters}])[.:)][ \t]", t)
    if m:
        # AMC style `\textbf{(B) }42`: the letter is the explicit choice, whatever follows it.
        return m.group(1) or m.group(2)
    if options and len(t) <= 500:
        return options.letter_of(t)
    return None


def find_choice(text: str, letters: str, options: Sequence[str] = ()) -> tuple[str | None, str]:
    """(letter or ABSTAIN or None, method). See ``extract_choice``."""
    token, anchor, bold, lone = _choice_regexes(letters)
    norm_options = _OptionIndex(options, letters)
    explicit: list[tuple[int, str, str]] = []  # (position, letter, method)
    hedged = False
    # Only the latest explicit answer counts, so candidates are tried from the end, and at most
    # _MAX_CANDIDATES of each kind (a megabyte of "the answer is ..." must not cost seconds).
    for a in reversed(list(anchor.finditer(text))[-_MAX_CANDIDATES:]):
        method = "answer_is" if a.group("verb")[0].lower() in "iwsb" else "answer_colon"
        m = token.match(text, a.end())
        if m and _letter_ok(m, text):
            if _AMBIGUOUS_RE.match(text, m.end()):
                hedged = True  # the latest answer hedges between letters: no answer, not an older one
                break
            explicit.append((a.start(), m.group("let").upper(), method))
            break
        rest = text[a.end() : a.end() + 500].split("\n", 1)[0]
        ans = clean_answer(rest) if rest.strip() else None
        if ans:
            let = _option_from_content(ans, letters, norm_options)
            if let is not None:
                explicit.append((a.start(), let, "option_text" if let != ABSTAIN else method))
                break
    for box in reversed(find_boxes(text)[-_MAX_CANDIDATES:]):
        let = _option_from_content(box.content, letters, norm_options)
        if let is not None:
            explicit.append((box.start, let, "boxed"))
            break
    if explicit:
        pos, let, method = max(explicit, key=lambda x: x[0])
        return let, method
    if hedged:
        return None, "none"
    # Only when no answer is stated otherwise: "Option D is correct", "... = 16, which is (C)".
    # Hypotheticals in reasoning ("if option A is correct, ...") do not count.
    phrased = [
        h
        for pat in _choice_phrase_regexes(letters)
        for h in pat.finditer(text)
        if not _HYPOTHETICAL_RE.search(text[max(0, h.start() - 24) : h.start()])
    ]
    if phrased:
        last = max(phrased, key=lambda h: h.start())
        return last.group("let").upper(), "option_is"
    bolds = list(bold.finditer(text))
    if bolds:
        b = bolds[-1]
        return (b.group("let") or b.group("let2")), "bold"
    lines = [ln for ln in text[-2000:].splitlines() if ln.strip()]
    if lines:
        last = lines[-1].strip().strip("*#>_ \t").rstrip(".").strip()
        m = lone.fullmatch(last)
        if m:
            let = m.group("let").upper()
            rest = m.group("rest")
            idx = ord(let) - ord("A")
            lower_ok = m.group("let").isupper() or m.group("paren") or last.lower() == m.group("let").lower()
            if lower_ok and (
                not rest
                or (options and idx < len(options) and _norm_option(rest) == _norm_option(options[idx]))
            ):
                return let, "lone_letter"
    # A completion of a prompt ending in "Answer:" may open with the letter ("B. text ...").
    m = _LEADING_RE.match(text)
    if m and m.group(1) in letters:
        rest = text[m.end() :].split("\n", 1)[0].strip()
        idx = ord(m.group(1)) - ord("A")
        if m.group(0).rstrip().endswith(":") and rest:
            # "B: Paris" names option B only when the option's own text follows; "A: Let's think
            # step by step" is a dialogue label (base models continue few-shot prompts with it).
            if not (
                idx < len(norm_options) and _norm_option(rest).startswith(_norm_option(norm_options[idx]))
            ):
                return None, "none"
        return m.group(1), "leading_letter"
    return None, "none"


# The letter, then the end, a line break, ".", ")" or a ":" that ends the line (not "A good idea", not
# "I think", and not a dialogue label such as "A: Let's think step by step").
_LEADING_RE = re.compile(r"\s{0,20}\(?([A-Z])(?:\)|[.:](?=\s|$)|(?=\s*\n)|(?=\s*$))")
_HYPOTHETICAL_RE = re.compile(
    r"\b(?:if|assume|assuming|suppose|supposing|whether|not|unless)\b[^.\n]*$", re.IGNORECASE
)


@functools.lru_cache(maxsize=64)
def _choice_phrase_regexes(letters: str) -> tuple[re.Pattern[str], ...]:
    cls = f"[{letters}]"
    return (
        re.compile(
            rf"\b(?:option|choice)[ \t]{{1,3}}\(?(?P<let>{cls})\)?[ \t]{{1,3}}is[ \t]{{1,3}}"
            rf"(?:the[ \t]{{1,3}})?(?:correct|right|best)\b",
            re.IGNORECASE,
        ),
        re.compile(rf"\bwhich[ \t]{{1,3}}is[ \t]{{1,3}}(?:option[ \t]{{1,3}})?\((?P<let>{cls})\)"),
    )


@register_extractor("choice", options=("letters",))
def extract_choice(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
    """A multiple-choice letter limited to the item's own options (A-J for ten options, A-E for AMC).

    Cascade on the text cut at the stop sequences: explicit answers ("answer is (X)", "Answer: X",
    ``\\boxed{X}``, or the text of an option after "answer is") -> a bold letter -> a lone letter
    on the last line -> a letter opening the text ("B. ..." after a prompt ending in "Answer:").
    Explicit answers form one tier in which the LAST one wins: models restate drafts in mixed
    forms ("The answer is (A) ... wait ... Answer: B"). Case-insensitive (a bare lower-case letter
    must be decorated or end the sentence; "I" followed by a word is the pronoun).
    ``\\boxed{blank}`` and "answer is blank" are an explicit abstention (status ``abstain``).
    Without options, the ``letters`` option (a string or a count) gives the allowed letters,
    default A-J.
    """
    text, truncated = answer_text(completion, ctx.stop)
    letters = option_letters(sample, ctx)
    let, method = find_choice(text, letters, sample.choices or ())
    return _finish(let, method, completion, truncated)


# ---------------------------------------------------------------------------------------------
# MMLU-Pro's official extraction (TIGER-Lab evaluate_from_local.py), reproduced exactly.

_OFFICIAL_FIRST = re.compile(r"answer is \(?([A-J])\)?")
_OFFICIAL_AGAIN = re.compile(r"(?=([aA]nswer:\s*([A-J])))")
_OFFICIAL_FINAL = re.compile(r"\b[A-J]\b")


def official_mmlu_pro_answer(text: str) -> tuple[str | None, str]:
    """The official MMLU-Pro cascade: ``answer is \\(?([A-J])\\)?`` (first match), then
    ``.*[aA]nswer:\\s*([A-J])``, then the last standalone letter A-J.

    Same results as the official regular expressions, computed in linear time: ``re.search`` of
    ``.*[aA]nswer:...`` without DOTALL matches at the start of the first line that holds an anchor
    and, greedily, takes the last anchor of that line; the final pattern's negative lookahead
    means "the last match".
    """
    m = _OFFICIAL_FIRST.search(text)
    if m:
        return m.group(1), "official_answer_is"
    line_end = None
    pick = None
    for a in _OFFICIAL_AGAIN.finditer(text):
        if line_end is None:
            line_end = text.find("\n", a.start())
        elif line_end != -1 and a.start() > line_end:
            break  # past the first line that holds an anchor
        pick = a.group(2)
    if pick is not None:
        return pick, "official_answer_colon"
    last = None
    for last in _OFFICIAL_FINAL.finditer(text):  # noqa: B007 - we want the last match
        pass
    if last is not None:
        return last.group(0), "official_last_letter"
    return None, "none"


@register_extractor("mmlu_pro_official")
def extract_mmlu_pro_official(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
    """Official-compatible MMLU-Pro extraction (TIGER-Lab's script), for reproducing published
    numbers. Letters are A-J whatever the number of options, as in the official script. Pair with
    the ``choice_official_compatible`` grader, which adds the official seeded random guess when
    nothing is found. The strict ``choice`` extractor is the default for evalkit's own numbers."""
    text, truncated = answer_text(completion, ctx.stop)
    let, method = official_mmlu_pro_answer(text)
    return _finish(let, method, completion, truncated)

"""The ``choice`` extractor: a multiple-choice letter limited to the item's own options.

Used by every multiple-choice task, ``mmlu_pro`` and the AMC tasks included (``mmlu_pro_official``
uses the official script's extraction instead, see mmlu_pro_official.py).

The extraction is a cascade of tiers, tried in order on the text cut at the stop sequences; the
first tier that decides wins (``TIERS`` below: the precedence is that list). A tier returns
``(letter, method)``, ``(None, "none")`` to decide that there is no answer, or None to pass to the
next tier. Every regular expression has bounded repetition and at most ``_MAX_CANDIDATES`` of each
kind of anchor are tried, from the end (a megabyte of "the answer is ..." must not cost seconds).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from evalkit.scoring.extractors._common import ABSTAIN, EXAMPLE_REASONING, clean_answer, finish, is_blank
from evalkit.scoring.latex import find_boxes, strip_math_delimiters, unwrap_commands
from evalkit.scoring.registry import register_extractor
from evalkit.scoring.text import answer_text
from evalkit.types import Completion, Extraction, Sample, ScoringContext

_MAX_CANDIDATES = 200
Decision = tuple[str | None, str]  # (letter, ABSTAIN or None; method)
_NO_ANSWER: Decision = (None, "none")

# "the answer is (A) or (B)", "A/B", "B, D": a hedge between two letters is no answer (the ")" or a
# closing quote may still follow the first letter).
_AMBIGUOUS_RE = re.compile(
    r"[)\"'\u201d\u2019`*]{0,3}(?:[ \t]{1,3}(?:or|and|&)[ \t]{1,3}[(\"'\u201c\u2018`*]{0,3}[A-Za-z]"
    r"|[ \t]{0,2}[/,][ \t]{0,2}[(\"'\u201c\u2018`*]{0,3}[A-Z])[)\"'\u201d\u2019`*]{0,3}(?![A-Za-z0-9])"
    r"(?=[ \t]*(?:[.,;:!?]|\n|$))"
)
# A conditional clause that holds the anchor: "Assuming the answer is A, ...", "If we pick (E), ...";
# "If we simplify, the answer is (B)" is no hypothetical (the condition ended at its comma).
_CONDITIONAL_RE = re.compile(
    r"\b(?:if|assume|assuming|suppose|supposing|whether|unless|were)\b[^.,;:!?\n]*$", re.IGNORECASE
)
# Words that make a clause a guess, not a conclusion: "maybe it's D?", "it could be (A)".
_HEDGE_WORD_RE = re.compile(r"\b(?:maybe|perhaps|possibly|could|might|may)\b[^.;!?\n]*$", re.IGNORECASE)
# The letter, then the end, a line break, ".", ")" or a ":" that ends the line (not "A good idea", not
# "I think", and not a dialogue label such as "A: Let's think step by step").
_LEADING_RE = re.compile(r"\s{0,20}\(?([A-Z])(?:\)|[.:](?=\s|$)|(?=\s*\n)|(?=\s*$))")
# Reasoning about an option, not choosing it: "if option A is correct, ...".
_HYPOTHETICAL_RE = re.compile(
    r"\b(?:if|assume|assuming|suppose|supposing|whether|not|unless)\b[^.\n]*$", re.IGNORECASE
)
_CERTAINTY = (
    r"(?:for[ \t]sure|definitely|clearly|certainly|surely|obviously|undoubtedly|indeed|"
    r"most[ \t]likely|likely|probably)"
)
_CONNECTIVES = ("so", "So", "thus", "Thus", "hence", "Hence", "therefore", "Therefore", "so,", "thus,")
_PRONOUN_I_RE = re.compile(r"[ \t]+[a-z']")
_OPTION_SPACING_RE = re.compile(r"\\[ ,;!]|~")
_WHITESPACE_RE = re.compile(r"\s+")


def _norm_option(s: str) -> str:
    t = unwrap_commands(strip_math_delimiters(s.strip()))
    t = t.replace("\\dfrac", "\\frac").replace("\\%", "%")
    t = _WHITESPACE_RE.sub(" ", t).strip().rstrip(".").strip()
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


@dataclass(frozen=True)
class _Regexes:
    token: re.Pattern[str]  # after an anchor: decorations, then the letter
    anchor: re.Pattern[str]  # "answer is", "Answer:", "choice ="
    bold: re.Pattern[str]  # **B**, \textbf{(B)}
    lone: re.Pattern[str]  # a last line that is only a letter (and maybe the option's text)
    phrases: tuple[re.Pattern[str], ...]  # "Option D is correct", "which is (C)"
    copula: re.Pattern[str]  # "... is (X)", "it's B": the verb before a closing letter
    choose: re.Pattern[str]  # "I'd go with", "I choose", "that leaves": a verb of choosing


@functools.lru_cache(maxsize=64)
def _regexes(letters: str) -> _Regexes:
    cls = f"[{letters}{letters.lower()}]"
    upper = f"[{letters}]"
    token = (
        r"(?P<pre>(?:\*\*|__|\\boxed\s{0,2}\{|\\textbf\{|\\text\{|\\mathrm\{|\$|\\\(|"
        r"[\"'`\u201c\u2018]){0,3})"
        rf"[ \t]{{0,2}}(?P<paren>[(\[])?[ \t]{{0,2}}(?P<let>{cls})(?![A-Za-z0-9_])"
    )
    anchor = (
        r"\b(?P<kw>answer|choice|option)(?:[ \t]{0,3}\*\*)?[ \t]{0,3}"
        r"(?P<verb>is|would\s{1,3}be|should\s{1,3}be|will\s{1,3}be|[:\uff1a]|=)(?:[ \t]{0,3}:)?"
        # "the answer is for sure D", "the answer is clearly (B)": an adverb of certainty
        rf"(?:[ \t]{{1,3}}{_CERTAINTY}(?=[ \t]))?"
        r"(?:[ \t]{0,3}\*\*)?\s{0,4}(?:(?:option|choice|letter)[ \t]{1,3})?"
    )
    bold = (
        rf"(?:\*\*|__)[ \t]{{0,2}}(?P<paren>\()?(?P<let>{upper})\)?[.:)]?[ \t]{{0,2}}(?:\*\*|__)"
        rf"|\\textbf\{{[ \t]{{0,2}}(?P<paren2>\()?(?P<let2>{upper})\)?[ \t]{{0,2}}\}}"
    )
    lone = (
        rf"(?:(?:option|choice)[ \t]{{1,3}})?(?P<paren>\()?(?P<let>{cls})(?(paren)\))[.:)]?"
        rf"(?:[ \t]{{1,3}}(?P<rest>.{{1,500}}))?"
    )
    phrases = (
        re.compile(
            rf"\b(?:option|choice)[ \t]{{1,3}}\(?(?P<let>{upper})\)?[ \t]{{1,3}}is[ \t]{{1,3}}"
            rf"(?:the[ \t]{{1,3}})?(?:correct|right|best)\b",
            re.IGNORECASE,
        ),
        re.compile(rf"\bwhich[ \t]{{1,3}}is[ \t]{{1,3}}(?:option[ \t]{{1,3}})?\((?P<let>{upper})\)"),
        # "(C) is the correct answer.", "Therefore, B is correct.": the letter opens its clause
        # (not "Point B is the best place"), and the clause ends there (not "B is correct for x>0").
        re.compile(
            r"(?:^|(?<=[.!:;,] )|(?<=\*\*)|" + "|".join(f"(?<=\\b{w} )" for w in _CONNECTIVES) + ")"
            rf"(?:\*\*)?\(?(?P<let>{upper})\)?(?:\*\*)?[ \t]{{1,3}}is[ \t]{{1,3}}(?:the[ \t]{{1,3}})?"
            r"(?:correct|right|best)(?:[ \t]{1,3}(?:answer|option|choice|one))?(?:\*\*)?"
            r"[ \t]{0,3}(?:[.,;!]|\n|$)",
            re.MULTILINE,
        ),
    )
    copula = (
        r"(?:\b(?:is|was|be)|['\u2019]s)(?:[ \t]{1,3}" + _CERTAINTY + r")?[ \t]{1,3}"
        r"(?:(?:option|choice|letter|answer)[ \t]{1,3})?"
    )
    subject = r"\b(?:I|we|We)"
    choose = (
        rf"(?:{subject}(?:['\u2019](?:d|ll)|[ \t]{{1,3}}(?:would|will|should|shall|must))?[ \t]{{1,3}}"
        r"(?:go[ \t]{1,3}with|pick|choose|select|opt[ \t]{1,3}for|settle[ \t]{1,3}on)"
        rf"|{subject}[ \t]{{1,3}}(?:went[ \t]{{1,3}}with|picked|chose|selected)"
        r"|\b(?:[Tt]hat|[Tt]his|[Ww]hich)[ \t]{1,3}leaves(?:[ \t]{1,3}us[ \t]{1,3}with)?"
        r"|(?P<conn>(?:^|(?<=[.!] ))[ \t]{0,3}(?:[Ss]o|[Tt]hus|[Hh]ence|[Tt]herefore),?"
        r")|(?P<match>\b(?:corresponds|correspond|corresponding|matches|match|matching)[ \t]{1,3}"
        r"(?:to[ \t]{1,3})?(?:the[ \t]{1,3})?(?:option|choice|answer)))"
        r"[ \t]{1,3}(?:(?:option|choice|answer|letter)[ \t]{1,3})?"
    )
    return _Regexes(
        re.compile(token),
        re.compile(anchor, re.IGNORECASE),
        re.compile(bold),
        re.compile(lone, re.IGNORECASE),
        phrases,
        re.compile(copula, re.IGNORECASE),
        re.compile(choose, re.MULTILINE),
    )


class _OptionIndex:
    """The item's option texts, normalised once per completion."""

    def __init__(self, options: Sequence[str], letters: str) -> None:
        self.options = list(options)
        self.by_text: dict[str, list[str]] = {}
        for i, o in enumerate(self.options):
            n = _norm_option(o)
            if n and i < len(letters):
                self.by_text.setdefault(n, []).append(letters[i])

    def labelled_count(self, text: str, letters: str) -> int:
        """How many options the text labels with their own letter ("A. 12", "(B) banana"): two or
        more make the text a listing of the options, whose letters are no answer."""
        found = 0
        for i, opt in enumerate(self.options[: len(letters)]):
            words = opt.split()
            if not words:
                continue
            own = r"\s{1,3}".join(re.escape(w) for w in words)
            label = (
                rf"(?<![A-Za-z0-9])(?:\({letters[i]}\)|{letters[i]}[.:)]?)(?:\*\*|__)?[ \t]{{0,3}}"
                rf"{own}(?![A-Za-z0-9])"
            )
            if re.search(label, text[-20000:], re.IGNORECASE if not opt.isdigit() else 0):
                found += 1
        return found

    def letter_of(self, text: str) -> str | None:
        hits = self.by_text.get(_norm_option(text), [])
        return hits[0] if len(hits) == 1 else None

    def __bool__(self) -> bool:
        return bool(self.options)

    def __len__(self) -> int:
        return len(self.options)

    def __getitem__(self, i: int) -> str:
        return self.options[i]


_LINE_LABEL_RE = re.compile(r"^[ \t]{0,8}\(?([A-Z])[.):][ \t]", re.MULTILINE)


@dataclass(frozen=True)
class _Input:
    """What every tier reads: the text, the allowed letters, the options and the regexes."""

    text: str
    letters: str
    options: _OptionIndex
    rx: _Regexes

    @functools.cached_property
    def is_listing(self) -> bool:
        """The text recites the options (``A. 12\nB. 15``, ``(A) apple (B) banana``): a weak tier's
        lone or leading letter is then a label, not an answer."""
        if self.options and self.options.labelled_count(self.text, self.letters) >= 2:
            return True
        labels = {m.group(1) for m in _LINE_LABEL_RE.finditer(self.text[-20000:])}
        return len(labels & set(self.letters)) >= 3


def _letter_ok(m: re.Match[str], text: str) -> bool:
    """A lower-case letter counts only when decorated or at the end of a sentence ("the answer is a
    number" is English, not option A)."""
    let = m.group("let")
    if m.group("paren") or m.group("pre"):
        return True
    if let == "I" and _PRONOUN_I_RE.match(text[m.end() : m.end() + 3]):
        return False  # "Answer: I think ..." is the pronoun
    if let.isupper():
        return True
    nxt = text[m.end() : m.end() + 2]
    if nxt == "" or nxt[0] == "\n":
        return True
    return nxt[0] in ".,;:)" and (len(nxt) < 2 or nxt[1] in " \n\t")


def _option_from_content(content: str, letters: str, options: _OptionIndex) -> str | None:
    """A letter from an answer written as text: ``B``, ``(B)``, ``\\textbf{(B)} 42``, or an option's text."""
    t = unwrap_commands(strip_math_delimiters(content))
    t = _OPTION_SPACING_RE.sub(" ", t).strip().strip("*").strip()
    if is_blank(t):
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


# ---------------------------------------------------------------------------------------------
# The tiers


@dataclass(frozen=True)
class _Stated:
    position: int
    letter: str
    method: str


_HEDGED = "hedged"  # the latest anchored answer hedges between letters


def _last_anchored(c: _Input) -> _Stated | str | None:
    """The latest "answer is X" / "Answer: X" / "answer is <an option's text>", or _HEDGED."""
    text = c.text
    for a in reversed(list(c.rx.anchor.finditer(text))[-_MAX_CANDIDATES:]):
        if _CONDITIONAL_RE.search(_clause_before(text, a.start())):
            continue  # "Assuming the answer is A, ...": reasoning about an option, not choosing it
        method = "answer_is" if a.group("verb")[0].lower() in "iwsb" else "answer_colon"
        m = c.rx.token.match(text, a.end())
        if m and _letter_ok(m, text):
            if _AMBIGUOUS_RE.match(text, m.end()):
                return _HEDGED  # no answer, and not an older one either
            return _Stated(a.start(), m.group("let").upper(), method)
        rest = text[a.end() : a.end() + 500].split("\n", 1)[0]
        ans = clean_answer(rest) if rest.strip() else None
        if ans:
            let = _option_from_content(ans, c.letters, c.options)
            if let is not None:
                return _Stated(a.start(), let, "option_text" if let != ABSTAIN else method)
    return None


def _clause_before(text: str, pos: int) -> str:
    """The text from the start of the sentence or clause that holds ``pos`` up to ``pos``."""
    head = text[max(0, pos - 300) : pos]
    cut = max(head.rfind(ch) for ch in ".!?;\n")
    return head[cut + 1 :] if cut >= 0 else head


def _last_boxed(c: _Input) -> _Stated | None:
    for box in reversed(find_boxes(c.text)[-_MAX_CANDIDATES:]):
        let = _option_from_content(box.content, c.letters, c.options)
        if let is not None:
            return _Stated(box.start, let, "boxed")
    return None


def _explicit(c: _Input) -> Decision | None:
    """Stated answers ("answer is (X)", "Answer: X", ``\\boxed{X}``, an option's text after "answer
    is") form one tier in which the LAST one wins: models restate drafts in mixed forms."""
    anchored = _last_anchored(c)
    stated = [s for s in (anchored, _last_boxed(c)) if isinstance(s, _Stated)]
    if stated:
        last = max(stated, key=lambda s: s.position)
        return last.letter, last.method
    return _NO_ANSWER if anchored == _HEDGED else None


def _phrased(c: _Input) -> Decision | None:
    """ "Option D is correct", "... = 16, which is (C)"; hypotheticals in reasoning ("if option A is
    correct, ...") do not count."""
    text = c.text
    found = [
        h
        for pat in c.rx.phrases
        for h in pat.finditer(text)
        if not _HYPOTHETICAL_RE.search(text[max(0, h.start() - 24) : h.start()])
    ]
    if not found:
        return None
    last = max(found, key=lambda h: h.start())
    return last.group("let").upper(), "option_is"


# After a concluding letter: a closing bracket, quote or bold, then the end of the clause (not "?").
_CLAUSE_END_RE = re.compile(r"[)\]\"'\u201d\u2019`*}$]{0,4}[ \t]{0,3}(?:[.,;:!]|\n|$)")
# "So D." must end its sentence: "Thus, (i), (ii) and (iii) are true" lists, it does not conclude.
_SENTENCE_END_LETTER_RE = re.compile(r"[)\]\"'\u201d\u2019`*}$]{0,4}[ \t]{0,3}(?:[.!]|\n|$)")
# A clause whose bare letter after "is" is a conclusion: it speaks of options or of correctness
# ("The incorrect statement is B.", "I think it's B."), not of a point or a variable ("AC is B").
_QUALIFIER_RE = re.compile(
    r"\b(?:correct|incorrect|right|wrong|best|only|most|least|true|false|answer|option|choice|"
    r"statement|explanation|response|valid|invalid|appropriate|accurate|likely|final|remaining)\b"
    r"|\b(?:I|we)[ \t]{1,3}(?:think|believe|guess|reckon|say|conclude)\b",
    re.IGNORECASE,
)


# What may follow a chosen letter besides the end of the clause: a reason, never a use of the
# letter as a name ("We choose A to be the origin", "pick B as the reference point").
_REASON_RE = re.compile(
    r"[)\]\"'\u201d\u2019`*]{0,4}[ \t]{1,3}(?:since|because|rather|over|instead|\u2014|-|"
    r"as[ \t]{1,3}(?:the|my|our)[ \t]{1,3}(?:final[ \t]{1,3})?answer)\b"
)


def _strongly_marked(t: re.Match[str]) -> bool:
    """Brackets, quotes, bold or a box mark an option letter; ``$B$`` is a variable as often."""
    pre = t.group("pre") or ""
    return bool(t.group("paren")) or any(d in pre for d in ("**", "__", "\\boxed", "\\textbf", '"', "'", "`"))


def _closing_letter(c: _Input, m: re.Match[str], need_end: str) -> tuple[str, bool, bool] | None:
    """The letter a concluding verb at ``m`` names, as (letter, hedged, strongly marked), or None.
    ``need_end``: "sentence" or "clause" must end after the letter; "" lets a reason follow."""
    t = c.rx.token.match(c.text, m.end())
    if not (t and _letter_ok(t, c.text)):
        return None
    marked = _strongly_marked(t)
    if not (marked or t.group("let").isupper()):
        return None
    if _AMBIGUOUS_RE.match(c.text, t.end()):
        return t.group("let").upper(), True, marked
    if need_end == "sentence":
        if not _SENTENCE_END_LETTER_RE.match(c.text, t.end()):
            return None
    elif not _CLAUSE_END_RE.match(c.text, t.end()) and (need_end or not _REASON_RE.match(c.text, t.end())):
        return None
    return t.group("let").upper(), False, marked


def _latest_copula(c: _Input) -> tuple[int, Decision] | None:
    """The latest "... is (X)." / "it's B." that closes a clause about the options."""
    for m in reversed(list(c.rx.copula.finditer(c.text))[-_MAX_CANDIDATES:]):
        found = _closing_letter(c, m, need_end="clause")
        if found is None:
            continue
        clause = _clause_before(c.text, m.start())
        if _CONDITIONAL_RE.search(clause) or _HEDGE_WORD_RE.search(clause):
            continue
        let, hedged, marked = found
        if not hedged and not marked and not _QUALIFIER_RE.search(clause + m.group(0)):
            continue
        return m.start(), (_NO_ANSWER if hedged else (let, "closing_statement"))
    return None


def _latest_choosing(c: _Input) -> tuple[int, Decision] | None:
    """The latest "I'd go with D", "I choose (F)", "That leaves B.", "So D."."""
    for m in reversed(list(c.rx.choose.finditer(c.text))[-_MAX_CANDIDATES:]):
        need_end = "sentence" if m.group("conn") else ("clause" if m.group("match") else "")
        found = _closing_letter(c, m, need_end=need_end)
        if found is None or _CONDITIONAL_RE.search(_clause_before(c.text, m.start())):
            continue
        let, hedged, _marked = found
        return m.start(), (_NO_ANSWER if hedged else (let, "chosen"))
    return None


def _concluded(c: _Input) -> Decision | None:
    """A conclusion without an answer phrase: "The only option that satisfies this is (H).", "The
    incorrect statement is B.", "Therefore I think it's B", "I'd go with D", "That leaves B.".
    The later of the two kinds wins; a hedge ("it's A or C") is no answer, and so are conditionals
    ("If we pick (E), ..."), guesses ("maybe it's D?") and a bare letter after "is" in a clause
    that is not about the options ("the midpoint of AC is B")."""
    found = [x for x in (_latest_copula(c), _latest_choosing(c)) if x is not None]
    if not found:
        return None
    return max(found, key=lambda x: x[0])[1]


def _bold(c: _Input) -> Decision | None:
    bolds = list(c.rx.bold.finditer(c.text))
    if not bolds:
        return None
    b = bolds[-1]
    if c.is_listing:
        return None  # "**A.** apple **B.** banana" labels the options
    return (b.group("let") or b.group("let2")), "bold"


def _lone_letter(c: _Input) -> Decision | None:
    """A last line that is only a letter, or a letter and that option's own text."""
    lines = [ln for ln in c.text[-2000:].splitlines() if ln.strip()]
    if not lines:
        return None
    last = lines[-1].strip().strip("*#>_ \t").rstrip(".").strip()
    m = c.rx.lone.fullmatch(last)
    if not m:
        return None
    let = m.group("let").upper()
    rest = m.group("rest")
    idx = ord(let) - ord("A")
    lower_ok = m.group("let").isupper() or m.group("paren") or last.lower() == m.group("let").lower()
    options = c.options
    if rest and c.is_listing:
        return None  # "D. 21" as the last line of "A. 12\nB. 15\nC. 18\nD. 21"
    if lower_ok and (
        not rest or (options and idx < len(options) and _norm_option(rest) == _norm_option(options[idx]))
    ):
        return let, "lone_letter"
    return None


# A letter opening the text followed by that option's own text, without a delimiter: "B banana, ...".
_LEADING_BARE_RE = re.compile(r"\s{0,20}\(?([A-Z])\)?[ \t]{1,3}(?=\S)")


def _leading_letter(c: _Input) -> Decision | None:
    """A completion of a prompt ending in "Answer:" may open with the letter ("B. text ...")."""
    m = _LEADING_RE.match(c.text)
    if not (m and m.group(1) in c.letters):
        return _leading_with_own_text(c)
    if _AMBIGUOUS_RE.match(c.text, m.end()) or c.is_listing:
        return _NO_ANSWER  # "(B) and (D)", or "(A) apple (B) banana ..."
    rest = c.text[m.end() :].split("\n", 1)[0].strip()
    idx = ord(m.group(1)) - ord("A")
    if m.group(0).rstrip().endswith(":") and rest:
        # "B: Paris" names option B only when the option's own text follows; "A: Let's think
        # step by step" is a dialogue label (base models continue few-shot prompts with it).
        if not (idx < len(c.options) and _norm_option(rest).startswith(_norm_option(c.options[idx]))):
            return _NO_ANSWER
    return m.group(1), "leading_letter"


def _leading_with_own_text(c: _Input) -> Decision | None:
    """ "B banana, since A is not yellow": the letter, then its own option's text."""
    m = _LEADING_BARE_RE.match(c.text)
    if not (m and m.group(1) in c.letters and c.options) or c.is_listing:
        return None
    idx = c.letters.index(m.group(1))
    own = _norm_option(c.options[idx]) if idx < len(c.options) else ""
    head = _norm_option(c.text[m.end() : m.end() + len(own) + 1])
    if own and head.startswith(own) and not head[len(own) : len(own) + 1].isalnum():
        return m.group(1), "leading_letter"
    return None


# The precedence of the tiers.
TIERS: tuple[Callable[[_Input], Decision | None], ...] = (
    _explicit,
    _phrased,
    _concluded,
    _bold,
    _lone_letter,
    _leading_letter,
)


def find_choice(text: str, letters: str, options: Sequence[str] = ()) -> Decision:
    """(letter or ABSTAIN or None, method): the first tier of ``TIERS`` that decides (see
    ``extract_choice``)."""
    c = _Input(text, letters, _OptionIndex(options, letters), _regexes(letters))
    for tier in TIERS:
        decision = tier(c)
        if decision is not None:
            return decision
    return _NO_ANSWER


def example_letter_answer(letter: str, boxed: bool) -> str:
    """How a model states an option letter: "The answer is (B).", or in a box when the prompt asks."""
    if boxed:
        return (
            f"{EXAMPLE_REASONING}\nChecking the options, the answer is option {letter}, "
            f"so the answer is \\boxed{{{letter}}}."
        )
    return f"{EXAMPLE_REASONING}\nThe answer is ({letter})."


@register_extractor(
    "choice", options=("letters",), version=2, example_answer=example_letter_answer, answer_kind="letter"
)
def extract_choice(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
    """A multiple-choice letter limited to the item's own options (A-J for ten options, A-E for AMC).

    Cascade on the text cut at the stop sequences (``TIERS``): explicit answers ("answer is (X)",
    "Answer: X", ``\\boxed{X}``, or the text of an option after "answer is") -> "option X is
    correct" -> a bold letter -> a lone letter on the last line -> a letter opening the text ("B.
    ..." after a prompt ending in "Answer:"). Explicit answers form one tier in which the LAST one
    wins: models restate drafts in mixed forms ("The answer is (A) ... wait ... Answer: B").
    Case-insensitive (a bare lower-case letter must be decorated or end the sentence; "I" followed
    by a word is the pronoun). ``\\boxed{blank}`` and "answer is blank" are an explicit abstention
    (status ``abstain``). Without options, the ``letters`` option (a string or a count) gives the
    allowed letters, default A-J.
    """
    text, truncated = answer_text(completion, ctx.stop)
    letters = option_letters(sample, ctx)
    let, method = find_choice(text, letters, sample.choices or ())
    return finish(let, method, completion, truncated)

"""Math answer equivalence: cheap exact checks in-process, the symbolic check in a sandboxed worker.

Order of checks (the first that decides wins):
  1. length cap (untrusted answers longer than ``max_chars`` are wrong unless identical to the gold);
  2. identical after a value-preserving normalisation (delimiters, spacing, ``\\dfrac`` ...);
  3. plain numbers (integers, decimals, ``\\frac{a}{b}``, ``a/b``, thousands separators, a degree
     sign) compared exactly as fractions; two exact numbers that differ are different;
  4. plain text answers (``\\text{Evelyn}`` vs ``evelyn``);
  5. sequences with an ellipsis compared in order, element by element (math-verify drops ``\\ldots``
     and compares as sets, so ``1,2,3,\\ldots`` would equal ``3,2,1``);
  6. math-verify + sympy in a worker process (sandbox.py) with a hard wall-clock kill, followed by a
     relative-tolerance check on numbers (math-verify's absolute tolerance makes ``1/2^{99}`` equal
     ``1/2^{98}``).
Verdicts of step 6 are cached per (gold, pred, options), so repeats of the same answer cost nothing.
Nothing here passes model text to ``eval``, ``sympify`` or ``parse_expr``.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction

from evalkit.scoring.latex import (
    has_ellipsis,
    is_ellipsis_token,
    last_box,
    normalize_answer,
    split_top_level,
    unwrap_commands,
)
from evalkit.scoring.sandbox import DEFAULT_TIMEOUT_S, default_sandbox

DEFAULT_MAX_CHARS = 1000
DEFAULT_REL_TOL = 1e-4


@dataclass(frozen=True)
class MathVerdict:
    equal: bool
    reason: str
    path: str  # which step decided: length | identical | number | text | sequence | worker | cache


_INT = r"\d{1,3}(?:,\d{3})+|\d+"
_NUMBER_RE = re.compile(rf"(?P<sign>[+-]?)(?P<int>{_INT})?(?P<dec>\.\d+)?")
_FRAC_RE = re.compile(r"(?P<sign>[+-]?)\\frac(?:\{(?P<a>[+-]?\d+)\}\{(?P<b>[+-]?\d+)\}|(?P<a1>\d)(?P<b1>\d))")
_SLASH_RE = re.compile(r"(?P<sign>[+-]?)(?P<a>\d+)/(?P<b>\d+)")
_DEGREE_RE = re.compile(r"(?:\^\{?\\circ\}?|°|\\degree)$")


def plain_number(s: str) -> tuple[Fraction, bool] | None:
    """(value, written_as_decimal) for an integer, decimal or simple fraction; None otherwise."""
    if len(s) > 200:
        return None
    if "\\" in s:
        s = unwrap_commands(s)  # `\textbf{033}`, `\text{ 5 }`
    s = _DEGREE_RE.sub("", s).strip()
    if len(s) > 2 and s[0] == "(" and s[-1] == ")" and "," not in s:
        s = s[1:-1].strip()  # AoPS style `(245)`; a one-number tuple is not an answer form
    if not s:
        return None
    m = _NUMBER_RE.fullmatch(s)
    if m and (m.group("int") or m.group("dec")):
        try:
            v = Fraction((m.group("int") or "0").replace(",", "") + (m.group("dec") or ""))
        except (ValueError, ZeroDivisionError):
            return None
        return (-v if m.group("sign") == "-" else v), bool(m.group("dec"))
    m = _FRAC_RE.fullmatch(s) or _SLASH_RE.fullmatch(s)
    if m:
        d = m.groupdict()
        a, b = d.get("a") or d.get("a1"), d.get("b") or d.get("b1")
        try:
            v = Fraction(int(a), int(b))
        except (ValueError, ZeroDivisionError):
            return None
        return (-v if d["sign"] == "-" else v), False
    return None


_WORDS_RE = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")


def plain_text(s: str) -> str | None:
    """A text answer (``\\text{(C)}``, ``Evelyn``, ``\\text{odd}``) as words, or None."""
    t = unwrap_commands(s).strip()
    if t.startswith("(") and t.endswith(")"):
        t = t[1:-1].strip()
    if not _WORDS_RE.fullmatch(t):
        return None
    return t if len(t) == 1 else t.lower()


def _braces_balanced(s: str) -> bool:
    opens = 0
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            opens += 1
        elif c == "}":
            opens -= 1
            if opens < 0:
                return False
        i += 1
    return opens == 0


class _LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[tuple, tuple[bool, str]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple) -> tuple[bool, str] | None:
        with self.lock:
            v = self.data.get(key)
            if v is not None:
                self.data.move_to_end(key)
            return v

    def put(self, key: tuple, value: tuple[bool, str]) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


_cache = _LRU(50_000)


def clear_cache() -> None:
    """Forget cached worker verdicts (tests; after changing the grader)."""
    with _cache.lock:
        _cache.data.clear()


def _answer_form(s: str) -> str:
    """The normalised answer: the content of its last box when it has one."""
    t = normalize_answer(s)
    if "\\boxed" in t or "\\fbox" in t:
        box = last_box(t)
        if box is not None:
            t = normalize_answer(box.content)
    return t


def _exact_verdict(g: str, p: str, max_chars: int) -> MathVerdict | None:
    """Steps 1-4 on normalised answers: the checks that decide without the symbolic worker."""
    if not p:
        return MathVerdict(False, "empty_answer", "length")
    if p == g:
        return MathVerdict(True, "identical", "identical")
    if len(p) > max_chars:
        return MathVerdict(False, "answer_too_long", "length")
    gn, pn = plain_number(g), plain_number(p)
    if gn is not None and pn is not None:
        if gn[0] == pn[0]:
            return MathVerdict(True, "same_number", "number")
        if not (gn[1] or pn[1]):
            return MathVerdict(False, "different_number", "number")
        # A decimal against another number: math-verify's rounding rules decide (below).
    gt, pt = plain_text(g), plain_text(p)
    if gt is not None and pt is not None and gt == pt:
        return MathVerdict(True, "same_text", "text")
    return None


def _worker_verdict(g: str, p: str, timeout_s: float, rel_tol: float, set_relation: bool) -> MathVerdict:
    """Step 6: math-verify and sympy in a sandboxed worker, cached per (gold, pred, options)."""
    options = {"rel_tol": rel_tol, "set_relation": set_relation}
    key = (g, p, timeout_s, rel_tol, set_relation)
    hit = _cache.get(key)
    if hit is not None:
        return MathVerdict(hit[0], hit[1], "cache")
    equal, reason = default_sandbox().check(g, p, timeout_s=timeout_s, options=options)
    _cache.put(key, (equal, reason))
    return MathVerdict(equal, reason, "worker")


def math_equal(
    gold: str,
    pred: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    rel_tol: float = DEFAULT_REL_TOL,
    max_chars: int = DEFAULT_MAX_CHARS,
    set_relation: bool = True,
) -> MathVerdict:
    """Is the predicted answer ``pred`` mathematically equivalent to ``gold``? (The steps are in
    the module docstring.)

    ``set_relation``: accept a relation for a set (``x<3`` for ``(-\\infty,3)``), as a solution set.
    """
    if len(pred) > 20 * max_chars:
        return MathVerdict(False, "answer_too_long", "length")
    g, p = _answer_form(gold), _answer_form(pred)
    verdict = _exact_verdict(g, p, max_chars)
    if verdict is not None:
        return verdict
    ge, pe = has_ellipsis(g), has_ellipsis(p)
    if ge or pe:
        if ge != pe:
            return MathVerdict(False, "ellipsis_mismatch", "sequence")
        return _sequence_equal(
            g, p, timeout_s=timeout_s, rel_tol=rel_tol, max_chars=max_chars, set_relation=set_relation
        )
    if not _braces_balanced(p):
        return MathVerdict(False, "unbalanced_braces", "length")
    return _worker_verdict(g, p, timeout_s, rel_tol, set_relation)


def _sequence_equal(g: str, p: str, **kw: object) -> MathVerdict:
    """Sequences written with an ellipsis: same length, same order, equal element by element."""
    gs = [x for x in split_top_level(g) if x]
    ps = [x for x in split_top_level(p) if x]
    if len(gs) != len(ps):
        return MathVerdict(False, "sequence_mismatch", "sequence")
    for a, b in zip(gs, ps, strict=True):
        ea, eb = is_ellipsis_token(a), is_ellipsis_token(b)
        if ea or eb:
            if ea != eb:
                return MathVerdict(False, "sequence_mismatch", "sequence")
            continue
        if has_ellipsis(a) or has_ellipsis(b):
            if normalize_answer(a) != normalize_answer(b):
                return MathVerdict(False, "sequence_mismatch", "sequence")
            continue
        v = math_equal(a, b, **kw)  # type: ignore[arg-type]
        if not v.equal:
            return MathVerdict(False, "sequence_mismatch", "sequence")
    return MathVerdict(True, "same_sequence", "sequence")


__all__ = ["MathVerdict", "clear_cache", "math_equal", "plain_number", "plain_text"]

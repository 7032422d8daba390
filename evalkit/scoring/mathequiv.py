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
    gold_answer,
    has_ellipsis,
    is_ellipsis_token,
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


_INT = r"[1-9]\d{0,2}(?:,\d{3})+|\d+"
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
    """The normalised answer, with the value-preserving class rewrites applied."""
    return canonical_answer(normalize_answer(s))


# ---------------------------------------------------------------------------------------------
# Equivalence classes. Each rule is one function; `canonical_answer` applies the rewrites that
# cannot change a value, the comparisons below decide the classes that need both sides.

_UNICODE = {
    "\u2264": "\\leq ",
    "\u2265": "\\geq ",
    "\u2260": "\\neq ",
    "\u2208": "\\in ",
    "\u2209": "\\notin ",
    "\u221e": "\\infty ",
    "\u03c0": "\\pi ",
    "\u00d7": "\\times ",
    "\u22c5": "\\cdot ",
    "\u00b7": "\\cdot ",
    "\u00f7": "\\div ",
    "\u2212": "-",
    "\u00b1": "\\pm ",
    "\u222a": "\\cup ",
    "\u2229": "\\cap ",
    "\u00b0": "^\\circ",
    "\u00b2": "^2",
    "\u00b3": "^3",
    "\u03b8": "\\theta ",
    "\u03b1": "\\alpha ",
    "\u03b2": "\\beta ",
    "\u2205": "\\emptyset ",
    "\u2032": "'",
    "\u2013": "-",
}
_VULGAR = {
    "\u00bd": (1, 2),
    "\u2153": (1, 3),
    "\u2154": (2, 3),
    "\u00bc": (1, 4),
    "\u00be": (3, 4),
    "\u2155": (1, 5),
    "\u2156": (2, 5),
    "\u2157": (3, 5),
    "\u2158": (4, 5),
    "\u2159": (1, 6),
    "\u215a": (5, 6),
    "\u215b": (1, 8),
    "\u215c": (3, 8),
    "\u215d": (5, 8),
    "\u215e": (7, 8),
}
_UNICODE_RE = re.compile("[" + "".join(_UNICODE) + "".join(_VULGAR) + "]")
_ROOT_RE = re.compile(r"([\u221a\u221b])\s*(\d+(?:\.\d+)?|[A-Za-z]|\\pi|\([^()]{0,80}\)|\{[^{}]{0,80}\})")


def unicode_to_latex(s: str) -> str:
    """Unicode math as LaTeX: ``x ≥ 5`` -> ``x \\geq 5``, ``√2/2`` -> ``\\sqrt{2}/2``, ``4π`` -> ``4\\pi``,
    ``½`` -> ``\\frac{1}{2}`` (after a digit, a mixed number: ``2½`` -> ``2\\frac{1}{2}``)."""
    if s.isascii():
        return s

    def root(m: re.Match[str]) -> str:
        arg = m.group(2)
        if arg[0] in "({":
            arg = arg[1:-1]
        return ("\\sqrt{" if m.group(1) == "\u221a" else "\\sqrt[3]{") + arg + "}"

    s = _ROOT_RE.sub(root, s)

    def one(m: re.Match[str]) -> str:
        c = m.group(0)
        if c in _VULGAR:
            a, b = _VULGAR[c]
            return f"\\frac{{{a}}}{{{b}}}"
        return _UNICODE[c]

    return _UNICODE_RE.sub(one, s).strip()


_RELATION_WORDS = (
    (re.compile(r">="), "\\geq "),
    (re.compile(r"<="), "\\leq "),
    (re.compile(r"!=|=/="), "\\neq "),
    (re.compile(r"\\(?:geqslant|ge)(?![A-Za-z])"), "\\geq"),
    (re.compile(r"\\(?:leqslant|le)(?![A-Za-z])"), "\\leq"),
    (re.compile(r"\\ne(?![A-Za-z])"), "\\neq"),
    (re.compile(r"\\gt(?![A-Za-z])"), ">"),
    (re.compile(r"\\lt(?![A-Za-z])"), "<"),
)


_ANY_RELATION_RE = re.compile(r">=|<=|!=|=/=|\\(?:geqslant|leqslant|ge|le|ne|gt|lt)(?![A-Za-z])")


def ascii_relations(s: str) -> str:
    """One spelling per relation: ``>=``, ``\\ge``, ``\\geqslant`` -> ``\\geq``; ``!=``, ``\\ne`` ->
    ``\\neq``; ``\\lt``/``\\gt`` -> ``<``/``>``."""
    if not _ANY_RELATION_RE.search(s):
        return s
    for rx, repl in _RELATION_WORDS:
        s = rx.sub(lambda _m, r=repl: r, s)
    return s


_TRIG_DEGREES_RE = re.compile(
    r"(\\(?:sin|cos|tan|cot|sec|csc))\s*(\(?)\s*(\d+(?:\.\d+)?)\s*\^\s*\{?\s*\\circ\s*\}?\s*(\)?)"
)


def trig_degrees(s: str) -> str:
    """A trigonometric function of degrees in radians: ``\\sin 60^\\circ`` -> ``\\sin(\\frac{60\\pi}{180})``
    (math-verify reads ``^\\circ`` as nothing, which would make ``\\sin 60^\\circ`` the sine of 60)."""
    if "\\circ" not in s:
        return s
    return _TRIG_DEGREES_RE.sub(lambda m: f"{m.group(1)}(\\frac{{{m.group(3)}\\pi}}{{180}})", s)


_MIXED_TEX_RE = re.compile(r"(-?)(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}")
_MIXED_SLASH_RE = re.compile(r"(-?)(\d+)\s+(\d+)/(\d+)")


def mixed_number(s: str) -> str:
    """A mixed number as one fraction: ``2\\frac{1}{2}`` and ``2 1/2`` -> ``\\frac{5}{2}``. Only a
    whole answer of that form with a proper fraction (numerator below denominator); ``2\\frac{3}{2}``
    stays a product."""
    m = _MIXED_TEX_RE.fullmatch(s) or _MIXED_SLASH_RE.fullmatch(s)
    if not m:
        return s
    whole, a, b = int(m.group(2)), int(m.group(3)), int(m.group(4))
    if not 0 < a < b or len(m.group(2)) > 12:
        return s
    return f"{m.group(1)}\\frac{{{whole * b + a}}}{{{b}}}"


def canonical_answer(s: str) -> str:
    """``normalize_answer``'s output with the value-preserving class rewrites: unicode math,
    relation spellings, degrees inside trigonometric functions, mixed numbers."""
    t = ascii_relations(unicode_to_latex(s))
    t = mixed_number(trig_degrees(t))
    return normalize_answer(t) if t != s else s


# Currency, units, percent and degree signs around a plain number.
_CURRENCY_PREFIX_RE = re.compile(r"^(?:US\s?\$|\$|\\\$|€|£|¥|₹|USD|EUR|GBP|Rs\.?)\s*")
_CURRENCY_SUFFIX_RE = re.compile(
    r"\s*(?:€|\$|\\\$|£|USD|EUR|GBP|dollars?|euros?|pounds?|yuan|rupees?)$", re.IGNORECASE
)
_PERCENT_RE = re.compile(r"\s*(?:\\%|%|\s*percent|\s*pct)$", re.IGNORECASE)
_DEGREE_WORD_RE = re.compile(r"\s*(?:\^\s*\{?\\circ\}?|°|\\degree|degrees?|deg)$", re.IGNORECASE)
_TEXT_UNIT_RE = re.compile(
    r"\s*\\(?:text|mbox|mathrm|textrm|textnormal|mathit)\s*\{\s*~?\s*[A-Za-z][A-Za-z /.\-]{0,30}\}"
    r"(?:\s*\^\s*\{?[23]\}?)?(?:\s*/\s*\\?\w+)?$"
)
_UNITS = (
    "mm|cm|dm|km|m|in|inch|inches|ft|foot|feet|yd|yards?|mi|miles?|meters?|metres?|centimeters?|"
    "centimetres?|millimeters?|kilometers?|kilometres?|mg|g|kg|grams?|kilograms?|lbs?|pounds?|oz|"
    "ounces?|tons?|tonnes?|s|sec|secs|seconds?|min|mins|minutes?|h|hr|hrs|hours?|days?|weeks?|"
    "months?|years?|mph|kph|km/h|m/s|ml|mL|l|L|liters?|litres?|gallons?|cups?|units?|"
    "square units|sq units|cubic units|square (?:feet|meters|inches|centimeters|units|miles)|"
    "sq\\.? ?(?:ft|m|in|cm)|cents?|degrees?|radians?|rad|people|students|cm\\^?[23]|m\\^?[23]|"
    "in\\^?[23]|ft\\^?[23]"
)
# A CJK measure word or unit written straight after a number (`3页`, `858颗`, `4000千克`, `300分钟`).
_CJK_UNIT_RE = re.compile(r"\s*[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]{1,4}$")
_SINGLE_LETTER_UNITS = frozenset({"m", "g", "s", "h", "l", "L"})
_UNIT_WORD_RE = re.compile(rf"\s*(?<![A-Za-z])(?:{_UNITS})(?:\s*\^\s*\{{?[23]\}}?)?\.?$")


def strip_number_decorations(s: str, *, bare_units: bool) -> tuple[str, bool]:
    """(the number, had a percent sign) with currency, units and degree signs removed:
    ``\\$1,250`` -> ``1,250``, ``4.5\\text{ kg}`` -> ``4.5``, ``120 degrees`` -> ``120``, ``25\\%``
    -> (``25``, True). Units are dropped, never converted (``2 hours`` stays 2). A one-letter unit
    (``5 m``) is dropped only with ``bare_units`` (a prediction against a gold that is a plain
    number): in a gold, ``5m`` may be an expression."""
    t = s.strip()
    pct = False
    for _ in range(3):
        before = t
        t = _CURRENCY_PREFIX_RE.sub("", t)
        t = _CURRENCY_SUFFIX_RE.sub("", t)
        m = _PERCENT_RE.search(t)
        if m:
            t, pct = t[: m.start()], True
        t = _DEGREE_WORD_RE.sub("", t)
        t = _TEXT_UNIT_RE.sub("", t)
        m = _CJK_UNIT_RE.search(t)
        if m and t[: m.start()].rstrip()[-1:].isdigit():
            t = t[: m.start()]
        m = _UNIT_WORD_RE.search(t)
        if m and t[: m.start()].strip() and t[: m.start()].rstrip()[-1:].isdigit():
            unit = m.group(0).strip().rstrip(".")
            if len(unit) > 1 or bare_units:
                t = t[: m.start()]
        t = t.strip()
        if t == before:
            break
    return t, pct


_DECIMAL_COMMA_RE = re.compile(r"(-?0),(\d{1,12})|(-?\d+),(\d{1,2})")


def decimal_comma(s: str) -> Fraction | None:
    """``1,5`` -> 3/2 and ``1000,99`` -> 1000.99: a single comma followed by one or two digits (or
    any digits after a leading ``0,``: ``0,111``, never a thousands group).
    Used only against a plain non-integer number on the other side (a decimal or a fraction):
    ``2,5`` against 25 or against a list stays the list 2, 5. Three digits after the comma are a
    thousands group (``10,455`` is 10455, so never 10.455)."""
    m = _DECIMAL_COMMA_RE.fullmatch(s)
    if not m:
        return None
    whole, frac = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))
    return Fraction(f"{whole}.{frac}")


def number_value(s: str, *, bare_units: bool, other_is_fraction: bool) -> tuple[Fraction, bool, bool] | None:
    """(value, written as a decimal, had a percent sign) of a number with its currency, unit and
    degree decorations removed; ``other_is_fraction`` allows the decimal-comma reading."""
    pn = plain_number(s)
    if pn is not None:
        return pn[0], pn[1], False
    t, pct = strip_number_decorations(s, bare_units=bare_units)
    pn = plain_number(t)
    if pn is not None:
        return pn[0], pn[1], pct
    if other_is_fraction:
        v = decimal_comma(t)
        if v is not None:
            return v, True, pct
    return None


_CLOCK_RE = re.compile(
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(?:\\text\{\s*)?(?:([AaPp])\.?\s*[Mm]\.?)?\s*\}?\s*(?:o'clock)?"
)


def clock_seconds(s: str) -> int | None:
    """Seconds after midnight of a clock time: ``3:30 PM``, ``15:30``, ``6:30:00 a.m.``,
    ``2:05 \\text{ PM}``. A time without AM/PM is read on the 24-hour clock."""
    m = _CLOCK_RE.fullmatch(unwrap_commands(s).strip().rstrip("."))
    if not m:
        return None
    h, mi, sec = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    half = (m.group(4) or "").lower()
    if mi > 59 or sec > 59 or h > (12 if half else 23) or (half and h == 0):
        return None
    if half == "a" and h == 12:
        h = 0
    elif half == "p" and h != 12:
        h += 12
    return (h * 60 + mi) * 60 + sec


_FUNCTION_LHS_RE = re.compile(r"^(?:[A-Za-z](?:_\{?\w+\}?)?\([A-Za-z]\)|y)\s*=(?![=<>])")


def function_rhs(s: str) -> str | None:
    """The right-hand side of a function definition ``f(x) = ...`` or ``y = ...`` (one ``=``), which
    name the same function: ``f(x) = x^2 - 1`` and ``y = x^2 - 1`` are compared by their sides."""
    m = _FUNCTION_LHS_RE.match(s)
    if not m or "=" in s[m.end() :] or "," in s:
        return None
    rhs = s[m.end() :].strip()
    return rhs or None


_SIMPLE_REL_RE = re.compile(r"([A-Za-z])(<|>|\\leq|\\geq)(.+)")
_DOUBLE_REL_RE = re.compile(r"(.+?)(<|\\leq)([A-Za-z])(<|\\leq)(.+)")
_OR_RE = re.compile(r"\\text\{\s*or\s*\}|\\(?:text|mbox)\{\s*or\s*\}|\\cup|(?<![A-Za-z])or(?![A-Za-z])|\\lor")


def _one_relation(part: str) -> str | None:
    part = part.strip()
    m = _DOUBLE_REL_RE.fullmatch(part)
    if m and not any(op in m.group(1) + m.group(5) for op in ("<", ">", "\\leq", "\\geq", "=")):
        lo = "[" if m.group(2) == "\\leq" else "("
        hi = "]" if m.group(4) == "\\leq" else ")"
        return f"{lo}{m.group(1).strip()},{m.group(5).strip()}{hi}"
    m = _SIMPLE_REL_RE.fullmatch(part)
    if not m or any(op in m.group(3) for op in ("<", ">", "\\leq", "\\geq", "=")):
        return None
    op, b = m.group(2), m.group(3).strip()
    closed = op in ("\\leq", "\\geq")
    if op in ("<", "\\leq"):
        return "(-\\infty," + b + ("]" if closed else ")")
    return ("[" if closed else "(") + b + ",\\infty)"


def relation_to_interval(s: str) -> str | None:
    """An inequality in one variable as an interval: ``x < -2 \\text{ or } x > 3`` ->
    ``(-\\infty,-2)\\cup(3,\\infty)``, ``2 \\leq x < 5`` -> ``[2,5)``. Only used when the other
    side is an interval; None when ``s`` is not such an inequality."""
    if not any(op in s for op in ("<", ">", "\\leq", "\\geq")):
        return None
    parts = _OR_RE.split(s.replace(" ", ""))
    out = [_one_relation(p) for p in parts]
    if not out or any(x is None for x in out):
        return None
    return "\\cup".join(x for x in out if x)


def _is_interval(s: str) -> bool:
    return bool(s) and s[0] in "([" and s[-1] in ")]" and ("\\infty" in s or "\\cup" in s or "," in s)


def _number_verdict(g: str, p: str) -> MathVerdict | None:
    """Plain numbers with currency, units, percent or degree signs, digit groups, a decimal comma."""
    g_frac = plain_number(g)
    p_frac = plain_number(p)
    gn = number_value(
        g, bare_units=False, other_is_fraction=p_frac is not None and p_frac[0].denominator != 1
    )
    if gn is None:
        return None
    pn = number_value(p, bare_units=True, other_is_fraction=gn[0].denominator != 1)
    if pn is None:
        return None
    del g_frac
    g_vals = {gn[0]} | ({gn[0] / 100} if gn[2] else set())
    p_vals = {pn[0]} | ({pn[0] / 100} if pn[2] else set())
    if g_vals & p_vals:
        return MathVerdict(True, "same_number", "number")
    if not (gn[1] or pn[1]):
        return MathVerdict(False, "different_number", "number")
    return None  # a decimal against another number: math-verify's rounding and the tolerance decide


def _class_verdict(g: str, p: str) -> MathVerdict | None:
    """The equivalence classes decided in-process: clock times, numbers, text answers."""
    gt, pt = clock_seconds(g), clock_seconds(p)
    if gt is not None and pt is not None:
        return MathVerdict(gt == pt, "same_time" if gt == pt else "different_time", "time")
    v = _number_verdict(g, p)
    if v is not None:
        return v
    gw, pw = plain_text(g), plain_text(p)
    if gw is not None and pw is not None and gw == pw:
        return MathVerdict(True, "same_text", "text")
    return None


def _pair_rewrites(g: str, p: str) -> tuple[str, str]:
    """Rewrites that depend on both sides: an inequality against an interval becomes an interval;
    ``f(x) = ...`` against ``y = ...`` or a bare expression compares the right-hand sides."""
    if _is_interval(g):
        p = relation_to_interval(p) or p
    elif _is_interval(p):
        g = relation_to_interval(g) or g
    gr, pr = function_rhs(g), function_rhs(p)
    if pr is not None and (gr is not None or "=" not in g):
        p = pr
        g = gr if gr is not None else g
    elif gr is not None and "=" not in p:
        g = gr
    return g, p


def _exact_verdict(g: str, p: str, max_chars: int) -> MathVerdict | None:
    """Steps 1-4 on normalised answers: the checks that decide without the symbolic worker."""
    if not p:
        return MathVerdict(False, "empty_answer", "length")
    if p == g:
        return MathVerdict(True, "identical", "identical")
    if len(p) > max_chars:
        return MathVerdict(False, "answer_too_long", "length")
    return _class_verdict(g, p)


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
    g, p = _answer_form(gold_answer(gold)), _answer_form(pred)
    verdict = _exact_verdict(g, p, max_chars)
    if verdict is not None:
        return verdict
    g2, p2 = _pair_rewrites(g, p)
    if (g2, p2) != (g, p):
        g, p = g2, p2
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

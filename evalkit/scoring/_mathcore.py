"""The symbolic equivalence check that runs INSIDE a sandbox worker process (see sandbox.py).

Never import this module in the evaluating process: it loads sympy and math-verify, and the checks
it runs may hang in big-integer arithmetic or exhaust memory. The parent kills a worker that
overruns its wall-clock limit; the worker itself runs under an address-space cap.

Model text reaches sympy only through math-verify's LaTeX parser (an ANTLR grammar that builds
sympy objects node by node). This module never calls ``eval``, ``sympify`` or ``parse_expr``, and it
only uses math-verify's LaTeX extraction target: its plain-expression target hands matched text
to ``parse_expr``.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import Any

import sympy
from latex2sympy2_extended.sets import FiniteSet as L2SFiniteSet
from math_verify import LatexExtractionConfig, parse, verify
from math_verify.grader import get_pct_val, is_assignment_relation, take_last_relation
from sympy import Basic, FiniteSet, Interval, MatrixBase, Tuple
from sympy.core.relational import Relational
from sympy.logic.boolalg import Boolean

from evalkit.scoring.mathequiv import DEFAULT_REL_TOL

# math-verify warns once that we disabled its SIGALRM timeouts; the parent's kill replaces them.
logging.getLogger("math_verify").setLevel(logging.CRITICAL)
logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)

_LATEX_ONLY = [LatexExtractionConfig(boxed_match_priority=0)]


@lru_cache(maxsize=8192)
def parse_answer(s: str) -> tuple[Any, ...]:
    """math-verify's parse of a bare answer: wrapped in ``\\boxed{}`` (bare LaTeX often parses to nothing)."""
    return tuple(parse("\\boxed{" + s + "}", extraction_config=_LATEX_ONLY, parsing_timeout=None))


def _numeric(e: Any) -> Any | None:
    """A high-precision numeric value of a closed expression, or None when it is not a plain number."""
    if not isinstance(e, Basic) or isinstance(e, (sympy.Set, Relational, Boolean, Tuple)):
        return None
    if e.free_symbols:
        return None
    v = sympy.N(e, 30)
    return v if v.is_number else None


def _candidates(e: Any) -> list[Any]:
    out = [e]
    pct = get_pct_val(e) if isinstance(e, Basic) else None
    if pct is not None:
        out.append(pct)
    return out


def _rel_close(a: Any, b: Any, rel_tol: float) -> bool:
    d = sympy.N(sympy.Abs(a - b), 30)
    if d == 0:
        return True
    scale = sympy.N(sympy.Max(sympy.Abs(a), sympy.Abs(b)), 30)
    return bool(d <= rel_tol * scale)


def _unwrap(e: Any) -> Any:
    if isinstance(e, Basic) and is_assignment_relation(e):
        return take_last_relation(e).rhs
    return e


def numbers_agree(g: Any, p: Any, rel_tol: float) -> bool:
    """False when both sides are numbers (or same-shaped containers of numbers) that differ by more
    than ``rel_tol`` relative to their size.

    math-verify compares with an absolute tolerance (rounding to 6 places, ``evalf(chop=True)``),
    so ``1/2^{99}`` equals ``1/2^{98}`` and ``0.0000001`` equals ``0.0000002`` there. Anything this
    check cannot evaluate keeps math-verify's verdict.
    """
    g, p = _unwrap(g), _unwrap(p)
    if isinstance(g, MatrixBase) and isinstance(p, MatrixBase):
        if g.shape != p.shape:
            return True
        return all(numbers_agree(a, b, rel_tol) for a, b in zip(list(g), list(p), strict=True))
    if isinstance(g, Interval) and isinstance(p, Interval):
        return numbers_agree(g.start, p.start, rel_tol) and numbers_agree(g.end, p.end, rel_tol)
    g_set = isinstance(g, (FiniteSet, L2SFiniteSet))
    p_set = isinstance(p, (FiniteSet, L2SFiniteSet))
    if (g_set or isinstance(g, Tuple)) and (p_set or isinstance(p, Tuple)):
        ga, pa = list(g.args), list(p.args)
        if len(ga) != len(pa):
            return True
        if g_set or p_set:
            gv = [_numeric(x) for x in ga]
            pv = [_numeric(x) for x in pa]
            if any(v is None for v in gv + pv):
                return True

            def key(v: Any) -> tuple[float, float]:
                c = complex(v)
                return (c.real, c.imag)

            gs = sorted(gv, key=key)
            ps = sorted(pv, key=key)
            return all(_rel_close(a, b, rel_tol) for a, b in zip(gs, ps, strict=True))
        return all(numbers_agree(a, b, rel_tol) for a, b in zip(ga, pa, strict=True))
    gvals = [v for v in (_numeric(x) for x in _candidates(g)) if v is not None]
    pvals = [v for v in (_numeric(x) for x in _candidates(p)) if v is not None]
    if not gvals or not pvals:
        return True
    return any(_rel_close(a, b, rel_tol) for a in gvals for b in pvals)


_I = sympy.Symbol("i")


def complex_equal(g: Any, p: Any, rel_tol: float) -> bool:
    """Complex numbers in any algebraic form (``2(1+i)`` = ``2 + 2i``, ``5e^{i\\pi/2}`` = ``5i``):
    latex2sympy reads ``i`` as a plain symbol where it cannot tell, so when ``i`` is the only free
    symbol on both sides it is taken as the imaginary unit and the two values are compared at
    ``rel_tol``."""
    if not (isinstance(g, Basic) and isinstance(p, Basic)):
        return False
    if isinstance(g, (sympy.Set, Relational, Boolean, Tuple)) or isinstance(
        p, (sympy.Set, Relational, Boolean, Tuple)
    ):
        return False
    syms = g.free_symbols | p.free_symbols
    if not syms or {str(x) for x in syms} != {"i"}:
        return False
    sub = {x: sympy.I for x in syms}
    a, b = sympy.N(g.subs(sub), 30), sympy.N(p.subs(sub), 30)
    if not (a.is_number and b.is_number):
        return False
    return _rel_close(a, b, rel_tol) if sympy.Abs(a) + sympy.Abs(b) != 0 else True


def compare(gold: str, pred: str, options: dict[str, Any]) -> tuple[bool, str]:
    """Is ``pred`` equivalent to ``gold``? Returns (equal, reason)."""
    rel_tol = float(options.get("rel_tol", DEFAULT_REL_TOL))
    set_relation = bool(options.get("set_relation", True))
    gs = parse_answer(gold)
    ps = parse_answer(pred)
    if not ps:
        return False, "unparsed"
    g_exprs = [x for x in gs if not isinstance(x, str)]
    p_exprs = [x for x in ps if not isinstance(x, str)]
    vetoed = False
    for g in g_exprs:
        for p in p_exprs:
            if verify(g, p, timeout_seconds=None, allow_set_relation_comp=set_relation):
                try:
                    ok = numbers_agree(g, p, rel_tol)
                except Exception:
                    ok = True
                if ok:
                    return True, "equivalent"
                vetoed = True
    if vetoed:
        return False, "numbers_differ"
    if any(complex_equal(g, p, rel_tol) for g in g_exprs for p in p_exprs):
        return True, "equivalent_complex"
    g_strs = [x.strip() for x in gs if isinstance(x, str) and x.strip()]
    p_strs = [x.strip() for x in ps if isinstance(x, str) and x.strip()]
    if not g_exprs and not p_exprs and set(g_strs) & set(p_strs):
        return True, "same_latex"
    if not p_exprs:
        return False, "unparsed"
    return False, "not_equivalent"


# Typical answer shapes. ANTLR builds its prediction tables lazily, the first parse through each
# grammar path costs tens of milliseconds; parsing these in the zygote before it forks gives every
# worker warm tables (copy-on-write) instead of each one paying again.
_WARM_UP = (
    ("\\frac{1}{2}", "0.5"),
    ("x^2+1", "1+x^2"),
    ("(1,2]", "\\{1,2\\}"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
    ("2\\sqrt{3}", "\\sqrt{12}"),
    ("\\frac{\\sqrt{3}}{2}", "\\dfrac{\\sqrt3}{2}"),
    ("-\\frac{7}{4}", "-1.75"),
    ("10\\%", "10"),
    ("30^\\circ", "30"),
    ("\\text{Evelyn}", "Evelyn"),
    ("\\text{(C)}", "C"),
    ("x=5", "5"),
    ("y = 2x + 3", "y=3+2x"),
    ("[-2, 7)", "[-2,7)"),
    ("(-\\infty, 0) \\cup (1, \\infty)", "(-\\infty,0)\\cup(1,\\infty)"),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}"),
    ("\\begin{pmatrix} -1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}-1\\\\2\\end{pmatrix}"),
    ("3\\pi", "\\pi \\cdot 3"),
    ("\\sqrt[3]{2}", "2^{1/3}"),
    ("1,2,3", "3,2,1"),
    ("\\$1.50", "1.5"),
    ("5\\text{ cm}^2", "5"),
    ("\\frac{a+b}{c}", "\\frac{b+a}{c}"),
    ("2^{10}", "1024"),
    ("\\log_2 8", "3"),
    ("\\sin x", "\\sin(x)"),
    ("i", "\\sqrt{-1}"),
    ("3 + 4i", "4i+3"),
    ("\\infty", "\\infty"),
    ("x \\in [1, 2]", "[1,2]"),
    ("a^2 - b^2", "(a-b)(a+b)"),
    ("\\binom{5}{2}", "10"),
    ("4!", "24"),
    ("\\tfrac{2}{3}", "0.667"),
)


def _latex2sympy_parser() -> tuple[Any, Any] | None:
    """(latex2sympy's parser class, ANTLR's PredictionMode), when the parser class has the two
    methods the two-stage parsing wraps."""
    try:
        from antlr4.atn.PredictionMode import PredictionMode
        from latex2sympy2_extended.latex2sympy2 import _Latex2Sympy
    except ImportError:
        return None
    if not (hasattr(_Latex2Sympy, "create_parser") and hasattr(_Latex2Sympy, "parse")):
        return None
    return _Latex2Sympy, PredictionMode


def _enable_two_stage_parsing() -> bool:
    """Make latex2sympy's ANTLR parser try SLL prediction first and fall back to full LL.

    ANTLR documents that SLL "will either return a correct parse tree (the same parse tree that
    would be returned with the LL prediction mode), or it will report a syntax error"; the
    grammar's only predicates are operator precedence. latex2sympy turns every syntax error into
    an exception, so on any failure the same input is parsed again in LL mode: results are the
    same, warm parses are ~1.7x faster. Checked on the warm-up answers above before it is kept;
    ``EVALKIT_MATH_SLL=0`` turns it off.
    """
    if os.environ.get("EVALKIT_MATH_SLL", "1") == "0":
        return False
    found = _latex2sympy_parser()
    if found is None:
        return False
    _Latex2Sympy, PredictionMode = found
    orig_create, orig_parse = _Latex2Sympy.create_parser, _Latex2Sympy.parse

    def create_parser(self: Any, latex_str: str) -> Any:
        parser = orig_create(self, latex_str)
        if getattr(self, "_evalkit_sll", False):
            parser._interp.predictionMode = PredictionMode.SLL
        return parser

    def parse_two_stage(self: Any, latex_str: str) -> Any:
        self._evalkit_sll = True
        try:
            return orig_parse(self, latex_str)
        except Exception:
            pass
        finally:
            self._evalkit_sll = False
        return orig_parse(self, latex_str)

    def parse_all(mode_two_stage: bool) -> list[str]:
        _Latex2Sympy.create_parser = create_parser if mode_two_stage else orig_create
        _Latex2Sympy.parse = parse_two_stage if mode_two_stage else orig_parse
        from math_verify.parser import parse_latex_cached

        out = []
        for pair in _WARM_UP:
            for s in pair:
                parse_latex_cached.cache_clear()
                parse_answer.cache_clear()
                out.append(repr(parse_answer(s)))
        return out

    try:
        same = parse_all(False) == parse_all(True)
    except Exception:
        same = False
    if not same:
        _Latex2Sympy.create_parser, _Latex2Sympy.parse = orig_create, orig_parse
    return same


def warm_up() -> None:
    """Load the ANTLR parser and sympy's lazy parts once, before workers are forked."""
    _enable_two_stage_parsing()
    for g, p in _WARM_UP:
        compare(g, p, {})
    parse_answer.cache_clear()


warm_up()

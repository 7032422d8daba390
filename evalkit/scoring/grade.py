"""Graders (named; task YAMLs refer to them by name).

Common option ``points``: ``amc`` puts AMC points in ``Grade.points`` (6 correct, 1.5 for an
explicit abstention such as ``\\boxed{blank}``, 0 wrong); a mapping ``{correct, blank, wrong}``
gives other values. A missing answer (nothing extracted, or truncated) scores as wrong unless
``no_answer_as_blank: true``: a model that ran out of tokens did not choose to leave it blank.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping

from evalkit.scoring.extractors.math import parse_integer
from evalkit.scoring.mathequiv import DEFAULT_MAX_CHARS, DEFAULT_REL_TOL, math_equal
from evalkit.scoring.registry import register_grader
from evalkit.scoring.sandbox import DEFAULT_TIMEOUT_S
from evalkit.types import Extraction, Grade, Sample, ScoringContext

# AMC 10/12: 6 points for a correct answer, 1.5 for a blank, 0 for a wrong one (also used by the
# amc_points metric for records graded without points).
AMC_POINTS: dict[str, float] = {"correct": 6.0, "blank": 1.5, "wrong": 0.0}
POINT_SCHEMES: dict[str, dict[str, float]] = {"amc": AMC_POINTS}
_POINT_OPTIONS = ("points", "no_answer_as_blank")


def _points(ctx: ScoringContext, correct: bool, extraction: Extraction) -> float | None:
    scheme = ctx.grade_options.get("points")
    if scheme is None:
        return None
    if isinstance(scheme, str):
        if scheme not in POINT_SCHEMES:
            raise ValueError(
                f"grade option points: unknown scheme {scheme!r} (known: {', '.join(POINT_SCHEMES)})"
            )
        table = POINT_SCHEMES[scheme]
    elif isinstance(scheme, Mapping) and set(scheme) == {"correct", "blank", "wrong"}:
        table = {k: float(v) for k, v in scheme.items()}
    else:
        raise ValueError("grade option points: give 'amc' or a mapping with keys correct, blank, wrong")
    if correct:
        return table["correct"]
    if extraction.status == "abstain" or (
        extraction.status == "no_answer" and ctx.grade_options.get("no_answer_as_blank", False)
    ):
        return table["blank"]
    return table["wrong"]


def _grade(ctx: ScoringContext, extraction: Extraction, correct: bool, reason: str) -> Grade:
    return Grade(correct, reason, _points(ctx, correct, extraction))


def _no_answer(extraction: Extraction, ctx: ScoringContext) -> Grade | None:
    if extraction.answer is None:
        return _grade(ctx, extraction, False, extraction.status)
    return None


def normalize_text(s: str) -> str:
    return re.sub(r"\s+", " ", s.strip().strip(".").lower())


@register_grader("exact", options=_POINT_OPTIONS, version=1)
def grade_exact(extraction: Extraction, sample: Sample, ctx: ScoringContext) -> Grade:
    """Case- and whitespace-insensitive string equality."""
    if (g := _no_answer(extraction, ctx)) is not None:
        return g
    ok = normalize_text(extraction.answer or "") == normalize_text(sample.answer)
    return _grade(ctx, extraction, ok, "match" if ok else "mismatch")


def gold_letter(sample: Sample) -> str:
    """The gold option letter: the answer itself, or the letter of the option whose text it is."""
    a = sample.answer.strip()
    m = re.fullmatch(r"\(?([A-Za-z])\)?\.?", a)
    if m:
        return m.group(1).upper()
    for i, c in enumerate(sample.choices or ()):
        if c.strip() == a:
            return chr(ord("A") + i)
    return a.upper()


@register_grader("choice", options=_POINT_OPTIONS, version=1)
def grade_choice(extraction: Extraction, sample: Sample, ctx: ScoringContext) -> Grade:
    """Letter equality (strict: no answer is wrong)."""
    if (g := _no_answer(extraction, ctx)) is not None:
        return g
    ok = (extraction.answer or "").strip().upper() == gold_letter(sample)
    return _grade(ctx, extraction, ok, "match" if ok else "mismatch")


OFFICIAL_SEED = 12345


def official_random_guess(n_options: int, seed: int = OFFICIAL_SEED) -> int:
    """The official MMLU-Pro script's guess for an output with no answer: it calls
    ``random.seed(12345)`` before every guess, so the guess is the same index for every item with
    the same number of options."""
    rng = random.Random(seed)
    return rng.randint(0, n_options - 1)


@register_grader("choice_official_compatible", options=("seed",), version=1)
def grade_choice_official_compatible(extraction: Extraction, sample: Sample, ctx: ScoringContext) -> Grade:
    """Official-compatible MMLU-Pro grading: letter equality, and when no letter was found the
    official script's seeded random guess (``random.seed(12345); random.randint(0, n - 1)``), so the
    number includes lucky guesses like the published ones do. Use with the ``mmlu_pro_official``
    extractor and report it under the metric ``accuracy_official_compatible``; the extraction
    status stays ``no_answer``, so ``accuracy_strict`` still gives the strict number."""
    if extraction.answer is not None:
        ok = extraction.answer.strip().upper() == gold_letter(sample)
        return Grade(ok, "match" if ok else "mismatch")
    n = len(sample.choices or ())
    if n == 0:
        return Grade(False, extraction.status)
    guess = official_random_guess(n, int(ctx.grade_options.get("seed", OFFICIAL_SEED)))
    hit = chr(ord("A") + guess) == gold_letter(sample)
    return Grade(hit, "random_guess_hit" if hit else "random_guess_miss")


@register_grader(
    "math", options=("timeout_s", "rel_tol", "max_chars", "set_relation", *_POINT_OPTIONS), version=2
)
def grade_math(extraction: Extraction, sample: Sample, ctx: ScoringContext) -> Grade:
    """Mathematical equivalence (see mathequiv.py): exact fast paths in-process, math-verify and
    sympy in a sandboxed worker with a hard ``timeout_s`` (default 5 s) wall-clock kill."""
    if (g := _no_answer(extraction, ctx)) is not None:
        return g
    opts = ctx.grade_options
    v = math_equal(
        sample.answer,
        extraction.answer or "",
        timeout_s=float(opts.get("timeout_s", DEFAULT_TIMEOUT_S)),
        rel_tol=float(opts.get("rel_tol", DEFAULT_REL_TOL)),
        max_chars=int(opts.get("max_chars", DEFAULT_MAX_CHARS)),
        set_relation=bool(opts.get("set_relation", True)),
    )
    return _grade(ctx, extraction, v.equal, v.reason)


def _range(ctx: ScoringContext) -> tuple[int | None, int | None]:
    lo = ctx.grade_options.get("min", 0)
    hi = ctx.grade_options.get("max", 999)
    return (None if lo is None else int(lo)), (None if hi is None else int(hi))


@register_grader("integer", options=("min", "max", *_POINT_OPTIONS), version=1)
def grade_integer(extraction: Extraction, sample: Sample, ctx: ScoringContext) -> Grade:
    """Integer equality (AIME: answers 0-999; ``min``/``max`` change the range, null for none).
    An answer outside the range or not an integer is wrong."""
    if (g := _no_answer(extraction, ctx)) is not None:
        return g
    gold = parse_integer(sample.answer)
    if gold is None:
        raise ValueError(f"item {sample.id}: gold answer {sample.answer!r} is not an integer")
    pred = parse_integer(extraction.answer or "")
    if pred is None:
        return _grade(ctx, extraction, False, "not_an_integer")
    lo, hi = _range(ctx)
    if (lo is not None and pred < lo) or (hi is not None and pred > hi):
        return _grade(ctx, extraction, False, "out_of_range")
    ok = pred == gold
    return _grade(ctx, extraction, ok, "match" if ok else "mismatch")

"""Sandbox side of the cross-grader diff (graders_compare.py): graders that call sympy on model text.

Runs only inside the sandbox's worker processes (``_zygote.worker_loop`` dispatches here when a
request's options carry ``"check"``), never in the evaluating process. Each returns
``(equal, reason)`` where ``reason`` is a JSON object: ``{"extracted": ...}``, or ``{"na": why}``
when the grader cannot run here (the lmeval extra missing or unimportable).
"""

from __future__ import annotations

import json
from typing import Any

_MV_DELIMITED = ("$", "\\(", "\\[", "\\boxed")
_minerva_error: str | None = None  # per worker process: None = not tried yet, "" = importable


def _as_text(parsed: list[Any]) -> str | None:
    # math-verify's parse returns [sympy object, the string it came from] (or []).
    if not parsed:
        return None
    return str(parsed[-1]) if len(parsed) > 1 else str(parsed[0])


def math_verify_plain(gold: str, pred: str) -> tuple[bool, str]:
    """Plain math-verify as lighteval calls it: parse both with LaTeX + expression extraction, verify.
    A bare gold answer is wrapped in ``$...$`` (lighteval hands it the reference solution, where the
    answer sits in math mode)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig(), ExprExtractionConfig()]
    gold_text = gold if any(d in gold for d in _MV_DELIMITED) else f"${gold}$"
    g = parse(gold_text, config)
    p = parse(pred, config)
    return bool(verify(g, p)), json.dumps({"extracted": _as_text(p)})


def minerva(gold: str, pred: str) -> tuple[bool, str]:
    """lm-eval's Minerva math check: ``get_unnormalized_answer`` ("Final Answer: The final answer is
    X. I hope it is correct."), ``normalize_final_answer``, then ``is_equiv`` against the gold."""
    global _minerva_error
    if _minerva_error is None:
        try:
            from lm_eval.tasks.minerva_math import utils
        except Exception as e:  # ImportError, or its own AssertionError on the antlr4 version
            # Remembered: a second import of a half-imported module may "succeed" without its checks.
            _minerva_error = f"lm_eval.tasks.minerva_math.utils: {type(e).__name__}: {e}"[:300]
        else:
            _minerva_error = ""
    if _minerva_error:
        return False, json.dumps({"na": _minerva_error})
    from lm_eval.tasks.minerva_math import utils

    raw = utils.get_unnormalized_answer(pred)
    if raw == "[invalidanswer]":
        return False, json.dumps({"extracted": None})
    answer = utils.normalize_final_answer(raw)
    return bool(utils.is_equiv(answer, gold)), json.dumps({"extracted": answer})


CHECKS = {"math_verify": math_verify_plain, "minerva": minerva}


def run(check: str, gold: str, pred: str) -> tuple[bool, str]:
    """One check by name (see ``CHECKS``)."""
    return CHECKS[check](gold, pred)

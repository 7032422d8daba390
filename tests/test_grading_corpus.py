"""evalkit's math grading on the labelled corpus (tests/grading_corpus/math.jsonl) is at least as
accurate as plain math-verify, with no more false positives (evalkit issue 11).

Runs in-process through the runner's scoring path (``boxed`` extractor + ``math`` grader, with each
case's ``finish_reason``); ``bench/grader_accuracy.py`` prints the full table against math-verify.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from evalkit.scoring.registry import score_completion
from evalkit.types import Completion, Sample, ScoringContext

CORPUS = Path(__file__).parent / "grading_corpus" / "math.jsonl"
# Plain math-verify 0.9.0 on this corpus, measured with bench/grader_accuracy.py on 2026-12-01
# (commit 9242a8f; 435 cases): right on 399, 5 false positives.
MATH_VERIFY_RIGHT = 399
MATH_VERIFY_FALSE_POSITIVES = 5


@pytest.mark.slow  # ~10 s: 435 cases, about a third through the sandboxed worker
def test_evalkit_at_or_above_math_verify_on_the_corpus() -> None:
    cases = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    counts: Counter[str] = Counter()
    wrong = []
    for i, c in enumerate(cases):
        sample = Sample(id=str(i), task="corpus", question="", answer=str(c["gold"]))
        completion = Completion(c["pred"], c.get("finish_reason", "stop"))
        _e, grade = score_completion(completion, sample, "boxed", "math", ScoringContext())
        if grade.correct == c["equal"]:
            counts["right"] += 1
        else:
            wrong.append((c["class"], c["equal"], c["pred"][-80:], c["gold"][-40:]))
        counts["fp"] += bool(grade.correct and not c["equal"])
    assert len(cases) == 435
    assert counts["right"] >= MATH_VERIFY_RIGHT, wrong
    assert counts["fp"] <= MATH_VERIFY_FALSE_POSITIVES, [w for w in wrong if not w[1]]

"""Hostile model outputs, through every grader (tests/test_scoring_adversarial.py holds the deeper
cases per grader: payloads, megabytes of junk, killed workers; its ``check`` is reused here): each
is graded within the hard limit + 1 s, nothing runs, and a run answered with them completes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from harness import cli, items_of, run_args
from test_scoring_adversarial import LIMIT_S, check

from evalkit.scoring.mathequiv import clear_cache
from evalkit.scoring.sandbox import default_sandbox

pytestmark = pytest.mark.slow  # subprocess runs and real servers: the full tier (make test)

MARKER = Path("/tmp") / f"evalkit-PWNED-{uuid.uuid4().hex}"
HOSTILE = {
    "code in boxed": f"\\boxed{{__import__('os').system('touch {MARKER}')}}",
    "eval in answer line": f"Answer: eval(\"open('{MARKER}', 'w')\")",
    "power tower": "\\boxed{9^{9^{9^{9^{9}}}}}",
    "huge number": "\\boxed{" + "9" * 100_000 + "}",
    "huge factorial": "\\boxed{(10^{100})!}",
    "5 MB output": "The answer is (B). " + "z" * 5_000_000,
    "NUL bytes": "The answer is \x00(A)\x00 \\boxed{5\x00}",
    "deeply nested braces": "\\boxed{" + "{" * 50_000 + "5" + "}" * 50_000 + "}",
    "unclosed boxes": "\\boxed{" * 20_000,
    "invalid unicode": "The answer is \ud800 \\boxed{\udfff5}",
    "right-to-left marks": "The answer is \u202e(A)\u202c \\boxed{\u200f5}",
    "zero-width joiners": "Answer: 5\u200d\u200b",
    "sympy injection": "\\boxed{Symbol('x').__class__.__init__.__globals__}",
    "latex macro bomb": "\\boxed{" + "\\frac{1}{" * 2_000 + "2" + "}" * 2_000 + "}",
    "matrix bomb": "\\boxed{\\begin{pmatrix}" + "1&" * 20_000 + "1\\end{pmatrix}}",
    "many answers": "The answer is (A). The answer is (B). " * 50_000,
    "only think tags": "<think>" + "hmm " * 100_000,
}
GRADERS = [  # (extractor, grader, gold, choices)
    ("boxed", "math", "5", None),
    ("answer_line", "math", "5", None),
    ("integer", "integer", "5", None),
    ("choice", "choice", "A", ("w", "x", "y", "z")),
    ("choice", "choice_official_compatible", "A", ("w", "x", "y", "z")),
    ("mmlu_pro_official", "choice", "A", ("w", "x", "y", "z")),
    ("exact", "exact", "5", None),
]


@pytest.fixture(scope="module", autouse=True)
def _started_pool() -> None:
    default_sandbox().start()


@pytest.mark.parametrize("extractor,grader,gold,choices", GRADERS, ids=[f"{e}-{g}" for e, g, _, _ in GRADERS])
def test_hostile_outputs_are_graded_in_time_without_running(extractor, grader, gold, choices) -> None:
    for name, text in HOSTILE.items():
        clear_cache()
        _, g, seconds = check(text, gold=gold, extractor=extractor, grader=grader, choices=choices)
        assert seconds < LIMIT_S + 1, f"{name}: {seconds:.1f} s"
        assert isinstance(g.correct, bool), name
    assert not MARKER.exists(), "a model output was executed"


def test_a_run_answered_with_hostile_outputs_completes(fake_server, task_dir: Path, tmp_path: Path) -> None:
    texts = list(HOSTILE.values())
    url, _ = fake_server(answer=lambda i: texts[i % len(texts)])
    out = tmp_path / "hostile"
    r = cli(*run_args(url, task_dir, out, "--concurrency", "4"))
    assert r.returncode == 0, r.stderr
    assert all(status == "ok" for status, _ in items_of(out).values()) and len(items_of(out)) == 40
    assert not MARKER.exists()


HOSTILE_OUTPUTS = len(HOSTILE)

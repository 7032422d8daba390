"""Adversarial model outputs: no code runs, every check returns within the hard limit + 1 s, and the
evaluating process (and the sandbox) survive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from evalkit.scoring.mathequiv import clear_cache
from evalkit.scoring.registry import score_completion
from evalkit.scoring.sandbox import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, default_sandbox
from evalkit.types import Completion, Extraction, Grade, Sample, ScoringContext

LIMIT_S = 2.0  # a short hard limit keeps the test fast; one case below uses the 5 s default


def check(
    text: str,
    gold: str = "5",
    extractor: str = "boxed",
    grader: str = "math",
    limit: float = LIMIT_S,
    choices: tuple[str, ...] | None = None,
) -> tuple[Extraction, Grade, float]:
    sample = Sample(id="1", task="t", question="q", answer=gold, choices=choices)
    ctx = ScoringContext(grade_options={"timeout_s": limit} if grader == "math" else {})
    t = time.perf_counter()
    e, g = score_completion(Completion(text=text, finish_reason="stop"), sample, extractor, grader, ctx)
    return e, g, time.perf_counter() - t


@pytest.fixture(scope="module", autouse=True)
def _started_pool() -> None:
    default_sandbox().start()  # the one-off start-up is not part of any check's time


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_cache()


def test_python_payloads_never_run(tmp_path: Path) -> None:
    marker = tmp_path / f"PWNED_{uuid.uuid4().hex}"
    cmd = f"touch {marker}"
    payloads = [
        f"__import__('os').system('{cmd}')",
        f'__import__("os").system("{cmd}")',
        f"eval(\"__import__('os').system('{cmd}')\")",
        f"exec(\"import os; os.system('{cmd}')\")",
        f"(lambda: __import__('os').system('{cmd}'))()",
        f"Symbol('x').__class__.__init__.__globals__['__builtins__']['__import__']('os').system('{cmd}')",
    ]
    check("\\boxed{1}", gold="0")  # start the sandbox first: the bound is on grading, not start-up
    for p in payloads:
        for text in (
            f"The answer is \\boxed{{{p}}}",
            f"Final Answer: The final answer is {p}. I hope it is correct.",
            p,
        ):
            for extractor, grader, gold in (
                ("boxed", "math", "0"),
                ("integer", "integer", "0"),
                ("choice", "choice", "A"),
            ):
                e, g, dt = check(
                    text,
                    gold=gold,
                    extractor=extractor,
                    grader=grader,
                    choices=("1", "2") if grader == "choice" else None,
                )
                assert not g.correct
                assert dt < LIMIT_S + 1
    assert not marker.exists(), "model text was executed"


def test_evaluating_process_never_loads_sympy() -> None:
    """The parent process cannot eval model text through sympy: it never imports it."""
    code = (
        "import sys\n"
        "from evalkit.scoring.registry import score_completion\n"
        "from evalkit.types import Completion, Sample, ScoringContext\n"
        "pairs = [('\\\\boxed{x^2+2x+1}', '(x+1)^2'), ('\\\\boxed{\\\\frac{1}{2}}', '0.5'),\n"
        "         ('\\\\boxed{[1,2)}', '[1,2)')]\n"
        "for pred, gold in pairs:\n"
        "    s = Sample(id='1', task='t', question='', answer=gold)\n"
        "    c = Completion(text=pred, finish_reason='stop')\n"
        "    e, g = score_completion(c, s, 'boxed', 'math', ScoringContext())\n"
        "    assert g.correct, (pred, g)\n"
        "bad = [m for m in ('sympy', 'math_verify', 'latex2sympy2_extended') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


@pytest.mark.slow  # seconds each (sandbox time limits, real data, full charts): the full tier
def test_power_tower_is_killed_at_the_default_limit() -> None:
    e, g, dt = check("\\boxed{9^{9^{9^{9}}}}", gold="5", limit=DEFAULT_TIMEOUT_S)
    assert e.answer == "9^{9^{9^{9}}}"
    assert (g.correct, g.reason) == (False, "timeout")
    assert DEFAULT_TIMEOUT_S - 0.5 < dt < DEFAULT_TIMEOUT_S + 1


@pytest.mark.parametrize(
    "answer",
    [
        "(x+1)^{100000}",  # symbolic expansion
        "9^{9^{9}}",  # a 370-million-digit integer
        "10^{10^{10}}",
    ],
)
@pytest.mark.slow  # seconds each (sandbox time limits, real data, full charts): the full tier
def test_expensive_answers_return_within_the_limit(answer: str) -> None:
    e, g, dt = check(f"\\boxed{{{answer}}}", gold="5")
    assert not g.correct
    assert dt < LIMIT_S + 1, (answer, g, dt)


@pytest.mark.parametrize(
    "name, text",
    [
        ("words", ("the answer is maybe " * 60_000)[:1_000_000]),
        ("unclosed boxes", "\\boxed{" * 150_000),
        ("open braces", "{" * 1_000_000),
        ("one long line", "Answer: " * 125_000),
        ("think tags", "<think>" * 140_000),
        ("box at the end", "x" * 1_000_000 + "\\boxed{5}"),
        ("dollars", "$" * 1_000_000),
        ("bold", "**" * 500_000),
        ("minerva anchors", "final answer is " * 62_000),
        ("closed boxes", "\\boxed{1}" * 110_000),
        ("answer lines", "Answer: X\n" * 100_000),
    ],
)
@pytest.mark.slow  # seconds each (sandbox time limits, real data, full charts): the full tier
def test_a_megabyte_of_text(name: str, text: str) -> None:
    for extractor, grader, gold, choices in (
        ("boxed", "math", "5", None),
        ("answer_line", "math", "5", None),
        ("choice", "choice", "A", ("w", "x", "y", "z")),  # option texts that the junk never names
        ("integer", "integer", "5", None),
        ("mmlu_pro_official", "choice", "A", ("w", "x", "y", "z")),
    ):
        e, g, dt = check(text, gold=gold, extractor=extractor, grader=grader, choices=choices)
        assert dt < LIMIT_S + 1, (name, extractor, dt)
        # Junk is never a right answer (the official MMLU-Pro regexes read "Answer: Answer" as A, as the
        # official script does: reproduced on purpose).
        if name != "box at the end" and extractor != "mmlu_pro_official":
            assert not g.correct, (name, extractor, e)
    if name == "box at the end":
        assert check(text)[1].correct


@pytest.mark.slow  # seconds each (sandbox time limits, real data, full charts): the full tier
def test_deeply_nested_braces() -> None:
    deep = "{" * 450 + "5" + "}" * 450  # within the length cap: reaches the parser
    e, g, dt = check(f"\\boxed{{{deep}}}", gold="5")
    assert dt < LIMIT_S + 1
    very_deep = "{" * 100_000 + "5" + "}" * 100_000
    e, g, dt = check(f"\\boxed{{{very_deep}}}", gold="5")
    assert (g.correct, g.reason) == (False, "answer_too_long") and dt < LIMIT_S + 1
    frac = "\\frac{1}{" * 200 + "2" + "}" * 200
    e, g, dt = check(f"\\boxed{{{frac}}}", gold="5")
    assert not g.correct and dt < LIMIT_S + 1


@pytest.mark.parametrize(
    "answer, gold, correct",
    [
        ("\uff15", "5", True),  # fullwidth 5 is the digit 5
        ("\u0663", "3", True),  # Arabic-Indic 3
        ("\u00bd", "\\frac{1}{2}", True),  # unicode math reads as its LaTeX (mathequiv.unicode_to_latex)
        ("\u00bd", "\\frac{1}{3}", False),
        ("5\U0001f600", "5", False),
        ("\u202e5", "5", False),  # right-to-left override
        ("5\x00", "5", False),
        ("\ud800", "5", False),  # a lone surrogate
        ("\\text{caf\u00e9}", "\\text{caf\u00e9}", True),
        ("x\u00b2", "x^2", True),
        ("x\u00b2", "x^3", False),
    ],
)
def test_unicode(answer: str, gold: str, correct: bool) -> None:
    e, g, dt = check(f"\\boxed{{{answer}}}", gold=gold)
    assert g.correct is correct, (answer, g)
    assert dt < LIMIT_S + 1


@pytest.mark.slow  # seconds each (sandbox time limits, real data, full charts): the full tier
def test_the_sandbox_survives_and_replaces_killed_workers() -> None:
    sb = default_sandbox()
    assert sb.check("x^2", "x \\cdot x") == (True, "equivalent")
    before = sb.stats.started
    # A hanging check is killed; the next one gets a fresh worker.
    assert sb.check("5", "9^{9^{9^{9}}}", timeout_s=1.0) == (False, "timeout")
    assert sb.check("\\frac{2}{4}", "0.5") == (True, "equivalent")
    assert sb.stats.started > before
    # A worker killed from outside while idle is replaced transparently.
    for pid in sb.worker_pids():
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.1)
    assert sb.check("2\\sqrt{2}", "\\sqrt{8}") == (True, "equivalent")


def test_workers_run_under_a_memory_cap() -> None:
    sb = default_sandbox()
    sb.start()
    pids = sb.worker_pids()
    assert len(pids) == sb.size
    for pid in pids:
        limits = Path(f"/proc/{pid}/limits")
        if not limits.exists():
            pytest.skip("no /proc on this platform")
        line = next(ln for ln in limits.read_text().splitlines() if ln.startswith("Max address space"))
        assert str(sb.memory_mb * 1024 * 1024) in line.split(), line
    assert sb.memory_mb == DEFAULT_MEMORY_MB

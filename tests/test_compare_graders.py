"""The cross-grader diff: `evalkit rescore RUN --compare-graders` and `evalkit grade --compare-graders`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import runfolders
import typer
from typer.testing import CliRunner

from evalkit.cli import commands_grade
from evalkit.errors import EvalkitError
from evalkit.run.compare_graders import compare_run_graders
from evalkit.scoring.graders_compare import (
    hendrycks_is_equiv,
    hendrycks_last_boxed,
    official_for,
    parse_grader_names,
)
from evalkit.tasks.spec import TaskSpec
from evalkit.types import Sample
from tests.conftest import REPO, SHARED_DATA, run_cli

ALL = "evalkit,math-verify,official,minerva"
MATH_SPEC = {
    "name": "mini_math",
    "version": 1,
    "dataset": {"files": ["mini_math.jsonl"]},
    "fields": {"question": "problem", "answer": "answer"},
    "prompt": {"template": "{{ question }}"},
    "extract": "boxed",
    "grade": "math",
}
MMLU_SPEC = {
    "name": "mini_mmlu_pro",
    "version": 1,
    "dataset": {"files": ["mini.jsonl"]},
    "fields": {"question": "question", "answer": "answer", "choices": "options"},
    "prompt": {"template": "{{ question }}"},
    "extract": "choice",
    "grade": "choice",
    "scorers": [{"name": "official", "extract": "mmlu_pro_official", "grade": "choice_official_compatible"}],
    "generation": {"stop": ["Question:"]},
}


def make_run(root: Path) -> Path:
    run = root / "run"
    m = [Sample(f"m{i}", "mini_math", "q", gold) for i, gold in enumerate(["\\frac12", "34", "4", "10"])]
    c = Sample("c1", "mini_mmlu_pro", "q", "B", choices=("1", "2", "3", "4"))
    texts = [
        "so $\\boxed{0.5}$",  # all right (Hendrycks maps 0.5 to \frac{1}{2})
        "Final Answer: The final answer is 34. I hope it is correct.",  # no box: official wrong
        "\\boxed{5}",  # all wrong
        "The total is $10$ apples.",  # unboxed: math-verify reads 10, evalkit's boxed extractor does not
    ]
    recs = [
        runfolders.record("mini_math", s.id, 0, correct=False, text=t, sample=s)
        for s, t in zip(m, texts, strict=True)
    ]
    recs += [
        # evalkit reads the closing statement; the official regexes take the last standalone letter
        runfolders.record(
            "mini_mmlu_pro", "c1", 0, correct=False, sample=c, text="The only option that fits is (B), not A."
        ),
        runfolders.record("mini_mmlu_pro", "c2", 0, correct=None, sample=c),  # an error: skipped
    ]
    runfolders.write_records(run, recs)
    manifest = {
        "run_id": "run",
        "tasks": {
            s["name"]: {"spec": TaskSpec.model_validate(s).model_dump(mode="json")}
            for s in (MATH_SPEC, MMLU_SPEC)
        },
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def test_rescore_compare_graders_on_a_run_folder(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    before = (run / "records.jsonl").read_bytes()
    result, path = compare_run_graders(run, parse_grader_names(ALL), threads=2)
    scores = result.scores()
    # evalkit's own math extraction evolves (unboxed answers); the rows below hold whatever it reads
    assert scores["mini_math"]["evalkit"][1] == 4
    assert scores["mini_math"]["math-verify"] == (3, 4)
    assert scores["mini_math"]["official"] == (1, 4)  # Hendrycks: boxed answers only
    assert scores["mini_mmlu_pro"]["evalkit"] == (1, 1)
    assert scores["mini_mmlu_pro"]["official"] == (0, 1)
    assert "math-verify" not in scores["mini_mmlu_pro"]  # n/a for multiple choice
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert {(r["task"], r["sample_id"]) for r in rows} == {
        ("mini_math", "m1"),
        ("mini_math", "m3"),
        ("mini_mmlu_pro", "c1"),
    }
    c1 = next(r for r in rows if r["sample_id"] == "c1")
    assert c1["gold"] == "B" and c1["repeat"] == 0
    assert c1["graders"]["evalkit"] == {"extracted": "B", "correct": True}
    assert c1["graders"]["official"] == {"extracted": "A", "correct": False}
    assert c1["graders"]["math-verify"] is None
    m3 = next(r for r in rows if r["sample_id"] == "m3")
    assert m3["graders"]["math-verify"] == {"extracted": "10", "correct": True}
    assert m3["graders"]["official"] == {"extracted": None, "correct": False}
    assert (run / "records.jsonl").read_bytes() == before  # a diagnosis, not a rescore


def test_rescore_command_prints_the_summary(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    app = typer.Typer()
    commands_grade.register(app)
    res = CliRunner().invoke(app, ["rescore", str(run), "--compare-graders", "evalkit,official"])
    assert res.exit_code == 0, res.output
    assert "mini_math: evalkit " in res.output and ", official 0.2500 (1/4)" in res.output
    assert "mini_mmlu_pro: evalkit 1.0000 (1/1), official 0.0000 (0/1)" in res.output
    assert re.search(r"evalkit vs official: \d of 5 items disagree", res.output)
    assert "items where the graders disagree, written to" in res.output
    bad = CliRunner().invoke(app, ["rescore", str(run), "--compare-graders", "evalkit,nope"])
    assert bad.exit_code != 0


@pytest.mark.slow  # three graders over a file in subprocesses
def test_grade_file_compare_graders(tmp_path: Path) -> None:
    src = tmp_path / "answers.jsonl"
    lines = [
        {"pred": "so $\\boxed{\\frac{1}{2}}$", "gold": "\\frac12"},
        {"pred": "Final Answer: The final answer is 34. I hope it is correct.", "gold": "34"},
        {"pred": "x = \\boxed{3}", "gold": "4"},
    ]
    src.write_text("".join(json.dumps(x) + "\n" for x in lines))
    r = run_cli(
        "grade", "--kind", "math", str(src), "--out", str(tmp_path / "g.jsonl"), "--compare-graders", ALL
    )
    assert r.returncode == 0, r.stderr
    assert "math-verify 0.6667 (2/3), official 0.3333 (1/3)" in r.stderr
    rows = [json.loads(x) for x in (tmp_path / "answers.disagreements.jsonl").read_text().splitlines()]
    assert [r["sample_id"] for r in rows] == ["2"]
    assert rows[0]["graders"]["official"] == {"extracted": None, "correct": False}


@pytest.mark.slow  # a subprocess run with the sandbox
def test_graders_that_call_sympy_never_run_in_the_evaluating_process(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    code = (
        "import sys; from evalkit.run.compare_graders import compare_run_graders\n"
        f"r, _ = compare_run_graders({str(run)!r}, ['evalkit', 'math-verify', 'official', 'minerva'])\n"
        "assert r.scores()['mini_math']['math-verify'] == (3, 4), r.scores()\n"
        "bad = [m for m in ('sympy', 'math_verify', 'lm_eval') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr


def test_minerva_is_reported_na_or_graded(tmp_path: Path) -> None:
    result, _ = compare_run_graders(make_run(tmp_path), ["evalkit", "minerva"], threads=1)
    scores = result.scores()["mini_math"]
    if "minerva" in result.unavailable:  # lm_eval missing, or its antlr4==4.11 pin unmet
        assert "minerva" not in scores and all(r["graders"]["minerva"] is None for r in result.rows)
    else:
        assert scores["minerva"][0] >= 1  # "Final Answer: The final answer is 34." is Minerva's format


@pytest.mark.parametrize(
    "a, b, equal",
    [
        ("\\frac12", "\\frac{1}{2}", True),
        ("0.5", "\\frac{1}{2}", True),
        ("\\dfrac{3}{4}", "\\frac34", True),
        ("3/4", "\\frac{3}{4}", True),
        ("x = 5", "5", True),
        ("10\\%", "10", True),
        ("\\left(1,2\\right)", "(1,2)", True),
        ("90^\\circ", "90", True),
        ("\\sqrt3", "\\sqrt{3}", True),
        ("1000", "1,000", False),  # Hendrycks' check has no digit grouping
        ("0.50", "\\frac{1}{2}", False),  # only the literal "0.5"
        ("2", "3", False),
    ],
)
def test_hendrycks_is_equiv(a: str, b: str, equal: bool) -> None:
    assert hendrycks_is_equiv(a, b) is equal


def test_hendrycks_last_boxed() -> None:
    assert hendrycks_last_boxed("a \\boxed{1} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert hendrycks_last_boxed("no box") is None
    assert hendrycks_last_boxed("\\boxed{unclosed") is None


def test_official_applies_where_a_benchmark_has_one() -> None:
    assert official_for("mmlu_pro", "choice", ["choice", "mmlu_pro_official"]) == "mmlu_pro"
    assert official_for("math500", "math", ["boxed"], "HuggingFaceH4/MATH-500") == "hendrycks_math"
    assert official_for("aime_2024", "math", ["boxed"], "AI-MO/aimo-validation-aime") is None
    assert official_for("basic_facts", "exact", ["exact"]) is None
    with pytest.raises(EvalkitError):
        parse_grader_names("evalkit,lighteval")


@pytest.mark.slow
def test_compare_graders_on_a_real_smollm2_math500_run(llama_server: str, tmp_path: Path) -> None:
    if not (SHARED_DATA / "hf" / "HuggingFaceH4" / "MATH-500").is_dir():
        pytest.skip(f"MATH-500 is not in the shared data folder {SHARED_DATA}")
    out = tmp_path / "run"
    r = run_cli(
        "run", "-t", "math500", "-m", f"openai:{llama_server}@smollm2", "--limit", "3", "--max-tokens", "96",
        "--data-dir", str(SHARED_DATA), "-M", "body.repeat_penalty=1.0", "--out", str(out), "--no-progress",
        env={"EVALKIT_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rc = run_cli("rescore", str(out), "--compare-graders", ALL)
    assert rc.returncode == 0, rc.stderr
    print(rc.stdout)
    assert rc.stdout.startswith("math500: evalkit ")
    assert "evalkit vs math-verify:" in rc.stdout and "of 3 items disagree" in rc.stdout
    assert (out / "disagreements.jsonl").is_file()

"""`evalkit grade`: a JSON-lines file graded through the runner's scoring path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evalkit.cli import app
from evalkit.errors import EvalkitError
from tests.conftest import run_cli


def write_lines(path: Path, rows: list[dict | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def graded(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_grade_math(tmp_path: Path) -> None:
    f = write_lines(
        tmp_path / "in.jsonl",
        [
            {"id": "a", "pred": "We get $\\boxed{\\frac{1}{2}}$.", "gold": "0.5"},
            {"pred": "\\dfrac{9}{7}", "gold": "9/7"},
            {"pred": "Final Answer: The final answer is $x=3$. I hope it is correct.", "gold": 3},
            {"pred": "\\boxed{4\\sqrt{2}}", "gold": "4", "extra": [1, 2]},
            {
                "pred": "I could not finish the computation in time, sorry about that, it was long.",
                "gold": "4",
            },
        ],
    )
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(app, ["grade", "--kind", "math", str(f), "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = graded(out.read_text())
    assert [r["correct"] for r in rows] == [True, True, True, False, False]
    assert rows[0]["id"] == "a" and rows[0]["extracted"] == "\\frac{1}{2}"
    assert rows[3]["extra"] == [1, 2]  # the input fields are written back unchanged
    assert rows[4]["reason"] == "no_answer" and rows[4]["extracted"] is None
    assert "accuracy 0.6000 (3/5)" in res.output and "no_answer 1" in res.output and "lines/s" in res.output


def test_grade_choice_and_integer_to_stdout(tmp_path: Path) -> None:
    f = write_lines(
        tmp_path / "c.jsonl",
        [
            {"pred": "The answer is (B).", "gold": "B", "choices": ["1", "2", "3", "4"]},
            {"pred": "C", "gold": "B"},
            {"pred": "so the answer is 42", "gold": "C", "choices": ["1", "2", "42", "4"]},
            {"pred": "\\boxed{blank}", "gold": "A", "choices": ["1", "2", "3", "4", "5"]},
        ],
    )
    res = CliRunner().invoke(app, ["grade", "--kind", "choice", str(f)])
    assert res.exit_code == 0, res.output
    assert [r["correct"] for r in graded(res.output)] == [True, False, True, False]
    assert "abstain 1" in res.output
    f = write_lines(
        tmp_path / "i.jsonl", [{"pred": "\\boxed{033}", "gold": "33"}, {"pred": "1,000", "gold": 1000}]
    )
    res = CliRunner().invoke(app, ["grade", "--kind", "integer", str(f)])
    rows = graded(res.output)
    assert rows[0]["correct"] and rows[1]["reason"] == "out_of_range"


def test_grade_with_a_tasks_settings(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "amc_demo.yaml").write_text(
        "name: amc_demo\nversion: 1\ndataset: {files: [amc_demo.jsonl]}\n"
        "fields: {question: problem, answer: answer, choices: choices}\n"
        "prompt: {template: '{{ question }}'}\n"
        "extract: choice\n"
        "grade: {name: choice, options: {points: amc}}\n"
        "generation: {stop: ['Question:']}\n"
    )
    pred = "The answer is (A).\n\nQuestion: an invented one\nThe answer is (C)."
    f = write_lines(
        tmp_path / "in.jsonl",
        [
            {"pred": pred, "gold": "A", "choices": ["1", "2", "3", "4", "5"]},
            {"pred": "\\boxed{blank}", "gold": "A", "choices": ["1", "2", "3", "4", "5"]},
        ],
    )
    res = CliRunner().invoke(app, ["grade", "--task", "amc_demo", "--tasks-dir", str(tasks), str(f)])
    assert res.exit_code == 0, res.output
    rows = graded(res.output)
    assert rows[0]["correct"] and rows[0]["points"] == 6.0  # cut at the task's stop sequence
    assert rows[1]["points"] == 1.5
    res = CliRunner().invoke(app, ["grade", "--kind", "choice", str(f)])
    assert not graded(res.output)[0]["correct"]  # without the task's stop sequence, (C) wins
    res = CliRunner().invoke(
        app, ["grade", "--task", "amc_demo", "--kind", "math", "--tasks-dir", str(tasks), str(f)]
    )
    assert isinstance(res.exception, EvalkitError) and "drop --kind" in str(res.exception)


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"pred": "1", "gold": "1"}', "{not json"], ":2: not valid JSON"),
        (['{"pred": "1"}'], ":1: missing field 'gold'"),
        (['{"gold": "1"}'], ":1: missing field 'pred'"),
        (['["pred", "gold"]'], ":1: each line must be a JSON object"),
        (['{"pred": 5, "gold": "1"}'], ":1: 'pred' must be a string"),
        (['{"pred": "A", "gold": "A", "choices": "ABCD"}'], ":1: 'choices' must be a list"),
        ([""], "no lines to grade"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path: Path, lines: list[str], message: str) -> None:
    f = write_lines(tmp_path / "bad.jsonl", lines)
    res = CliRunner().invoke(app, ["grade", "--kind", "math", str(f)])
    assert isinstance(res.exception, EvalkitError)
    assert message in str(res.exception) and str(f) in str(res.exception)


def test_cli_entry_point_reports_errors_and_exits_2(tmp_path: Path) -> None:
    f = write_lines(tmp_path / "bad.jsonl", ['{"pred": "1", "gold": "1"}', "{oops"])
    r = run_cli("grade", "--kind", "math", str(f), timeout=120)
    assert r.returncode == 2 and f"{f}:2: not valid JSON" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("grade", str(f), timeout=120)
    assert r.returncode == 2 and "give --kind" in r.stderr
    good = write_lines(tmp_path / "good.jsonl", [{"pred": "\\boxed{2}", "gold": "2"}])
    r = run_cli("grade", "--kind", "math", str(good), timeout=120)
    assert r.returncode == 0 and json.loads(r.stdout)["correct"] is True
    assert "accuracy 1.0000 (1/1)" in r.stderr

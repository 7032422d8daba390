"""Fresh problems: determinism by seed, every built-in template's answers checked by an independent
computation (plain Python, no sympy), dates, template errors, and the task-loading hook."""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction
from pathlib import Path

import pytest

from evalkit.errors import EvalkitError
from evalkit.tasks.generated import (
    BUILTIN_TEMPLATES_DIR,
    find_template,
    generate_items,
    load_generated,
    load_templates,
)
from evalkit.tasks.loader import load_task_file
from evalkit.tasks.registry import builtin_tasks_dir
from evalkit.tasks.samples import load_samples
from evalkit.tasks.spec import GenerateSpec

BUILTIN = BUILTIN_TEMPLATES_DIR / "fresh_arithmetic.templates.yaml"
DAY = dt.date(2026, 11, 29)


def independent_answer(template: str, v: dict) -> Fraction:
    """The answer of each built-in template, computed without sympy."""
    if template == "linear_equation":
        return Fraction(v["c"] - v["b"], v["a"])
    if template == "linear_equation_both_sides":
        return Fraction(v["d"] - v["b"], v["a"] - v["c"])
    if template == "modular_power":
        return Fraction(pow(v["a"], v["k"], v["m"]))
    if template == "linear_congruence":
        return Fraction(next(x for x in range(v["m"]) if (v["a"] * x - v["b"]) % v["m"] == 0))
    if template == "arithmetic_series_sum":
        return Fraction(sum(v["a"] + i * v["d"] for i in range(v["n"])))
    if template == "geometric_series_sum":
        return Fraction(sum(v["a"] * v["r"] ** i for i in range(v["n"])))
    if template == "sum_of_squares":
        return Fraction(sum(j * j for j in range(v["lo"], v["hi"] + 1)))
    if template == "fraction_sum":
        return Fraction(v["p1"], v["q1"]) + v["s"] * Fraction(v["p2"], v["q2"])
    if template == "average_speed":
        return Fraction(v["d1"] + v["d2"]) / (Fraction(v["d1"], v["v1"]) + Fraction(v["d2"], v["v2"]))
    raise AssertionError(f"no independent check for template {template}")


def test_answers_are_correct_by_independent_computation() -> None:
    rows = generate_items(BUILTIN, 180, seed=7, date=DAY)
    templates = {t.id for t in load_templates(BUILTIN).file.templates}
    assert {r["template"] for r in rows} == templates  # every template is exercised (20 items each)
    for r in rows:
        expected = independent_answer(r["template"], r["meta"]["variables"])
        assert Fraction(r["answer"]) == expected, r
        assert r["answer_type"] == ("integer" if expected.denominator == 1 else "fraction")
        # Fractions are in lowest terms, and the numbers in the question are the drawn ones.
        if r["answer_type"] == "fraction":
            p, q = map(int, r["answer"].split("/"))
            assert Fraction(p, q).denominator == q
    q = next(r for r in rows if r["template"] == "modular_power")
    v = q["meta"]["variables"]
    assert f"${v['a']}^{{{v['k']}}}$" in q["question"] and f"${v['m']}$" in q["question"]


def test_determinism_by_seed() -> None:
    a = generate_items(BUILTIN, 40, seed=3, date=DAY)
    b = generate_items(BUILTIN, 40, seed=3, date=DAY)
    c = generate_items(BUILTIN, 40, seed=4, date=DAY)
    assert a == b
    assert [r["question"] for r in a] != [r["question"] for r in c]
    assert len({r["question"] for r in a}) == 40 and len({r["id"] for r in a}) == 40  # distinct items
    # More items extend the list: the first 40 of n=60 are the items of n=40.
    assert generate_items(BUILTIN, 60, seed=3, date=DAY)[:40] == a


def test_dates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALKIT_FRESH_DATE", raising=False)
    assert {r["date"] for r in generate_items(BUILTIN, 5)} == {dt.date.today().isoformat()}
    assert {r["date"] for r in generate_items(BUILTIN, 5, date="2025-01-02")} == {"2025-01-02"}
    monkeypatch.setenv("EVALKIT_FRESH_DATE", "2024-12-31")
    assert {r["date"] for r in generate_items(BUILTIN, 5)} == {"2024-12-31"}
    # The date does not change the items themselves, only when they became public.
    strip = [{k: v for k, v in r.items() if k != "date"} for r in generate_items(BUILTIN, 5, seed=1)]
    assert strip == [
        {k: v for k, v in r.items() if k != "date"} for r in generate_items(BUILTIN, 5, seed=1, date=DAY)
    ]
    with pytest.raises(EvalkitError, match="YYYY-MM-DD"):
        generate_items(BUILTIN, 1, date="tomorrow")


def write_templates(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "t.templates.yaml"
    p.write_text("format: evalkit-templates/1\nname: custom\ntemplates:\n" + body, encoding="utf-8")
    return p


def test_custom_template_with_choice_and_derived(tmp_path: Path) -> None:
    p = write_templates(
        tmp_path,
        """
  - id: apples
    variables:
      who: {choice: [Ana, Ben]}
      n: {int: [3, 9]}
      k: {int: [2, 4]}
    derived: {total: "n*k"}
    where: ["total > 10"]
    question: >-
      {{ who }} buys {{ n }} bags of {{ k }} apples ({{ total }} in all).
      How many bags of {{ k|paren }}?
    answer: "total / k"
""",
    )
    rows = generate_items(p, 8, seed=0, date=DAY)
    for r in rows:
        v = r["meta"]["variables"]
        assert v["who"] in ("Ana", "Ben") and v["total"] == v["n"] * v["k"] > 10
        assert r["answer"] == str(v["n"]) and f"({v['total']} in all)" in r["question"]


@pytest.mark.parametrize(
    "body, message",
    [
        ("  - {id: a, variables: {x0: {int: [1, 3]}}, question: q, answer: 'y + x0'}\n", "not a number"),
        (
            "  - {id: a, variables: {x0: {int: [1, 3]}}, question: q, answer: 'x0 +* 1'}\n",
            "not a valid expression",
        ),
        ("  - {id: a, variables: {x0: {int: [3, 1]}}, question: q, answer: 'x0'}\n", "low is above high"),
        (
            "  - {id: a, variables: {x0: {int: [1, 2], float: 3}}, question: q, answer: 'x0'}\n",
            "Extra inputs",
        ),
        (
            "  - {id: a, variables: {x0: {int: [1, 2]}}, where: ['x0 > 5'], question: q, answer: 'x0'}\n",
            "no new item",
        ),
        (
            "  - {id: a, variables: {x0: {int: [1, 1]}}, question: 'q {{ x0 }}', answer: 'x0'}\n",
            "no new item",
        ),
        (
            "  - {id: a, variables: {x0: {int: [0, 0]}}, question: q, answer: '1/x0'}\n",
            r"values x0=0.*zoo is not a finite number",
        ),
    ],
)
def test_template_errors_are_clear(tmp_path: Path, body: str, message: str) -> None:
    p = write_templates(tmp_path, body)
    with pytest.raises(EvalkitError, match=message):
        generate_items(p, 2, seed=0, date=DAY)


def test_template_lookup_and_task_hook(tmp_path: Path) -> None:
    assert find_template("fresh_arithmetic.templates.yaml") == BUILTIN
    assert find_template("fresh_arithmetic") == BUILTIN
    mine = tmp_path / "fresh_arithmetic.templates.yaml"
    mine.write_bytes(BUILTIN.read_bytes())
    assert (
        find_template("fresh_arithmetic.templates.yaml", yaml_folder=tmp_path) == mine
    )  # next to the task wins
    with pytest.raises(EvalkitError, match="not found"):
        find_template("nope.yaml", yaml_folder=tmp_path)

    gen = GenerateSpec(template="fresh_arithmetic.templates.yaml", n=12, seed=5, date=DAY)
    loaded = load_generated(gen, tmp_path)
    assert (
        len(loaded.rows) == 12
        and loaded.revision is None
        and "seed 5" in loaded.source
        and "template file" in loaded.source
    )
    assert loaded.rows == generate_items(mine, 12, 5, DAY)
    assert load_generated(gen, tmp_path).sha256 == loaded.sha256


def test_builtin_fresh_task_loads_as_samples(tmp_path: Path) -> None:
    """The built-in fresh_arithmetic task (``dataset.generate``) loads as dated Samples."""
    path = builtin_tasks_dir() / "fresh_arithmetic.yaml"
    text = path.read_text(encoding="utf-8").replace("seed: 0}", "seed: 0, date: 2026-11-29}")
    assert "date: 2026-11-29" in text  # the replacement above took effect
    fixed = tmp_path / "fresh_arithmetic.yaml"
    fixed.write_text(text, encoding="utf-8")
    samples, loaded = load_samples(load_task_file(fixed), None)
    assert len(samples) == 50 and {s.date for s in samples} == {DAY}
    assert samples[0].answer == generate_items(BUILTIN, 1, 0, DAY)[0]["answer"]
    assert {s.meta["template"] for s in samples} >= {"linear_equation", "fraction_sum"}
    assert json.dumps(samples[0].to_dict())  # records serialise


def test_cli_writes_a_dataset_file(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from evalkit.cli import app

    out = tmp_path / "fresh.jsonl"
    r = CliRunner().invoke(
        app, ["contamination", "fresh", "--n", "9", "--seed", "2", "--date", "2026-11-29", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == generate_items(BUILTIN, 9, 2, DAY)
    assert "answer: " + rows[0]["answer"] in r.output

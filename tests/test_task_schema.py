"""Task YAML validation: every malformed variant gives a message naming file, line, field and fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from evalkit.errors import TaskError
from evalkit.scoring import scorer_version
from evalkit.tasks.loader import load_task_file
from evalkit.types import ScoringContext
from tests.conftest import run_cli

VALID = textwrap.dedent(
    """\
    name: demo_task
    description: a valid task
    version: 1
    dataset:
      files: [items.jsonl]
    fields:
      id: id
      question: question
      choices: options
      answer: answer
      meta: {category: category}
    date: 2024-11-06
    prompt:
      format: chat
      template: |
        {{ question }}
        {% for o in options %}({{ o.letter }}) {{ o.text }}
        {% endfor %}
    extract: choice
    grade: choice
    metrics: [accuracy]
    generation:
      max_tokens: 64
      temperature: 0.0
      stop: ["Question:"]
    report:
      breakdown: [category]
    """
)


def write(tmp_path: Path, text: str, name: str = "task.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_valid_task_loads(tmp_path: Path) -> None:
    t = load_task_file(write(tmp_path, VALID))
    assert t.spec.name == "demo_task"
    assert t.spec.generation.stop == ["Question:"]
    assert t.spec.extract.name == "choice"
    assert len(t.sha256) == 64


# (description, transformation of VALID, expected fragments of the message)
CASES = [
    (
        "unknown top-level key",
        lambda s: s.replace("version: 1", "version: 1\nversoin: 2"),
        ["task.yaml:4", "versoin", "unknown keys are errors"],
    ),
    (
        "missing required field",
        lambda s: s.replace("version: 1\n", ""),
        ["version", "add this required field"],
    ),
    (
        "bad name pattern",
        lambda s: s.replace("name: demo_task", "name: Demo Task"),
        ["task.yaml:1", "name", "lower-case letters"],
    ),
    (
        "both hf and files",
        lambda s: s.replace(
            "  files: [items.jsonl]", "  files: [items.jsonl]\n  hf: {path: a/b, revision: x}"
        ),
        ["dataset", "exactly one of 'hf'"],
    ),
    (
        "hub path malformed",
        lambda s: s.replace("  files: [items.jsonl]", "  hf: {path: not-a-hub-id, revision: abc}"),
        ["dataset.hf.path", "ORG/NAME"],
    ),
    (
        "hub dataset without revision",
        lambda s: s.replace("  files: [items.jsonl]", "  hf: {path: org/name}"),
        ["dataset.hf.revision", "add this required field"],
    ),
    (
        "unsupported file format",
        lambda s: s.replace("items.jsonl", "items.txt"),
        ["dataset", ".jsonl, .json, .csv, .parquet"],
    ),
    (
        "unknown extractor",
        lambda s: s.replace("extract: choice", "extract: choise"),
        ["task.yaml:19", "extract", "unknown extractor name 'choise'", "known:"],
    ),
    (
        "unknown grader",
        lambda s: s.replace("grade: choice", "grade: fuzzy"),
        ["grade", "unknown grader name 'fuzzy'"],
    ),
    (
        "unknown metric",
        lambda s: s.replace("metrics: [accuracy]", "metrics: [accuracy, f1_magic]"),
        ["task.yaml:21", "metrics", "unknown metric 'f1_magic'"],
    ),
    (
        "negative max_tokens",
        lambda s: s.replace("max_tokens: 64", "max_tokens: -5"),
        ["task.yaml:23", "generation.max_tokens", "greater than or equal to 1"],
    ),
    (
        "bad date",
        lambda s: s.replace("date: 2024-11-06", "date: next tuesday"),
        ["task.yaml:12", "date", "YYYY-MM-DD"],
    ),
    (
        "jinja syntax error",
        lambda s: s.replace("{% endfor %}", "{% endfo %}"),
        ["prompt.template", "Jinja2 syntax error"],
    ),
    ("not yaml", lambda s: s.replace("fields:\n", "fields:\n  - [\n"), ["not valid YAML"]),
    (
        "system turn on a completion prompt",
        lambda s: s.replace("format: chat", "format: completion\n  system: be brief"),
        ["prompt", "'system' is only allowed with format: chat"],
    ),
    (
        "few-shot same field missing from meta",
        lambda s: s.replace(
            "  format: chat", "  format: chat\n  fewshot: {k: 2, files: [d.jsonl], same: subject}"
        ),
        ["prompt.fewshot.same", "'subject' is not a field under fields.meta"],
    ),
    (
        "hub few-shot without split",
        lambda s: s.replace("  files: [items.jsonl]", "  hf: {path: org/name, revision: abc}").replace(
            "  format: chat", "  format: chat\n  fewshot: {k: 5}"
        ),
        ["fewshot", "validation"],
    ),
    (
        "breakdown by unknown field",
        lambda s: s.replace("breakdown: [category]", "breakdown: [subject]"),
        ["report.breakdown", "'subject'"],
    ),
    (
        "unknown extractor option",
        lambda s: s.replace("extract: choice", "extract: {name: choice, options: {colour: red}}"),
        ["extract.options", "colour"],
    ),
    ("top level is a list", lambda s: "- a\n- b\n", ["must be a YAML mapping"]),
    (
        "date rule bad regex",
        lambda s: s.replace(
            "meta: {category: category}",
            "meta: {category: category}\n  date_from: {field: url, rules: [{match: '(', date: 2024-02-01}]}",
        ),
        ["fields.date_from.rules.0.match", "not a valid regular expression"],
    ),
]


@pytest.mark.parametrize("desc,mutate,fragments", CASES, ids=[c[0] for c in CASES])
def test_malformed_yaml_messages(tmp_path: Path, desc: str, mutate, fragments: list[str]) -> None:
    text = mutate(VALID)
    assert text != VALID, desc
    p = write(tmp_path, text)
    with pytest.raises(TaskError) as exc:
        load_task_file(p)
    msg = str(exc.value)
    assert str(p) in msg, msg
    for frag in fragments:
        assert frag in msg, f"{desc}: {frag!r} not in {msg!r}"
    assert "Traceback" not in msg


def test_validate_cli_reports_and_fails(tmp_path: Path) -> None:
    good = write(tmp_path, VALID, "good.yaml")
    bad = write(tmp_path, VALID.replace("version: 1", "version: 0"), "bad.yaml")
    r = run_cli("tasks", "validate", str(good), str(bad))
    assert r.returncode == 2
    assert f"ok  {good}" in r.stdout
    assert f"{bad}:3: version" in r.stderr and "greater than or equal to 1" in r.stderr
    assert "1 valid, 1 invalid" in r.stderr
    assert "Traceback" not in r.stderr


def test_validate_cli_passes_on_builtin_tasks() -> None:
    r = run_cli("tasks", "validate")
    assert r.returncode == 0, r.stderr
    assert "0 invalid" in r.stderr


def test_duplicate_names_are_reported(tmp_path: Path) -> None:
    write(tmp_path, VALID, "a.yaml")
    write(tmp_path, VALID, "b.yaml")
    r = run_cli("tasks", "validate", str(tmp_path))
    assert r.returncode == 2
    assert "also defined in" in r.stderr


# ---------------------------------------------------------------------------------------------
# Several scorers over the same completions

SCORERS = VALID.replace(
    "metrics: [accuracy]\n",
    textwrap.dedent(
        """\
        metrics: [accuracy]
        scorers:
          - name: official
            extract: mmlu_pro_official
            grade: {name: choice_official_compatible, options: {seed: 7}}
            metrics: [accuracy_official_compatible, accuracy_strict]
          - name: boxed_letters
            extract: {name: choice, options: {letters: ABCD}}
            grade: choice
        """
    ),
)


def test_extra_scorers_load_after_the_primary_one(tmp_path: Path) -> None:
    spec = load_task_file(write(tmp_path, SCORERS)).spec
    scorers = spec.all_scorers()
    assert [s.name for s in scorers] == ["main", "official", "boxed_letters"]
    main, official, letters = scorers
    assert (main.extract, main.grade, main.metrics) == (spec.extract, spec.grade, spec.metrics)
    assert official.grade.options == {"seed": 7} and letters.metrics == ["accuracy"]  # the default
    assert letters.extract.name == "choice" and letters.grade.name == "choice"  # the string shorthand
    # A scorer's context: the task's stop sequences, that scorer's component options.
    ctx = ScoringContext.for_scorer(spec, official)
    assert ctx == ScoringContext(stop=("Question:",), grade_options={"seed": 7})
    assert ScoringContext.for_scorer(spec, letters).extract_options == {"letters": "ABCD"}
    assert ScoringContext.for_task(spec) == ScoringContext.for_scorer(spec, main)
    # A task without `scorers:` has only its primary scorer.
    assert [s.name for s in load_task_file(write(tmp_path, VALID, "plain.yaml")).spec.all_scorers()] == [
        "main"
    ]


def test_every_scorer_has_a_version_string(tmp_path: Path) -> None:
    spec = load_task_file(write(tmp_path, SCORERS)).spec
    versions = [scorer_version(s.extract.name, s.grade.name) for s in spec.all_scorers()]
    # "<extractor>.<its version>+<grader>.<its version>", from the registry
    from evalkit.scoring.registry import extractor_entry, grader_entry

    choice = f"choice.{extractor_entry('choice').version}+choice.{grader_entry('choice').version}"
    official = (
        f"mmlu_pro_official.{extractor_entry('mmlu_pro_official').version}+choice_official_compatible.1"
    )
    assert versions == [choice, official, choice]
    with pytest.raises(KeyError, match="unknown extractor"):
        scorer_version("choise", "choice")


SCORER_CASES = [
    (
        "scorer named main",
        lambda s: s.replace("name: official", "name: main"),
        ["task.yaml:23", "scorers.0.name", "'main' names the task's top-level extract/grade"],
    ),
    (
        "duplicate scorer names",
        lambda s: s.replace("name: boxed_letters", "name: official"),
        ["task.yaml:22", "scorers", "scorer names must be unique", "official repeated"],
    ),
    (
        "bad scorer name",
        lambda s: s.replace("name: official", "name: Official Numbers"),
        ["task.yaml:23", "scorers.0.name", "lower-case letters"],
    ),
    (
        "unknown extractor in a scorer",
        lambda s: s.replace("extract: mmlu_pro_official", "extract: mmlu_pro_oficial"),
        ["task.yaml:24", "scorers.0.extract", "unknown extractor name 'mmlu_pro_oficial'", "known:"],
    ),
    (
        "unknown grader in a scorer",
        lambda s: s.replace("    grade: choice\n", "    grade: choise\n"),
        ["task.yaml:29", "scorers.1.grade", "unknown grader name 'choise'"],
    ),
    (
        "unknown option in a scorer",
        lambda s: s.replace("options: {seed: 7}", "options: {sead: 7}"),
        ["task.yaml:25", "scorers.0.grade.options", "sead", "allowed: seed"],
    ),
    (
        "unknown metric in a scorer",
        lambda s: s.replace("accuracy_strict]", "accuracy_strikt]"),
        ["task.yaml:26", "scorers.0.metrics", "unknown metric 'accuracy_strikt'", "pass@K"],
    ),
    (
        "unknown key in a scorer",
        lambda s: s.replace("    grade: choice\n", "    grade: choice\n    metric: [accuracy]\n"),
        ["task.yaml:30", "scorers.1.metric", "unknown keys are errors"],
    ),
    (
        "scorer without a grader",
        lambda s: s.replace("    grade: choice\n", ""),
        ["scorers.1.grade", "add this required field"],
    ),
]


@pytest.mark.parametrize("desc,mutate,fragments", SCORER_CASES, ids=[c[0] for c in SCORER_CASES])
def test_malformed_scorers(tmp_path: Path, desc: str, mutate, fragments: list[str]) -> None:
    text = mutate(SCORERS)
    assert text != SCORERS, desc
    p = write(tmp_path, text)
    with pytest.raises(TaskError) as exc:
        load_task_file(p)
    msg = str(exc.value)
    for frag in fragments:
        assert frag in msg, f"{desc}: {frag!r} not in {msg!r}"

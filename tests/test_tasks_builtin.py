"""The built-in benchmark tasks: `tasks check` on the real data, the official MMLU-Pro prompt byte for
byte, item dates, AMC contests, and `tasks new` on a file and on a hub mirror.

Tests that need the real datasets use the `shared_data` fixture and skip when ../shared is absent.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from evalkit.cli import app
from evalkit.errors import DataError
from evalkit.tasks.check import check_task, format_report
from evalkit.tasks.loader import LoadedTask, load_task_file
from evalkit.tasks.new import new_task
from evalkit.tasks.prompt import render
from evalkit.tasks.registry import builtin_tasks_dir, discover
from evalkit.tasks.samples import load_fewshot_pool, load_samples, select_fewshot
from evalkit.types import Completion, Extraction, Sample, ScoringContext

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
BENCHMARK_TASKS = [
    "mmlu_pro",
    "mmlu_pro_0shot",
    "math500",
    "math500_minerva",
    "amc_2024",
    "amc_2023",
    "amc_2022",
    "amc_aimo",
    "aime_2024",
    "aime_2025",
    "aime_2022_2024",
]


def _task(name: str) -> LoadedTask:
    return load_task_file(builtin_tasks_dir() / f"{name}.yaml")


# ---------------------------------------------------------------------------------------------
# Schema and wiring (no data needed)


@pytest.mark.parametrize("name", BENCHMARK_TASKS)
def test_builtin_task_validates(name: str) -> None:
    t = _task(name)
    assert t.spec.name == name
    ds = t.spec.dataset
    if ds.hf is not None:
        # Pinned: a 40-hex commit sha, never a moving branch.
        assert len(ds.hf.revision) == 40 and int(ds.hf.revision, 16) >= 0, ds.hf.revision


def test_every_builtin_task_is_listed_here() -> None:
    index = discover()
    assert not index.broken, index.broken
    assert set(BENCHMARK_TASKS) <= set(index.tasks)


def test_mmlu_pro_scores_one_answer_set_two_ways() -> None:
    # One request set, two readings: evalkit's strict one and TIGER-Lab's official-compatible one.
    scorers = _task("mmlu_pro").spec.all_scorers()
    assert [(s.name, s.extract.name, s.grade.name) for s in scorers] == [
        ("main", "choice", "choice"),
        ("official", "mmlu_pro_official", "choice_official_compatible"),
    ]
    assert scorers[1].metrics == ["accuracy_official_compatible", "accuracy_strict"]


def test_mmlu_pro_protocol_settings() -> None:
    s = _task("mmlu_pro").spec
    assert s.prompt.format == "completion"
    assert s.prompt.fewshot is not None and (
        s.prompt.fewshot.k,
        s.prompt.fewshot.split,
        s.prompt.fewshot.same,
    ) == (5, "validation", "category")
    assert s.generation.temperature == 0.0 and s.generation.max_tokens >= 2048
    assert s.generation.stop == ["Question:"]
    assert s.fields.drop_choices == ["N/A"]


def test_amc_protocol_settings() -> None:
    for year in (2022, 2023, 2024):
        s = _task(f"amc_{year}").spec
        assert s.dataset.files == [f"amc_{year}_mc.jsonl"]
        assert (s.generation.temperature, s.generation.repeats) == (0.5, 10)
        assert s.metrics == ["amc_points", "accuracy"]
        assert s.grade.options == {"points": "amc", "no_answer_as_blank": False}
        for phrase in (
            "25 questions",
            "6 points",
            "1.5 points",
            "0 points",
            "\\boxed{A}",
            "\\boxed{E}",
            "\\boxed{blank}",
        ):
            assert phrase in s.prompt.template, phrase


def _write_mmlu_mirror(root: Path) -> Path:
    """A tiny synthetic MMLU-Pro mirror (invented rows, hub field names) with N/A padding options."""
    d = root / "hf" / "TIGER-Lab" / "MMLU-Pro"
    d.mkdir(parents=True)
    val = [
        {
            "question_id": i,
            "question": f"Exemplar {i}?",
            "options": ["p", "q", "r", "N/A"],
            "answer": "B",
            "answer_index": 1,
            "cot_content": f"A: Let's think step by step. Reason {i}. The answer is (B).",
            "category": "toy",
            "src": "ori_mmlu-x",
        }
        for i in range(6)
    ]
    test = [
        {
            "question_id": 100,
            "question": "Which is {{ not }} a template?",
            "options": ["one", "two", "three", "four", "N/A", "N/A"],
            "answer": "D",
            "answer_index": 3,
            "cot_content": "",
            "category": "toy",
            "src": "stemez-x",
        },
    ]
    (d / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in val))
    (d / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    return root


def test_mmlu_pro_prompt_structure_on_synthetic_rows(tmp_path: Path) -> None:
    """The official layout, from the protocol: instruction line, first 5 exemplars of the category with
    "Answer: Let's think step by step." + their reasoning, N/A options dropped, letters A.., the final
    "Answer: Let's think step by step." with nothing after it; data is never treated as a template."""
    data = _write_mmlu_mirror(tmp_path)
    for name in ("mmlu_pro",):
        t = _task(name)
        samples, _ = load_samples(t, data)
        pool = load_fewshot_pool(t, data)
        _, prompt = render(t, samples[0], select_fewshot(t.spec, samples[0], pool))
        instruction = (
            "The following are multiple choice questions (with answers) about toy. "
            "Think step by step and then finish "
            'your answer with "the answer is (X)" where X is the correct letter choice.\n'
        )
        shots = "".join(
            f"Question:\nExemplar {i}?\nOptions:\nA. p\nB. q\nC. r\n"
            f"Answer: Let's think step by step. Reason {i}. The answer is (B).\n\n"
            for i in range(5)
        )
        final = (
            "Question:\nWhich is {{ not }} a template?\nOptions:\nA. one\nB. two\nC. three\nD. four\n"
            "Answer: Let's think step by step."
        )
        assert prompt == instruction + shots + final
        assert samples[0].choices == ("one", "two", "three", "four")
        assert samples[0].date == dt.date(2024, 6, 3)  # stemez: MMLU-Pro's release
    # The zero-shot chat task: TIGER-Lab's 0-shot prompt, quirks included ("Options: A. ..." on one line).
    t = _task("mmlu_pro_0shot")
    samples, _ = load_samples(t, data)
    messages, prompt = render(t, samples[0])
    assert prompt is None and messages is not None and [m.role for m in messages] == ["user"]
    assert messages[0].content == (
        "The following is a multiple choice question (with answer) about toy. "
        "Think step by step and then output the "
        'answer in the format of "The answer is (X)" at the end.\n\n'
        "Question: Which is {{ not }} a template?\nOptions: A. one\nB. two\nC. three\nD. four\nAnswer: "
    )


def test_missing_amc_file_error_names_both_places(tmp_path: Path) -> None:
    t = _task("amc_2024")
    with pytest.raises(DataError) as e:
        load_samples(t, tmp_path)
    msg = str(e.value)
    assert "amc_2024_mc.jsonl" in msg and "next to the task YAML" in msg and "<data-dir>/local/" in msg
    assert str(tmp_path / "local" / "amc_2024_mc.jsonl") in msg


# ---------------------------------------------------------------------------------------------
# `tasks check` catches broken tasks (synthetic data)


def _local_task(
    folder: Path, rows: list[dict], fields: str, task_date: str | None = "2020-01-01"
) -> LoadedTask:
    """A toy multiple-choice task over invented rows, written to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "t.yaml").write_text(
        "name: toy\nversion: 1\ndataset: {files: [d.jsonl]}\n"
        f"fields: {fields}\n"
        + (f"date: {task_date}\n" if task_date else "")
        + 'prompt:\n  template: |-\n    {{ question }} Finish with "The answer is (X)".\n'
        "extract: choice\ngrade: choice\n"
    )
    return load_task_file(folder / "t.yaml")


def test_check_passes_a_correct_task_and_flags_broken_ones(tmp_path: Path) -> None:
    rows = [
        {"id": f"q{i}", "q": f"Q{i}?", "opts": ["a", "b", "c", "d"], "gold": "ABCD"[i % 4], "idx": i % 4}
        for i in range(8)
    ]
    rep = check_task(
        _local_task(tmp_path / "good", rows, "{id: id, question: q, choices: opts, answer: gold}"), None
    )
    assert rep.ok, format_report(rep)
    assert [(p.name, p.correct, p.n) for p in rep.passes] == [("gold", 8, 8), ("wrong", 0, 8)]

    # The answer column holds a 0-based index but answer_index is not set: the "gold letters" are
    # digits, outside the options.
    rep = check_task(
        _local_task(tmp_path / "idx", rows, "{id: id, question: q, choices: opts, answer: idx}"), None
    )
    assert not rep.ok and rep.problems_of("data") and rep.passes[0].correct < 8
    fixed = "{id: id, question: q, choices: opts, answer: idx, answer_index: true}"
    assert check_task(_local_task(tmp_path / "idx_fixed", rows, fixed), None).ok

    # A gold letter beyond the item's options (E with four options).
    rows2 = [dict(r, gold="E") if i == 3 else r for i, r in enumerate(rows)]
    rep = check_task(
        _local_task(tmp_path / "beyond", rows2, "{id: id, question: q, choices: opts, answer: gold}"), None
    )
    assert any("not one of the item's option letters" in p.message for p in rep.problems_of("data"))
    assert [p.sample_id for p in rep.problems_of("gold")] == ["q3"]

    # An item without a date (and no task-level date to fall back on).
    rows3 = [dict(r, day="2021-05-01" if i else "") for i, r in enumerate(rows)]
    fields = "{id: id, question: q, choices: opts, answer: gold, date: day}"
    rep = check_task(_local_task(tmp_path / "nodate", rows3, fields, task_date=None), None)
    assert [p.sample_id for p in rep.problems_of("data")] == ["q0"]
    assert rep.dates == {"none": 1, "2021-05-01": 7}


# ---------------------------------------------------------------------------------------------
# Real data (../shared/data)


@pytest.mark.slow  # seconds each (sandbox time limits, real data, full charts): the full tier
@pytest.mark.parametrize("name", BENCHMARK_TASKS)
def test_tasks_check_passes_on_real_data(name: str, shared_data: Path) -> None:
    rep = check_task(_task(name), shared_data)
    assert rep.ok, "\n".join(format_report(rep))
    gold, wrong = rep.passes[0], rep.passes[1]
    assert gold.n == wrong.n == rep.n_items == rep.n_rendered > 0
    assert gold.correct == gold.n and wrong.correct == 0
    assert "none" not in rep.dates


def test_tasks_check_cli(shared_data: Path) -> None:
    r = CliRunner().invoke(app, ["tasks", "check", "aime_2025", "amc_aimo", "--data-dir", str(shared_data)])
    assert r.exit_code == 0, r.output
    assert "gold answers       30/30 correct (100.0%)" in r.output
    assert "2/2 tasks pass" in r.output


def test_mmlu_pro_golden_prompt(shared_data: Path) -> None:
    """The first math prompt, byte for byte, against a fixture built from the official protocol."""
    t = _task("mmlu_pro")
    samples, _ = load_samples(t, shared_data)
    pool = load_fewshot_pool(t, shared_data)
    first = next(s for s in samples if s.meta["category"] == "math")
    _, prompt = render(t, first, select_fewshot(t.spec, first, pool))
    expected = (FIXTURES / "mmlu_pro_math_prompt.txt").read_bytes().decode("utf-8")
    assert prompt == expected


def test_items_are_dated_by_their_own_round(shared_data: Path) -> None:
    def dates(name: str) -> dict[str, dt.date]:
        samples, _ = load_samples(_task(name), shared_data)
        assert all(s.date is not None for s in samples)
        return {s.id: s.date for s in samples if s.date is not None}

    a25 = dates("aime_2025")
    assert {a25[str(i)] for i in range(1, 16)} == {dt.date(2025, 2, 6)}
    assert {a25[str(i)] for i in range(16, 31)} == {dt.date(2025, 2, 12)}
    assert Counter(dates("aime_2024").values()) == {dt.date(2024, 2, 1): 15, dt.date(2024, 2, 7): 15}
    c = Counter(dates("aime_2022_2024").values())
    assert len(c) == 6 and set(c.values()) == {15}
    assert Counter(d.year for d in dates("amc_aimo").values()) == {2022: 43, 2023: 40}
    mmlu = Counter(dates("mmlu_pro").values())
    assert sum(mmlu.values()) == 12032 and mmlu[dt.date(2020, 9, 7)] == 6810  # original MMLU questions


def test_amc_contests(shared_data: Path) -> None:
    days = {
        2024: ("2024-11-06", "2024-11-12"),
        2023: ("2023-11-08", "2023-11-14"),
        2022: ("2022-11-10", "2022-11-16"),
    }
    for year, (day_a, day_b) in days.items():
        samples, _ = load_samples(_task(f"amc_{year}"), shared_data)
        by_contest: dict[str, list] = {}
        for s in samples:
            by_contest.setdefault(s.meta["contest"], []).append(s)
            assert s.choices is not None and len(s.choices) == 5 and s.answer in "ABCDE"
            assert isinstance(s.meta["has_figure"], bool)
        assert {k: len(v) for k, v in by_contest.items()} == {
            f"{year} AMC {c}": 25 for c in ("10A", "10B", "12A", "12B")
        }
        for contest, items in by_contest.items():
            want = day_a if contest.endswith("A") else day_b
            assert {s.date.isoformat() for s in items if s.date} == {want}
            assert sorted(s.meta["problem_number"] for s in items) == list(range(1, 26))
    figs = [s for s in load_samples(_task("amc_2024"), shared_data)[0] if s.meta["has_figure"]]
    assert len(figs) == 12  # kept and flagged, not dropped


def test_amc_points_per_contest(shared_data: Path) -> None:
    """Gold on every item is 150 per contest; an explicit blank on every item is 37.5."""
    from evalkit.scoring import score_completion
    from evalkit.scoring.metrics import ScoredRow
    from evalkit.scoring.registry import get_metric

    t = _task("amc_2024")
    samples, _ = load_samples(t, shared_data)
    ctx = ScoringContext(extract_options=t.spec.extract.options, grade_options=t.spec.grade.options)
    metric = get_metric("amc_points")
    for answer, points in (("gold", 150.0), ("blank", 37.5)):
        rows = []
        for s in samples:
            a = s.answer if answer == "gold" else "blank"
            ex, gr = score_completion(
                Completion(f"so the answer is \\boxed{{{a}}}.", "stop"), s, "choice", "choice", ctx
            )
            rows.append(
                ScoredRow(
                    s.id,
                    0,
                    gr.correct,
                    gr.points,
                    ex.status,
                    {**s.meta, "date": s.date.isoformat() if s.date else None},
                )
            )
        res = metric(rows, {})
        assert res.value == pytest.approx(points), (answer, res)


# ---------------------------------------------------------------------------------------------
# `tasks new`


def test_tasks_new_from_file(tmp_path: Path) -> None:
    rows = [
        {
            "uid": f"x{i}",
            "problem": f"Pick {i}",
            "choices": ["red", "green", "blue"],
            "answer": "ABC"[i % 3],
            "subject": "colours" if i % 2 else "paint",
            "date": "2023-05-0" + str(1 + i % 3),
        }
        for i in range(9)
    ]
    data = tmp_path / "colours.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "colours.yaml"
    res = new_task("colours", from_file=data, out=out)
    assert res.validation_error is None, res.validation_error
    spec = yaml.safe_load(out.read_text())
    assert spec["fields"] == {
        "id": "uid",
        "question": "problem",
        "answer": "answer",
        "choices": "choices",
        "date": "date",
        "meta": {"subject": "subject"},
    }
    assert (spec["extract"], spec["grade"]) == ("choice", "choice")
    assert "TODO" in out.read_text() and "#" in out.read_text()  # commented skeleton
    # The skeleton is a working task: check passes on it as written.
    rep = check_task(load_task_file(out), None)
    assert rep.ok, "\n".join(format_report(rep))
    with pytest.raises(Exception, match="exists"):
        new_task("colours", from_file=data, out=out)


def test_tasks_new_from_hub_mirror(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "my_math.yaml"
    res = new_task("my_math", from_hf="HuggingFaceH4/MATH-500", data_dir=shared_data, out=out)
    assert res.validation_error is None, res.validation_error
    spec = yaml.safe_load(out.read_text())
    assert spec["dataset"]["hf"] == {"path": "HuggingFaceH4/MATH-500", "revision": "main"}
    assert spec["dataset"]["split"] == "test"
    f = spec["fields"]
    assert (f["id"], f["question"], f["answer"]) == ("unique_id", "problem", "answer")
    assert f["meta"] == {"subject": "subject", "level": "level"}
    assert (spec["extract"], spec["grade"]) == ("boxed", "math")
    # Integer answers pick the integer grader, with the range opened when the data needs it.
    res = new_task(
        "my_amc", from_hf="AI-MO/aimo-validation-amc", data_dir=shared_data, out=tmp_path / "amc.yaml"
    )
    spec = yaml.safe_load((tmp_path / "amc.yaml").read_text())
    assert res.validation_error is None and spec["grade"] == {
        "name": "integer",
        "options": {"min": None, "max": None},
    }
    assert "id" not in spec["fields"]  # the hub id repeats: not offered as the item id


def test_tasks_new_cli(tmp_path: Path) -> None:
    data = tmp_path / "nums.jsonl"
    data.write_text(
        "".join(json.dumps({"question": f"{i}+{i}?", "answer": str(2 * i)}) + "\n" for i in range(5))
    )
    r = CliRunner().invoke(
        app, ["tasks", "new", "nums", "--from-file", str(data), "--out", str(tmp_path / "nums.yaml")]
    )
    assert r.exit_code == 0, r.output
    assert "it validates against the task schema" in r.output and "evalkit tasks check nums" in r.output
    assert yaml.safe_load((tmp_path / "nums.yaml").read_text())["extract"] == "integer"


def test_tasks_new_writes_to_the_working_folder_where_discovery_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default `tasks new` writes ./tasks/NAME.yaml (never into the installed package), and a
    ./tasks/ folder is searched without --tasks-dir."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EVALKIT_TASKS_DIR", raising=False)
    data = tmp_path / "nums.jsonl"
    data.write_text(
        "".join(json.dumps({"question": f"{i}+{i}?", "answer": str(2 * i)}) + "\n" for i in range(5))
    )
    r = CliRunner().invoke(app, ["tasks", "new", "nums", "--from-file", str(data)])
    assert r.exit_code == 0, r.output
    written = tmp_path / "tasks" / "nums.yaml"
    assert written.is_file() and not (builtin_tasks_dir() / "nums.yaml").exists()
    index = discover()
    assert index.tasks["nums"].path == written.resolve()
    assert "basic_facts" in index.tasks  # the built-in tasks are still found
    # The data file is not next to the new YAML yet: the next steps say where to put it.
    assert "copy" in r.output and str(data) in r.output


def test_a_user_task_shadowing_a_builtin_one_is_named_by_tasks_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EVALKIT_TASKS_DIR", raising=False)
    (tmp_path / "tasks").mkdir()
    mine = tmp_path / "tasks" / "my_facts.yaml"  # another file name, the built-in task's name
    mine.write_text((builtin_tasks_dir() / "basic_facts.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    index = discover()
    assert index.tasks["basic_facts"].path == mine.resolve()  # ./tasks/ wins over the built-in
    [sh] = index.shadowed
    assert sh.hides_builtin and sh.hidden == (builtin_tasks_dir() / "basic_facts.yaml").resolve()
    r = CliRunner().invoke(app, ["tasks", "list"])
    assert r.exit_code == 0, r.output
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: task 'basic_facts' from {mine.resolve()} shadows the built-in {sh.hidden}"]
    assert "warning" not in r.stdout
    # Without the shadowing file there is nothing to warn about.
    mine.unlink()
    r = CliRunner().invoke(app, ["tasks", "list"])
    assert r.exit_code == 0 and "warning" not in r.stderr


def test_every_extractor_reads_its_own_example_answer() -> None:
    """`tasks check` writes answers with each extractor's registered example_answer, so a new
    extractor needs no edit in check.py; each must read back what it writes."""
    from evalkit.scoring.registry import EXTRACTORS

    sample = Sample(id="1", task="t", question="q", answer="", choices=("10", "20", "30", "40"))
    for name, entry in sorted(EXTRACTORS.items()):
        answer = "C" if entry.answer_kind == "letter" else "17"
        for boxed in (False, True):
            text = entry.example_answer(answer, boxed)
            got = entry.fn(Completion(text=text, finish_reason="stop"), sample, ScoringContext())
            assert (got.status, got.answer) == ("ok", answer), (name, boxed, text, got)


def test_check_needs_no_edit_for_a_new_extractor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.scoring import registry

    def extract_last_word(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
        words = completion.text.split("\n\n")[0].split()
        return Extraction(words[-1].strip(".") if words else None, "last_word")

    entry = registry.ExtractorEntry(
        extract_last_word, frozenset(), 1, lambda a, boxed: f"I say {a}.", "value"
    )
    monkeypatch.setitem(registry.EXTRACTORS, "last_word", entry)
    folder = tmp_path / "t"
    folder.mkdir()
    rows = [{"q": f"Name {w}", "a": w} for w in ("red", "green", "blue")]
    (folder / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "t.yaml").write_text(
        "name: words\nversion: 1\ndataset: {files: [d.jsonl]}\nfields: {question: q, answer: a}\n"
        "date: 2020-01-01\nprompt: {template: '{{ question }}'}\nextract: last_word\ngrade: exact\n"
    )
    rep = check_task(load_task_file(folder / "t.yaml"), None)
    assert rep.ok, "\n".join(format_report(rep))
    assert [(p.name, p.correct, p.n) for p in rep.passes] == [("gold", 3, 3), ("wrong", 0, 3)]

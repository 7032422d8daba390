"""`evalkit data import` on small fixtures in each source layout (written for these tests, not
contest text), and the multi-source dataset schema (dataset.sources) the imported files feed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.errors import DataError, EvalkitError
from evalkit.tasks.loader import load_task_file
from evalkit.tasks.samples import load_samples
from tests.conftest import run_cli

FIX = Path(__file__).resolve().parent / "fixtures" / "data_import"
COMPETITION_YAML = Path(__file__).resolve().parents[1] / "tasks" / "competition_math.yaml"


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_matharena_aime_layout_gets_rounds_and_days(tmp_path: Path) -> None:
    out = tmp_path / "aime.jsonl"
    proc = run_cli(
        "data", "import", str(FIX / "matharena_aime.jsonl"), "--format", "matharena", "--contest", "aime",
        "--year", "2030", "--date", "I=2030-02-05", "--date", "II=2030-02-11", "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = rows(out)
    assert [(r["id"], r["round"], r["date"]) for r in got] == [
        ("aime_2030_I_p1", "I", "2030-02-05"),
        ("aime_2030_I_p2", "I", "2030-02-05"),
        ("aime_2030_II_p16", "II", "2030-02-11"),
    ]
    assert got[0]["answer"] == "12" and got[0]["answer_type"] == "integer" and got[0]["choices"] is None


def test_matharena_hmmt_layout_one_round(tmp_path: Path) -> None:
    out = tmp_path / "hmmt.jsonl"
    proc = run_cli(
        "data", "import", str(FIX / "matharena_hmmt.jsonl"), "--format", "matharena", "--contest", "hmmt",
        "--year", "2030", "--date", "Feb=2030-02-15", "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = rows(out)
    assert {r["answer_type"] for r in got} == {"expression"} and got[0]["answer"] == "\\frac{1}{2}"
    assert {r["date"] for r in got} == {"2030-02-15"}


def test_matharena_missing_round_date_is_an_error(tmp_path: Path) -> None:
    proc = run_cli(
        "data", "import", str(FIX / "matharena_aime.jsonl"), "--format", "matharena", "--contest", "aime",
        "--year", "2030", "--date", "I=2030-02-05", "--out", str(tmp_path / "x.jsonl"),
    )  # fmt: skip
    assert proc.returncode == 2
    assert "matharena_aime.jsonl:3: no date for problem_idx 16" in proc.stderr


def test_amc_mc_dedupes_shared_10_12_problems(tmp_path: Path) -> None:
    out = tmp_path / "amc.jsonl"
    proc = run_cli("data", "import", str(FIX / "amc_mc.jsonl"), "--format", "amc-mc", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "1 duplicate(s) dropped" in proc.stdout and "shared between AMC 10 and AMC 12" in proc.stderr
    got = rows(out)
    assert [r["id"] for r in got] == ["amc_2030_10A_p1", "amc_2030_10A_p2", "amc_2030_12A_p2"]
    assert got[1]["answer"] == "A" and sorted(got[0]["choices"]) == ["A", "B", "C", "D", "E"]


def test_amc_mc_reports_every_problem_with_file_and_line(tmp_path: Path) -> None:
    proc = run_cli(
        "data", "import", str(FIX / "amc_mc_bad.jsonl"), "--format", "amc-mc", "--out", str(tmp_path / "x")
    )
    assert proc.returncode == 2
    for expected in (
        "amc_mc_bad.jsonl:1: contest '10C'",
        "amc_mc_bad.jsonl:2: problem_number 30",
        "amc_mc_bad.jsonl:2: choices must be",
        "amc_mc_bad.jsonl:2: answer 'F'",
        "amc_mc_bad.jsonl:2: date 'Nov 2030'",
        "amc_mc_bad.jsonl:3: missing field(s)",
    ):
        assert expected in proc.stderr, expected
    bad_json = tmp_path / "b.jsonl"
    bad_json.write_text('{"a": 1}\nnot json\n')
    proc = run_cli("data", "import", str(bad_json), "--format", "amc-mc", "--out", str(tmp_path / "y"))
    assert proc.returncode == 2 and "b.jsonl:2: not valid JSON" in proc.stderr


def write_union_task(folder: Path, sources: str) -> Path:
    """A competition_math-like task over the given ``dataset.sources`` block."""
    text = COMPETITION_YAML.read_text()
    head, _, rest = text.partition("dataset:\n")
    _, _, tail = rest.partition("  dedupe_on: dedup_key\n")
    path = folder / "union.yaml"
    path.write_text(
        head.replace("name: competition_math", "name: union_task")
        + "dataset:\n"
        + sources
        + "  dedupe_on: dedup_key\n"
        + tail
    )
    return path


def test_imported_files_and_a_hub_mirror_make_one_task(tmp_path: Path) -> None:
    """The union of an imported AMC file and a MathArena-layout hub mirror, each item keeping its source."""
    run_cli(
        "data",
        "import",
        str(FIX / "amc_mc.jsonl"),
        "--format",
        "amc-mc",
        "--out",
        str(tmp_path / "amc.jsonl"),
    )
    mirror = tmp_path / "data" / "hf" / "Org" / "aime_fixture"
    mirror.mkdir(parents=True)
    (mirror / "train.jsonl").write_text((FIX / "matharena_aime.jsonl").read_text())
    path = write_union_task(
        tmp_path,
        "  sources:\n"
        "    - files: [amc.jsonl]\n"
        "    - hf: {path: Org/aime_fixture, revision: " + "a" * 40 + "}\n"
        "      split: train\n"
        "      columns: {id: 'fx_{problem_idx}', dedup_key: 'fx_{problem_idx}',\n"
        "                problem_number: problem_idx}\n"
        "      set: {benchmark: aime_2030, competition: AIME, year: 2030, round: I, date: '2030-02-05',\n"
        "            date_precision: day, answer_type: integer, choices: null, license: test}\n",
    )
    samples, loaded = load_samples(load_task_file(path), tmp_path / "data")
    assert len(samples) == 6
    by_source = {s.id: s.meta["dataset_source"] for s in samples}
    assert by_source["amc_2030_10A_p1"] == "files amc.jsonl"
    assert by_source["fx_16"].startswith("hf Org/aime_fixture@aaaa")
    assert "sources:" in loaded.source


def test_sources_schema_errors_name_file_and_line(tmp_path: Path) -> None:
    path = write_union_task(
        tmp_path, "  sources:\n    - files: [a.jsonl]\n      hf: {path: Org/x, revision: abc}\n"
    )
    with pytest.raises(EvalkitError) as err:
        load_task_file(path)
    assert f"{path}:" in str(err.value) and "exactly one of 'hf' or 'files'" in str(err.value)
    path = write_union_task(tmp_path, "  files: [a.jsonl]\n  sources:\n    - files: [a.jsonl]\n")
    with pytest.raises(EvalkitError, match="exactly one of 'hf'"):
        load_task_file(path)
    path = write_union_task(tmp_path, "  sources:\n    - files: [a.txt]\n")
    with pytest.raises(EvalkitError, match="supported formats"):
        load_task_file(path)


def test_a_source_column_the_rows_lack_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"x": 1}\n')
    path = write_union_task(
        tmp_path, "  sources:\n    - files: [a.jsonl]\n      columns: {id: 'p_{problem_idx}'}\n"
    )
    with pytest.raises(DataError, match="no column 'problem_idx'.*columns.id"):
        load_samples(load_task_file(path), None)

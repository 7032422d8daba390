"""Post-cutoff splits: boundary dates, margins, undated items, the catalog cutoff and its release-date
fallback, the missing-cutoff error, exclude files, and a real run through the runner (replay backend)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from evalkit import catalog as catalog_mod
from evalkit.catalog import ModelEntry
from evalkit.contamination import split as split_mod
from evalkit.contamination.split import (
    MIN_POST_ITEMS,
    classify,
    make_split_filter,
    read_exclude_file,
    resolve_cutoff,
    select,
    split_options_to_filter,
)
from evalkit.errors import EvalkitError
from evalkit.types import Sample
from tests.conftest import contamination_cli

CUT = dt.date(2024, 6, 30)
D = dt.timedelta(days=1)


def sample(i: str, date: dt.date | None, task: str = "t") -> Sample:
    return Sample(id=i, task=task, question=f"q{i}", answer="a", date=date)


class FakeTask:
    """The part of LoadedTask a filter uses."""

    def __init__(self, name: str = "t") -> None:
        self.spec = type("Spec", (), {"name": name})()


@pytest.fixture
def catalog(monkeypatch: pytest.MonkeyPatch) -> dict[str, ModelEntry]:
    """A fixed catalog, so these tests do not move when models.yaml is edited."""
    entries = {
        "with-cutoff": ModelEntry(
            id="with-cutoff",
            name="With Cutoff",
            hub_id="org/with-cutoff",
            release_date=dt.date(2024, 12, 12),
            knowledge_cutoff=CUT,
            sources={"knowledge_cutoff": "model card: data up to June 2024"},
        ),
        "release-only": ModelEntry(
            id="release-only",
            name="Release Only",
            release_date=dt.date(2024, 9, 30),
            sources={"release_date": "hub repository creation date"},
        ),
        "no-dates": ModelEntry(id="no-dates", name="No Dates"),
    }

    # The real matcher (evalkit.catalog.match) runs over these entries instead of models.yaml.
    monkeypatch.setattr(catalog_mod, "load_models", lambda path=None: tuple(entries.values()))
    return entries


# ---------------------------------------------------------------------------------------------
# Boundaries


def test_boundary_dates_without_margin() -> None:
    assert classify(CUT - D, CUT) == "pre"
    assert classify(CUT, CUT) == "pre"  # the cutoff day itself may be in the training data
    assert classify(CUT + D, CUT) == "post"
    assert classify(None, CUT) == "undated"


def test_boundary_dates_with_margin() -> None:
    assert classify(CUT, CUT, 3) == "pre"
    assert classify(CUT + D, CUT, 3) == "margin"
    assert classify(CUT + 3 * D, CUT, 3) == "margin"
    assert classify(CUT + 4 * D, CUT, 3) == "post"


def test_select_counts_every_excluded_item() -> None:
    items = [
        sample("a", CUT - D),
        sample("b", CUT),
        sample("c", CUT + D),
        sample("d", CUT + 10 * D),
        sample("u", None),
    ]
    kept, counts = select(items, "t", "post-cutoff", CUT, margin_days=5)
    assert [s.id for s in kept] == ["d"]
    assert counts == {
        "n_input": 5, "n_kept": 1, "n_excluded_undated": 1, "n_excluded_other_side": 2,
        "n_excluded_margin": 1, "n_excluded_listed": 0,
    }  # fmt: skip
    kept, counts = select(items, "t", "pre-cutoff", CUT, margin_days=5)
    assert [s.id for s in kept] == ["a", "b"]  # pre is on or before the cutoff, whatever the margin
    assert (
        counts["n_excluded_undated"] == 1
        and counts["n_excluded_other_side"] == 2
        and counts["n_excluded_margin"] == 0
    )
    kept, counts = select(items, "t", "all", None)
    assert len(kept) == 5 and counts["n_excluded_undated"] == 0  # "all" keeps undated items


# ---------------------------------------------------------------------------------------------
# Where the cutoff comes from


def test_catalog_cutoff_with_its_source(catalog: dict[str, ModelEntry]) -> None:
    c = resolve_cutoff("with-cutoff")
    assert (c.date, c.figure, c.model, c.fallback) == (CUT, "knowledge_cutoff", "with-cutoff", False)
    assert c.source == "model card: data up to June 2024"
    # The model inside a backend spec is looked up too.
    assert resolve_cutoff("openai:http://127.0.0.1:8000/v1@org/with-cutoff").date == CUT
    assert resolve_cutoff("hf:org/with-cutoff").date == CUT


def test_fallback_to_release_date_is_said(catalog: dict[str, ModelEntry]) -> None:
    notes: list[str] = []
    filt, info = make_split_filter("post-cutoff", "release-only", None, 0, warn=notes.append)
    assert info["cutoff"] == "2024-09-30"
    assert info["cutoff_source"] == {
        "figure": "release_date", "text": "hub repository creation date", "catalog_id": "release-only",
        "fallback_to_release_date": True,
    }  # fmt: skip
    assert any("no published training cutoff" in n and "release date 2024-09-30" in n for n in notes)


def test_missing_cutoff_is_a_clear_error(catalog: dict[str, ModelEntry]) -> None:
    with pytest.raises(EvalkitError, match=r"not in the catalog.*--cutoff YYYY-MM-DD"):
        make_split_filter("post-cutoff", "openai:http://127.0.0.1:1/v1@someone/unknown-7b", None, 0)
    with pytest.raises(EvalkitError, match="neither a knowledge_cutoff nor a release_date"):
        resolve_cutoff("no-dates")
    # --cutoff works for any model, in the catalog or not.
    c = resolve_cutoff("someone/unknown-7b", "2025-01-31")
    assert (c.date, c.figure) == (dt.date(2025, 1, 31), "command_line")
    with pytest.raises(EvalkitError, match="YYYY-MM-DD"):
        resolve_cutoff("someone/unknown-7b", "June 2024")


def test_cutoff_override_beats_catalog(catalog: dict[str, ModelEntry]) -> None:
    c = resolve_cutoff("with-cutoff", dt.date(2023, 1, 1))
    assert c.date == dt.date(2023, 1, 1) and c.figure == "command_line" and c.model == "with-cutoff"


def test_real_catalog_phi4_cutoff() -> None:
    """The README's worked example rests on this catalog entry."""
    c = resolve_cutoff("phi-4")
    assert c.date == dt.date(2024, 6, 30) and c.figure == "knowledge_cutoff" and not c.fallback
    assert "June 2024" in c.source


# ---------------------------------------------------------------------------------------------
# The filter the runner calls


def test_filter_info_and_per_task_counts(catalog: dict[str, ModelEntry]) -> None:
    notes: list[str] = []
    filt, info = make_split_filter("post-cutoff", "with-cutoff", None, 2, warn=notes.append)
    assert info == {
        "split": "post-cutoff", "cutoff": "2024-06-30", "margin_days": 2,
        "cutoff_source": {"figure": "knowledge_cutoff", "text": "model card: data up to June 2024",
                          "catalog_id": "with-cutoff", "fallback_to_release_date": False},
    }  # fmt: skip
    items = [sample(str(i), CUT + (i - 5) * D) for i in range(40)] + [sample("u", None)]
    kept, out = filt(FakeTask(), items)  # type: ignore[arg-type]
    # Dates CUT-5 .. CUT+34: post-cutoff is CUT+3 and later (margin 2).
    assert [s.date for s in kept] == [CUT + k * D for k in range(3, 35)]
    assert out["split"] == "post-cutoff" and out["cutoff"] == "2024-06-30"
    assert (
        out["n_kept"],
        out["n_excluded_undated"],
        out["n_excluded_other_side"],
        out["n_excluded_margin"],
    ) == (32, 1, 6, 2)
    assert "warning" not in out
    assert any("1 items without a date" in n for n in notes)


def test_small_post_cutoff_set_warns(catalog: dict[str, ModelEntry]) -> None:
    notes: list[str] = []
    filt, _ = make_split_filter("post-cutoff", "with-cutoff", warn=notes.append)
    kept, out = filt(FakeTask("amc"), [sample(str(i), CUT + (i + 1) * D) for i in range(MIN_POST_ITEMS - 1)])  # type: ignore[arg-type]
    assert len(kept) == MIN_POST_ITEMS - 1
    assert f"only {MIN_POST_ITEMS - 1} post-cutoff items in amc" in out["warning"]
    assert any(n.startswith("warning: only") for n in notes)
    kept, out = filt(FakeTask("amc"), [sample(str(i), CUT + (i + 1) * D) for i in range(MIN_POST_ITEMS)])  # type: ignore[arg-type]
    assert "warning" not in out


def test_exclude_file(tmp_path: Path) -> None:
    p = tmp_path / "flagged.txt"
    p.write_text("# flagged by evalkit contamination ngram\n\nmath/a\nb\n  other/c  \n", encoding="utf-8")
    ex = read_exclude_file(p)
    assert ex.ids == {"math/a", "b", "other/c"}
    assert ex.excludes("math", "a") and not ex.excludes("other", "a")
    assert ex.excludes("math", "b") and ex.excludes("other", "b")  # a bare id applies to every task
    assert ex.excludes("other", "c") and not ex.excludes("math", "c")
    filt, info = make_split_filter("all", "any-model", exclude=p, warn=None)
    assert info == {"split": "all", "exclude": {"file": str(p), "n_ids": 3, "sha256": ex.sha256}}
    items = [sample("a", None), sample("b", CUT), sample("c", CUT), sample("d", None)]
    kept, out = filt(FakeTask("math"), items)  # type: ignore[arg-type]
    assert [s.id for s in kept] == ["c", "d"]
    assert out["n_excluded_listed"] == 2 and out["n_excluded_undated"] == 0
    # An id containing "/" (MATH-500's "test/algebra/1.json") is matched whole, too.
    p.write_text("test/algebra/1.json\n", encoding="utf-8")
    assert read_exclude_file(p).excludes("math500", "test/algebra/1.json")
    with pytest.raises(EvalkitError, match="cannot read"):
        read_exclude_file(tmp_path / "missing.txt")


def test_cli_options_to_filter(catalog: dict[str, ModelEntry], tmp_path: Path) -> None:
    # A plain run gets no filter, so its run id does not change.
    assert split_options_to_filter("all", "with-cutoff", None, 0, None) == (None, {})
    filt, info = split_options_to_filter("pre-cutoff", "with-cutoff", "2024-01-31", 0, None, warn=None)
    assert (
        filt is not None
        and info["cutoff"] == "2024-01-31"
        and info["cutoff_source"]["figure"] == "command_line"
    )
    with pytest.raises(EvalkitError, match="--split 'post'"):
        split_options_to_filter("post", "with-cutoff")
    with pytest.raises(EvalkitError, match="only apply with --split"):
        split_options_to_filter("all", "with-cutoff", "2024-01-31")


# ---------------------------------------------------------------------------------------------
# The preview: counts per group around the cutoff (`evalkit contamination split`)


def test_counts_by_groups_sides_and_date_spans(tmp_path: Path) -> None:
    def item(i: str, date: dt.date | None, contest: str) -> Sample:
        return Sample(id=i, task="amc", question="q", answer="a", date=date, meta={"contest": contest})

    items = [
        item("b1", dt.date(2024, 11, 12), "10B"),
        item("a1", dt.date(2024, 11, 6), "10A"),
        item("a2", dt.date(2024, 11, 6), "10A"),
        item("old", dt.date(2023, 11, 8), "mixed"),
        item("new", CUT + 2 * D, "mixed"),
        item("u1", None, "undated"),
        item("x", CUT - D, "10B"),
    ]
    listed = split_mod.ExcludeList("f", frozenset({"amc/a2"}), "sha")
    groups = split_mod.counts_by(items, CUT, "contest", margin_days=3, exclude=listed, task="amc")
    assert [(g.group, g.date_span(), g.counts) for g in groups] == [
        ("mixed", "2023-11-08..2024-07-02", {"pre": 1, "margin": 1}),
        ("10B", "2024-06-29..11-12", {"post": 1, "pre": 1}),
        ("10A", "2024-11-06", {"post": 1, "excluded": 1}),  # an excluded item's date does not count
        ("undated", "-", {"undated": 1}),  # undated groups come last
    ]
    (only,) = split_mod.counts_by(items, CUT, None)
    assert only.group == "all" and only.counts == {"post": 4, "pre": 2, "undated": 1}


def test_split_preview_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    tasks, _ = _task_and_replay(tmp_path)
    args = [
        "contamination",
        "split",
        "--task",
        "dated_demo",
        "--tasks-dir",
        str(tasks),
        "--cutoff",
        "2024-06-30",
    ]
    r = CliRunner().invoke(contamination_cli(), [*args, "--margin-days", "1"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("cutoff 2024-06-30 from --cutoff; margin 1 days\n")
    lines = r.output.splitlines()
    assert "dated_demo: 6 items" in lines[1]
    head = next(line for line in lines if "pre-cutoff" in line)
    assert [c.strip() for c in head.strip("┃ ").split("┃")] == [
        "group", "dates", "pre-cutoff", "margin", "post-cutoff", "undated",
    ]  # fmt: skip
    cells = [[c.strip() for c in line.strip("│ ").split("│")] for line in lines if line.startswith("│")]
    assert cells == [["all", "2024-06-29..12-01", "2", "1", "2", "1"], ["total", "", "2", "1", "2", "1"]]
    r = CliRunner().invoke(contamination_cli(), ["contamination", "split", "--task", "dated_demo"])
    assert isinstance(r.exception, EvalkitError) and "give --model" in str(r.exception)


# ---------------------------------------------------------------------------------------------
# Through the real runner: a task on disk, answers replayed from a hand-written run folder


TASK_YAML = """
name: dated_demo
version: 1
dataset: {files: [items.jsonl]}
fields: {id: id, question: question, answer: answer, date: date}
prompt: {template: "{{ question }}"}
extract: exact
grade: exact
"""


def _task_and_replay(tmp_path: Path) -> tuple[Path, Path]:
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "dated_demo.yaml").write_text(TASK_YAML, encoding="utf-8")
    dates = ["2024-06-29", "2024-06-30", "2024-07-01", "2024-07-02", "2024-12-01", None]
    rows = [{"id": f"i{k}", "question": f"say {k}", "answer": str(k), "date": d} for k, d in enumerate(dates)]
    (tasks / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    replay = tmp_path / "replayed"
    replay.mkdir()
    recs = [
        {"key": f"k{k}", "task": "dated_demo", "sample_id": f"i{k}", "repeat": 0, "status": "ok",
         "completion": {"text": str(k) if k % 2 == 0 else "wrong", "finish_reason": "stop"}}
        for k in range(len(rows))
    ]  # fmt: skip
    (replay / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    return tasks, replay


def test_run_with_post_cutoff_split_records_the_cutoff(tmp_path: Path) -> None:
    from evalkit.run.runner import RunConfig, run_evaluation

    tasks, replay = _task_and_replay(tmp_path)
    filt, info = split_options_to_filter("post-cutoff", f"replay:{replay}", "2024-06-30", 1, None, warn=None)
    cfg = RunConfig(
        tasks=["dated_demo"], model=f"replay:{replay}", tasks_dirs=[str(tasks)],
        results_dir=tmp_path / "runs", progress=False, use_cache=False, sample_filter=filt, filter_info=info,
    )  # fmt: skip
    res = run_evaluation(cfg)
    manifest = json.loads((res.run_dir / "manifest.json").read_text())
    assert manifest["filter"]["cutoff"] == "2024-06-30" and manifest["filter"]["margin_days"] == 1
    data = manifest["tasks"]["dated_demo"]["data"]
    assert data["n_available"] == 6 and data["n_selected"] == 2  # 07-02 and 12-01 are after 06-30 + 1 day
    ex = data["excluded"]
    assert (ex["n_kept"], ex["n_excluded_other_side"], ex["n_excluded_margin"], ex["n_excluded_undated"]) == (
        2,
        2,
        1,
        1,
    )
    assert "warning" in ex
    summary = json.loads((res.run_dir / "summary.json").read_text())
    assert summary["tasks"]["dated_demo"]["split"] == "post-cutoff"
    assert summary["tasks"]["dated_demo"]["n_items"] == 2
    # The split is part of the run id: the unsplit run goes to another folder.
    res_all = run_evaluation(
        RunConfig(tasks=["dated_demo"], model=f"replay:{replay}", tasks_dirs=[str(tasks)],
                  results_dir=tmp_path / "runs", progress=False, use_cache=False)
    )  # fmt: skip
    assert res_all.run_dir != res.run_dir and res_all.summary["tasks"]["dated_demo"]["n_items"] == 6


def test_competition_data_split_at_phi4_cutoff(shared_data: Path) -> None:
    """The README example on the real combined file: phi-4's cutoff leaves AMC 2024 and AIME 2025."""
    rows = [json.loads(line) for line in (shared_data / "local" / "competition_math_dated.jsonl").open()]
    seen, items = set(), []
    for r in rows:
        if r["dedup_key"] not in seen:
            seen.add(r["dedup_key"])
            date = dt.date.fromisoformat(r["date"])
            meta = {"benchmark": r["benchmark"]}
            items.append(Sample(r["id"], "competition_math", r["problem"], r["answer"], date=date, meta=meta))
    filt, info = make_split_filter("post-cutoff", "phi-4", warn=None)
    kept, out = filt(FakeTask("competition_math"), items)  # type: ignore[arg-type]
    assert info["cutoff"] == "2024-06-30"
    by_bench: dict[str, int] = {}
    for s in kept:
        by_bench[s.meta["benchmark"]] = by_bench.get(s.meta["benchmark"], 0) + 1
    assert by_bench == {"amc_2024": 82, "aime_2025": 30}
    assert out["n_excluded_other_side"] == len(items) - 112 and out["n_excluded_undated"] == 0


def test_competition_math_task_loads_887_unique_items(shared_data: Path) -> None:
    """The built-in competition_math task (two sources, dataset.dedupe_on) loads 887 unique items:
    857 of the dated file's 920 rows and the 30 AIME 2026 problems of the MathArena mirror."""
    from evalkit.tasks.loader import load_task_file
    from evalkit.tasks.samples import load_samples

    path = Path(__file__).resolve().parents[1] / "tasks" / "competition_math.yaml"
    samples, _ = load_samples(load_task_file(path), shared_data)
    assert len(samples) == 887
    aime26 = [s for s in samples if s.meta["benchmark"] == "aime_2026"]
    assert len(aime26) == 30 and all(
        s.meta["dataset_source"].startswith("hf MathArena/aime_2026") for s in aime26
    )
    filt, _ = make_split_filter("post-cutoff", "phi-4", warn=None)
    kept, _ = filt(FakeTask("competition_math"), samples)  # type: ignore[arg-type]
    assert {s.meta["benchmark"] for s in kept} == {"amc_2024", "aime_2025", "aime_2026"} and len(kept) == 142
    assert sum(1 for s in samples if s.choices) == 237  # AMC items keep their five options

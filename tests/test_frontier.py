"""Frontier maths, the published-scores loader and its validation, the source-choice rule, the catalog
entries behind them, and run aggregation."""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from evalkit.catalog import find_model, load_models, match
from evalkit.catalog.published import (
    COLUMNS,
    PublishedScoresError,
    benchmark_for_task,
    choose_sources,
    load_published,
    published_points,
)
from evalkit.errors import EvalkitError
from evalkit.report.frontier import compute_frontier, frontier_table, pareto_mask
from evalkit.report.runs import load_runs
from tests.conftest import SHARED_DATA

SHARED_REFERENCE = SHARED_DATA / "reference"


def write_run(
    run_dir: Path,
    model: str,
    tasks: dict[str, tuple[float, float, float, int]],
    split: str | None = None,
    alias: str | None = None,
    params_total: int | None = None,
    metric: str = "accuracy",
    manifest: bool = True,
) -> Path:
    """A run folder shaped like evalkit/run/summary.py writes it: tasks map to (value, ci_low, ci_high, n)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "run_id": run_dir.name,
        "model": {
            "backend": "openai",
            "model": model,
            "revision": None,
            "params_total": params_total,
            "extra": {},
            "identity": f"openai:{model}@-",
            "alias": alias,
            "spec": model,
        },
        "evalkit_version": "0.1.0",
        "created": "2026-11-29T12:00:00+00:00",
        "tasks": {},
    }
    for name, (value, lo, hi, n) in tasks.items():
        entry: dict[str, Any] = {
            "task": name,
            "version": 1,
            "n_items": n,
            "n_records": n,
            "repeats": 1,
            "errors": 2,
            "truncated": 3,
            "no_answer": 4,
            "abstain": 0,
            "primary": metric,
            "metrics": {
                metric: {
                    "name": metric,
                    "value": value,
                    "ci_low": lo,
                    "ci_high": hi,
                    "n": n,
                    "n_items": n,
                    "extra": {},
                }
            },
            "breakdown": {},
            "tokens": {"prompt": 1000, "completion": 250},
        }
        if split is not None:
            entry["split"] = split
        summary["tasks"][name] = entry
    (run_dir / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    if manifest:
        (run_dir / "manifest.json").write_text(json.dumps({"run_id": run_dir.name, "status": "complete"}))
    return run_dir


# --- frontier maths -------------------------------------------------------------------------------


def brute_force(xs: list[float], ys: list[float]) -> list[bool]:
    """The definition, literally: dominated if another point has x <= and y >=, one strictly."""
    out = []
    for i in range(len(xs)):
        dominated = any(
            j != i and xs[j] <= xs[i] and ys[j] >= ys[i] and (xs[j] < xs[i] or ys[j] > ys[i])
            for j in range(len(xs))
        )
        out.append(not dominated)
    return out


def test_frontier_basic_staircase() -> None:
    xs = [1, 2, 3, 4, 5]
    ys = [10, 30, 20, 40, 40]
    # (3, 20) is beaten by (2, 30); (5, 40) by (4, 40): same score with more parameters.
    assert pareto_mask(xs, ys) == [True, True, False, True, False]


def test_frontier_ties_in_x_keep_only_the_best_score() -> None:
    assert pareto_mask([7.6, 7.6, 7.6], [56.3, 45.0, 56.2]) == [True, False, False]


def test_frontier_ties_in_score_keep_only_the_smallest() -> None:
    assert pareto_mask([14.7, 3.8, 70.0], [50.0, 50.0, 50.0]) == [False, True, False]


def test_frontier_exact_duplicates_are_both_on_it() -> None:
    # Neither duplicate has a strictly smaller size or a strictly higher score than the other.
    assert pareto_mask([14.7, 14.7, 3.0], [70.4, 70.4, 40.0]) == [True, True, True]


def test_frontier_single_point_and_empty() -> None:
    assert pareto_mask([8.0], [48.3]) == [True]
    assert pareto_mask([], []) == []


def test_frontier_matches_the_definition_on_random_points() -> None:
    rng = random.Random(7)
    for _ in range(300):
        n = rng.randint(1, 12)
        # Few distinct values, so ties and duplicates are common.
        xs = [rng.choice([0.5, 1, 3, 7, 14, 70]) for _ in range(n)]
        ys = [rng.choice([10, 20, 30, 40]) for _ in range(n)]
        assert pareto_mask(xs, ys) == brute_force(xs, ys), (xs, ys)


def test_pareto_mask_refuses_missing_values() -> None:
    with pytest.raises(ValueError, match="missing"):
        pareto_mask([1.0, float("nan")], [1.0, 2.0])


def test_missing_parameter_counts_are_reported_not_dropped() -> None:
    points = pd.DataFrame(
        {
            "label": ["a", "mystery", "b", "no-score"],
            "x": [1.0, None, 10.0, 3.0],
            "score": [20.0, 99.0, 50.0, None],
        }
    )
    result = compute_frontier(points)
    assert list(result.table["label"]) == ["a", "b"]
    assert list(result.table["on_frontier"]) == [True, True]
    assert list(result.missing["label"]) == ["mystery", "no-score"]
    assert "mystery" in result.notes[0] and "no-score" in result.notes[0]
    # A point without a size cannot knock anything off the frontier, however high it scores.
    assert list(result.frontier["label"]) == ["a", "b"]


# --- catalog --------------------------------------------------------------------------------------


def test_catalog_ids_are_unique_and_figures_have_sources() -> None:
    models = load_models()
    ids = [m.id for m in models]
    assert len(ids) == len(set(ids))
    for m in models:
        for figure in ("params_total", "params_active", "release_date", "knowledge_cutoff"):
            if getattr(m, figure) is not None:
                assert figure in m.sources, f"{m.id}: {figure} has no source"
        if m.params_active is not None:
            assert m.params_total is not None and m.params_active <= m.params_total, m.id


def test_month_only_cutoffs_are_written_as_the_month_last_day() -> None:
    for m in load_models():
        src = m.sources.get("knowledge_cutoff", "")
        if "month -> last day" in src:
            assert m.knowledge_cutoff is not None
            assert (m.knowledge_cutoff + dt.timedelta(days=1)).day == 1, m.id


def test_catalog_knows_the_cutoffs_the_notes_checked() -> None:
    assert find_model("phi-4").knowledge_cutoff == dt.date(2024, 6, 30)
    assert find_model("Llama-3-8B-Instruct").knowledge_cutoff == dt.date(2023, 3, 31)
    assert find_model("meta-llama/Meta-Llama-3-70B-Instruct").knowledge_cutoff == dt.date(2023, 12, 31)
    r1 = find_model("DeepSeek-R1")
    assert r1.params_total == 671 and r1.params_active == 37
    cut = r1.cutoff()
    assert cut is not None and (cut.date, cut.figure, cut.fallback) == (
        dt.date(2025, 1, 20),
        "release_date",
        True,
    )
    phi = find_model("phi-4").cutoff()
    assert phi is not None and (phi.date, phi.figure, phi.fallback) == (
        dt.date(2024, 6, 30),
        "knowledge_cutoff",
        False,
    )
    assert "June 2024" in phi.source and phi.model == "phi-4"


def test_one_catalog_matcher_for_every_name_a_model_carries() -> None:
    """Ids, aliases, hub ids and display names match whole or by their last path segment; the first
    name the catalog knows wins, and blank names are skipped."""
    assert match(["phi-4"]).id == "phi-4"
    assert match(["microsoft/phi-4"]).id == "phi-4"  # a hub id
    assert match(["/models/someone/phi-4/"]).id == "phi-4"  # a local path ending in a catalog name
    assert match([None, "", "unknown-model", "DeepSeek-R1"]).id == "deepseek-r1"
    assert match(["unknown-model", "org/unknown-7b"]) is None
    assert match([]) is None


def test_every_reference_model_name_joins_the_catalog() -> None:
    ref = SHARED_REFERENCE / "published_scores.csv"
    if not ref.is_file():
        pytest.skip(f"{ref} is absent (it sits beside the repository as ../shared)")
    with ref.open(encoding="utf-8") as f:
        names = {row["model"] for row in csv.DictReader(f)}
    missing = sorted(n for n in names if find_model(n) is None)
    assert not missing, f"no catalog entry or alias for: {missing}"


# --- published scores -----------------------------------------------------------------------------


def test_published_file_is_valid_and_keeps_math_and_math500_apart() -> None:
    df = load_published()
    ids = {m.id for m in load_models()}
    assert set(df["model"]) <= ids
    assert set(df["benchmark"]) == {"mmlu_pro", "math", "math500", "amc_2024", "aime_2024", "aime_2025"}
    # MATH-500 numbers come from the DeepSeek tables or from the 2025 sources (which report MATH-500
    # by that name); MATH (5,000) never names MATH-500.
    m500 = df[df["benchmark"] == "math500"]
    deepseek = m500["source"].str.startswith(("DeepSeek-V3 ", "DeepSeek-R1 "))
    assert (deepseek | (m500["source_date"] >= dt.date(2025, 4, 1))).all()
    assert not df.loc[df["benchmark"] == "math", "source_detail"].str.contains("MATH-500").any()
    assert (df.loc[df["metric"] == "accuracy", "score"] <= 100).all()
    assert set(df.loc[df["benchmark"] == "amc_2024", "metric"]) == {"amc_points"}


def write_published(tmp_path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> Path:
    base = {
        "model": "phi-4",
        "benchmark": "mmlu_pro",
        "metric": "accuracy",
        "score": "70.4",
        "kind": "instruct",
        "setting": "instruct; test",
        "source": "Test source",
        "source_detail": "Table 1",
        "source_date": "2024-12-12",
        "source_type": "developer",
        "note": "",
    }
    path = tmp_path / "published.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({**base, **r})
    return path


def test_unknown_model_is_a_clear_error(tmp_path: Path) -> None:
    path = write_published(tmp_path, [{}, {"model": "gpt-17"}])
    with pytest.raises(
        PublishedScoresError, match=r"line 3: model 'gpt-17' is not a catalog id.*models.yaml"
    ):
        load_published(path)


def test_alias_instead_of_id_suggests_the_id(tmp_path: Path) -> None:
    path = write_published(tmp_path, [{"model": "Qwen2.5-7B-Instruct"}])
    with pytest.raises(PublishedScoresError, match="use the catalog id 'qwen2.5-7b-instruct'"):
        load_published(path)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write_published(
        tmp_path,
        [
            {"score": "high"},
            {"score": "104", "source": "Other"},
            {"kind": "chat", "source": "Third"},
            {"source_type": "vendor", "source": "Fourth"},
            {"benchmark": "MMLU-Pro", "source": "Fifth"},
            {"source_date": "Dec 2024", "source": "Sixth"},
            {"source": "Test source"},  # repeats line 2
        ],
    )
    with pytest.raises(PublishedScoresError) as err:
        load_published(path)
    msg = str(err.value)
    for expected in (
        "line 2: score 'high' is not a number",
        "line 3: score 104 is outside 0-100",
        "line 4: kind 'chat'",
        "line 5: source_type 'vendor'",
        "line 6: benchmark 'MMLU-Pro'",
        "line 7: source_date 'Dec 2024'",
        "line 8: repeats line 2",
    ):
        assert expected in msg
    assert isinstance(err.value, EvalkitError)  # the CLI prints it and exits 2


def test_missing_column_and_missing_file(tmp_path: Path) -> None:
    path = write_published(tmp_path, [{}], columns=tuple(c for c in COLUMNS if c != "source_type"))
    with pytest.raises(PublishedScoresError, match="missing column"):
        load_published(path)
    with pytest.raises(PublishedScoresError, match="not found"):
        load_published(tmp_path / "nope.csv")


# --- the source-choice rule -----------------------------------------------------------------------


def test_llama_33_mmlu_pro_uses_meta_and_lists_the_others() -> None:
    chosen = choose_sources(load_published())
    row = chosen[(chosen["model"] == "llama-3.3-70b-instruct") & (chosen["benchmark"] == "mmlu_pro")].iloc[0]
    assert row["score"] == 68.9
    assert row["source"].startswith("Meta Llama model cards")
    assert row["choice"] == "developer's own number"
    assert row["n_sources"] == 3
    assert "66.6" in row["other_sources"] and "64.4" in row["other_sources"]


def rule_frame(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """(source_type, source_date, score) rows for one model and benchmark, in file order."""
    return pd.DataFrame(
        [
            {
                "model": "m",
                "benchmark": "b",
                "metric": "accuracy",
                "score": score,
                "kind": "instruct",
                "setting": "s",
                "source": f"S{i}",
                "source_detail": "",
                "source_date": dt.date.fromisoformat(date),
                "source_type": stype,
                "note": "",
                "line": i + 2,
            }
            for i, (stype, date, score) in enumerate(rows)
        ]
    )


def test_developer_number_beats_a_newer_third_party_one() -> None:
    out = choose_sources(rule_frame([("third_party", "2025-03-01", 60.0), ("developer", "2024-01-01", 55.0)]))
    assert out.iloc[0]["score"] == 55.0 and out.iloc[0]["choice"] == "developer's own number"


def test_published_number_beats_a_rescored_one() -> None:
    out = choose_sources(rule_frame([("derived", "2025-01-01", 40.0), ("third_party", "2024-01-01", 41.0)]))
    assert out.iloc[0]["score"] == 41.0 and out.iloc[0]["choice"] == "published number over a re-scored one"


def test_most_recent_source_among_equals_then_file_order() -> None:
    out = choose_sources(
        rule_frame([("third_party", "2024-06-01", 50.0), ("third_party", "2024-12-19", 52.0)])
    )
    assert out.iloc[0]["score"] == 52.0 and out.iloc[0]["choice"] == "most recent source"
    out = choose_sources(
        rule_frame([("third_party", "2024-06-01", 50.0), ("third_party", "2024-06-01", 52.0)])
    )
    assert out.iloc[0]["score"] == 50.0 and out.iloc[0]["choice"] == "first listed of equally ranked sources"
    out = choose_sources(rule_frame([("derived", "2024-06-01", 50.0)]))
    assert out.iloc[0]["choice"] == "only source" and out.iloc[0]["other_sources"] == ""


def test_benchmark_for_task_never_maps_math500_to_math() -> None:
    known = {"mmlu_pro", "math", "math500", "amc_2024"}
    assert benchmark_for_task("mmlu_pro", known) == "mmlu_pro"
    assert benchmark_for_task("mmlu_pro_0shot", known) == "mmlu_pro"
    assert benchmark_for_task("math500_minerva", known) == "math500"
    assert benchmark_for_task("math500", {"math"}) is None
    assert benchmark_for_task("aime_2025", known) is None


def test_published_points_take_parameter_counts_from_the_catalog() -> None:
    p = published_points("mmlu_pro", kinds=["instruct", "reasoning"]).set_index("model")
    assert p.loc["deepseek-v3", "params_total"] == 671 and p.loc["deepseek-v3", "params_active"] == 37
    # Dense models: active = total.
    assert p.loc["phi-4", "params_active"] == p.loc["phi-4", "params_total"] == 14.7
    assert "qwen2.5-7b" not in p.index  # base models only when asked for


def test_data_check_published_mmlu_pro_frontier_models() -> None:
    """A data check, not a logic test (pareto_mask is checked against the definition above): the
    MMLU-Pro frontier of catalog/published.csv as the README charts show it. Update the list when a
    published row changes it."""
    result = frontier_table("mmlu_pro")
    assert list(result.frontier["model"]) == [
        "qwen2.5-0.5b-instruct",
        "qwen3-0.6b",
        "exaone-4.0-1.2b",
        "gemma-3-12b-it",
        "phi-4-reasoning",
        "phi-4-reasoning-plus",
        "gpt-oss-20b",
        "qwen3-30b-a3b-thinking-2507",
        "seed-oss-36b-instruct",
        "qwen3-235b-a22b-thinking-2507",
        "glm-4.5",
        "deepseek-r1-0528",
    ]
    # A hybrid model's point says its thinking mode; gpt-oss's the reasoning effort shown.
    labels = set(result.table["label"])
    assert {"Qwen3-0.6B (thinking)", "Qwen3-0.6B (no thinking)"} <= labels
    aime = frontier_table("aime_2025").table.set_index("model")
    assert aime.loc["gpt-oss-20b", "label"].startswith("gpt-oss-20b (high effort)")
    assert aime.loc["gpt-oss-20b", "score"] == 91.7  # the developer's high-effort figure
    # Models whose parameter count was not found are listed apart, never guessed.
    assert set(result.missing["model"]) == {"deepseek-v3.1-terminus", "gemma-3n-e4b-it", "gemma-3n-e2b-it"}
    assert all(find_model(m).params_total is None for m in result.missing["model"])


# --- run aggregation ------------------------------------------------------------------------------


def test_load_runs_matches_the_catalog_and_scales_to_percent(tmp_path: Path) -> None:
    write_run(
        tmp_path / "a",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        {"mmlu_pro": (0.25, 0.2, 0.3, 100)},
        alias="smollm2-135m",
    )
    write_run(tmp_path / "b", "/models/checkpoints/Qwen2.5-7B-Instruct", {"math500": (0.7, 0.66, 0.74, 500)})
    write_run(
        tmp_path / "c",
        "my-org/tiny",
        {"mmlu_pro": (0.1, 0.05, 0.15, 50)},
        params_total=1_500_000_000,
        split="post-cutoff",
        manifest=False,
    )
    write_run(tmp_path / "d", "phi-4", {"amc_2024": (91.5, 88.0, 95.0, 100)}, metric="amc_points")
    df = load_runs([tmp_path]).set_index("run_id")
    assert df.loc["a", "model"] == "smollm2-135m" and df.loc["a", "in_catalog"]
    assert df.loc["a", "params_total"] == 0.135
    assert df.loc["a", ["score", "ci_low", "ci_high"]].tolist() == pytest.approx([25.0, 20.0, 30.0])
    assert df.loc["a", "split"] == "all" and df.loc["a", "n"] == 100 and df.loc["a", "tokens"] == 1250
    assert df.loc["a", ["errors", "truncated"]].tolist() == [2, 3] and df.loc["a", "status"] == "complete"
    assert df.loc["b", "model"] == "qwen2.5-7b-instruct"  # matched by the checkpoint folder's name
    assert not df.loc["c", "in_catalog"] and df.loc["c", "model"] == "my-org/tiny"
    assert df.loc["c", "params_total"] == 1.5 and df.loc["c", "split"] == "post-cutoff"
    assert df.loc["d", "score"] == 91.5  # points stay points
    assert df.loc["d", "run_dir"] == str(tmp_path / "d")


def test_load_runs_can_pick_another_metric(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", "phi-4", {"amc_2024": (0.5, 0.4, 0.6, 100)})
    data = json.loads((run / "summary.json").read_text())
    data["tasks"]["amc_2024"]["metrics"]["amc_points"] = {
        "name": "amc_points",
        "value": 90.0,
        "ci_low": 85.0,
        "ci_high": 95.0,
    }
    (run / "summary.json").write_text(json.dumps(data))
    assert load_runs([run])["score"].iloc[0] == 50.0
    picked = load_runs([run], metric="amc_points").iloc[0]
    assert (picked["metric"], picked["score"]) == ("amc_points", 90.0)


def test_load_runs_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(EvalkitError, match="no summary.json"):
        load_runs([tmp_path])
    with pytest.raises(EvalkitError, match="no such directory"):
        load_runs([tmp_path / "missing"])
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text("{not json")
    with pytest.raises(EvalkitError, match="not valid JSON"):
        load_runs([tmp_path / "broken"])


# --- the table behind a chart ---------------------------------------------------------------------


def test_frontier_table_mixes_runs_and_published(tmp_path: Path) -> None:
    write_run(
        tmp_path / "smol", "HuggingFaceTB/SmolLM2-135M-Instruct", {"mmlu_pro": (0.118, 0.112, 0.124, 12032)}
    )
    write_run(tmp_path / "nosize", "some/unknown-model", {"mmlu_pro": (0.5, 0.45, 0.55, 400)})
    result = frontier_table("mmlu_pro", runs=load_runs([tmp_path]), highlight="phi-4")
    t = result.table
    smol = t[t["origin"] == "run"].iloc[0]
    assert smol["model"] == "smollm2-135m" and smol["on_frontier"]  # the smallest point is always on it
    assert t.loc[t["model"] == "phi-4", "highlight"].all()
    assert list(result.missing.loc[result.missing["origin"] == "run", "label"]) == ["some/unknown-model"]
    assert any("unknown-model" in n for n in result.notes)


def test_post_cutoff_split_omits_published_scores_and_says_so(tmp_path: Path) -> None:
    write_run(tmp_path / "post", "microsoft/phi-4", {"amc_2024": (0.55, 0.45, 0.65, 82)}, split="post-cutoff")
    result = frontier_table("amc_2024", runs=load_runs([tmp_path]), split="post-cutoff")
    assert set(result.table["origin"]) == {"run"}
    assert any("no post-cutoff split" in n for n in result.notes)
    with pytest.raises(EvalkitError, match="nothing to plot"):
        frontier_table("amc_2024", split="post-cutoff")


def test_published_scores_in_another_metric_are_not_mixed_in(tmp_path: Path) -> None:
    write_run(tmp_path / "acc", "microsoft/phi-4", {"amc_2024": (0.55, 0.45, 0.65, 100)})
    result = frontier_table("amc_2024", runs=load_runs([tmp_path]))
    assert set(result.table["origin"]) == {"run"}
    assert any("omitted rather than mixed" in n for n in result.notes)


def test_unknown_highlight_is_an_error() -> None:
    with pytest.raises(EvalkitError, match="matches no point"):
        frontier_table("math500", highlight="phi-4")


def test_amc_2024_held_day_matches_the_task_data(shared_data: Path) -> None:
    """The chart's "first public on" day for AMC 2024 (charts.HELD_ON) is the earliest contest day of
    the amc_2024 task's items."""
    from evalkit.report.charts import HELD_ON
    from evalkit.tasks.registry import discover
    from evalkit.tasks.samples import load_samples

    samples, _ = load_samples(discover().get("amc_2024"), shared_data)
    assert min(s.date for s in samples if s.date) == HELD_ON["amc_2024"]

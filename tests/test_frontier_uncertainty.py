"""The frontier bootstrap: P(on frontier) on constructed cases, the band, the binomial redraw of
published points, per-item results read from real run folders, the post-cutoff dumbbells and the
tokens view."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from runfolders import record, write_records
from test_frontier import write_run

from evalkit.report.frontier import cutoff_dumbbells, frontier_table
from evalkit.report.frontier_uncertainty import bootstrap_frontier, run_item_values
from evalkit.report.runs import load_runs


def items(n: int, correct: int, offset: int = 0) -> dict[str, list[float]]:
    """n items, ``correct`` of them right (a run's per-item results, one repeat each)."""
    return {f"q{i}": [1.0 if (i + offset) % n < correct else 0.0] for i in range(n)}


def test_a_clear_winner_is_on_the_frontier_in_nearly_every_draw() -> None:
    # Smaller and far better: the big model is dominated in every draw.
    u = bootstrap_frontier([1.0, 10.0], [90.0, 30.0], items=[items(100, 90), items(100, 30)])
    assert u.p_on_frontier[0] > 0.99 and u.p_on_frontier[1] < 0.01
    # Bigger and clearly better: both stay on it.
    u = bootstrap_frontier([1.0, 10.0], [30.0, 90.0], items=[items(100, 30), items(100, 90)])
    assert min(u.p_on_frontier) > 0.99


def test_two_tied_points_share_the_frontier_about_half_the_time() -> None:
    # One size, one score, different items right: whichever draws higher is on it.
    a, b = items(200, 100), items(200, 100, offset=50)
    u = bootstrap_frontier([5.0, 5.0], [50.0, 50.0], items=[a, b], draws=2000)
    assert u.p_on_frontier == pytest.approx([0.5, 0.5], abs=0.06)


def test_seeded_and_deterministic() -> None:
    args = ([1.0, 2.0, 3.0], [40.0, 45.0, 50.0])
    kw = {"n": [30, 30, 30]}
    assert bootstrap_frontier(*args, **kw, seed=3) == bootstrap_frontier(*args, **kw, seed=3)
    assert (
        bootstrap_frontier(*args, **kw, seed=3).p_on_frontier
        != bootstrap_frontier(*args, **kw, seed=4).p_on_frontier
    )


def test_band_is_monotone_and_brackets_the_frontier() -> None:
    rng = np.random.default_rng(0)
    xs = sorted(rng.uniform(0.5, 500, size=15).tolist())
    ys = rng.uniform(10, 90, size=15).tolist()
    u = bootstrap_frontier(xs, ys, n=[30] * 15)
    for series in (u.band_low, u.band_high):
        assert all(b >= a - 1e-9 for a, b in zip(series, series[1:], strict=False))  # a step line never falls
    best = np.maximum.accumulate(np.asarray(ys)[np.argsort(xs)])
    assert all(lo <= b + 1e-9 for lo, b in zip(u.band_low, best, strict=True))
    assert all(lo <= hi for lo, hi in zip(u.band_low, u.band_high, strict=True))


def test_published_points_without_n_are_held_fixed_and_said_so() -> None:
    u = bootstrap_frontier([1.0, 2.0], [50.0, 40.0], n=[None, None])
    assert u.p_on_frontier == [1.0, 0.0] and u.band_low == u.band_high == [50.0, 50.0]
    assert "held fixed" in u.notes[0]
    # With n = 30, a 10-point gap is often overturned; with n = 12,032 never.
    small = bootstrap_frontier([1.0, 2.0], [45.0, 50.0], n=[30, 30]).p_on_frontier[0]
    large = bootstrap_frontier([1.0, 2.0], [45.0, 50.0], n=[12032, 12032]).p_on_frontier[0]
    assert large == 1.0 and small == 1.0  # the smaller model is always on it
    big_small = bootstrap_frontier([1.0, 2.0], [50.0, 45.0], n=[30, 30]).p_on_frontier[1]
    big_large = bootstrap_frontier([1.0, 2.0], [50.0, 45.0], n=[12032, 12032]).p_on_frontier[1]
    assert 0.15 < big_small < 0.5 and big_large == 0.0


def test_repeats_are_resampled_within_their_item() -> None:
    # Every item right in half its repeats: item resampling alone would see no spread at all.
    half = {f"q{i}": [1.0, 0.0] * 4 for i in range(30)}
    u = bootstrap_frontier([1.0, 1.0], [50.0, 50.0], items=[half, half])
    assert u.band_high[0] > 55 and u.band_low[0] < 50


def real_run(path: Path, model: str, task: str, right: int, n: int = 30, repeats: int = 1, **kw) -> Path:
    """A run folder with a summary (write_run) and real records (the store) behind it."""
    write_run(path, model, {task: (right / n, 0, 1, n)}, **kw)
    recs = [record(task, f"q{i}", r, correct=i < right) for i in range(n) for r in range(repeats)]
    recs.append(record(task, "q-failed", 0, correct=None))  # a failed request is no result
    write_records(path, recs)
    return path


def test_run_items_come_from_the_run_folder(tmp_path: Path) -> None:
    run = real_run(tmp_path / "r", "microsoft/phi-4", "aime_2025", right=12, repeats=4)
    values = run_item_values(run, "aime_2025")
    assert len(values) == 30 and values["q0"] == [1.0] * 4 and values["q29"] == [0.0] * 4
    assert run_item_values(run, "other_task") == {}


def test_frontier_table_carries_p_on_frontier_for_runs_and_published(tmp_path: Path) -> None:
    real_run(tmp_path / "smol", "HuggingFaceTB/SmolLM2-135M-Instruct", "aime_2025", right=1)
    result = frontier_table("aime_2025", runs=load_runs([tmp_path]))
    t = result.table.set_index("label")
    assert t["p_on_frontier"].between(0, 1).all()
    assert t.loc["SmolLM2-135M-Instruct", "p_on_frontier"] == 1.0  # the smallest point
    assert result.uncertainty is not None and result.uncertainty.draws == 1000
    again = frontier_table("aime_2025", runs=load_runs([tmp_path]))
    assert list(again.table["p_on_frontier"]) == list(result.table["p_on_frontier"])


def test_dumbbell_flags_a_frontier_place_held_on_pre_cutoff_items_only(tmp_path: Path) -> None:
    # Pre-cutoff, phi-4 (14.7B) is on the frontier; post-cutoff the smaller qwen2.5-0.5b (35%) beats
    # its 30%: flagged. qwen2.5-72b is on both.
    write_run(
        tmp_path / "phi-pre", "phi-4", {"competition_math": (0.80, 0.75, 0.85, 700)}, split="pre-cutoff"
    )
    write_run(
        tmp_path / "phi-post", "phi-4", {"competition_math": (0.30, 0.2, 0.4, 110)}, split="post-cutoff"
    )
    write_run(
        tmp_path / "q-pre",
        "qwen2.5-72b-instruct",
        {"competition_math": (0.70, 0.6, 0.8, 700)},
        split="pre-cutoff",
    )
    write_run(
        tmp_path / "q-post",
        "qwen2.5-72b-instruct",
        {"competition_math": (0.60, 0.5, 0.7, 110)},
        split="post-cutoff",
    )
    write_run(
        tmp_path / "s-pre", "smollm2-135m", {"competition_math": (0.05, 0.0, 0.1, 700)}, split="pre-cutoff"
    )
    write_run(
        tmp_path / "t-post",
        "qwen2.5-0.5b-instruct",
        {"competition_math": (0.35, 0.3, 0.4, 110)},
        split="post-cutoff",
    )
    runs = load_runs([tmp_path])
    bells = cutoff_dumbbells(runs, "competition_math").set_index("model")
    # smollm2 has no post-cutoff run, qwen2.5-0.5b no pre-cutoff one: no dumbbell.
    assert set(bells.index) == {"phi-4", "qwen2.5-72b-instruct"}
    assert bells.loc["phi-4", ["pre", "post"]].tolist() == pytest.approx([80.0, 30.0])
    assert bells.loc["phi-4", "frontier_pre_cutoff_only"]
    assert not bells.loc["qwen2.5-72b-instruct", "frontier_pre_cutoff_only"]
    result = frontier_table("competition_math", runs=runs, split="post-cutoff")
    t = result.table.set_index("model")
    assert t.loc["phi-4", "frontier_pre_cutoff_only"] is True and t.loc["phi-4", "pre_cutoff_score"] == 80.0
    assert any("pre-cutoff items only" in n and "phi-4" in n for n in result.notes)


def test_tokens_view_uses_generated_tokens_per_answer(tmp_path: Path) -> None:
    for name, completion, score in (("a", 3000, 0.4), ("b", 90000, 0.7), ("c", 120000, 0.5)):
        run = write_run(tmp_path / name, "phi-4", {"aime_2025": (score, 0, 1, 30)})
        data = json.loads((run / "summary.json").read_text())
        data["tasks"]["aime_2025"]["tokens"]["completion"] = completion
        (run / "summary.json").write_text(json.dumps(data))
    result = frontier_table("aime_2025", runs=load_runs([tmp_path]), x="tokens")
    t = result.table.set_index("run_dir")
    assert set(t["origin"]) == {"run"}  # published scores have no token counts
    assert t.loc[str(tmp_path / "a"), "x"] == 100.0 and t.loc[str(tmp_path / "b"), "x"] == 3000.0
    assert list(result.frontier["score"]) == [40.0, 70.0]  # c spends more tokens than b and scores less
    assert any("token counts" in n for n in result.notes)


def test_vs_published_matches_model_and_benchmark_and_checks_the_interval(tmp_path: Path) -> None:
    from evalkit.report.vs_published import vs_published_rows

    # qwen3-8b on AIME 2025: the catalog has 67.3 (thinking) and 20.9 (no thinking) from the Qwen3 report.
    write_run(tmp_path / "q", "Qwen/Qwen3-8B", {"aime_2025": (0.65, 0.55, 0.75, 30)})
    write_run(tmp_path / "u", "my-org/unknown", {"aime_2025": (0.5, 0.4, 0.6, 30)})
    write_run(tmp_path / "n", "Qwen/Qwen3-8B", {"basic_facts": (0.9, 0.8, 1.0, 10)})
    rows = vs_published_rows(load_runs([tmp_path]))
    q = {(r["kind"], r["published"]): r for r in rows if r["run_id"] == "q"}
    assert q[("reasoning", 67.3)]["inside"] is True
    assert q[("instruct", 20.9)]["inside"] is False
    assert "thinking on" in q[("reasoning", 67.3)]["published_setting"]
    assert "Qwen3 Technical Report" in q[("reasoning", 67.3)]["source"]
    assert "temperature 0.6" in q[("reasoning", 67.3)]["run_setting"]
    (u,) = [r for r in rows if r["run_id"] == "u"]
    assert u["published"] is None and "no published score" in u["source"]
    (n,) = [r for r in rows if r["run_id"] == "n"]
    assert n["published"] is None and "no published benchmark" in n["source"]


def test_report_vs_published_cli(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    write_run(tmp_path / "q", "Qwen/Qwen3-8B", {"aime_2025": (0.65, 0.55, 0.75, 30)})
    proc = run_cli("report", str(tmp_path / "q"), "--vs-published", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert "67.3" in proc.stdout and "True" in proc.stdout and "Qwen3 Technical Report" in proc.stdout

"""Pareto frontier of score versus parameter count, and the table behind a frontier chart.

A point is on the frontier when no other point has fewer-or-equal parameters and a higher-or-equal
score, with at least one of the two strict. Exact duplicates therefore both stay on the frontier
(neither beats the other), and a point at the same size as a better one drops off.

Points without a parameter count (or without a score) cannot be placed: they are returned apart
(:attr:`FrontierResult.missing`) so that callers report them rather than drop them silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from evalkit.errors import EvalkitError
from evalkit.report.pareto import pareto_mask
from evalkit.store import PRIMARY_SCORER

if TYPE_CHECKING:
    import datetime as dt

    import pandas as pd

    from evalkit.report.frontier_uncertainty import FrontierUncertainty

X_CHOICES = ("total", "active", "tokens")
SPLITS = ("all", "pre-cutoff", "post-cutoff")
DEFAULT_KINDS = ("instruct", "reasoning")

# Columns of the table behind a chart (and of its CSV), in order.
TABLE_COLUMNS = [
    "label",
    "model",
    "name",
    "origin",
    "kind",
    "task",
    "benchmark",
    "split",
    "metric",
    "x",
    "params_total",
    "params_active",
    "score",
    "ci_low",
    "ci_high",
    "n",
    "on_frontier",
    "p_on_frontier",
    "highlight",
    "setting",
    "source",
    "source_detail",
    "source_type",
    "n_sources",
    "choice",
    "other_sources",
    "note",
    "pre_cutoff_score",
    "frontier_pre_cutoff_only",
    "tokens_per_item",
    "run_dir",
]


@dataclass
class FrontierResult:
    """``table``: every placeable point with ``on_frontier``; ``missing``: points that could not be placed."""

    table: pd.DataFrame
    missing: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    uncertainty: FrontierUncertainty | None = None  # the bootstrap behind p_on_frontier and the band
    dumbbells: pd.DataFrame | None = None  # post-cutoff charts: models with both splits (cutoff_dumbbells)

    @property
    def frontier(self) -> pd.DataFrame:
        """Frontier points, ordered by x (the step line's vertices)."""
        f = self.table[self.table["on_frontier"]]
        return f.sort_values(["x", "score"], kind="stable")


def compute_frontier(points: pd.DataFrame, x: str = "x", y: str = "score") -> FrontierResult:
    """Split off points lacking x or y, and mark the frontier among the rest."""
    placeable = points[x].notna() & points[y].notna()
    table = points[placeable].copy()
    missing = points[~placeable].copy()
    table["on_frontier"] = pareto_mask(table[x].astype(float).tolist(), table[y].astype(float).tolist())
    missing["on_frontier"] = False
    notes = []
    if len(missing):
        what = ", ".join(str(v) for v in missing.get("label", missing.index))
        notes.append(f"{len(missing)} point(s) have no parameter count or score and are not drawn: {what}")
    return FrontierResult(table=table, missing=missing, notes=notes)


def frontier_table(
    task: str,
    runs: pd.DataFrame | None = None,
    published: bool = True,
    x: str = "total",
    split: str = "all",
    kinds: Iterable[str] = DEFAULT_KINDS,
    highlight: str | None = None,
    published_path: str | None = None,
    released_from: dt.date | None = None,
    draws: int | None = None,
    seed: int | None = None,
) -> FrontierResult:
    """Gather the user's runs and the published scores for one task into one frontier table.

    Runs keep their own task name; published scores come from the benchmark the task belongs to
    (``mmlu_pro_0shot`` -> ``mmlu_pro``). Published numbers have no pre/post-cutoff split, so they are
    left out (and the notes say so) for any split other than ``all``; nor a token count, so
    ``x="tokens"`` (mean generated tokens per item, reasoning included) charts own runs only.
    ``released_from`` keeps published models released on or after that day. ``p_on_frontier`` comes
    from a seeded bootstrap (:mod:`evalkit.report.frontier_uncertainty`); ``draws=0`` skips it.
    """
    import pandas as pd

    if x not in X_CHOICES:
        raise EvalkitError(f"--x must be one of {', '.join(X_CHOICES)}, not {x!r}")
    if split not in SPLITS:
        raise EvalkitError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    notes: list[str] = []
    frames = []
    metric = None
    run_points = _run_points(runs, task, split, notes) if runs is not None and len(runs) else None
    if run_points is not None:
        frames.append(run_points)
        metric = str(run_points["metric"].iloc[0])
    if published and x == "tokens":
        notes.append("published scores carry no token counts; the tokens view shows evalkit runs only")
    elif published:
        found = _published_points(task, split, metric, tuple(kinds), published_path, notes)
        if found is not None:
            pub_points, metric = found
            frames.append(_released_from(pub_points, released_from, notes))
    if not frames:
        raise EvalkitError(
            f"nothing to plot for task {task!r} with split {split!r}: give run folders with that task"
            + "".join(f"; {n}" for n in notes)
        )
    df = pd.concat(frames, ignore_index=True, sort=False)
    df["metric"] = metric
    if "tokens_per_item" not in df.columns:
        df["tokens_per_item"] = float("nan")
    df["x"] = {"active": df["params_active"], "total": df["params_total"], "tokens": df["tokens_per_item"]}[x]
    df["highlight"] = _highlighted(df, highlight, task) if highlight else False
    for c in TABLE_COLUMNS:
        if c not in df.columns:
            df[c] = None
    result = compute_frontier(df[TABLE_COLUMNS])
    result.notes[:0] = notes
    if split == "post-cutoff" and runs is not None and len(runs):
        _add_dumbbells(result, cutoff_dumbbells(runs, task, x))
    _add_uncertainty(result, draws, seed)
    return result


def cutoff_dumbbells(runs: pd.DataFrame, task: str, x: str = "total") -> pd.DataFrame:
    """Models with both a pre-cutoff and a post-cutoff run of ``task``: both scores at the model's
    size, whether it is on the frontier of each split's runs, and ``frontier_pre_cutoff_only``: on the
    pre-cutoff frontier but not the post-cutoff one (its place may rest on items it saw in training)."""
    import pandas as pd

    col = {"active": "params_active", "total": "params_total", "tokens": "tokens_per_item"}[x]
    sides = {}
    for split in ("pre-cutoff", "post-cutoff"):
        pts = _run_points(runs, task, split, [])
        if pts is None:
            return pd.DataFrame(columns=DUMBBELL_COLUMNS)
        pts = pts[pts[col].notna()].drop_duplicates("model", keep="last").copy()
        pts["on"] = pareto_mask(pts[col].astype(float).tolist(), pts["score"].astype(float).tolist())
        sides[split] = pts.set_index("model")
    pre, post = sides["pre-cutoff"], sides["post-cutoff"]
    rows = []
    for model in [m for m in post.index if m in pre.index]:
        a, b = pre.loc[model], post.loc[model]
        rows.append(
            {
                "model": model,
                "label": str(b["name"]),
                "x": float(b[col]),
                "pre": float(a["score"]),
                "post": float(b["score"]),
                "on_frontier_pre": bool(a["on"]),
                "on_frontier_post": bool(b["on"]),
                "frontier_pre_cutoff_only": bool(a["on"] and not b["on"]),
            }
        )
    return pd.DataFrame(rows, columns=DUMBBELL_COLUMNS)


DUMBBELL_COLUMNS = [
    "model",
    "label",
    "x",
    "pre",
    "post",
    "on_frontier_pre",
    "on_frontier_post",
    "frontier_pre_cutoff_only",
]


def _add_dumbbells(result: FrontierResult, bells: pd.DataFrame) -> None:
    """The pre-cutoff score and the flag on each post-cutoff run that has a pre-cutoff twin."""
    result.dumbbells = bells
    t = result.table
    by_model = bells.set_index("model") if len(bells) else None
    runs = t["origin"] == "run"
    for i in t.index[runs]:
        m = t.at[i, "model"]
        if by_model is not None and m in by_model.index:
            t.at[i, "pre_cutoff_score"] = by_model.at[m, "pre"]
            t.at[i, "frontier_pre_cutoff_only"] = bool(by_model.at[m, "frontier_pre_cutoff_only"])
    flagged = list(bells.loc[bells["frontier_pre_cutoff_only"], "label"]) if len(bells) else []
    if flagged:
        result.notes.append(
            f"on the frontier of pre-cutoff items only (not of post-cutoff ones): {', '.join(flagged)}"
        )


def _released_from(points: pd.DataFrame, since: dt.date | None, notes: list[str]) -> pd.DataFrame:
    """Published points of models released on or after ``since`` (all of them without it)."""
    if since is None:
        return points
    keep = points["release_date"].map(lambda d: d is not None and d >= since)
    notes.append(
        f"published models released from {since.isoformat()} "
        f"({int(keep.sum())} of {len(points)}; models without a release date left out)"
    )
    return points[keep]


def _add_uncertainty(result: FrontierResult, draws: int | None, seed: int | None) -> None:
    """``p_on_frontier`` per point and the band, from the bootstrap (skipped for ``draws=0``)."""
    from evalkit.report.frontier_uncertainty import DEFAULT_DRAWS, DEFAULT_SEED, frontier_uncertainty

    t = result.table
    if draws == 0 or not len(t):
        t["p_on_frontier"] = float("nan")
        return
    u = frontier_uncertainty(
        t, draws=DEFAULT_DRAWS if draws is None else draws, seed=DEFAULT_SEED if seed is None else seed
    )
    t["p_on_frontier"] = u.p_on_frontier
    result.uncertainty = u
    result.notes += u.notes


def _run_points(runs: pd.DataFrame, task: str, split: str, notes: list[str]) -> pd.DataFrame | None:
    """The runs of ``task`` with ``split`` as frontier points (one metric), or None; ``notes`` says why
    none when runs of that task have other splits."""
    # One point per run: the task's primary scorer (extra scorers such as MMLU-Pro's official reading
    # are rows of `evalkit report`, not second points).
    runs = runs[runs["scorer"] == PRIMARY_SCORER] if "scorer" in runs else runs
    r = runs[(runs["task"] == task) & (runs["split"] == split)].copy()
    other_splits = sorted(set(runs.loc[runs["task"] == task, "split"]) - {split})
    if not len(r):
        if other_splits:
            notes.append(f"no run of {task} has split {split!r} (runs have: {', '.join(other_splits)})")
        return None
    metrics = sorted(set(r["metric"]))
    if len(metrics) > 1:
        raise EvalkitError(
            f"runs of {task} report different primary metrics ({', '.join(metrics)}); "
            f"chart one metric at a time"
        )
    # Two runs of one model are told apart by their run ids.
    dup = r.duplicated(["model"], keep=False)
    r["label"] = [
        f"{n} [{rid}]" if d else str(n) for n, rid, d in zip(r["name"], r["run_id"], dup, strict=True)
    ]
    r["origin"] = "run"
    r["kind"] = "run"
    r["benchmark"] = task
    r["setting"] = [f"evalkit run, {m}" for m in r["metric"]]
    r["source"] = "evalkit run"
    r["source_detail"] = r["run_id"]
    r["source_type"] = "own"
    r["n_sources"] = 1
    r["choice"] = ""
    r["other_sources"] = ""
    r["note"] = ""
    r["tokens_per_item"] = [tokens_per_item(d, task) for d in r["run_dir"]]
    return r


def tokens_per_item(run_dir: str, task: str) -> float:
    """Mean generated tokens per answer (reasoning included) of one task in a run: the summary's
    completion tokens over its records; NaN when the summary has no counts."""
    from evalkit.store import RunFolder

    summary = RunFolder(run_dir).summary or {}
    entry = (summary.get("tasks") or {}).get(task) or {}
    completion = (entry.get("tokens") or {}).get("completion")
    n_records = entry.get("n_records") or entry.get("n_items")
    if not completion or not n_records:
        return float("nan")
    return float(completion) / float(n_records)


def _published_points(
    task: str,
    split: str,
    metric: str | None,
    kinds: tuple[str, ...],
    published_path: str | None,
    notes: list[str],
) -> tuple[pd.DataFrame, str] | None:
    """The published scores of the benchmark ``task`` belongs to, in the runs' ``metric`` (or the
    benchmark's first, without runs), as frontier points with that metric; or None, with the reason
    in ``notes``."""
    from evalkit.catalog.published import benchmark_for_task, load_published, published_points

    table = load_published(published_path)
    bench = benchmark_for_task(task, set(table["benchmark"]))
    if split != "all":
        notes.append(f"published scores are whole-benchmark numbers with no {split} split; they are omitted")
        return None
    if bench is None:
        known = ", ".join(sorted(set(table["benchmark"])))
        notes.append(f"no published scores for {task} (published benchmarks: {known})")
        return None
    bench_metrics = sorted(set(table.loc[table["benchmark"] == bench, "metric"]))
    use_metric = metric if metric in bench_metrics else (bench_metrics[0] if metric is None else None)
    if use_metric is None:
        notes.append(
            f"published {bench} scores use {', '.join(bench_metrics)}, the runs {metric}: "
            f"published scores omitted rather than mixed"
        )
        return None
    p = published_points(bench, kinds=kinds, metric=use_metric, path=published_path)
    hybrid = hybrid_models(table)
    p["label"] = [
        point_label(r["name"], r["model"], r["kind"], r["setting"], hybrid)
        + ("*" if r["n_sources"] > 1 else "")
        for r in p.to_dict("records")
    ]  # * other sources differ
    p["origin"] = "published"
    p["task"] = task
    p["split"] = "all"
    p["ci_low"] = float("nan")
    p["ci_high"] = float("nan")
    p["n"] = float("nan")
    p["run_dir"] = ""
    if bench != task:
        notes.append(f"published scores are for {bench}; the runs' task is {task} (protocols differ)")
    return p, use_metric


def hybrid_models(published: pd.DataFrame) -> set[str]:
    """Catalog ids with published scores both thinking on (``reasoning``) and off (``instruct``)."""
    kinds = published.groupby("model")["kind"].agg(set)
    return {m for m, k in kinds.items() if {"reasoning", "instruct"} <= k}


def point_label(name: str, model: str, kind: str, setting: str, hybrid: set[str]) -> str:
    """A published point's label: the model's name, with the thinking mode for a hybrid model (its
    two modes are two points) and the reasoning effort where the source names one (gpt-oss)."""
    from evalkit.catalog.published import reasoning_effort

    tags = []
    if model in hybrid:
        tags.append("thinking" if kind == "reasoning" else "no thinking")
    effort = reasoning_effort(setting)
    if effort:
        tags.append(f"{effort} effort")
    return f"{name} ({', '.join(tags)})" if tags else str(name)


def _highlighted(df: pd.DataFrame, highlight: str, task: str) -> pd.Series:
    """Which points are the ``--highlight`` model (by catalog id or display name)."""
    from evalkit.catalog import find_model

    entry = find_model(highlight)
    key = entry.id if entry else highlight
    hit = (df["model"] == key) | (df["name"].str.lower() == highlight.lower())
    if not hit.any():
        raise EvalkitError(
            f"--highlight {highlight!r} matches no point on the {task} chart; "
            f"models on it: {', '.join(sorted(set(df['model'])))}"
        )
    return hit

"""`evalkit plan`: repeats and items a paired comparison of two models needs (evalkit.run.planning)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import typer

from evalkit.errors import EvalkitError


def _pilot_values(run_dir: Path, task: str) -> dict[str, list[float]]:
    from evalkit.store import RunFolder

    folder = RunFolder(run_dir).require("pilot run folder")
    values: dict[str, list[float]] = defaultdict(list)
    for rec in folder.current_records():
        if rec.task == task and rec.ok and rec.primary is not None:
            values[rec.sample_id].append(1.0 if rec.primary.grade.correct else 0.0)
    if not values:
        raise EvalkitError(f"{run_dir}: no graded answers of task {task}")
    return dict(values)


def _item_count(loaded_task: Any, data_dir: str | None, pilots: list[Path]) -> int:
    from evalkit.store import RunFolder
    from evalkit.tasks.data import resolve_data_dir
    from evalkit.tasks.samples import load_samples

    try:
        return len(load_samples(loaded_task, resolve_data_dir(data_dir))[0])
    except EvalkitError:
        for p in pilots:  # the data is not here: the pilot's manifest counted it
            entry = ((RunFolder(p).manifest or {}).get("tasks") or {}).get(loaded_task.spec.name) or {}
            n = (entry.get("data") or {}).get("n_available")
            if n:
                return int(n)
        raise


def _temperature(spec: Any, pilots: list[Path]) -> float:
    """The sampling temperature the pilots ran at (their --temperature), else the task's."""
    from evalkit.store import RunFolder

    for p in pilots:
        overrides = ((RunFolder(p).manifest or {}).get("parameters") or {}).get("overrides") or {}
        if overrides.get("temperature") is not None:
            return float(overrides["temperature"])
    return float(spec.generation.temperature)


def plan(
    task: str = typer.Option(..., "--task", "-t", help="Task name or path to a task YAML."),
    delta: float = typer.Option(..., "--delta", help="Difference to detect, in points (3 = 3 points)."),
    pilot: list[Path] = typer.Option(
        [],
        "--pilot",
        help="Run folder of a pilot run on this task; give two (one per model) to estimate the correlation.",
    ),
    power: float = typer.Option(0.8, "--power", min=0.01, max=0.999),
    alpha: float = typer.Option(0.05, "--alpha", min=1e-6, max=0.5, help="Two-sided significance level."),
    correlation: float | None = typer.Option(
        None,
        "--correlation",
        min=-1.0,
        max=1.0,
        help="Across-item correlation of the two models' pass rates (default: estimated from two "
        "pilots, else assumed 0.5).",
    ),
    items: int | None = typer.Option(None, "--items", min=2, help="Item count (default: the task's)."),
    accuracy: float = typer.Option(
        0.5, "--assume-accuracy", min=0.001, max=0.999, help="Without a pilot: the assumed mean pass rate."
    ),
    within_share: float = typer.Option(
        0.5,
        "--assume-within-share",
        min=0.0,
        max=1.0,
        help="Without repeats in a pilot: the assumed share of answer noise in pbar(1-pbar) (0 = greedy).",
    ),
    data_dir: str | None = typer.Option(None, "--data-dir", envvar="EVALKIT_DATA_DIR"),
    tasks_dir: list[str] = typer.Option([], "--tasks-dir"),
) -> None:
    """How many repeats (and whether the items suffice) to detect a difference of --delta points."""
    from evalkit.run.planning import (
        assumed_spread,
        format_plan,
        pilot_correlation,
        plan_comparison,
        spread_from_pilot,
    )
    from evalkit.tasks.registry import discover

    if len(pilot) > 2:
        raise EvalkitError("--pilot: give one run (one model) or two (the two models)")
    loaded = discover(tasks_dir).get(task)
    spec = loaded.spec
    n_items = items or _item_count(loaded, data_dir, pilot)
    deterministic = spec.kind == "loglikelihood_choice" or _temperature(spec, pilot) == 0
    share = 0.0 if deterministic else within_share
    values = [_pilot_values(p, spec.name) for p in pilot]
    spreads = []
    for p, v in zip(pilot, values, strict=True):
        spread = spread_from_pilot(v, f"pilot {p}")
        if spread is None:  # one answer per item: difficulty and noise are not separable
            mean = sum(x for xs in v.values() for x in xs) / sum(len(xs) for xs in v.values())
            why = "greedy decoding: no answer noise" if deterministic else f"assumed within share {share:g}"
            spread = assumed_spread(mean, share, len(v), f"pilot {p} (1 answer per item; {why})")
        spreads.append(spread)
    if not spreads:
        why = "greedy decoding" if deterministic else f"within share {share:g}"
        spreads.append(
            assumed_spread(accuracy, share, n_items, f"assumed (no pilot): accuracy {accuracy:g}, {why}")
        )
    rho, source = correlation, "given with --correlation"
    if rho is None and len(spreads) == 2:
        rho, source = (
            pilot_correlation(values[0], values[1], spreads[0], spreads[1]),
            "estimated from two pilots",
        )
    result = plan_comparison(spreads, n_items, delta, power, alpha, rho, correlation_source=source)
    for line in format_plan(result, spec.name, spreads):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)

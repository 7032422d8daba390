"""`evalkit frontier`: Pareto-frontier charts (PNG, SVG and the CSV behind them) from run folders
and the catalog's published scores."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from evalkit.errors import EvalkitError

if TYPE_CHECKING:
    from evalkit.report.charts import ChartInfo
    from evalkit.report.frontier import FrontierResult


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("frontier")(frontier)


# Long by declaration, not by logic: one typer option per line; the body parses two values and
# calls report.charts.render_frontier.
def frontier(
    run_dirs: list[Path] = typer.Argument(
        None, help="Run folders (or folders holding run folders, such as results/runs)."
    ),
    task: str = typer.Option(
        None, "--task", "-t", help="Task to chart, e.g. mmlu_pro, math, math500, amc_2024."
    ),
    out: Path = typer.Option(
        None, "--out", "-o", help="Output file; .png, .svg and .csv are written beside it."
    ),
    published: bool = typer.Option(
        True, "--published/--no-published", help="Include the catalog's published scores."
    ),
    x: str = typer.Option(
        "total",
        "--x",
        help="x axis: total or active (per-token, for mixture-of-experts) parameters, or tokens "
        "(mean generated tokens per answer, reasoning included; own runs only).",
    ),
    released_from: str = typer.Option(
        None, "--released-from", help="Published models released on or after this day (YYYY-MM-DD)."
    ),
    draws: int = typer.Option(
        1000, "--draws", min=0, help="Bootstrap draws for P(on frontier) and the band (0: none)."
    ),
    seed: int = typer.Option(20260101, "--seed", help="Bootstrap seed (same seed, same numbers)."),
    split: str = typer.Option(
        "all", "--split", help="all, pre-cutoff or post-cutoff (run summaries with that split)."
    ),
    kind: list[str] = typer.Option(
        None,
        "--kind",
        help="Published model kinds to show (repeatable): instruct, reasoning, base. "
        "Default: instruct and reasoning.",
    ),
    metric: str = typer.Option(
        None, "--metric", help="Run metric to plot instead of each task's primary metric."
    ),
    highlight: str = typer.Option(
        None, "--highlight", help="Model to ring and label in bold (catalog id or name)."
    ),
    all_charts: bool = typer.Option(
        False,
        "--all",
        help="Regenerate every repository chart (each published benchmark; active-parameter "
        "versions where mixture-of-experts models appear) into --out-dir.",
    ),
    out_dir: Path = typer.Option(Path("results/charts"), "--out-dir", help="Folder for --all."),
) -> None:
    """Chart score against parameter count with the Pareto frontier, your runs and published numbers."""
    from evalkit.catalog.published import KINDS
    from evalkit.report.charts import render_all, render_frontier
    from evalkit.report.frontier import X_CHOICES
    from evalkit.report.runs import load_runs

    if x not in X_CHOICES:
        raise EvalkitError(f"--x must be one of {', '.join(X_CHOICES)}, not {x!r}")
    bad = [k for k in kind or () if k not in KINDS]
    if bad:
        raise EvalkitError(f"--kind must be among {', '.join(KINDS)}; got {', '.join(bad)}")
    runs = load_runs(run_dirs, metric=metric) if run_dirs else None

    if all_charts:
        if task or out:
            raise EvalkitError(
                "--all writes every chart into --out-dir; drop --task and --out (or drop --all)"
            )
        for name, result, info in render_all(out_dir, runs=runs):
            _report(name, result, info)
        return
    if not task or not out:
        raise EvalkitError("give --task and --out (or --all to regenerate every chart in results/charts)")
    import datetime as dt

    try:
        since = dt.date.fromisoformat(released_from) if released_from else None
    except ValueError:
        raise EvalkitError(f"--released-from {released_from!r}: give a YYYY-MM-DD date") from None
    result, info = render_frontier(
        task,
        out,
        runs=runs,
        published=published,
        x=x,
        split=split,
        kinds=kind or None,
        highlight=highlight,
        released_from=since,
        draws=draws,
        seed=seed,
    )
    _report(task, result, info)


def _report(name: str, result: FrontierResult, info: ChartInfo) -> None:
    """Files written, the frontier, and anything the reader must know (left-out points, omitted data)."""
    typer.echo(f"{name}: wrote {', '.join(str(p) for p in info.paths)}")
    typer.echo(f"  frontier: {', '.join(str(v) for v in result.frontier['label'])}")
    t = result.table
    if t["p_on_frontier"].notna().any():
        likely = t[t["p_on_frontier"] >= 0.05].sort_values("p_on_frontier", ascending=False)
        typer.echo(
            "  P(on frontier): "
            + ", ".join(f"{r['label']} {r['p_on_frontier']:.2f}" for r in likely.to_dict("records"))
        )
    for note in result.notes:
        typer.secho(f"  note: {note}", fg=typer.colors.YELLOW, err=True)
    if info.unlabelled:
        typer.secho(
            f"  unlabelled for lack of room: {', '.join(info.unlabelled)}", fg=typer.colors.YELLOW, err=True
        )

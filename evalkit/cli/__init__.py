"""The `evalkit` command line (typer). Thin: parse options, call the library, print.

Each command group lives in its own module with a ``register(app)`` function, called once below
when this package is imported, so ``evalkit.cli.app`` is always the complete app. Command modules
import only typer and evalkit.errors at the top; everything heavy is imported inside the command
bodies, so ``evalkit --help`` stays fast. User errors (EvalkitError) print one or two lines and
exit 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys

import typer

from evalkit.cli import (
    commands_contamination,
    commands_data,
    commands_export,
    commands_frontier,
    commands_grade,
    commands_models,
    commands_plan,
    commands_run,
    commands_tasks,
    commands_view,
)

app = typer.Typer(
    name="evalkit",
    help="Evaluate language models on hard benchmarks, honestly: contamination-aware, reproducible, "
    "with score-versus-size frontier charts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    if debug:
        os.environ["EVALKIT_DEBUG"] = "1"


for _module in (
    commands_run,
    commands_tasks,
    commands_grade,
    commands_models,
    commands_frontier,
    commands_contamination,
    commands_export,
    commands_view,
    commands_data,
    commands_plan,
):
    _module.register(app)


def main() -> None:
    from evalkit.errors import EvalkitError

    debug = "--debug" in sys.argv or os.environ.get("EVALKIT_DEBUG") == "1"
    try:
        app()
    except EvalkitError as e:
        if debug:
            raise
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho(
            "interrupted: completed answers are saved; run the same command again to resume", err=True
        )
        sys.exit(130)

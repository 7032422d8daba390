"""The `evalkit` command line (typer). Thin: parse options, call the library, print.

Each command group lives in its own module with a ``register(app)`` function. User errors
(EvalkitError) print one or two lines and exit 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys

import typer

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


def _register_all() -> None:
    from evalkit.cli import commands_grade, commands_models, commands_run, commands_tasks

    for module in (commands_run, commands_tasks, commands_grade, commands_models):
        module.register(app)
    # Optional command groups added by later modules register themselves the same way.
    import importlib

    for name in (
        "commands_tasks_check",
        "commands_frontier",
        "commands_contamination",
        "commands_export",
        "commands_view",
    ):
        try:
            mod = importlib.import_module(f"evalkit.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"evalkit.cli.{name}":
                raise
            continue
        mod.register(app)


def main() -> None:
    from evalkit.errors import EvalkitError

    _register_all()
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

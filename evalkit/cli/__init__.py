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


def resume_command(argv: list[str]) -> str:
    """The command line that resumes this one, with credentials in URLs and key=value options hidden."""
    import shlex

    from evalkit.secrets import redact_spec

    return "evalkit " + shlex.join(redact_spec(a) for a in argv)


def disk_error_message(e: OSError) -> str | None:
    """One line for a full or read-only disk (what to do, and that what was written is kept); None
    for other OS errors, which are bugs to show with their traceback."""
    import errno

    reasons = {
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "the disk quota is used up",
        errno.EFBIG: "a file grew past the size this process may write",
        errno.EROFS: "the file system is read-only",
    }
    if e.errno not in reasons:
        return None
    where = f" writing {e.filename}" if e.filename else ""
    return (
        f"{reasons[e.errno]}{where}; every record written before is kept whole: free space (or choose a "
        f"writable --out) and run the same command again to resume"
    )


def main() -> None:
    from evalkit import interrupt
    from evalkit.errors import EvalkitError

    debug = "--debug" in sys.argv or os.environ.get("EVALKIT_DEBUG") == "1"
    interrupt.install()  # SIGINT and SIGTERM end with one line, not silence or a traceback
    try:
        app()
    except EvalkitError as e:
        if debug:
            raise
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except OSError as e:
        message = disk_error_message(e)
        if message is None or debug:
            raise
        typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except (interrupt.Interrupted, KeyboardInterrupt) as e:
        stop = e if isinstance(e, interrupt.Interrupted) else interrupt.Interrupted(2)
        kept = stop.done or "every answer and file written so far is kept"
        typer.secho(
            f"interrupted by {stop.name}: {kept}; resume with: {resume_command(sys.argv[1:])}",
            fg=typer.colors.YELLOW,
            err=True,
        )
        sys.exit(stop.exit_code)

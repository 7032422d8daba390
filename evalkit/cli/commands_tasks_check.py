"""`evalkit tasks check` and `evalkit tasks new` (commands_tasks adds them to the `tasks` group)."""

from __future__ import annotations

from pathlib import Path

import typer


def check(
    names: list[str] = typer.Argument(
        None, help="Task names or YAML paths (default with --all: every task)."
    ),
    all_tasks: bool = typer.Option(False, "--all", help="Check every task found."),
    data_dir: str | None = typer.Option(
        None, "--data-dir", envvar="EVALKIT_DATA_DIR", help="Data folder replacing the hub."
    ),
    tasks_dir: list[str] = typer.Option([], "--tasks-dir", help="Extra folder of task YAMLs; repeatable."),
    show: int = typer.Option(20, "--show", min=0, help="How many failing items to print per task."),
) -> None:
    """Load the real data, render every prompt, and score the gold answer (must be 100%) and a wrong
    one (must be 0%) through the task's own extractor and grader. Exit 1 when any task fails."""
    from evalkit.errors import TaskError
    from evalkit.tasks.check import check_task, format_report
    from evalkit.tasks.data import resolve_data_dir
    from evalkit.tasks.registry import discover

    index = discover(tasks_dir)
    if all_tasks:
        selected = sorted(index.tasks)
        for path, err in index.broken.items():
            typer.secho(f"broken task file {path}:\n{err}", fg=typer.colors.RED, err=True)
    elif names:
        selected = list(names)
    else:
        raise TaskError("give task names to check, or --all")
    dd = resolve_data_dir(data_dir)
    failed = []
    for name in selected:
        task = index.get(name)
        rep = check_task(task, dd)
        for line in format_report(rep, show):
            typer.secho(
                line, fg=None if rep.ok or not line.strip().startswith(("FAIL", "[")) else typer.colors.RED
            )
        if not rep.ok:
            failed.append(rep.task)
    if len(selected) > 1:
        typer.echo(
            f"{len(selected) - len(failed)}/{len(selected)} tasks pass"
            + (f"; failing: {', '.join(failed)}" if failed else "")
        )
    if failed or (all_tasks and index.broken):
        raise typer.Exit(1)


def new(
    name: str = typer.Argument(..., help="Name of the new task (lower-case letters, digits, underscores)."),
    from_hf: str | None = typer.Option(
        None, "--from-hf", help="Hub dataset ORG/NAME to read the columns from."
    ),
    from_file: Path | None = typer.Option(
        None, "--from-file", help="Local data file (.jsonl, .json, .csv, .parquet)."
    ),
    split: str | None = typer.Option(
        None, "--split", help="Hub split to evaluate (default: test, else validation, else train)."
    ),
    data_dir: str | None = typer.Option(
        None, "--data-dir", envvar="EVALKIT_DATA_DIR", help="Data folder replacing the hub."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Where to write the YAML (default: ./tasks/NAME.yaml, which task discovery searches).",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented task YAML skeleton with the dataset's real column names mapped where they are
    obvious, validate it, and print the next steps."""
    from evalkit.tasks.new import new_task

    result = new_task(
        name, from_hf=from_hf, from_file=from_file, split=split, data_dir=data_dir, out=out, force=force
    )
    typer.echo(f"wrote {result.path}")
    for line in result.mapping_lines():
        typer.echo(f"  {line}")
    if result.validation_error:
        typer.secho("the skeleton does not validate yet:", fg=typer.colors.YELLOW)
        typer.echo(result.validation_error)
    else:
        typer.echo("it validates against the task schema.")
    typer.echo("next steps:")
    for i, step in enumerate(result.next_steps(), 1):
        typer.echo(f"  {i}. {step}")

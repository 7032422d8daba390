"""`evalkit tasks list|show|validate`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from evalkit.cli.commands_tasks_check import check, new
from evalkit.errors import TaskError

if TYPE_CHECKING:
    from evalkit.tasks.spec import DatasetSpec

tasks_app = typer.Typer(help="List, show, validate, check and create task YAMLs.", no_args_is_help=True)


def _dataset_text(ds: DatasetSpec) -> str:
    if ds.hf:
        return f"{ds.hf.path} [{ds.split}]"
    if ds.generate:
        return f"generated: {ds.generate.template} (n={ds.generate.n}, seed={ds.generate.seed})"
    if ds.sources:
        return " + ".join(s.describe() for s in ds.sources)
    return ", ".join(ds.files or [])


@tasks_app.command("list")
def list_tasks(
    tasks_dir: list[str] = typer.Option([], "--tasks-dir", help="Extra folder of task YAMLs; repeatable."),
) -> None:
    """Every task found, with its dataset, metrics and date; broken YAMLs are listed with their error,
    and a task in a user folder that hides a built-in one is named on stderr."""
    from rich.console import Console
    from rich.table import Table

    from evalkit.tasks.registry import discover

    index = discover(tasks_dir)
    for sh in index.shadowed:
        if sh.hides_builtin:
            typer.secho(
                f"warning: task {sh.name!r} from {sh.used} shadows the built-in {sh.hidden}",
                fg=typer.colors.YELLOW,
                err=True,
            )
    table = Table()
    for col in ("task", "version", "dataset", "prompt", "extract/grade", "metrics", "description"):
        table.add_column(col)
    for name, t in sorted(index.tasks.items()):
        s = t.spec
        shots = s.prompt.fewshot.k if s.prompt.fewshot else 0
        table.add_row(
            name,
            str(s.version),
            _dataset_text(s.dataset),
            f"{s.prompt.format}, {shots}-shot",
            f"{s.extract.name}/{s.grade.name}",
            ", ".join(s.metrics),
            s.description.strip().splitlines()[0] if s.description.strip() else "",
        )
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(table)
    for path, err in index.broken.items():
        console.print(f"[red]broken[/red] {path}:\n{err}")


@tasks_app.command("show")
def show(
    name: str = typer.Argument(..., help="Task name or path to a task YAML."),
    n: int = typer.Option(2, "--n", min=1, help="How many items to render."),
    data_dir: str | None = typer.Option(
        None, "--data-dir", envvar="EVALKIT_DATA_DIR", help="Data folder replacing the hub."
    ),
    tasks_dir: list[str] = typer.Option([], "--tasks-dir", help="Extra folder of task YAMLs; repeatable."),
) -> None:
    """Render the real prompts of the first N items, with their gold answers."""
    from evalkit.tasks.data import resolve_data_dir
    from evalkit.tasks.prompt import render
    from evalkit.tasks.registry import discover
    from evalkit.tasks.samples import load_fewshot_pool, load_samples, select_fewshot

    task = discover(tasks_dir).get(name)
    dd = resolve_data_dir(data_dir)
    samples, loaded = load_samples(task, dd)
    pool = load_fewshot_pool(task, dd)
    typer.echo(f"# {task.spec.name} v{task.spec.version}: {len(samples)} items from {loaded.source}")
    g = task.spec.generation
    typer.echo(
        f"# generation: max_tokens={g.max_tokens} temperature={g.temperature} stop={g.stop} "
        f"repeats={g.repeats}"
    )
    for s in samples[:n]:
        messages, prompt = render(task, s, select_fewshot(task.spec, s, pool))
        typer.echo(f"\n=== item {s.id} (date {s.date}, gold {s.answer!r}) ===")
        if prompt is not None:
            typer.echo(prompt)
        for m in messages or ():
            typer.echo(f"--- {m.role} ---\n{m.content}")


@tasks_app.command("validate")
def validate(
    paths: list[Path] = typer.Argument(None, help="YAML files or folders (default: every task folder)."),
    tasks_dir: list[str] = typer.Option([], "--tasks-dir", help="Extra folder of task YAMLs; repeatable."),
) -> None:
    """Check task YAMLs against the schema; report file, line, field and the fix for each problem."""
    from evalkit.tasks.loader import TASK_SUFFIXES, load_task_file
    from evalkit.tasks.registry import task_dirs, task_files

    files: list[Path] = []
    if paths:
        for p in paths:
            if p.is_dir():
                files += task_files([p])
            elif p.is_file():
                files.append(p)
            else:
                raise TaskError(f"{p}: no such file or folder")
    else:
        files = task_files(task_dirs(tasks_dir))
    if not files:
        raise TaskError(f"no task YAMLs ({', '.join(TASK_SUFFIXES)}) found")
    bad = 0
    names: dict[str, Path] = {}
    for f in files:
        try:
            t = load_task_file(f)
        except TaskError as e:
            bad += 1
            typer.secho(str(e), fg=typer.colors.RED, err=True)
            continue
        if t.spec.name in names:
            bad += 1
            typer.secho(
                f"{f}: name: {t.spec.name!r} is also defined in {names[t.spec.name]} (names must be unique)",
                fg=typer.colors.RED,
                err=True,
            )
            continue
        names[t.spec.name] = f
        typer.echo(f"ok  {f}  ({t.spec.name} v{t.spec.version})")
    typer.echo(f"{len(files) - bad} valid, {bad} invalid", err=True)
    if bad:
        raise typer.Exit(2)


tasks_app.command("check")(check)
tasks_app.command("new")(new)


def register(app: typer.Typer) -> None:
    app.add_typer(tasks_app, name="tasks")

"""`evalkit export lmeval`: write an evalkit task as an lm-evaluation-harness task."""

from __future__ import annotations

from pathlib import Path

import typer

export_app = typer.Typer(help="Export tasks to other harnesses.", no_args_is_help=True)


@export_app.command("lmeval")
def export_lmeval_cmd(
    task: str = typer.Option(..., "--task", help="Task name or path to a task YAML."),
    out: Path = typer.Option(..., "--out", help="Folder to write the lm-eval task into (created if needed)."),
    data_dir: str | None = typer.Option(
        None, "--data-dir", envvar="EVALKIT_DATA_DIR", help="Data folder replacing the hub."
    ),
    tasks_dir: list[str] = typer.Option([], "--tasks-dir", help="Extra folder of task YAMLs; repeatable."),
) -> None:
    """Write an lm-eval task YAML that renders evalkit's prompt and scores with evalkit's grader.

    lm-eval then reports the same score evalkit would on the same answers. The folder holds the
    items as local JSON (absolute paths), the few-shot pool, and a small hooks module that imports
    evalkit, so evalkit must be installed where lm-eval runs.
    """
    from evalkit.export.lmeval import export_lmeval
    from evalkit.tasks.data import resolve_data_dir
    from evalkit.tasks.registry import discover

    loaded = discover(tasks_dir).get(task)
    result = export_lmeval(loaded, out, resolve_data_dir(data_dir))
    typer.echo(f"wrote lm-eval task {result.lmeval_task} ({result.n_samples} items) to {result.folder}:")
    paths = [result.yaml_path, result.data_path, result.fewshot_path, result.bundle_path, result.utils_path]
    for p in paths:
        if p is not None:
            typer.echo(f"  {p.name}")
    if result.skipped_metrics:
        typer.echo(f"not exported (not a per-item mean): {', '.join(result.skipped_metrics)}", err=True)
    typer.echo("run it with lm-eval (evalkit must be importable there):")
    typer.echo(f"  {result.lm_eval_command()}")


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")

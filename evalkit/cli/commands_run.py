"""`evalkit run` and `evalkit report`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from evalkit.cli.args import parse_key_values
from evalkit.errors import EvalkitError


def _parse_concurrency(value: str | None) -> int | str | None:
    if value is None or value.strip().lower() == "auto":
        return None if value is None else "auto"
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise EvalkitError(f"--concurrency {value!r}: give a number of requests (at least 1) or auto")
    return n


def _parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        i, n = (int(x) for x in value.split("/"))
    except ValueError:
        raise EvalkitError(f"--shard {value!r}: write it as i/n with 0 <= i < n, e.g. --shard 0/4") from None
    if not (n >= 1 and 0 <= i < n):
        raise EvalkitError(f"--shard {value!r}: need 0 <= i < n")
    return i, n


def _refusing_broken_items(then: Any, skip: bool) -> Any:
    """A sample filter that refuses (or, with ``skip``, leaves out) broken items, then applies ``then``."""
    from evalkit.tasks.check import refuse_broken_items

    def sample_filter(task: Any, samples: list[Any]) -> tuple[list[Any], dict[str, Any]]:
        kept, info = refuse_broken_items(task, samples, skip, lambda line: typer.echo(line, err=True))
        if then is None:
            return kept, info
        kept, more = then(task, kept)
        return kept, {**info, **more}

    return sample_filter


# Long by declaration, not by logic: one typer option per line of the CLI reference; the body
# only builds a RunConfig and prints the result.
def run(
    task: list[str] = typer.Option(
        ..., "--task", "-t", help="Task name (evalkit tasks list) or path to a task YAML; repeatable."
    ),
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        help=(
            "Backend spec: openai:<base_url>@<model>, hf:<path>, vllm:<id>, lmeval:<type>,<args>, "
            "replay:<run dir>, or a catalog alias."
        ),
    ),
    model_arg: list[str] = typer.Option(
        [],
        "--model-arg",
        "-M",
        help=(
            "Backend option key=value; repeatable (e.g. body.repeat_penalty=1.0 for openai, "
            "dtype=bfloat16 for hf)."
        ),
    ),
    data_dir: str | None = typer.Option(
        None,
        "--data-dir",
        envvar="EVALKIT_DATA_DIR",
        help="Data folder that replaces the hub: <dir>/hf/<org>/<name>/<split>.jsonl, <dir>/local/<file>.",
    ),
    tasks_dir: list[str] = typer.Option(
        [], "--tasks-dir", help="Extra folder of task YAMLs; repeatable (also EVALKIT_TASKS_DIR)."
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Evaluate only the first N items of each task."
    ),
    repeats: int | None = typer.Option(
        None, "--repeats", min=1, help="Answers per item (default: the task's generation.repeats)."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Run folder (default results/runs/<run_id>; the same command reuses it and resumes).",
    ),
    concurrency: str | None = typer.Option(
        None,
        "--concurrency",
        help="Requests in flight at once (default: the backend's own, 32 for openai), or auto: an "
        "adaptive limit that grows while latency holds and halves on 429/503/timeouts. For the "
        "in-process backends (hf, vllm, lmeval) this is the batch size.",
    ),
    max_error_rate: float = typer.Option(
        0.0,
        "--max-error-rate",
        min=0.0,
        max=1.0,
        help="Exit non-zero when more than this share of requests failed.",
    ),
    max_tokens: int | None = typer.Option(
        None, "--max-tokens", min=1, help="Override the task's max_tokens (recorded; changes the cache key)."
    ),
    temperature: float | None = typer.Option(
        None, "--temperature", min=0.0, help="Override the task's temperature."
    ),
    shard: str | None = typer.Option(
        None, "--shard", help="Evaluate shard i of n (i/n) of the items, e.g. for Slurm arrays."
    ),
    topup_censored: bool = typer.Option(
        False,
        "--topup-censored",
        help=(
            "With a larger --max-tokens than an earlier run of the same folder: re-send only the "
            "answers that budget censored; the others keep their earlier answer."
        ),
    ),
    judge: str | None = typer.Option(
        None,
        "--judge",
        help="After the run, a judge model reads the answers the rules could not (as `rescore --judge`).",
    ),
    judge_max_items: int | None = typer.Option(
        None, "--judge-max-items", min=0, help="With --judge: at most this many judge calls."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the response cache."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide the progress bar."),
    split: str = typer.Option(
        "all",
        "--split",
        help=(
            "all, pre-cutoff or post-cutoff: keep only items dated on/before or after the model's "
            "training cutoff (catalog; release date when none is published)."
        ),
    ),
    cutoff: str | None = typer.Option(
        None, "--cutoff", help="Training cutoff YYYY-MM-DD, for a model not in the catalog or to override it."
    ),
    margin_days: int = typer.Option(
        0,
        "--margin-days",
        min=0,
        help="With --split post-cutoff: keep only items dated more than this many days after the cutoff.",
    ),
    skip_broken_items: bool = typer.Option(
        False,
        "--skip-broken-items",
        help="Leave out (and count) the items `tasks check` reports as broken, e.g. a gold letter "
        "outside the item's options; without it such items stop the run before any request.",
    ),
    target_ci: float | None = typer.Option(
        None,
        "--target-ci",
        min=0.01,
        help="Add repeats (reusing every answer) until each task's item-clustered 95% interval is "
        "narrower than this many points, or --max-repeats is reached; new answers go first to items "
        "with intermediate pass rates. A planning aid: the interval at the stop is not confirmatory.",
    ),
    max_repeats: int = typer.Option(
        16, "--max-repeats", min=1, help="With --target-ci: repeats per item at most."
    ),
    exclude: Path | None = typer.Option(
        None,
        "--exclude",
        help=(
            "File of item ids to leave out (task/id or id per line), e.g. from "
            "`evalkit contamination ngram --out`."
        ),
    ),
) -> None:
    """Evaluate a model on one or more tasks; re-running the same command resumes."""
    from evalkit.contamination.split import split_options_to_filter
    from evalkit.report.table import print_table
    from evalkit.run.runner import RunConfig, run_evaluation

    sample_filter, filter_info = split_options_to_filter(split, model, cutoff, margin_days, exclude)
    sample_filter = _refusing_broken_items(sample_filter, skip_broken_items)
    if skip_broken_items:
        filter_info = {**filter_info, "skip_broken_items": True}

    cfg = RunConfig(
        tasks=list(task),
        model=model,
        model_args=parse_key_values(model_arg),
        data_dir=data_dir,
        tasks_dirs=list(tasks_dir),
        limit=limit,
        repeats=repeats,
        out=out,
        concurrency=_parse_concurrency(concurrency),
        max_error_rate=max_error_rate,
        overrides={
            k: v for k, v in {"max_tokens": max_tokens, "temperature": temperature}.items() if v is not None
        },
        shard=_parse_shard(shard),
        use_cache=not no_cache,
        topup_censored=topup_censored,
        progress=not no_progress,
        sample_filter=sample_filter,
        filter_info=filter_info,
    )
    if target_ci is not None:
        from evalkit.run.adaptive import format_result, run_until_narrow

        adaptive = run_until_narrow(cfg, target_ci, max_repeats)
        result = adaptive.run
        for line in format_result(adaptive):
            typer.echo(line, err=True)
    else:
        result = run_evaluation(cfg)
    print_table([result.run_dir], "table")
    shared = result.n_requests - result.n_sent - result.n_cached - result.n_resumed
    typer.echo(
        f"run folder: {result.run_dir}\n"
        f"requests: {result.n_requests} (sent {result.n_sent}, from cache {result.n_cached}, "
        f"already done {result.n_resumed}"
        + (f", {shared} shared with another task's identical request" if shared > 0 else "")
        + (f", {result.n_regraded} regraded by the current scoring code" if result.n_regraded else "")
        + f"), errors: {result.n_errors}, {result.elapsed_s:.1f} s",
        err=True,
    )
    from evalkit.run.summary import censoring_warnings

    if judge is not None:
        from evalkit.cli.commands_grade import run_judge

        run_judge(result.run_dir, judge, [], judge_max_items, 20)

    for line in censoring_warnings(result.summary):
        typer.secho(line, fg=typer.colors.YELLOW, err=True)
    if result.error_rate > max_error_rate:
        typer.secho(
            f"{result.n_errors} of {result.n_requests} requests failed ({result.error_rate:.1%} > "
            f"--max-error-rate "
            f"{max_error_rate:.1%}); they are recorded as errors, not wrong answers. Run the same command "
            f"again to retry only them.",
            fg=typer.colors.YELLOW,
            err=True,
        )
        raise typer.Exit(1)


def report(
    run_dirs: list[Path] = typer.Argument(..., help="Run folders (each holds summary.json)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, markdown, csv or json."),
    by_cutoff: bool = typer.Option(
        False,
        "--by-cutoff",
        help=(
            "Pre- vs post-cutoff scores of each run side by side, with intervals and the gap "
            "(a contamination signal)."
        ),
    ),
    cutoff: str | None = typer.Option(
        None,
        "--cutoff",
        help=(
            "With --by-cutoff: cutoff YYYY-MM-DD (default: the run's --split cutoff, else the model's "
            "catalog cutoff)."
        ),
    ),
    margin_days: int = typer.Option(
        0,
        "--margin-days",
        min=0,
        help="With --by-cutoff: post-cutoff starts this many days after the cutoff.",
    ),
    vs_published: bool = typer.Option(
        False,
        "--vs-published",
        help="Each run against the catalog's published scores of its model and benchmark: inside the "
        "run's interval or not, and the settings on both sides.",
    ),
) -> None:
    """One table over run folders: task, model, n, score, 95% interval, errors, truncations."""
    if vs_published:
        from evalkit.report.vs_published import print_vs_published

        print_vs_published(run_dirs, fmt)
        return
    if by_cutoff:
        from evalkit.report.cutoff_gap import print_gap_table

        print_gap_table(run_dirs, fmt, cutoff=cutoff, margin_days=margin_days)
        return
    if cutoff is not None or margin_days:
        raise EvalkitError("--cutoff and --margin-days go with --by-cutoff")
    from evalkit.report.table import print_table

    print_table(run_dirs, fmt)


def merge(
    out: Path = typer.Option(..., "--out", help="New run folder for the merged run."),
    run_dirs: list[Path] = typer.Argument(..., help="The shard run folders (evalkit run --shard i/n)."),
) -> None:
    """Merge the run folders of a sharded evaluation into one run folder (records, summary, manifest)."""
    from evalkit.report.table import print_table
    from evalkit.run.merge import merge_runs

    result = merge_runs(out, run_dirs)
    print_table([result.out], "table")
    typer.echo(f"merged {len(run_dirs)} run folders, {result.records} records -> {result.out}", err=True)
    if result.missing_shards:
        typer.secho(
            f"shards not given: {', '.join(map(str, result.missing_shards))}; the merged run is partial",
            fg=typer.colors.YELLOW,
            err=True,
        )


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("report")(report)
    app.command("merge")(merge)

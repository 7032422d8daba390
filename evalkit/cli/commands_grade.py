"""``evalkit grade``, ``evalkit rescore`` and ``evalkit compare``: scoring without a model call."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from evalkit.errors import EvalkitError

if TYPE_CHECKING:
    from evalkit.scoring.grade_file import GradeSetup


def setup_for(
    kind: str | None, task: str | None, tasks_dirs: Sequence[str | os.PathLike[str]] = ()
) -> GradeSetup:
    """The extractor/grader for ``--kind`` or for a task (its extractor options, stop sequences and
    grader options)."""
    from evalkit.scoring.grade_file import KINDS, GradeSetup
    from evalkit.tasks import discover
    from evalkit.types import ScoringContext

    if kind is not None and kind not in KINDS:
        raise EvalkitError(f"--kind must be one of {', '.join(KINDS)} (got {kind!r})")
    if task is None:
        if kind is None:
            raise EvalkitError("give --kind (math, choice or integer) or --task NAME")
        ex, gr = KINDS[kind]
        return GradeSetup(kind, ex, gr)
    spec = discover(tasks_dirs).get(task).spec
    if kind is not None and KINDS[kind][1] != spec.grade.name:
        raise EvalkitError(
            f"--kind {kind} grades with {KINDS[kind][1]!r} but task {spec.name!r} grades with "
            f"{spec.grade.name!r}; drop --kind to use the task's settings"
        )
    return GradeSetup(spec.name, spec.extract.name, spec.grade.name, ScoringContext.for_task(spec))


COMPARE_HELP = (
    "Grade with several graders too and list where they disagree: comma-separated from "
    "evalkit, math-verify, official, minerva (no model call)."
)


def grade(
    file: Path = typer.Argument(
        ..., help="JSON lines with 'pred' (response or bare answer), 'gold', optional 'choices'."
    ),
    kind: str | None = typer.Option(
        None, "--kind", "-k", help="math, choice or integer (default extractor and grader)."
    ),
    task: str | None = typer.Option(
        None, "--task", "-t", help="Grade with this task's extractor, stop sequences and grader options."
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write graded lines here (default: stdout)."),
    tasks_dir: list[str] = typer.Option([], "--tasks-dir", help="Extra folder of task YAMLs; repeatable."),
    threads: int = typer.Option(
        4, "--threads", min=1, help="Lines graded at once (math checks run in sandbox processes)."
    ),
    compare_graders: str | None = typer.Option(
        None, "--compare-graders", help=COMPARE_HELP + " Writes FILE's disagreements beside --out or FILE."
    ),
) -> None:
    """Grade answers in a file through the same scoring path as `evalkit run`; adds 'correct' and
    'reason' (and 'extracted') to each line; accuracy, counts and timing go to stderr."""
    from evalkit.scoring.grade_file import grade_lines, read_lines

    setup = setup_for(kind, task, tasks_dir)
    lines = read_lines(file)
    results, report = grade_lines(lines, setup, threads=threads, source=str(file))
    if compare_graders is not None:
        _compare_file(file, out, lines, results, setup, task, tasks_dir, compare_graders, threads)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    typer.echo(f"{setup.name}: extractor {setup.extractor}, grader {setup.grader}", err=True)
    for line in report.summary_lines():
        typer.echo(line, err=True)


def _compare_file(
    file: Path,
    out: Path | None,
    lines: list,
    results: list,
    setup: GradeSetup,
    task: str | None,
    tasks_dir: Sequence[str],
    names: str,
    threads: int,
) -> None:
    from evalkit.scoring.graders_compare import (
        OFFICIAL_HENDRYCKS,
        compare_items,
        format_summary,
        items_from_graded_lines,
        official_for,
        parse_grader_names,
        write_disagreements,
    )
    from evalkit.tasks import discover

    graders = parse_grader_names(names)
    if task is not None:
        spec = discover(tasks_dir).get(task).spec
        hf = getattr(spec.dataset, "hf", None)
        extractors = [s.extract.name for s in spec.all_scorers()]
        official = official_for(spec.name, spec.grade.name, extractors, str(getattr(hf, "path", "") or ""))
    else:
        official = OFFICIAL_HENDRYCKS if setup.grader == "math" else None
    items = items_from_graded_lines(lines, results, setup.name, setup.grader, official, setup.ctx)
    result = compare_items(items, graders, threads=threads)
    where = (out.parent if out is not None else file.parent) / f"{file.stem}.disagreements.jsonl"
    write_disagreements(where, result)
    for line in format_summary(result, where=str(where)):
        typer.echo(line, err=True)


def _compare_run(run_dir: Path, names: str, threads: int) -> None:
    from evalkit.run.compare_graders import compare_run_graders
    from evalkit.scoring.graders_compare import format_summary, parse_grader_names

    result, path = compare_run_graders(run_dir, parse_grader_names(names), threads=threads)
    for line in format_summary(result, where=str(path)):
        typer.echo(line)


def rescore(
    run_dir: Path = typer.Argument(
        ..., help="Run folder (results/runs/<run_id>) holding manifest.json and records.jsonl."
    ),
    threads: int = typer.Option(4, "--threads", min=1, help="Records scored at once."),
    judge: str | None = typer.Option(
        None,
        "--judge",
        help=(
            "Backend spec of a judge model that reads the answers the rules could not (extraction "
            "only: evalkit's grader decides); its replies are stored, so later rescores need no model."
        ),
    ),
    judge_arg: list[str] = typer.Option(
        [], "--judge-arg", help="Judge backend option key=value; repeatable."
    ),
    judge_max_items: int | None = typer.Option(
        None, "--judge-max-items", min=0, help="At most this many judge calls (what a hosted judge can cost)."
    ),
    judge_audit: int = typer.Option(
        20, "--judge-audit", min=0, help="Also ask the judge about this many answers the rules read (seeded)."
    ),
    compare_graders: str | None = typer.Option(
        None,
        "--compare-graders",
        help=COMPARE_HELP + " Writes disagreements.jsonl into the run folder; the records stay as they are.",
    ),
) -> None:
    """Re-extract and re-grade a run's stored completions with the current code (no model call);
    keeps the old records as records.pre-rescore-<time>.jsonl and rewrites summary.json."""
    if compare_graders is not None:
        _compare_run(run_dir, compare_graders, threads)
        return
    from evalkit.run.rescore import rescore_run

    res = rescore_run(run_dir, workers=threads)
    typer.echo(
        f"rescored {res.rescored} records ({res.changed} changed correctness; "
        f"{res.errors_kept} errors kept as errors"
        + (
            f"; {res.unknown_task} of tasks missing from the manifest kept as they were"
            if res.unknown_task
            else ""
        )
        + ")",
        err=True,
    )
    for t in sorted(set(res.before) | set(res.after)):
        typer.echo(f"  {t}: accuracy {res.before.get(t, 0.0):.4f} -> {res.after.get(t, 0.0):.4f}", err=True)
    typer.echo(f"old records kept in {res.backup}", err=True)
    if judge is not None:
        run_judge(run_dir, judge, judge_arg, judge_max_items, judge_audit)
    typer.echo(str(Path(run_dir) / "summary.json"))


def run_judge(run_dir: Path, spec: str, args: list[str], max_items: int | None, audit: int) -> None:
    """The judge pass over a run folder, and its one-paragraph account (rescore --judge, run --judge)."""
    from evalkit.cli.args import parse_key_values
    from evalkit.run.judge import JudgeOptions, judge_folder

    opts = JudgeOptions(spec, parse_key_values(args, "--judge-arg"), max_items, audit)
    result, summary = judge_folder(str(run_dir), opts)
    typer.echo(
        f"judge {result.identity}: asked about {result.asked} answers the rules could not read, read "
        f"{result.read}, {result.failed} failed (left out, never scored wrong)"
        + (f", {result.skipped_cap} left out by --judge-max-items" if result.skipped_cap else ""),
        err=True,
    )
    for name, t in (summary.get("tasks") or {}).items():
        j = t.get("judge")
        if not j:
            continue
        rule = (t.get("metrics") or {}).get(j["metric"], {}).get("value")
        judged = (j.get("metrics") or {}).get(j["metric"], {}).get("value")
        audit, audit_line = j["audit"], ""
        if audit.get("asked"):
            audit_line = (
                f"; audit of {audit['asked']} answers the rules read: the judge read {audit['n']} and "
                f"agrees with the rules on {audit['agree']}"
            )
        typer.echo(
            f"  {name}: {j['metric']} rule-only {_pct(rule)} -> with the judge {_pct(judged)} "
            f"({j['rescued']} rescued){audit_line}",
            err=True,
        )


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def compare(
    run_a: Path = typer.Argument(..., help="First run folder (A)."),
    run_b: Path = typer.Argument(..., help="Second run folder (B)."),
    task: list[str] = typer.Option(
        [], "--task", "-t", help="Only these tasks; repeatable (default: all shared)."
    ),
    n_boot: int = typer.Option(10_000, "--n-boot", min=100, help="Bootstrap resamples."),
    seed: int = typer.Option(1234, "--seed", help="Bootstrap seed."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Paired comparison of two runs on shared (task, item) pairs: difference A - B, paired
    bootstrap 95% interval, McNemar exact p-value (bootstrap p-value with repeats), n shared."""
    from evalkit.report.compare import compare_runs, format_comparisons

    comps = compare_runs(run_a, run_b, tasks=task or None, n_boot=n_boot, seed=seed)
    if as_json:
        typer.echo(json.dumps([c.to_dict() for c in comps], indent=2))
    else:
        typer.echo(format_comparisons(comps, str(run_a), str(run_b)))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("grade")(grade)
    app.command("rescore")(rescore)
    app.command("compare")(compare)

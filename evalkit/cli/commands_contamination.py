"""`evalkit contamination ngram|split|gap|fresh`: the contamination checks (DESIGN.md section 7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from evalkit.errors import EvalkitError

if TYPE_CHECKING:
    from evalkit.contamination.ngram import OverlapReport

contamination_app = typer.Typer(
    help="Contamination checks: n-gram overlap with a corpus, cutoff splits, pre/post gaps, fresh problems.",
    no_args_is_help=True,
)


@contamination_app.command("ngram")
def ngram(
    task: list[str] = typer.Option(..., "--task", "-t", help="Task whose items are checked; repeatable."),
    corpus: list[str] = typer.Option(
        ...,
        "--corpus",
        help="Corpus files or folders (.jsonl/.txt/.parquet, .gz/.bz2/.xz); repeatable, and files "
        "right after --corpus are taken too.",
    ),
    more: list[str] = typer.Argument(
        None, help="More corpus files (what a shell glob after --corpus expands to).", show_default=False
    ),
    n: int = typer.Option(
        13,
        "--n",
        min=1,
        max=64,
        help="n-gram length in normalised tokens (13 as in GPT-3's decontamination; 7-8 catch "
        "shorter quotes).",
    ),
    threshold: float = typer.Option(
        0.5,
        "--threshold",
        min=0.0,
        max=1.0,
        help="Flag an item when at least this share of its n-grams occurs in the corpus.",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write the flagged items' task/id lines here (for `evalkit run --exclude`)."
    ),
    report_file: Path | None = typer.Option(
        None, "--report", help="Write every item's overlap (JSON lines) here."
    ),
    text_field: str = typer.Option(
        "text", "--text-field", help="JSONL key / parquet column holding the text (a.b for nested keys)."
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        help="Worker processes (default: the CPU count for corpora over 64 MB, else 1).",
    ),
    data_dir: str | None = typer.Option(
        None, "--data-dir", envvar="EVALKIT_DATA_DIR", help="Data folder replacing the hub."
    ),
    tasks_dir: list[str] = typer.Option([], "--tasks-dir", help="Extra folder of task YAMLs; repeatable."),
    show: int = typer.Option(20, "--show", min=0, help="How many flagged items to list."),
) -> None:
    """Share of each item's n-grams found in a corpus (streamed; hashed n-grams), and the flagged items."""
    from evalkit.contamination.ngram import check_overlap, task_items, write_flagged_ids

    if threshold <= 0:
        raise EvalkitError("--threshold must be above 0 (a share of an item's n-grams, e.g. 0.5)")
    items = task_items(task, data_dir, tasks_dir)
    if not items:
        raise EvalkitError(f"task(s) {', '.join(task)} have no items")
    files = [*corpus, *(more or [])]
    rep = check_overlap(items, files, n=n, threshold=threshold, text_field=text_field, workers=workers)
    _print_overlaps(rep, n, threshold, show, text_field)
    if out is not None:
        k = write_flagged_ids(out, rep)
        typer.echo(f"wrote {k} ids to {out} (use: evalkit run ... --exclude {out})", err=True)
    if report_file is not None:
        report_file.parent.mkdir(parents=True, exist_ok=True)
        with report_file.open("w", encoding="utf-8") as f:
            f.write(json.dumps({"summary": rep.summary()}) + "\n")
            for i in rep.items:
                f.write(json.dumps(i.to_dict()) + "\n")
        typer.echo(f"wrote per-item overlaps to {report_file}", err=True)


def _print_overlaps(rep: OverlapReport, n: int, threshold: float, show: int, text_field: str) -> None:
    """The corpus read, what could not be checked, and the flagged items, most overlapping first."""
    s = rep.summary()
    typer.echo(
        f"{s['items']} items, {n}-grams; corpus: {s['corpus_files']} files, {s['corpus_mb']:.1f} MB, "
        f"{s['corpus_documents']} documents in {s['seconds']:.1f} s ({s['mb_per_s']:.1f} MB/s, "
        f"{s['workers']} workers)",
        err=True,
    )
    if s["corpus_bad_lines"]:
        typer.secho(
            f"warning: {s['corpus_bad_lines']} JSONL lines had no string field {text_field!r} and were "
            f"skipped (see --text-field)",
            fg=typer.colors.YELLOW,
            err=True,
        )
    if s["too_short"]:
        typer.echo(
            f"note: {s['too_short']} items have fewer than {n} tokens and cannot be checked at n={n}",
            err=True,
        )
    flagged = sorted(rep.flagged, key=lambda i: (-(i.ratio or 0), i.key))
    typer.echo(
        f"{s['items_with_any_overlap']} items share at least one {n}-gram with the corpus; "
        f"{len(flagged)} flagged (overlap >= {threshold:g})"
    )
    for i in flagged[:show]:
        typer.echo(f"  {i.key}  {i.ratio:.0%} of {i.n_ngrams} {n}-grams  (e.g. {i.example})")
    if len(flagged) > show:
        typer.echo(f"  ... and {len(flagged) - show} more")


@contamination_app.command("split")
def split_preview(
    task: list[str] = typer.Option(..., "--task", "-t", help="Task name or YAML path; repeatable."),
    model: str = typer.Option(
        "", "--model", "-m", help="Model (catalog alias, hub id or backend spec) whose cutoff is used."
    ),
    cutoff: str | None = typer.Option(
        None, "--cutoff", help="Cutoff date YYYY-MM-DD (overrides the catalog)."
    ),
    margin_days: int = typer.Option(
        0, "--margin-days", min=0, help="Post-cutoff starts this many days after the cutoff."
    ),
    exclude: Path | None = typer.Option(
        None, "--exclude", help="File of item ids to leave out (task/id or id per line)."
    ),
    by: str | None = typer.Option(
        None, "--by", help="Meta field to break counts down by (default: the task's first report breakdown)."
    ),
    data_dir: str | None = typer.Option(
        None, "--data-dir", envvar="EVALKIT_DATA_DIR", help="Data folder replacing the hub."
    ),
    tasks_dir: list[str] = typer.Option([], "--tasks-dir", help="Extra folder of task YAMLs; repeatable."),
) -> None:
    """Preview which items fall before and after a model's cutoff (what `run --split` would keep)."""
    from evalkit.contamination.split import counts_by, read_exclude_file, resolve_cutoff
    from evalkit.report.table import print_rows
    from evalkit.tasks.data import resolve_data_dir
    from evalkit.tasks.registry import discover
    from evalkit.tasks.samples import load_samples

    if not model and cutoff is None:
        raise EvalkitError("give --model (its catalog cutoff is used) or --cutoff YYYY-MM-DD")
    cut = resolve_cutoff(model, cutoff)
    typer.echo(cut.describe() + (f"; margin {margin_days} days" if margin_days else ""))
    excl = read_exclude_file(exclude) if exclude is not None else None
    index = discover(tasks_dir)
    dd = resolve_data_dir(data_dir)
    sides = ["pre", *(["margin"] if margin_days else []), "post", "undated", *(["excluded"] if excl else [])]
    side_headers = [{"pre": "pre-cutoff", "post": "post-cutoff"}.get(c, c) for c in sides]
    for name in task:
        t = index.get(name)
        samples, _ = load_samples(t, dd)
        field = by or (t.spec.report.breakdown[0] if t.spec.report.breakdown else None)
        groups = counts_by(samples, cut.date, field, margin_days, excl, t.spec.name)
        rows = [[g.group, g.date_span(), *(str(g.counts.get(k, 0)) for k in sides)] for g in groups]
        total = ["total", "", *(str(sum(g.counts.get(k, 0) for g in groups)) for k in sides)]
        headers = [field or "group", "dates", *side_headers]
        print_rows(
            [dict(zip(headers, r, strict=True)) for r in [*rows, total]],
            headers,
            "table",
            left=headers[:2],
            title=f"{t.spec.name}: {len(samples)} items",
        )


@contamination_app.command("fresh")
def fresh(
    template: str = typer.Option(
        "fresh_arithmetic.templates.yaml",
        "--template",
        help="Template file (a path, or the name of a built-in one).",
    ),
    n: int = typer.Option(50, "--n", min=1, help="How many items."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed, n and date give the same items."),
    date: str | None = typer.Option(
        None, "--date", help="Date the items carry, YYYY-MM-DD (default: today, or $EVALKIT_FRESH_DATE)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write the items as JSONL (a data file for a task's dataset.files)."
    ),
    show: int = typer.Option(3, "--show", min=0, help="How many items to print."),
) -> None:
    """Generate problems from templates with sympy-computed answers, dated the day they are generated."""
    from evalkit.jsonl import write_jsonl
    from evalkit.tasks.generated import find_template, generate_items

    rows = generate_items(find_template(template), n, seed, date)
    for r in rows[:show]:
        typer.echo(f"{r['id']} ({r['template']}, {r['date']}): {r['question']}\n  answer: {r['answer']}")
    if out is not None:
        write_jsonl(rows, out)
        typer.echo(f"wrote {len(rows)} items to {out}", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(contamination_app, name="contamination")

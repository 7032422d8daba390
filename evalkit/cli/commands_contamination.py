"""`evalkit contamination ngram|ngram-merge|split|fresh`: the contamination checks (DESIGN.md section 7)."""

from __future__ import annotations

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
        "shorter quotes). Items with fewer tokens are checked by their whole text.",
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
    shard: str | None = typer.Option(
        None,
        "--shard",
        help="Scan only shard i/n (0-based): corpus files i, i+n, ... of the sorted paths, e.g. "
        "--shard $SLURM_ARRAY_TASK_ID/16 in a Slurm array (--array=0-15); needs --counts. Merge the "
        "shards with `evalkit contamination ngram-merge counts/*.json --out flagged.txt`.",
    ),
    counts: Path | None = typer.Option(
        None, "--counts", help="Write the per-item matched n-grams (JSON, what `ngram-merge` reads) here."
    ),
    data_dir: str | None = typer.Option(
        None, "--data-dir", envvar="EVALKIT_DATA_DIR", help="Data folder replacing the hub."
    ),
    tasks_dir: list[str] = typer.Option([], "--tasks-dir", help="Extra folder of task YAMLs; repeatable."),
    show: int = typer.Option(20, "--show", min=0, help="How many flagged items to list."),
) -> None:
    """Share of each item's n-grams found in a corpus (streamed; hashed n-grams), and the flagged items.

    A corpus too big for one machine: run one `--shard i/n --counts FILE` per worker (a Slurm array
    task, or a Ray task calling evalkit.contamination.ngram.scan_shard), then `ngram-merge` the files;
    the merge gives exactly the single-process result."""
    from evalkit.contamination.corpus import parse_shard
    from evalkit.contamination.ngram import task_items

    if threshold <= 0:
        raise EvalkitError("--threshold must be above 0 (a share of an item's n-grams, e.g. 0.5)")
    part = parse_shard(shard) if shard is not None else None
    if part is not None and (counts is None or out is not None or report_file is not None):
        raise EvalkitError(
            "--shard: give --counts FILE (a shard sees part of the corpus; --out and --report come from "
            "`evalkit contamination ngram-merge` over all shards' counts)"
        )
    items = task_items(task, data_dir, tasks_dir)
    if not items:
        raise EvalkitError(f"task(s) {', '.join(task)} have no items")
    rep = _scan(items, [*corpus, *(more or [])], n, threshold, text_field, workers, part, counts)
    if rep is not None:
        _write_outputs(rep, n, threshold, show, text_field, out, report_file)


def _scan(
    items: list[tuple[str, str]],
    files: list[str],
    n: int,
    threshold: float,
    text_field: str,
    workers: int | None,
    part: tuple[int, int] | None,
    counts: Path | None,
) -> OverlapReport | None:
    """The whole corpus (a report), or one shard of it (counts written, no report)."""
    from evalkit.contamination import ngram as ng

    opts = {"n": n, "threshold": threshold, "text_field": text_field, "workers": workers}
    if counts is None:
        return ng.check_overlap(items, files, **opts)  # type: ignore[arg-type]
    i, k = part or (0, 1)
    part_counts = ng.scan_shard(items, files, i, k, **opts)  # type: ignore[arg-type]
    ng.write_counts(counts, part_counts)
    typer.echo(f"wrote per-item counts of shard {i}/{k} to {counts}", err=True)
    if part is None:
        return ng.merge_shards([part_counts])
    s = part_counts["scan"]
    typer.echo(
        f"shard {i}/{k}: {len(part_counts['files'])} of {len(part_counts['corpus_files'])} files, "
        f"{s['n_bytes'] / 1e6:.1f} MB, {s['n_docs']} documents in {s['seconds']:.1f} s"
    )
    return None


@contamination_app.command("ngram-merge")
def ngram_merge(
    counts_files: list[Path] = typer.Argument(..., help="Every shard's --counts file (e.g. counts/*.json)."),
    threshold: float | None = typer.Option(
        None, "--threshold", min=0.0, max=1.0, help="Flag threshold (default: the one the shards ran with)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write the flagged items' task/id lines here (for `evalkit run --exclude`)."
    ),
    report_file: Path | None = typer.Option(
        None, "--report", help="Write every item's overlap (JSON lines) here."
    ),
    show: int = typer.Option(20, "--show", min=0, help="How many flagged items to list."),
) -> None:
    """Merge the shards of `contamination ngram --shard i/n --counts FILE` into one result.

    Per item the matched n-gram positions are united (the ratio is the share of distinct n-grams seen
    in any shard), so the flagged set and ratios are exactly those of one process over the whole corpus.
    Every shard must be given once; shards of another benchmark, n or corpus are refused."""
    from evalkit.contamination import ngram as ng

    if threshold is not None and threshold <= 0:
        raise EvalkitError("--threshold must be above 0 (a share of an item's n-grams, e.g. 0.5)")
    rep = ng.merge_shards([ng.read_counts(p) for p in counts_files], threshold)
    _write_outputs(rep, rep.n, rep.threshold, show, "text", out, report_file)


def _write_outputs(
    rep: OverlapReport,
    n: int,
    threshold: float,
    show: int,
    text_field: str,
    out: Path | None,
    report: Path | None,
) -> None:
    from evalkit.contamination.ngram import write_flagged_ids, write_report_lines

    _print_overlaps(rep, n, threshold, show, text_field)
    if out is not None:
        k = write_flagged_ids(out, rep)
        typer.echo(f"wrote {k} ids to {out} (use: evalkit run ... --exclude {out})", err=True)
    if report is not None:
        write_report_lines(report, rep)
        typer.echo(f"wrote per-item overlaps to {report}", err=True)


def _print_overlaps(rep: OverlapReport, n: int, threshold: float, show: int, text_field: str) -> None:
    """The corpus read, what was checked how, and the flagged items, most overlapping first."""
    s = rep.summary()
    shards = f", {s['shards']} shards" if "shards" in s else ""
    typer.echo(
        f"{s['items']} items, {n}-grams; corpus: {s['corpus_files']} files, {s['corpus_mb']:.1f} MB, "
        f"{s['corpus_documents']} documents in {s['seconds']:.1f} s ({s['mb_per_s']:.1f} MB/s, "
        f"{s['workers']} workers{shards})",
        err=True,
    )
    if s["corpus_bad_lines"]:
        typer.secho(
            f"warning: {s['corpus_bad_lines']} JSONL lines had no string field {text_field!r} and were "
            f"skipped (see --text-field)",
            fg=typer.colors.YELLOW,
            err=True,
        )
    if s["whole_text_items"]:
        typer.echo(
            f"note: {s['whole_text_items']} items have fewer than {n} tokens and were checked by their whole "
            f"text (found as one contiguous run: {s['whole_text_flagged']})",
            err=True,
        )
    if s["no_tokens"]:
        typer.echo(f"note: {s['no_tokens']} items have no letters or digits and cannot be checked", err=True)
    flagged = sorted(rep.flagged, key=lambda i: (-(i.ratio or 0), i.key))
    typer.echo(
        f"{s['items_with_any_overlap']} items share at least one {n}-gram (or their whole text) with the "
        f"corpus; {len(flagged)} flagged (overlap >= {threshold:g})"
    )
    for i in flagged[:show]:
        what = (
            f"whole text ({i.n_tokens} tokens)"
            if i.method == "whole_text"
            else f"{i.ratio:.0%} of {i.n_ngrams} {n}-grams"
        )
        typer.echo(f"  {i.key}  {what}  (e.g. {i.example})")
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

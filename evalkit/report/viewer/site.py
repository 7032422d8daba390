"""Write the viewer: a static site over run folders that opens from disk (``file://``).

Layout of the output folder::

  index.html, app.js, style.css, katex/      the page (no CDN, no network)
  data/site.js                               leaderboard, frontier SVGs, cutoff rows, comparisons
  data/<run>/<task>/index.js                 the item index of one run's task
  data/<run>/<task>/chunk-0007.js            200 items with prompts and completions
  data/<run>/rescore.js                      what the last rescore changed (when there was one)

Chromium refuses fetch/XHR from ``file://``, so every data file is a script that hands its content
to a global function (``EVK.site``, ``EVK.index``, ``EVK.chunk``, ``EVK.rescore``).
Run folders are read through :mod:`evalkit.store` and the report modules only.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.report.viewer.items import BACKUP_GLOB, TaskItems, build_task_items, rescore_changes
from evalkit.report.viewer.licences import licence_for
from evalkit.report.viewer.prompts import PromptRenderer
from evalkit.store import Record, RunFolder

STATIC_FILES = ("index.html", "app.js", "style.css")
RUN_LABEL_COLORS = ("#000000", "#e6550d")  # evalkit.report.charts RUN_COLOR and HIGHLIGHT_COLOR
Progress = Callable[[str], None]


@dataclass
class RunData:
    """One run folder as the site shows it."""

    slug: str
    path: Path
    run_id: str
    model: str
    summary: dict[str, Any]
    manifest: dict[str, Any]
    records: dict[str, list[Record]] = field(default_factory=dict)
    cutoff: Any = None
    cutoff_note: str = ""

    def meta(self) -> dict[str, Any]:
        m = self.summary.get("model") or {}
        man = self.manifest
        return {
            "slug": self.slug,
            "run_id": self.run_id,
            "path": str(self.path),
            "model": self.model,
            "backend": m.get("backend"),
            "model_raw": m.get("model"),
            "status": man.get("status"),
            "started": man.get("started"),
            "finished": man.get("finished"),
            "evalkit_version": self.summary.get("evalkit_version"),
            "cutoff": self.cutoff.date.isoformat() if self.cutoff else None,
            "cutoff_figure": self.cutoff.figure if self.cutoff else None,
            "cutoff_note": self.cutoff_note,
            "tasks": list(self.records),
            "rescored": man.get("rescored"),
        }


@dataclass
class SiteResult:
    out: Path
    runs: int
    items: int
    files: int
    notes: list[str] = field(default_factory=list)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:60] or "run"


def _clean(v: Any) -> Any:
    """JSON-safe values: NaN and infinities become null, numpy scalars plain numbers."""
    if isinstance(v, float):
        return None if math.isnan(v) or math.isinf(v) else v
    if isinstance(v, Mapping):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if hasattr(v, "item") and callable(v.item):  # numpy scalar
        return _clean(v.item())
    return v


def write_script(path: Path, function: str, *args: Any) -> None:
    """``EVK.<function>(args...);`` as a script file (the way data reaches a page opened from disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = ",".join(json.dumps(_clean(a), ensure_ascii=False, separators=(",", ":")) for a in args)
    path.write_text(f"EVK.{function}({body});\n", encoding="utf-8")


def _load_run(path: Path, taken: set[str]) -> RunData:
    from evalkit.report.cutoff_gap import run_cutoff

    folder = RunFolder(path)
    summary = folder.require_summary()
    manifest = folder.manifest or {}
    model = summary.get("model") or {}
    run_id = path.name  # the folder, as the user names it (summaries of rescored runs differ)
    slug = _slug(run_id)
    if slug in taken:
        slug = f"{slug}-{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:6]}"
    taken.add(slug)
    run = RunData(slug, path, run_id, str(model.get("alias") or model.get("model") or "?"), summary, manifest)
    # Items in a stable, readable order (ids with numbers in numeric order), not the order answers
    # were written in (a run sends requests grouped by prompt prefix).
    for rec in sorted(folder.current_records(), key=_item_order):
        run.records.setdefault(rec.task, []).append(rec)
    for task in summary.get("tasks") or {}:
        run.records.setdefault(task, [])
    try:
        run.cutoff = run_cutoff(summary, manifest, path)
    except EvalkitError as e:
        run.cutoff_note = str(e).splitlines()[0]
    return run


def _task_items(run: RunData, task: str, data_dir: Path | None) -> TaskItems:
    entry = (run.manifest.get("tasks") or {}).get(task) or {}
    backend = run.manifest.get("backend") or run.summary.get("model") or {}
    identity = str(backend.get("identity") or "")
    renderer = PromptRenderer(task, entry, identity, data_dir) if entry else None
    spec = entry.get("spec") or {}
    breakdown = ((spec.get("report") or {}).get("breakdown")) or []
    fewshot = (spec.get("prompt") or {}).get("fewshot") or {}
    group = fewshot.get("same") or (breakdown[0] if breakdown else None)
    cutoff = run.cutoff.date if run.cutoff else None
    return build_task_items(task, run.records[task], renderer, cutoff, breakdown, group)


def _write_task(out: Path, run: RunData, task: str, items: TaskItems) -> int:
    base = out / "data" / run.slug / task
    key = f"{run.slug}/{task}"
    write_script(base / "index.js", "index", key, items.index)
    for n, chunk in enumerate(items.chunks):
        write_script(base / f"chunk-{n:04d}.js", "chunk", key, n, chunk)
    return 1 + len(items.chunks)


def _leaderboard(
    runs: Sequence[RunData], counts: Mapping[tuple[str, str], Mapping[str, Any]]
) -> list[dict[str, Any]]:
    from evalkit.report.runs import summary_rows

    out = []
    for run in runs:
        tasks = run.summary.get("tasks") or {}
        for row in summary_rows(run.path):
            t = tasks.get(row["task"]) or {}
            extra = counts.get((run.slug, row["task"]), {})
            scale = 1.0 if str(row["metric"]).endswith("points") else 100.0
            scorers = {}
            for name, s in (t.get("scorers") or {}).items():
                m = ((s.get("metrics") or {}).get(row["metric"])) or {}
                if m.get("value") is not None:
                    scorers[name] = {
                        "score": m["value"] * scale,
                        "ci_low": None if m.get("ci_low") is None else m["ci_low"] * scale,
                        "ci_high": None if m.get("ci_high") is None else m["ci_high"] * scale,
                    }
            for name, s in (extra.get("scorers") or {}).items():
                if name != "main" and name not in scorers:
                    scorers[name] = {"score": s["accuracy"] * 100.0, "ci_low": None, "ci_high": None}
            out.append(
                {
                    **{k: row[k] for k in ("model", "name", "task", "split", "metric", "n", "score")},
                    **{
                        k: row[k] for k in ("ci_low", "ci_high", "tokens", "errors", "truncated", "no_answer")
                    },
                    "params": row["params_total"],
                    "repeats": row["repeats"],
                    "run": run.slug,
                    "run_id": run.run_id,
                    "points": scale == 1.0,
                    "censored": extra.get("censored", 0) if extra.get("censoring_present") else None,
                    "judged": extra.get("judged") or None,
                    "judge_accuracy": _pct(extra.get("judge_accuracy")),
                    "rule_accuracy_judged": _pct(extra.get("rule_accuracy_judged")),
                    "scorers": scorers,
                }
            )
    return out


def _pct(v: float | None) -> float | None:
    return None if v is None else v * 100.0


def _frontiers(runs: Sequence[RunData], progress: Progress) -> tuple[list[dict[str, Any]], list[str]]:
    """One frontier chart (SVG text) per task the runs hold; each own run's label links to its page."""
    from evalkit.report.charts import render_frontier
    from evalkit.report.runs import load_runs

    notes: list[str] = []
    try:
        df = load_runs([r.path for r in runs])
    except EvalkitError as e:
        return [], [f"frontier: {e}"]
    slug_of = {str(r.path): r.slug for r in runs}
    charts = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in sorted(set(df["task"])):
            progress(f"frontier chart: {task}")
            try:
                result, _info = render_frontier(task, Path(tmp) / task, runs=df)
            except EvalkitError as e:
                charts.append({"task": task, "svg": None, "notes": [str(e).splitlines()[0]], "runs": []})
                continue
            own = result.table[result.table["origin"] == "run"]
            links = [
                {"label": str(lbl), "run": slug_of.get(str(d), ""), "score": s}
                for lbl, d, s in zip(own["label"], own["run_dir"], own["score"], strict=True)
            ]
            unplaced = result.missing[result.missing["origin"] == "run"]
            for lbl in unplaced.get("label", []):
                notes.append(f"frontier {task}: {lbl} has no parameter count and is not drawn")
            svg = (Path(tmp) / f"{task}.svg").read_text(encoding="utf-8")
            charts.append(
                {"task": task, "svg": link_svg(svg, task, links), "notes": result.notes, "runs": links}
            )
    return charts, notes


def _item_order(rec: Record) -> tuple[Any, ...]:
    parts = re.split(r"(\d+)", rec.sample_id)
    return (*((0, int(p)) if p.isdigit() else (1, p) for p in parts), rec.repeat)


def link_svg(svg: str, task: str, links: Iterable[Mapping[str, Any]]) -> str:
    """The chart with each own run's label made a link to that run's item browser."""
    svg = svg[svg.find("<svg") :] if "<svg" in svg else svg  # drop the XML prolog and doctype
    for link in links:
        label = re.escape(_xml_text(str(link["label"])))
        href = f"#/task/{link['run']}/{task}"
        # A published point may carry the same name; the run's own label is the bold black one
        # (or the highlight colour) that the chart code draws for runs.
        # The drawn label may carry a suffix after the name (P(on frontier), a cutoff flag).
        for m in re.finditer(rf"<text\b([^>]*)>\s*{label}(?:[ (,][^<]*)?\s*</text>", svg):
            style = m.group(1)
            fill = re.search(r"fill:\s*(#[0-9a-fA-F]{6})", style)
            if re.search(r"font-weight:\s*(bold|700)", style) and (
                fill is None or fill.group(1).lower() in RUN_LABEL_COLORS
            ):
                linked = f'<a href="{href}" class="run-link">{m.group(0)}</a>'
                svg = svg[: m.start()] + linked + svg[m.end() :]
                break
    return svg


def _xml_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cutoff_rows(runs: Sequence[RunData]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    from evalkit.report.cutoff_gap import gap_rows

    rows, missing = [], []
    for run in runs:
        try:
            for r in gap_rows([run.path]):
                rows.append({**r, "run": run.slug, "run_id": run.run_id, "model": run.model})
        except EvalkitError as e:
            missing.append({"run": run.slug, "model": run.model, "reason": str(e).splitlines()[0]})
    return rows, missing


def _comparisons(runs: Sequence[RunData]) -> list[dict[str, Any]]:
    """The paired comparison of every two runs that share a task (discordant pairs per task)."""
    from evalkit.report.compare import compare_runs

    out = []
    for i, a in enumerate(runs):
        for b in runs[i + 1 :]:
            shared = sorted(set(a.records) & set(b.records))
            shared = [t for t in shared if a.records[t] and b.records[t]]
            if not shared:
                continue
            try:
                comps = compare_runs(a.path, b.path, tasks=shared, n_boot=2000)
            except EvalkitError:
                continue
            for c in comps:
                out.append({"a": a.slug, "b": b.slug, **c.to_dict()})
    return out


def _copy_static(out: Path) -> None:
    static = resources.files("evalkit.report.viewer") / "static"
    for name in STATIC_FILES:
        (out / name).write_text((static / name).read_text(encoding="utf-8"), encoding="utf-8")
    katex_src = Path(str(static / "katex"))
    if (out / "katex").exists():
        shutil.rmtree(out / "katex")
    shutil.copytree(katex_src, out / "katex")


def write_site(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    data_dir: Path | None = None,
    progress: Progress | None = None,
    frontier: bool = True,
) -> SiteResult:
    """Write the viewer for ``run_dirs`` (run folders or folders of them) into ``out``."""
    from evalkit.report.runs import find_run_dirs

    say = progress or (lambda _m: None)
    out = Path(out)
    dirs = find_run_dirs(run_dirs)
    taken: set[str] = set()
    runs = [_load_run(d, taken) for d in dirs]
    if (out / "data").exists():
        shutil.rmtree(out / "data")  # stale chunks of an earlier site must not linger
    out.mkdir(parents=True, exist_ok=True)
    files, n_items, counts = 0, 0, {}
    tasks_meta: dict[str, dict[str, Any]] = {}
    for run in runs:
        for task in run.records:
            say(f"items: {run.run_id} / {task} ({len(run.records[task])} records)")
            items = _task_items(run, task, data_dir)
            files += _write_task(out, run, task, items)
            n_items += items.index["n"]
            counts[(run.slug, task)] = items.counts
            spec = ((run.manifest.get("tasks") or {}).get(task) or {}).get("spec")
            tasks_meta.setdefault(
                task,
                {
                    "task": task,
                    "licence": licence_for(task, spec),
                    "description": (spec or {}).get("description"),
                },
            )
        changes = rescore_changes(run.path, [r for recs in run.records.values() for r in recs])
        if changes is not None:
            write_script(out / "data" / run.slug / "rescore.js", "rescore", run.slug, changes)
            files += 1
    charts, notes = _frontiers(runs, say) if frontier else ([], [])
    cutoff_rows, cutoff_missing = _cutoff_rows(runs)
    site = {
        "generated_by": "evalkit view",
        "runs": [{**r.meta(), "rescore": any(r.path.glob(BACKUP_GLOB))} for r in runs],
        "tasks": tasks_meta,
        "leaderboard": _leaderboard(runs, counts),
        "frontier": charts,
        "cutoff": cutoff_rows,
        "cutoff_missing": cutoff_missing,
        "comparisons": _comparisons(runs),
        "notes": notes,
    }
    write_script(out / "data" / "site.js", "site", site)
    _copy_static(out)
    return SiteResult(out, len(runs), n_items, files + 1, notes)

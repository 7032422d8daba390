"""`evalkit report --vs-published`: did a run reproduce the model card?

For each own run (primary scorer) of a model the catalog knows, every published score of that model
on the benchmark the run's task belongs to (:func:`evalkit.catalog.published.benchmark_for_task`),
from every source and in both thinking modes, with whether it lies inside the run's 95% interval and
the settings on both sides. A published number outside the interval is not proof of a wrong card: the
settings often differ (samples, temperature, prompt, grader), which is why both are shown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.store import PRIMARY_SCORER

HEADERS = (
    "task",
    "model",
    "score",
    "95% CI",
    "published",
    "inside",
    "kind",
    "published setting",
    "source",
    "run setting",
)
FIELDS = (
    "run_id",
    "task",
    "model",
    "benchmark",
    "score",
    "ci_low",
    "ci_high",
    "published",
    "inside",
    "kind",
    "published_setting",
    "source",
    "source_type",
    "run_setting",
)


def run_setting(run: dict[str, Any]) -> str:
    """What the run did: its task's generation settings (with command-line overrides) and repeats."""
    from evalkit.errors import EvalkitError
    from evalkit.store import RunFolder
    from evalkit.tasks.registry import discover

    parts = [f"evalkit {run['task']}"]
    overrides = ((RunFolder(run["run_dir"]).manifest or {}).get("overrides")) or {}
    try:
        gen = discover().get(str(run["task"])).spec.generation
        vals = {"temperature": gen.temperature, "top_p": gen.top_p, "max_tokens": gen.max_tokens}
    except EvalkitError:
        vals = {}
    vals.update({k: v for k, v in overrides.items() if v is not None and k != "stop"})
    parts += [f"{k} {v}" for k, v in vals.items()]
    if run.get("repeats"):
        parts.append(f"{run['repeats']} sample(s) per item")
    return "; ".join(parts)


def vs_published_rows(runs: Any, published_path: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per (run, published score) for runs whose model and benchmark have published scores;
    a run with none gets one row saying so."""
    from evalkit.catalog.published import benchmark_for_task, load_published

    table = load_published(published_path)
    benchmarks = set(table["benchmark"])
    out: list[dict[str, Any]] = []
    primary = runs[runs["scorer"] == PRIMARY_SCORER] if "scorer" in runs else runs
    for run in primary.to_dict("records"):
        bench = benchmark_for_task(str(run["task"]), benchmarks)
        base = {
            "run_id": run["run_id"],
            "task": run["task"],
            "model": run["model"],
            "benchmark": bench,
            "score": run["score"],
            "ci_low": run["ci_low"],
            "ci_high": run["ci_high"],
            "run_setting": run_setting(run),
        }
        pub = table[(table["model"] == run["model"]) & (table["benchmark"] == bench)] if bench else table[:0]
        if run.get("split", "all") != "all":
            pub = pub[:0]  # published numbers are whole-benchmark figures
        if not len(pub):
            why = "no published score in the catalog" if bench else "no published benchmark for this task"
            out.append({**base, "published": None, "inside": None, "source": why})
            continue
        for p in pub.to_dict("records"):
            out.append(
                {
                    **base,
                    "published": p["score"],
                    "inside": _inside(p["score"], run["ci_low"], run["ci_high"]),
                    "kind": p["kind"],
                    "published_setting": p["setting"],
                    "source": f"{p['source']}, {p['source_detail']}",
                    "source_type": p["source_type"],
                }
            )
    return out


def _inside(value: float, low: Any, high: Any) -> bool | None:
    if low is None or high is None or math.isnan(float(low)) or math.isnan(float(high)):
        return None
    return float(low) <= float(value) <= float(high)


def _cells(r: dict[str, Any]) -> list[str]:
    def num(v: Any) -> str:
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):.1f}"

    inside = {True: "yes", False: "NO", None: ""}[r.get("inside")]
    return [
        str(r["task"]),
        str(r["model"]),
        num(r["score"]),
        f"{num(r['ci_low'])}-{num(r['ci_high'])}",
        num(r.get("published")),
        inside,
        str(r.get("kind") or ""),
        str(r.get("published_setting") or ""),
        str(r.get("source") or ""),
        str(r["run_setting"]),
    ]


def print_vs_published(run_dirs: Sequence[Path], fmt: str = "table") -> None:
    """`evalkit report --vs-published`."""
    from evalkit.report.runs import load_runs
    from evalkit.report.table import print_rows

    rows = vs_published_rows(load_runs(run_dirs))
    print_rows(
        rows,
        HEADERS,
        fmt,
        cells=_cells,
        fields=FIELDS,
        left=("task", "model", "inside", "kind", "published setting", "source", "run setting"),
        title="Own runs against the catalog's published scores",
        footer="inside: the published score lies inside the run's 95% interval. Settings often differ; "
        "compare them before calling a number reproduced or not.",
    )

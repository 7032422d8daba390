"""`evalkit report`: one table over run folders, as a terminal table, markdown, CSV or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError

COLUMNS = ["task", "model", "split", "n", "score", "ci_low", "ci_high", "metric", "errors", "truncated", "no_answer", "run"]


def report_rows(run_dirs: Sequence[Path]) -> list[dict[str, Any]]:
    rows = []
    for d in run_dirs:
        p = Path(d) / "summary.json"
        if not p.is_file():
            raise EvalkitError(f"{d}: no summary.json; give a run folder written by `evalkit run`")
        try:
            summary = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise EvalkitError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from None
        model = summary.get("model", {})
        name = model.get("alias") or model.get("model") or "?"
        for t in summary.get("tasks", {}).values():
            primary = t.get("primary", "accuracy")
            m = t.get("metrics", {}).get(primary, {})
            pct = 100.0 if primary != "amc_points" else 1.0
            rows.append(
                {
                    "task": t["task"],
                    "model": name,
                    "split": t.get("split", "all"),
                    "n": t.get("n_items"),
                    "score": None if m.get("value") is None else m["value"] * pct,
                    "ci_low": None if m.get("ci_low") is None else m["ci_low"] * pct,
                    "ci_high": None if m.get("ci_high") is None else m["ci_high"] * pct,
                    "metric": primary,
                    "errors": t.get("errors", 0),
                    "truncated": t.get("truncated", 0),
                    "no_answer": t.get("no_answer", 0),
                    "run": str(d),
                }
            )
    return rows


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def print_table(run_dirs: Sequence[Path], fmt: str = "table") -> None:
    rows = report_rows(run_dirs)
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if fmt == "csv":
        import csv

        w = csv.DictWriter(sys.stdout, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
        return
    headers = ["task", "model", "split", "n", "score", "95% CI", "errors", "truncated", "no answer"]
    body = [
        [
            r["task"],
            r["model"],
            r["split"],
            _fmt(r["n"]),
            _fmt(r["score"]) + ("" if r["metric"] in ("accuracy",) else f" ({r['metric']})"),
            f"{_fmt(r['ci_low'])}-{_fmt(r['ci_high'])}" if r["ci_low"] is not None else "-",
            _fmt(r["errors"]),
            _fmt(r["truncated"]),
            _fmt(r["no_answer"]),
        ]
        for r in rows
    ]
    if fmt == "markdown":
        sys.stdout.write("| " + " | ".join(headers) + " |\n")
        sys.stdout.write("|" + "|".join("---" for _ in headers) + "|\n")
        for b in body:
            sys.stdout.write("| " + " | ".join(b) + " |\n")
        return
    if fmt != "table":
        raise EvalkitError(f"--format {fmt!r}: use table, markdown, csv or json")
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False)
    for h in headers:
        table.add_column(h, justify="right" if h not in ("task", "model", "split") else "left")
    for b in body:
        table.add_row(*b)
    Console(width=None if sys.stdout.isatty() else 160).print(table)

"""Published benchmark scores (``evalkit/catalog/published.csv``), validated against the model catalog.

One row per (model, benchmark, source). Columns:

- ``model``: a catalog id (``evalkit/catalog/models.yaml``); parameter counts come from the catalog.
- ``benchmark``: an evalkit task-like name (``mmlu_pro``, ``math`` = the 5,000-problem MATH test set,
  ``math500``, ``amc_2024``). MATH and MATH-500 are different benchmarks and never share a chart.
- ``metric`` and ``score``: ``accuracy`` in percent, or ``amc_points`` out of 150.
- ``kind``: ``base``, ``instruct`` (instruct, chat, IT) or ``reasoning`` (long chain-of-thought models).
- ``setting``: shots, chain of thought, sampling, grader, whose evaluation pipeline.
- ``source``, ``source_detail``: the publication and the table or file within it.
- ``source_date``: when that publication appeared (used to prefer the most recent source).
- ``source_type``: ``developer`` (the model's own developer), ``third_party`` (someone else's published
  number) or ``derived`` (re-scored from someone else's published outputs).
- ``note``: caveats a reader needs (a reconstructed figure, an anomalous value).

Sources disagree (Llama-3.3-70B-Instruct on MMLU-Pro: 68.9 Meta, 66.6 Mistral, 64.4 Phi-4 report), so
one number per model and benchmark is chosen by :data:`SOURCE_RULE` and the others are kept beside it.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.catalog import load_models
from evalkit.errors import EvalkitError

if TYPE_CHECKING:
    import pandas as pd

PUBLISHED_FILE = Path(__file__).with_name("published.csv")

COLUMNS = (
    "model",
    "benchmark",
    "metric",
    "score",
    "kind",
    "setting",
    "source",
    "source_detail",
    "source_date",
    "source_type",
    "note",
)
KINDS = ("base", "instruct", "reasoning")
SOURCE_TYPES = ("developer", "third_party", "derived")
# Highest score a metric can take; a value above it is a data-entry error.
METRIC_MAX = {"accuracy": 100.0, "amc_points": 150.0}

SOURCE_RULE = (
    "Where sources disagree on one model and benchmark, the number shown is the model developer's own; "
    "failing that, a third party's published number before one re-scored from published outputs; "
    "then the most recent source (then the highest reasoning effort of one table). The other numbers "
    "are listed in the CSV (other_sources)."
)

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")


class PublishedScoresError(EvalkitError):
    """The published-scores file is malformed or names a model the catalog lacks."""


def _catalog_ids() -> tuple[set[str], dict[str, str]]:
    """Catalog ids, and every other name (alias, display name, hub id) -> its id, for suggestions."""
    ids: set[str] = set()
    other: dict[str, str] = {}
    for m in load_models():
        ids.add(m.id)
        for n in (m.name, *m.aliases, *([m.hub_id] if m.hub_id else [])):
            other.setdefault(n.lower(), m.id)
    return ids, other


def read_published_rows(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Read and validate the file; every problem is reported at once, with its line number."""
    p = Path(path) if path is not None else PUBLISHED_FILE
    if not p.is_file():
        raise PublishedScoresError(f"published scores file not found: {p}")
    with p.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise PublishedScoresError(
                f"{p}: missing column(s) {', '.join(missing)}; expected the header {','.join(COLUMNS)}"
            )
        raw = [(i + 2, r) for i, r in enumerate(reader)]  # line 1 is the header

    ids, other = _catalog_ids()
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, ...], int] = {}
    for line, r in raw:
        r = {k: (v or "").strip() for k, v in r.items() if k is not None}
        where = f"{p.name} line {line}"
        row, row_problems = _check_row(r, where, ids, other)
        problems += row_problems
        key = (r["model"], r["benchmark"], r["metric"], r["source"], r["source_detail"])
        if key in seen:
            problems.append(f"{where}: repeats line {seen[key]} (same model, benchmark, metric and source)")
        seen.setdefault(key, line)
        rows.append({**row, "line": line})
    if problems:
        shown = problems[:20]
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise PublishedScoresError(f"{len(problems)} problem(s) in {p}:\n  " + "\n  ".join(shown) + more)
    return rows


def _check_row(
    r: dict[str, str], where: str, ids: set[str], other: dict[str, str]
) -> tuple[dict[str, Any], list[str]]:
    """One row with its score and source date parsed (NaN / None when unreadable), and its problems."""
    problems: list[str] = []
    model = r["model"]
    if model not in ids:
        hint = (
            f" (use the catalog id {other[model.lower()]!r})"
            if model.lower() in other
            else ("; add the model to evalkit/catalog/models.yaml first")
        )
        problems.append(f"{where}: model {model!r} is not a catalog id{hint}")
    for col in ("benchmark", "metric"):
        if not _NAME_RE.match(r[col]):
            problems.append(f"{where}: {col} {r[col]!r} must be a lower-case task-like name such as mmlu_pro")
    try:
        score = float(r["score"])
    except ValueError:
        problems.append(f"{where}: score {r['score']!r} is not a number")
        score = float("nan")
    top = METRIC_MAX.get(r["metric"])
    if score == score and (score < 0 or (top is not None and score > top)):
        problems.append(f"{where}: score {score:g} is outside 0-{top:g} for metric {r['metric']}")
    if r["kind"] not in KINDS:
        problems.append(f"{where}: kind {r['kind']!r} must be one of {', '.join(KINDS)}")
    if r["source_type"] not in SOURCE_TYPES:
        problems.append(f"{where}: source_type {r['source_type']!r} must be one of {', '.join(SOURCE_TYPES)}")
    if not r["source"]:
        problems.append(f"{where}: every score needs a source")
    try:
        source_date: dt.date | None = dt.date.fromisoformat(r["source_date"])
    except ValueError:
        problems.append(f"{where}: source_date {r['source_date']!r} is not a YYYY-MM-DD date")
        source_date = None
    return {**r, "score": score, "source_date": source_date}, problems


def load_published(path: str | Path | None = None) -> pd.DataFrame:
    """All published rows as a DataFrame (validated), in file order."""
    import pandas as pd

    rows = read_published_rows(path)
    df = pd.DataFrame(rows, columns=[*COLUMNS, "line"])
    df["score"] = df["score"].astype(float)
    return df


_EFFORT_RE = re.compile(r"reasoning effort (low|medium|high)\b")
_EFFORT_RANK = {"high": 0, "medium": 1, "low": 2}


def reasoning_effort(setting: str) -> str | None:
    """``low``/``medium``/``high`` when a row's setting names a reasoning effort (gpt-oss), else None."""
    m = _EFFORT_RE.search(str(setting))
    return m.group(1) if m else None


def _priority(row: dict[str, Any]) -> tuple[int, int, int, int]:
    """Sort key for SOURCE_RULE: developer < third_party < derived, then newest first, then the highest
    reasoning effort of one table (gpt-oss: high before medium before low), then file order."""
    rank = SOURCE_TYPES.index(row["source_type"])
    date = row["source_date"].toordinal() if row["source_date"] else 0
    effort = _EFFORT_RANK.get(reasoning_effort(row["setting"]) or "high", 0)
    return rank, -date, effort, int(row["line"])


def _reason(chosen: dict[str, Any], others: Sequence[dict[str, Any]]) -> str:
    if not others:
        return "only source"
    runner_up = others[0]
    if chosen["source_type"] != runner_up["source_type"]:
        return {
            "developer": "developer's own number",
            "third_party": "published number over a re-scored one",
        }[chosen["source_type"]]
    if chosen["source_date"] != runner_up["source_date"]:
        return "most recent source"
    if reasoning_effort(chosen["setting"]) != reasoning_effort(runner_up["setting"]):
        return "highest reasoning effort reported"
    return "first listed of equally ranked sources"


def choose_sources(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, kind, benchmark, metric), picked by SOURCE_RULE, with the alternatives
    beside it. ``kind`` is part of the key: a hybrid model's thinking-on (``reasoning``) and
    thinking-off (``instruct``) scores are two points, not two sources of one number.

    Added columns: ``n_sources``, ``choice`` (why this row), ``other_sources``
    ("66.6 Mistral Small 3 model card ...; 64.4 Phi-4 Technical Report ...").
    """
    import pandas as pd

    out = []
    for _, group in df.groupby(["model", "kind", "benchmark", "metric"], sort=False):
        recs = sorted(group.to_dict("records"), key=_priority)
        chosen, others = recs[0], recs[1:]
        out.append(
            {
                **chosen,
                "n_sources": len(recs),
                "choice": _reason(chosen, others),
                "other_sources": "; ".join(
                    f"{o['score']:g} ({o['source']}, {o['source_detail']}; {o['setting']})" for o in others
                ),
            }
        )
    return pd.DataFrame(out, columns=[*df.columns, "n_sources", "choice", "other_sources"])


def benchmark_for_task(task: str, benchmarks: Iterable[str]) -> str | None:
    """The published benchmark a task's scores compare with: the task itself, or the longest benchmark
    name that prefixes it before an underscore (``mmlu_pro_0shot`` -> ``mmlu_pro``). ``math500`` never
    maps to ``math``: the prefix must end at an underscore."""
    names = set(benchmarks)
    if task in names:
        return task
    best = None
    for b in names:
        if task.startswith(b + "_") and (best is None or len(b) > len(best)):
            best = b
    return best


def published_points(
    benchmark: str,
    kinds: Iterable[str] | None = None,
    metric: str | None = None,
    path: str | Path | None = None,
) -> pd.DataFrame:
    """The chosen published score of each model on one benchmark, with catalog parameter counts and dates."""
    df = load_published(path)
    df = df[df["benchmark"] == benchmark]
    if metric is not None:
        df = df[df["metric"] == metric]
    if kinds is not None:
        df = df[df["kind"].isin(list(kinds))]
    chosen = choose_sources(df)
    by_id = {m.id: m for m in load_models()}
    chosen["name"] = [by_id[m].name for m in chosen["model"]]
    chosen["params_total"] = [by_id[m].params_total for m in chosen["model"]]
    chosen["params_active"] = [
        by_id[m].params_active if by_id[m].params_active is not None else by_id[m].params_total
        for m in chosen["model"]
    ]
    chosen["release_date"] = [by_id[m].release_date for m in chosen["model"]]
    chosen["knowledge_cutoff"] = [by_id[m].knowledge_cutoff for m in chosen["model"]]
    return chosen.reset_index(drop=True)

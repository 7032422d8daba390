"""Turn dataset rows into Samples following a task's field mapping, and select few-shot exemplars."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from evalkit.errors import DataError
from evalkit.tasks.data import LoadedRows, combine_sources, load_hub_split, load_local_files
from evalkit.tasks.generated import load_generated
from evalkit.tasks.loader import LoadedTask
from evalkit.tasks.spec import SOURCE_COLUMN, FieldMap, SourceSpec, TaskSpec
from evalkit.types import Sample


def _col(row: Mapping[str, Any], col: str, i: int, source: str, field: str, task: LoadedTask) -> Any:
    if col not in row:
        cols = ", ".join(sorted(row)) or "none"
        raise DataError(
            f"task {task.spec.name}: row {i} of {source} has no column {col!r} (columns: {cols}); "
            f"fix fields.{field} in {task.path}"
        )
    return row[col]


def _as_date(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _choices(value: Any, fm: FieldMap) -> tuple[str, ...]:
    if isinstance(value, Mapping):
        items = [str(value[k]) for k in sorted(value)]
    elif isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        raise ValueError(f"expected a list or a letter->text mapping of options, got {type(value).__name__}")
    drop = {d.strip() for d in fm.drop_choices}
    return tuple(c for c in items if c.strip() not in drop)


def _answer(value: Any, fm: FieldMap, choices: tuple[str, ...] | None) -> str:
    if fm.answer_index:
        idx = int(value)
        if choices is None or not 0 <= idx < len(choices):
            raise ValueError(f"answer index {idx} is outside the {len(choices or ())} options")
        return chr(ord("A") + idx)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def rows_to_samples(task: LoadedTask, loaded: LoadedRows) -> list[Sample]:
    spec: TaskSpec = task.spec
    fm = spec.fields
    out: list[Sample] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(loaded.rows):
        sid = str(_col(row, fm.id, i, loaded.source, "id", task)) if fm.id else str(i)
        if sid in seen:
            raise DataError(
                f"task {spec.name}: item id {sid!r} appears in rows {seen[sid]} and {i} of {loaded.source}; "
                f"ids must be unique (fix fields.id in {task.path})"
            )
        seen[sid] = i
        try:
            raw_choices = _col(row, fm.choices, i, loaded.source, "choices", task) if fm.choices else None
            # A null (absent) options value marks an open-answer item in a mixed task.
            choices = _choices(raw_choices, fm) if raw_choices is not None else None
            answer = _answer(_col(row, fm.answer, i, loaded.source, "answer", task), fm, choices)
            date = None
            if fm.date:
                date = _as_date(_col(row, fm.date, i, loaded.source, "date", task))
            elif fm.date_from:
                value = str(_col(row, fm.date_from.field, i, loaded.source, "date_from.field", task))
                for rule in fm.date_from.rules:
                    if re.search(rule.match, value):
                        date = rule.date
                        break
            date = date or spec.date
        except (ValueError, TypeError) as e:
            raise DataError(
                f"task {spec.name}: row {i} (id {sid}) of {loaded.source}: {e}; check fields in {task.path}"
            ) from None
        meta = {name: _col(row, col, i, loaded.source, f"meta.{name}", task) for name, col in fm.meta.items()}
        question = _col(row, fm.question, i, loaded.source, "question", task)
        out.append(
            Sample(
                id=sid,
                task=spec.name,
                question=str(question),
                answer=answer,
                choices=choices,
                date=date,
                meta=meta,
            )
        )
    return out


def dedupe_rows(loaded: LoadedRows, column: str, task: LoadedTask) -> LoadedRows:
    """Keep the first row of each value of ``column`` (e.g. AMC 10A/12A share problems)."""
    seen: set[str] = set()
    rows = []
    for i, row in enumerate(loaded.rows):
        key = json.dumps(
            _col(row, column, i, loaded.source, "dataset.dedupe_on", task), sort_keys=True, default=str
        )
        if key not in seen:
            seen.add(key)
            rows.append(row)
    dropped = len(loaded.rows) - len(rows)
    source = f"{loaded.source} (deduplicated on {column}: {dropped} of {len(loaded.rows)} rows dropped)"
    return LoadedRows(rows, source, loaded.revision, loaded.sha256)


def _load_source(task: LoadedTask, src: SourceSpec, data_dir: Path | None) -> LoadedRows:
    """One entry of ``dataset.sources``: its rows with the columns it maps and sets, and its name."""
    if src.hf is not None:
        loaded = load_hub_split(src.hf.path, src.hf.name, src.split, src.hf.revision, data_dir)
    else:
        loaded = load_local_files(src.files or [], task.folder, data_dir)
    rows = []
    for i, row in enumerate(loaded.rows):
        new = dict(row)
        for name, value in src.columns.items():
            try:
                new[name] = value.format_map(row) if "{" in value else row[value]
            except KeyError as e:
                cols = ", ".join(sorted(row)) or "none"
                raise DataError(
                    f"task {task.spec.name}: row {i} of {loaded.source} has no column {e.args[0]!r} "
                    f"(columns: {cols}); fix dataset.sources columns.{name} in {task.path}"
                ) from None
        new.update(src.set)
        new[SOURCE_COLUMN] = src.describe()
        rows.append(new)
    return LoadedRows(rows, loaded.source, loaded.revision, loaded.sha256)


def load_samples(task: LoadedTask, data_dir: Path | None) -> tuple[list[Sample], LoadedRows]:
    ds = task.spec.dataset
    if ds.hf is not None:
        loaded = load_hub_split(ds.hf.path, ds.hf.name, ds.split, ds.hf.revision, data_dir)
    elif ds.sources is not None:
        loaded = combine_sources([(s.describe(), _load_source(task, s, data_dir)) for s in ds.sources])
    elif ds.generate is not None:
        loaded = load_generated(ds.generate, task.folder, data_dir)
    else:
        loaded = load_local_files(ds.files or [], task.folder, data_dir)
    if ds.dedupe_on:
        loaded = dedupe_rows(loaded, ds.dedupe_on, task)
    return rows_to_samples(task, loaded), loaded


def load_fewshot_pool(task: LoadedTask, data_dir: Path | None) -> list[Sample]:
    fs = task.spec.prompt.fewshot
    if fs is None or fs.k == 0:
        return []
    ds = task.spec.dataset
    if ds.hf is not None:
        assert fs.split is not None  # enforced by the schema
        loaded = load_hub_split(ds.hf.path, ds.hf.name, fs.split, ds.hf.revision, data_dir)
    else:
        loaded = load_local_files(fs.files or [], task.folder, data_dir)
    return rows_to_samples(task, loaded)


@lru_cache(maxsize=1 << 16)
def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def select_fewshot(task: TaskSpec, sample: Sample, pool: Sequence[Sample]) -> list[Sample]:
    """k exemplars for ``sample``: same category when asked, never the item itself (same id or text)."""
    fs = task.prompt.fewshot
    if fs is None or fs.k == 0:
        return []
    own = _norm(sample.question)
    # Category first: it is a cheap comparison and leaves few exemplars to normalise (cached anyway).
    cands = [
        e
        for e in pool
        if (fs.same is None or e.meta.get(fs.same) == sample.meta.get(fs.same))
        and e.id != sample.id
        and _norm(e.question) != own
    ]
    if fs.order == "random":
        rng = random.Random(f"{fs.seed}:{sample.id}")
        cands = rng.sample(cands, min(fs.k, len(cands)))
    return cands[: fs.k]

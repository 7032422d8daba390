"""``evalkit tasks new``: a commented task YAML skeleton with the dataset's real column names mapped.

The columns are read from the data itself (a hub mirror in the data folder, the hub, or a local
file); obvious ones are mapped (question/problem, answer, options/choices, id, date,
category/subject/level ...). The answer form picks the extractor and grader: options -> ``choice``,
integers -> ``integer``, anything else -> ``boxed`` + ``math``. Everything that needs a human
decision is marked TODO in the file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from evalkit.errors import DataError, TaskError
from evalkit.tasks.data import load_hub_split, read_rows_file, resolve_data_dir
from evalkit.tasks.loader import load_task_file
from evalkit.tasks.registry import LOCAL_TASKS_DIR
from evalkit.tasks.spec import NAME_RE

QUESTION_COLS = (
    "question",
    "problem",
    "prompt",
    "input",
    "query",
    "instruction",
    "text",
    "Question",
    "Problem",
)
ANSWER_COLS = (
    "answer",
    "target",
    "label",
    "gold",
    "correct_answer",
    "final_answer",
    "output",
    "Answer",
    "solution",
)
CHOICE_COLS = ("options", "choices", "endings", "candidates", "Options", "Choices")
ID_COLS = ("id", "question_id", "unique_id", "problem_id", "problem_idx", "idx", "uid", "qid", "ID")
DATE_COLS = ("date", "contest_date", "release_date", "published", "published_at", "created_at", "Date")
META_COLS = (
    "category",
    "subject",
    "topic",
    "domain",
    "level",
    "difficulty",
    "type",
    "problem_type",
    "contest",
    "competition",
    "year",
    "round",
    "src",
    "source",
    "has_figure",
)
SPLIT_PREFERENCE = ("test", "validation", "dev", "train")
SAMPLE_ROWS = 200


@dataclass
class ColumnMap:
    """Which column feeds which field, and how the answers look."""

    id: str | None = None
    question: str | None = None
    answer: str | None = None
    choices: str | None = None
    answer_index: bool = False
    date: str | None = None
    meta: dict[str, str] = field(default_factory=dict)
    kind: str = "math"  # choice | integer | math
    int_range: tuple[int, int] | None = None
    columns: list[str] = field(default_factory=list)


@dataclass
class NewTaskResult:
    path: Path
    name: str
    mapping: ColumnMap
    source: str
    data_hint: str
    validation_error: str | None
    data_dir: str | None

    def mapping_lines(self) -> list[str]:
        m = self.mapping
        lines = [f"columns: {', '.join(m.columns)}"]
        for label, col in (
            ("question", m.question),
            ("answer", m.answer),
            ("choices", m.choices),
            ("id", m.id),
            ("date", m.date),
        ):
            lines.append(f"{label:<9}<- {col if col else 'not found (TODO in the file)'}")
        if m.meta:
            lines.append("meta     <- " + ", ".join(f"{k}: {v}" for k, v in m.meta.items()))
        lines.append(f"answers look like: {m.kind} -> extract/grade set accordingly")
        return lines

    def next_steps(self) -> list[str]:
        dd = f" --data-dir {self.data_dir}" if self.data_dir else ""
        steps = [f"open {self.path} and resolve every TODO (revision sha, date, prompt wording)"]
        if self.data_hint:
            steps.append(self.data_hint)
        steps += [
            f"evalkit tasks validate {self.path}",
            f"evalkit tasks show {self.name}{dd}    # read the rendered prompts",
            f"evalkit tasks check {self.name}{dd}   # gold must score 100%, a wrong answer 0%",
            f"evalkit run -t {self.name} -m MODEL --limit 20{dd}",
            "bump `version` whenever you change the prompt, extraction or grading",
        ]
        return steps


# ---------------------------------------------------------------------------------------------
# Reading a few rows


def _pick_split(folder: Path, split: str | None) -> str:
    found = (
        sorted({p.stem for p in folder.iterdir() if p.suffix in (".jsonl", ".parquet", ".json")})
        if folder.is_dir()
        else []
    )
    if split:
        return split
    for s in SPLIT_PREFERENCE:
        if s in found:
            return s
    if found:
        return found[0]
    return "test"


def read_rows(
    from_hf: str | None, from_file: Path | None, split: str | None, data_dir: Path | None
) -> tuple[list[dict[str, Any]], str, str]:
    """(rows, source description, split) from a hub dataset (its mirror first) or a local file."""
    if (from_hf is None) == (from_file is None):
        raise TaskError("give exactly one of --from-hf ORG/NAME or --from-file FILE")
    if from_file is not None:
        p = Path(from_file)
        if not p.is_file() and data_dir is not None and (data_dir / "local" / p.name).is_file():
            p = data_dir / "local" / p.name
        if not p.is_file():
            raise DataError(f"--from-file: {from_file} not found")
        return read_rows_file(p), str(p), split or "test"
    assert from_hf is not None
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", from_hf):
        raise TaskError(f"--from-hf: {from_hf!r} is not a hub dataset id of the form ORG/NAME")
    folder = data_dir / "hf" / from_hf if data_dir is not None else Path("/nonexistent")
    chosen = _pick_split(folder, split)
    loaded = load_hub_split(from_hf, None, chosen, "main", data_dir)
    return loaded.rows, loaded.source, chosen


# ---------------------------------------------------------------------------------------------
# Guessing the mapping


def _first(cols: Sequence[str], names: Sequence[str]) -> str | None:
    lower = {c.lower(): c for c in cols}
    for n in names:
        if n in cols:
            return n
        if n.lower() in lower:
            return lower[n.lower()]
    return None


def _is_int_like(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    if isinstance(v, float):
        return v.is_integer()
    return isinstance(v, str) and re.fullmatch(r"[+-]?\d+", v.strip()) is not None


def _is_iso_date(v: Any) -> bool:
    if isinstance(v, (dt.date, dt.datetime)):
        return True
    if not isinstance(v, str):
        return False
    try:
        dt.date.fromisoformat(v.strip()[:10])
    except ValueError:
        return False
    return True


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows[:SAMPLE_ROWS]:
        for c in r:
            if c not in cols:
                cols.append(c)
    return cols


def _guess_answer_form(m: ColumnMap, sample: Sequence[Mapping[str, Any]]) -> None:
    """Options -> choice (an integer answer is then an option index); integers -> integer."""
    cols = m.columns
    choice_col = _first(cols, CHOICE_COLS)
    vals = [r.get(m.answer) for r in sample] if m.answer else []
    ints = bool(vals) and all(_is_int_like(v) for v in vals)
    if choice_col and all(isinstance(r.get(choice_col), (list, tuple, dict)) for r in sample):
        m.choices = choice_col
        m.kind = "choice"
        m.answer_index = ints
    elif ints:
        m.kind = "integer"
        nums = [int(str(v).strip()) if not isinstance(v, float) else int(v) for v in vals]
        m.int_range = (min(nums), max(nums))


def _guess_meta(m: ColumnMap, rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Columns named like a category (subject, level, contest ...) with at most 60 values."""
    used = {m.id, m.question, m.answer, m.choices, m.date}
    meta: dict[str, str] = {}
    for c in m.columns:
        if c in used or c.lower() not in META_COLS:
            continue
        values = {json.dumps(r.get(c), sort_keys=True, default=str) for r in rows}
        if len(values) <= 60:
            key = re.sub(r"\W", "_", c.lower())
            meta[key if key.isidentifier() else f"f_{key}"] = c
    return meta


def guess_mapping(rows: Sequence[Mapping[str, Any]]) -> ColumnMap:
    sample = rows[:SAMPLE_ROWS]
    cols = _columns(rows)
    m = ColumnMap(columns=cols)
    m.question = _first(cols, QUESTION_COLS)
    # Prefer a short answer column over a worked solution.
    answer_cols = [c for c in ANSWER_COLS if c != "solution"]
    m.answer = _first(cols, answer_cols) or _first(cols, ("solution",))
    _guess_answer_form(m, sample)
    id_col = _first(cols, ID_COLS)
    if id_col is not None:
        ids = [str(r.get(id_col)) for r in rows]
        if len(set(ids)) == len(ids):
            m.id = id_col
    date_col = _first(cols, DATE_COLS)
    if date_col and all(_is_iso_date(r.get(date_col)) for r in sample):
        m.date = date_col
    m.meta = _guess_meta(m, rows)
    return m


# ---------------------------------------------------------------------------------------------
# Writing the YAML


def _q(s: str) -> str:
    """A YAML scalar for a column name (JSON strings are valid YAML)."""
    return s if re.fullmatch(r"[A-Za-z_][\w.-]*", s) else json.dumps(s)


NEW_TASK_TEMPLATE = Path(__file__).with_name("new_task.yaml.j2")


@lru_cache(maxsize=1)
def _skeleton() -> jinja2.Template:
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True
    )
    env.filters["q"] = _q
    return env.from_string(NEW_TASK_TEMPLATE.read_text(encoding="utf-8"))


def render_yaml(
    name: str, m: ColumnMap, *, from_hf: str | None, file_name: str | None, split: str, source: str
) -> str:
    """The commented skeleton (new_task.yaml.j2) for the guessed mapping ``m``."""
    return _skeleton().render(
        name=name,
        today=dt.date.today().isoformat(),
        source=source,
        from_hf=from_hf,
        file_name=file_name,
        split=split,
        m=m,
    )


def default_out(name: str) -> Path:
    """./tasks/NAME.yaml in the current folder, which task discovery searches without flags (never
    the built-in tasks folder, which for an installed evalkit sits inside site-packages)."""
    return Path.cwd() / LOCAL_TASKS_DIR / f"{name}.yaml"


def new_task(
    name: str,
    *,
    from_hf: str | None = None,
    from_file: str | os.PathLike[str] | None = None,
    split: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> NewTaskResult:
    """Write the skeleton for ``name`` (default: ./tasks/NAME.yaml) and validate it (validation
    problems are returned, not raised)."""
    if not re.fullmatch(NAME_RE, name):
        raise TaskError(
            f"task name {name!r}: use lower-case letters, digits and underscores, starting with a letter"
        )
    dd = resolve_data_dir(data_dir)
    path = Path(out) if out is not None else default_out(name)
    if path.exists() and not force:
        raise TaskError(f"{path} exists; pass --force to overwrite it or --out to write elsewhere")
    ffile = Path(from_file) if from_file is not None else None
    rows, source, chosen = read_rows(from_hf, ffile, split, dd)
    if not rows:
        raise DataError(f"{source}: no rows to read the columns from")
    m = guess_mapping(rows)
    data_hint = ""
    file_name = None
    if ffile is not None:
        file_name = ffile.name
        here = path.parent.resolve() / ffile.name
        there = dd / "local" / ffile.name if dd is not None else None
        if not here.is_file() and not (there is not None and there.is_file()):
            data_hint = f"copy {ffile} next to {path} (or into <data-dir>/local/) so the task finds it"
    text = render_yaml(name, m, from_hf=from_hf, file_name=file_name, split=chosen, source=source)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    err = None
    try:
        load_task_file(path)
    except TaskError as e:
        err = str(e)
    return NewTaskResult(path.resolve(), name, m, source, data_hint, err, str(dd) if dd else None)

"""`evalkit data import`: public competition layouts -> the dated competition file schema.

The output schema is the one ``tasks/competition_math.yaml`` (and any task written like it) reads:
one JSON object per line with ``id, benchmark, competition, year, round, problem_number, date,
date_precision, problem, answer, answer_type, choices, source, dedup_key, license``.

Input layouts:

- ``matharena``: MathArena's hub layout (``MathArena/aime_2025``, ``aime_2026``, ``hmmt_feb_2025``...):
  ``problem_idx`` (int), ``problem``, ``answer`` (int or string), optional ``problem_type``. The
  contest, year and each round's day are given on the command line (the hub rows carry no date);
  AIME rounds are told apart by ``problem_idx`` (1-15: I, 16-30: II).
- ``amc-mc``: AMC 10/12 in multiple-choice form. No public hub dataset with the five options and
  the letter answer was found (the public AMC sets, e.g. AI-MO/aimo-validation-amc, rewrite the
  problems to numeric answers), so this is the file schema a user must produce, one object a line:
  ``contest`` (10A, 10B, 12A or 12B), ``year``, ``problem_number`` (1-25), ``problem``, ``choices``
  (an object with keys A-E), ``answer`` (a letter A-E), ``date`` (the contest day, YYYY-MM-DD).
  AMC 10A/12A (and 10B/12B) share problems: each shared problem is kept once (the first copy read)
  and the dropped copies are counted.

Every problem is reported at once, as ``file:line: message``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import DataError

FORMATS = ("matharena", "amc-mc")
OUTPUT_COLUMNS = (
    "id",
    "benchmark",
    "competition",
    "year",
    "round",
    "problem_number",
    "date",
    "date_precision",
    "problem",
    "answer",
    "answer_type",
    "choices",
    "source",
    "dedup_key",
    "license",
)
LETTERS = ("A", "B", "C", "D", "E")
AMC_CONTESTS = ("10A", "10B", "12A", "12B")


@dataclass
class ImportResult:
    rows: list[dict[str, Any]]
    dropped_duplicates: int = 0
    notes: list[str] = field(default_factory=list)


def dedup_key(problem: str) -> str:
    """The same problem text (case and whitespace aside) gives the same key."""
    norm = re.sub(r"\s+", " ", problem.strip().lower())
    return hashlib.sha256(norm.encode()).hexdigest()[:16]


def read_lines(path: Path) -> list[tuple[int, Any]]:
    """(line number, parsed object) for each non-blank line of a JSONL file; bad JSON is an error."""
    out, problems = [], []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((n, json.loads(line)))
        except json.JSONDecodeError as e:
            problems.append(f"{path}:{n}: not valid JSON ({e.msg})")
    _raise(problems)
    return out


def _raise(problems: Sequence[str]) -> None:
    if problems:
        shown = "\n  ".join(problems[:30])
        more = f"\n  ... and {len(problems) - 30} more" if len(problems) > 30 else ""
        raise DataError(f"{len(problems)} problem(s):\n  {shown}{more}")


def import_matharena(
    lines: Sequence[tuple[int, Any]],
    where: str,
    *,
    contest: str,
    year: int,
    dates: Mapping[str, dt.date],
    source: str,
    license: str = "CC-BY-NC-SA-4.0",
) -> ImportResult:
    """MathArena hub rows -> dated rows. ``dates``: round -> day (AIME: "I" and "II"; others: one
    round under any name, e.g. "Feb")."""
    contest_u = contest.upper()
    problems, rows = [], []
    for n, obj in lines:
        at = f"{where}:{n}"
        if not isinstance(obj, dict):
            problems.append(f"{at}: expected an object")
            continue
        missing = [k for k in ("problem_idx", "problem", "answer") if k not in obj]
        if missing:
            problems.append(f"{at}: missing field(s) {', '.join(missing)} (MathArena layout)")
            continue
        try:
            idx = int(obj["problem_idx"])
        except (TypeError, ValueError):
            problems.append(f"{at}: problem_idx {obj['problem_idx']!r} is not an integer")
            continue
        rnd = _round(contest_u, idx, dates)
        if rnd is None:
            problems.append(f"{at}: no date for problem_idx {idx}; give --date for its round")
            continue
        if contest_u == "AIME" and not re.fullmatch(r"\d{1,3}", str(obj["answer"]).strip()):
            problems.append(f"{at}: AIME answer {obj['answer']!r} is not an integer 0-999")
            continue
        bench = f"{contest.lower()}_{year}"
        rows.append(
            {
                "id": f"{bench}_{rnd}_p{idx}",
                "benchmark": bench,
                "competition": contest_u,
                "year": year,
                "round": rnd,
                "problem_number": idx,
                "date": dates[rnd].isoformat(),
                "date_precision": "day",
                "problem": str(obj["problem"]),
                "answer": str(obj["answer"]).strip(),
                "answer_type": "integer" if contest_u == "AIME" else "expression",
                "choices": None,
                "source": source,
                "dedup_key": dedup_key(str(obj["problem"])),
                "license": license,
            }
        )
    _raise(problems)
    return _dedupe(rows)


def _round(contest: str, idx: int, dates: Mapping[str, dt.date]) -> str | None:
    if contest == "AIME":
        rnd = "I" if 1 <= idx <= 15 else "II" if 16 <= idx <= 30 else None
        return rnd if rnd in dates else None
    return next(iter(dates), None) if len(dates) == 1 else None


def import_amc_mc(
    lines: Sequence[tuple[int, Any]], where: str, *, source: str, license: str = "MAA (check terms)"
) -> ImportResult:
    """AMC 10/12 multiple-choice rows (the schema in this module's docstring) -> dated rows, each
    shared 10/12 problem kept once."""
    problems, rows = [], []
    for n, obj in lines:
        at = f"{where}:{n}"
        errs = _amc_problems(obj)
        if errs:
            problems += [f"{at}: {e}" for e in errs]
            continue
        contest, year, num = str(obj["contest"]).upper(), int(obj["year"]), int(obj["problem_number"])
        rows.append(
            {
                "id": f"amc_{year}_{contest}_p{num}",
                "benchmark": f"amc_{year}",
                "competition": f"AMC {contest[:2]}",
                "year": year,
                "round": contest,
                "problem_number": num,
                "date": str(obj["date"]),
                "date_precision": "day",
                "problem": str(obj["problem"]),
                "answer": str(obj["answer"]).strip().upper(),
                "answer_type": "choice_letter",
                "choices": {k: str(obj["choices"][k]) for k in LETTERS},
                "source": source,
                "dedup_key": dedup_key(str(obj["problem"])),
                "license": license,
            }
        )
    _raise(problems)
    result = _dedupe(rows)
    if result.dropped_duplicates:
        result.notes.append(
            f"{result.dropped_duplicates} problem(s) shared between AMC 10 and AMC 12 kept once "
            f"(the first copy read)"
        )
    return result


def _amc_problems(obj: Any) -> list[str]:  # noqa: C901 - one check per field of the schema, flat
    if not isinstance(obj, dict):
        return ["expected an object"]
    need = ("contest", "year", "problem_number", "problem", "choices", "answer", "date")
    missing = [k for k in need if k not in obj]
    if missing:
        return [f"missing field(s) {', '.join(missing)} (amc-mc schema: {', '.join(need)})"]
    errs = []
    if str(obj["contest"]).upper() not in AMC_CONTESTS:
        errs.append(f"contest {obj['contest']!r} must be one of {', '.join(AMC_CONTESTS)}")
    if not str(obj["year"]).isdigit():
        errs.append(f"year {obj['year']!r} is not a year")
    if not str(obj["problem_number"]).isdigit() or not 1 <= int(obj["problem_number"]) <= 25:
        errs.append(f"problem_number {obj['problem_number']!r} must be 1-25")
    choices = obj["choices"]
    if not isinstance(choices, dict) or sorted(choices) != list(LETTERS):
        errs.append("choices must be an object with the keys A, B, C, D and E")
    if str(obj["answer"]).strip().upper() not in LETTERS:
        errs.append(f"answer {obj['answer']!r} must be a letter A-E")
    try:
        dt.date.fromisoformat(str(obj["date"]))
    except ValueError:
        errs.append(f"date {obj['date']!r} is not YYYY-MM-DD")
    if not str(obj["problem"]).strip():
        errs.append("problem is empty")
    return errs


def _dedupe(rows: list[dict[str, Any]]) -> ImportResult:
    seen: set[str] = set()
    kept = []
    for r in rows:
        if r["dedup_key"] not in seen:
            seen.add(r["dedup_key"])
            kept.append(r)
    ids = [r["id"] for r in kept]
    dup_ids = sorted({i for i in ids if ids.count(i) > 1})
    if dup_ids:
        raise DataError(f"item ids repeat: {', '.join(dup_ids)}; each (contest, problem) must appear once")
    return ImportResult(kept, len(rows) - len(kept))


def write_rows(rows: Sequence[Mapping[str, Any]], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({c: r.get(c) for c in OUTPUT_COLUMNS}, ensure_ascii=False) + "\n")
    return out

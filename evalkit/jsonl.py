"""JSON lines: one reader that names ``file:line`` in every error, and one writer."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from evalkit.errors import DataError


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line number, object) for every non-blank line of a JSON-lines file.

    Raises DataError naming ``file:line`` for a line that is not JSON or not a JSON object, and
    naming the file when it cannot be read or is not UTF-8.
    """
    p = Path(path)
    try:
        with p.open(encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if line.strip():
                    yield i, _object(p, i, line)
    except FileNotFoundError:
        raise DataError(f"{p}: no such file") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise DataError(f"{p}: cannot read ({e.strerror})") from None


def _object(path: Path, lineno: int, line: str) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(
            f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno}); "
            f"each line must be one JSON object"
        ) from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}:{lineno}: each line must be a JSON object, got {type(obj).__name__}")
    return obj


def write_jsonl(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write ``rows`` as JSON lines (UTF-8, non-ASCII kept as is), creating the folder."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return p

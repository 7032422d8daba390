"""Dataset loading: the hub (pinned revision), local files, and a data folder that replaces the hub.

A data folder (``--data-dir`` / ``EVALKIT_DATA_DIR``) serves hub datasets from
``<data-dir>/hf/<org>/<name>/[<config>/]<split>.jsonl|parquet`` with the hub's own field names, and a
task's local files that are not next to its YAML from ``<data-dir>/local/<file name>``. When the
folder serves a dataset nothing touches the network.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.errors import DataError
from evalkit.jsonl import read_jsonl

MIRROR_SUFFIXES = (".jsonl", ".parquet", ".json")
# No benchmark item is a megabyte of text: a longer line of a JSON-lines or CSV file is broken data
# (a file glued onto one line, a binary blob), refused before it becomes a prompt.
MAX_LINE_BYTES = 1 << 20


@dataclass(frozen=True)
class LoadedRows:
    rows: list[dict[str, Any]]
    source: str  # what was read, for messages and the manifest
    revision: str | None  # hub revision, when the data is (a mirror of) a hub dataset
    sha256: str  # content hash of what was read


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    value = explicit if explicit is not None else os.environ.get("EVALKIT_DATA_DIR")
    if not value:
        return None
    p = Path(value).expanduser()
    if not p.is_dir():
        src = "--data-dir" if explicit is not None else "EVALKIT_DATA_DIR"
        raise DataError(f"{src}: {p} is not a folder (it should hold hf/ and/or local/)")
    return p.resolve()


def set_offline() -> None:
    """The hub libraries try the network even for local data unless told not to."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"


def read_rows_file(path: Path) -> list[dict[str, Any]]:
    """Read .jsonl, .json (a list, or an object with a 'data'/'rows' list), .csv or .parquet."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".csv"):
        check_text_file(path, max_line=None if suffix == ".json" else MAX_LINE_BYTES)
    try:
        if suffix == ".jsonl":
            return [obj for _, obj in read_jsonl(path)]
        if suffix == ".json":
            obj = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(obj, dict):
                obj = obj.get("data", obj.get("rows"))
            if not isinstance(obj, list) or not all(isinstance(r, dict) for r in obj):
                raise DataError(f"{path}: expected a JSON list of objects (or an object with a 'data' list)")
            return obj
        if suffix in (".csv", ".parquet"):
            import pandas as pd

            df = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
            return [_plain(r) for r in df.to_dict(orient="records")]
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    raise DataError(f"{path}: unsupported format {suffix!r}; use .jsonl, .json, .csv or .parquet")


def check_text_file(path: Path, max_line: int | None = MAX_LINE_BYTES) -> None:
    """Refuse, naming ``file:line``, a byte that is not UTF-8 and a line longer than ``max_line``."""
    try:
        with path.open("rb") as f:
            for lineno, raw in enumerate(f, 1):
                if max_line is not None and len(raw) > max_line:
                    raise DataError(
                        f"{path}:{lineno}: the line is {len(raw) / 1e6:.1f} MB, more than the "
                        f"{max_line / 1e6:.1f} MB an item may take; is the file broken?"
                    )
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(
                        f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column "
                        f"{e.start + 1}: {e.reason}); save the file as UTF-8"
                    ) from None
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if hasattr(v, "tolist"):
            v = v.tolist()
        out[str(k)] = v
    return out


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def rows_sha256(rows: list[dict[str, Any]]) -> str:
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps(r, sort_keys=True, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


def mirror_path(data_dir: Path, hub_path: str, config: str | None, split: str) -> Path | None:
    base = data_dir / "hf" / hub_path
    candidates = []
    if config:
        candidates += [base / config / f"{split}{s}" for s in MIRROR_SUFFIXES]
    candidates += [base / f"{split}{s}" for s in MIRROR_SUFFIXES]
    for c in candidates:
        if c.is_file():
            return c
    return None


def load_hub_split(
    hub_path: str, config: str | None, split: str, revision: str, data_dir: Path | None
) -> LoadedRows:
    if data_dir is not None:
        m = mirror_path(data_dir, hub_path, config, split)
        if m is not None:
            set_offline()
            return LoadedRows(read_rows_file(m), f"mirror {m}", revision, file_sha256(m))
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a core dependency
        raise DataError(
            "the 'datasets' package is needed to load hub datasets: pip install datasets"
        ) from None
    try:
        ds = datasets.load_dataset(hub_path, config, split=split, revision=revision)
    except Exception as e:  # the hub raises many exception types; all mean "could not load"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        where = (
            f"no mirror under {data_dir}/hf/{hub_path}/" if data_dir is not None else "no data folder given"
        )
        raise DataError(
            f"cannot load hub dataset {hub_path} (split {split!r}, revision {revision}): {first[:300]}\n"
            f"{where}; offline, mirror it as <data-dir>/hf/{hub_path}/{split}.jsonl and pass --data-dir "
            f"(or set EVALKIT_DATA_DIR)"
        ) from None
    rows = [_plain(dict(r)) for r in ds]
    return LoadedRows(rows, f"hub {hub_path}@{revision}", revision, rows_sha256(rows))


def find_local_file(name: str, yaml_folder: Path, data_dir: Path | None) -> Path:
    tried = []
    p = Path(name)
    candidates = [p] if p.is_absolute() else [yaml_folder / p]
    if data_dir is not None:
        candidates.append(data_dir / "local" / p.name)
    for c in candidates:
        tried.append(str(c))
        if c.is_file():
            return c
    hint = (
        f"put {p.name} next to the task YAML ({yaml_folder}) or in <data-dir>/local/ "
        f"(pass --data-dir or set EVALKIT_DATA_DIR)"
    )
    raise DataError(f"data file {name!r} not found (looked in: {', '.join(tried)}); {hint}")


def load_local_files(files: list[str], yaml_folder: Path, data_dir: Path | None) -> LoadedRows:
    rows: list[dict[str, Any]] = []
    hashes, sources = [], []
    for name in files:
        path = find_local_file(name, yaml_folder, data_dir)
        rows += read_rows_file(path)
        hashes.append(file_sha256(path))
        sources.append(str(path))
    digest = hashes[0] if len(hashes) == 1 else hashlib.sha256("".join(hashes).encode()).hexdigest()
    return LoadedRows(rows, "files " + ", ".join(sources), None, digest)


def combine_sources(parts: list[tuple[str, LoadedRows]]) -> LoadedRows:
    """The union of several sources' rows, in order, each row keeping the name of its source (given
    as ``(name, rows)``); one digest over the parts' digests."""
    rows: list[dict[str, Any]] = []
    for _, loaded in parts:
        rows += loaded.rows
    digest = hashlib.sha256("".join(p.sha256 for _, p in parts).encode()).hexdigest()
    revisions = [f"{name}: {p.revision}" for name, p in parts if p.revision]
    source = "sources: " + "; ".join(p.source for _, p in parts)
    return LoadedRows(rows, source, "; ".join(revisions) or None, digest)

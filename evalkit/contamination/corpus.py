"""Training-corpus readers for the n-gram check: files streamed as chunks of documents.

JSONL with a text field (a.b for nested keys), plain text and parquet (through pyarrow record batches),
each optionally gzip/bz2/xz compressed. A corpus is never held whole: chunks are a few MB each, and a
chunk of JSONL or plain text ends at a line break so no document (and, for running text, no n-gram:
a tail is carried over) is cut in two.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError

DEFAULT_CHUNK_BYTES = 4 << 20


@dataclass(frozen=True)
class Chunk:
    kind: str  # "jsonl" (raw lines), "texts" (one document each), "text" (continuous plain text)
    source: str
    first: int  # 1-based line (jsonl, text) or 0-based row (texts) of the chunk's first document
    payload: Any
    text_field: str = "text"


def _field(obj: Any, path: Sequence[str]) -> Any:
    for k in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj


def chunk_texts(chunk: Chunk) -> tuple[list[str], list[str], int]:
    """(texts, location of each, bad lines)."""
    if chunk.kind == "jsonl":
        path = chunk.text_field.split(".")
        texts, where, bad = [], [], 0
        for i, line in enumerate(chunk.payload.split(b"\n")):
            if not line.strip():
                continue
            try:
                value = _field(json.loads(line), path)
            except ValueError:
                value = None
            if isinstance(value, str):
                texts.append(value)
                where.append(f"{chunk.source}:{chunk.first + i}")
            else:
                bad += 1
        return texts, where, bad
    if chunk.kind == "texts":
        texts = [t for t in chunk.payload if isinstance(t, str)]
        where = [
            f"{chunk.source} row {chunk.first + i}" for i, t in enumerate(chunk.payload) if isinstance(t, str)
        ]
        return texts, where, len(chunk.payload) - len(texts)
    text = chunk.payload.decode("utf-8", errors="replace")
    return [text], [f"{chunk.source} near line {chunk.first}"], 0


def _open_stream(path: Path) -> io.BufferedIOBase:
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if name.endswith(".bz2"):
        return bz2.open(path, "rb")  # type: ignore[return-value]
    if name.endswith((".xz", ".lzma")):
        return lzma.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def corpus_kind(path: Path) -> str:
    """``jsonl``, ``parquet`` or ``text`` from the file name (a compression suffix is looked through)."""
    name = re.sub(r"\.(gz|bz2|xz|lzma)$", "", path.name.lower())
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    return "text"


def expand_corpus(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; a folder stands for the files under it (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            out.append(p)
        else:
            raise EvalkitError(f"--corpus {p}: no such file or folder")
    if not out:
        raise EvalkitError("--corpus: no files found")
    return out


def parse_shard(spec: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n (``i`` is 0-based, as ``$SLURM_ARRAY_TASK_ID`` with
    ``--array=0-(n-1)``)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not m or not 0 <= int(m.group(1)) < int(m.group(2)):
        raise EvalkitError(f"--shard {spec!r}: give i/n with 0 <= i < n, e.g. 0/8 ... 7/8")
    return int(m.group(1)), int(m.group(2))


def shard_files(files: Sequence[Path], shard: int, n_shards: int) -> list[Path]:
    """Shard ``shard`` of ``n_shards``: files ``shard, shard + n_shards, ...`` of the sorted paths."""
    return sorted(files, key=str)[shard::n_shards]


def iter_chunks(
    paths: Sequence[Path], text_field: str = "text", chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> Iterator[Chunk]:
    """Stream every corpus file as chunks of about ``chunk_bytes``; nothing is read ahead of need."""
    for path in paths:
        kind = corpus_kind(path)
        if kind == "parquet":
            yield from _parquet_chunks(path, text_field, chunk_bytes)
        else:
            yield from _stream_chunks(path, kind, text_field, chunk_bytes)


def _stream_chunks(path: Path, kind: str, text_field: str, chunk_bytes: int) -> Iterator[Chunk]:
    with _open_stream(path) as f:
        rest = b""
        line = 1
        while True:
            block = f.read(chunk_bytes)
            if not block:
                break
            data = rest + block
            cut = data.rfind(b"\n")
            if cut == -1 and kind == "text":
                cut = max(data.rfind(b" "), data.rfind(b"\t"))
            if cut == -1:
                rest = data  # one very long line: keep reading
                continue
            body, rest = data[: cut + 1], data[cut + 1 :]
            yield Chunk(kind, str(path), line, body, text_field)
            line += body.count(b"\n")
            if kind == "text":
                # Carry a tail so n-grams that span two chunks of running text are seen.
                tail = body[-4096:]
                ws = min((i for i in (tail.find(b" "), tail.find(b"\n")) if i != -1), default=-1)
                rest = (tail[ws + 1 :] if ws != -1 else b"") + rest
        if rest.strip():
            yield Chunk(kind, str(path), line, rest, text_field)


def _parquet_chunks(path: Path, text_field: str, chunk_bytes: int) -> Iterator[Chunk]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow comes with datasets
        raise EvalkitError("reading parquet corpora needs pyarrow: pip install pyarrow") from None
    pf = pq.ParquetFile(path)
    if text_field not in pf.schema_arrow.names:
        raise EvalkitError(
            f"{path}: no column {text_field!r} (columns: {', '.join(pf.schema_arrow.names)}); "
            "pass --text-field"
        )
    texts: list[Any] = []
    size = 0
    row = 0
    for batch in pf.iter_batches(batch_size=2048, columns=[text_field]):
        for t in batch.column(0).to_pylist():
            texts.append(t)
            size += len(t) if isinstance(t, str) else 0
            if size >= chunk_bytes:
                yield Chunk("texts", str(path), row, texts, text_field)
                row += len(texts)
                texts, size = [], 0
    if texts:
        yield Chunk("texts", str(path), row, texts, text_field)

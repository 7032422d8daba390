"""n-gram overlap between benchmark items and a training corpus, with the corpus streamed.

Both sides go through one normaliser: Unicode NFKC, case-folded, every run of characters that are not
letters or digits (punctuation, underscores, whitespace) turned into one space; tokens are what is
left between spaces. Each token is hashed to 64 bits and an n-gram's hash is a polynomial over its
tokens' hashes (mod 2^64), computed for a whole chunk at once with numpy.

The benchmark's n-grams are few (a few hundred thousand at most) and sit in a sorted array with a
bit filter in front; the corpus is read in chunks of a few MB (JSONL with a text field, plain text,
parquet through pyarrow record batches; gzip/bz2/xz too) and never held whole. Chunks are hashed in
worker processes; memory is bounded by the chunk size times the number of chunks in flight.

Token hashes use Python's built-in hash of bytes (SipHash, 64-bit): it is about five times faster
here than blake2b and is salted per process, so every process hashes the benchmark itself and
results travel between processes as positions in the benchmark's n-gram list, never as hash values.
Collisions are negligible (about one in 10^6 for a 1 GB corpus against 100k benchmark n-grams).

An item's overlap ratio is the share of its distinct n-grams seen anywhere in the corpus; it is
flagged at ``ratio >= threshold``. Items shorter than n tokens have no n-grams: reported, never flagged.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import re
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.errors import EvalkitError

DEFAULT_N = 13
DEFAULT_THRESHOLD = 0.5
DEFAULT_CHUNK_BYTES = 4 << 20
# Corpora smaller than this are scanned in-process: starting workers would cost more than it saves.
PARALLEL_MIN_BYTES = 64 << 20

_NONWORD = re.compile(r"[\W_]+")
_DOC_SEP = b"\x1e"  # a token the normaliser never produces from text: n-grams never cross documents
_P = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier of the polynomial n-gram hash
_FILTER_BITS = 24


def _ascii_table(keep_sep: bool) -> bytes:
    table = bytearray(b" " * 256)
    for c in b"abcdefghijklmnopqrstuvwxyz0123456789":
        table[c] = c
    for c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        table[c] = c + 32
    if keep_sep:
        table[_DOC_SEP[0]] = _DOC_SEP[0]
    return bytes(table)


_ASCII = _ascii_table(keep_sep=False)  # one document: a stray separator character is punctuation
_ASCII_JOINED = _ascii_table(keep_sep=True)  # documents joined by separators we put there


def _normalize_doc(text: str) -> bytes:
    """One document as normalised UTF-8: tokens separated by spaces."""
    if text.isascii():
        # Fast path, identical to the Unicode path on ASCII text: lower-case letters and digits kept.
        return text.encode("ascii").translate(_ASCII)
    t = unicodedata.normalize("NFKC", text).casefold()
    return _NONWORD.sub(" ", t).encode("utf-8")


def normalize_tokens(text: str) -> list[str]:
    """The tokens n-grams are built from (for display and tests; scanning works on bytes)."""
    return [t.decode("utf-8") for t in _normalize_doc(text).replace(_DOC_SEP, b" ").split()]


def _join_docs(texts: Sequence[str]) -> bytes:
    if not texts:
        return b""
    joined = "\x1e".join(texts)
    if joined.isascii() and joined.count("\x1e") == len(texts) - 1:
        # One pass over the whole chunk; spaces around the separator make it a token of its own.
        return joined.replace("\x1e", " \x1e ").encode("ascii").translate(_ASCII_JOINED)
    return (b" " + _DOC_SEP + b" ").join(_normalize_doc(t) for t in texts)


def _token_hashes(normalized: bytes) -> np.ndarray:
    tokens = normalized.split()
    return np.fromiter(map(hash, tokens), dtype=np.int64, count=len(tokens)).view(np.uint64)


def _ngram_hashes(th: np.ndarray, n: int) -> np.ndarray:
    """Polynomial hash of every window of n token hashes (uint64 arithmetic wraps mod 2^64)."""
    m = len(th) - n + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    h = th[:m].copy()
    for j in range(1, n):
        np.multiply(h, _P, out=h)
        np.add(h, th[j : j + m], out=h)
    return h


# --------------------------------------------------------------------------------------------------
# The benchmark side


class NgramIndex:
    """The benchmark's n-grams. Canonical n-gram ids are positions in the concatenation of all
    items' n-gram lists (first occurrence), the same in every process whatever the hash salt."""

    def __init__(self, texts: Sequence[str], n: int = DEFAULT_N) -> None:
        if n < 1:
            raise EvalkitError(f"--n {n}: the n-gram length must be at least 1")
        self.texts = list(texts)
        self.n = n
        per_item = [_ngram_hashes(_token_hashes(_normalize_doc(t)), n) for t in self.texts]
        self.offsets = np.zeros(len(per_item) + 1, dtype=np.int64)
        self.offsets[1:] = np.cumsum([len(h) for h in per_item])
        all_h = np.concatenate(per_item) if per_item else np.empty(0, dtype=np.uint64)
        uniq, first, inverse = np.unique(all_h, return_index=True, return_inverse=True)
        self.sorted_hashes = uniq  # sorted, process-local values
        self.canon_of_sorted = first.astype(np.int64)  # canonical id of each sorted hash
        self.canon_of_pos = first[inverse.reshape(-1)].astype(np.int64)  # canonical id of each position
        self.filter = np.zeros(1 << _FILTER_BITS, dtype=bool)
        self.filter[(uniq >> np.uint64(64 - _FILTER_BITS)).astype(np.int64)] = True

    @property
    def n_positions(self) -> int:
        return int(self.offsets[-1])

    def item_canon(self, i: int) -> np.ndarray:
        """Distinct canonical n-gram ids of item ``i``."""
        return np.unique(self.canon_of_pos[self.offsets[i] : self.offsets[i + 1]])

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(window positions that hit, their canonical ids)."""
        if len(hashes) == 0 or len(self.sorted_hashes) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        cand = np.flatnonzero(self.filter[(hashes >> np.uint64(64 - _FILTER_BITS)).astype(np.int64)])
        if len(cand) == 0:
            return cand, cand
        hc = hashes[cand]
        idx = np.searchsorted(self.sorted_hashes, hc)
        idx[idx == len(self.sorted_hashes)] = 0
        ok = self.sorted_hashes[idx] == hc
        return cand[ok], self.canon_of_sorted[idx[ok]]


# --------------------------------------------------------------------------------------------------
# The corpus side: chunks read in the main process, hashed in workers


@dataclass(frozen=True)
class Chunk:
    kind: str  # "jsonl" (raw lines), "texts" (one document each), "text" (continuous plain text)
    source: str
    first: int  # 1-based line (jsonl, text) or 0-based row (texts) of the chunk's first document
    payload: Any
    text_field: str = "text"


@dataclass
class ChunkResult:
    canon: np.ndarray  # distinct canonical ids seen in the chunk
    where: dict[int, str]  # canonical id -> "file:line" of one document holding it
    n_bytes: int = 0
    n_docs: int = 0
    n_windows: int = 0
    n_bad: int = 0  # JSONL lines that are not JSON objects with a string text field


def _field(obj: Any, path: Sequence[str]) -> Any:
    for k in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj


def _chunk_texts(chunk: Chunk) -> tuple[list[str], list[str], int]:
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


def scan_chunk(index: NgramIndex, chunk: Chunk) -> ChunkResult:
    """The n-grams of one chunk that are benchmark n-grams."""
    texts, where, bad = _chunk_texts(chunk)
    th = _token_hashes(_join_docs(texts))
    hashes = _ngram_hashes(th, index.n)
    pos, canon = index.lookup(hashes)
    n_bytes = len(chunk.payload) if isinstance(chunk.payload, bytes) else sum(len(t) for t in texts)
    seps = np.flatnonzero(th == np.uint64(hash(_DOC_SEP) & 0xFFFFFFFFFFFFFFFF))
    doc_lengths = np.diff(np.concatenate(([-1], seps, [len(th)]))) - 1
    n_windows = int(np.maximum(doc_lengths - index.n + 1, 0).sum())  # windows inside one document
    # Plain text is one document per file, however many chunks it is read in.
    n_docs = len(texts) if chunk.kind != "text" else int(chunk.first == 1)
    res = ChunkResult(np.unique(canon), {}, n_bytes, n_docs, n_windows, bad)
    if len(pos):
        docs = np.searchsorted(seps, pos)
        for c, d in zip(canon.tolist(), docs.tolist(), strict=True):
            res.where.setdefault(c, where[min(d, len(where) - 1)])
    return res


_WORKER_INDEX: NgramIndex | None = None


def _init_worker(texts: list[str], n: int) -> None:
    global _WORKER_INDEX
    _WORKER_INDEX = NgramIndex(texts, n)


def _scan_in_worker(chunk: Chunk) -> ChunkResult:
    assert _WORKER_INDEX is not None
    return scan_chunk(_WORKER_INDEX, chunk)


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


def iter_chunks(
    paths: Sequence[Path], text_field: str = "text", chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> Iterator[Chunk]:
    """Stream every corpus file as chunks of about ``chunk_bytes``; nothing is read ahead of need."""
    for path in paths:
        kind = corpus_kind(path)
        if kind == "parquet":
            yield from _parquet_chunks(path, text_field, chunk_bytes)
            continue
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
            f"{path}: no column {text_field!r} (columns: {', '.join(pf.schema_arrow.names)}); pass --text-field"
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


@dataclass
class ScanResult:
    matched: np.ndarray  # bool per canonical id (indexed by position; only first occurrences are set)
    where: dict[int, str]
    files: list[str]
    n_bytes: int = 0
    n_docs: int = 0
    n_windows: int = 0
    n_bad: int = 0
    seconds: float = 0.0
    workers: int = 1

    @property
    def mb_per_s(self) -> float:
        return self.n_bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


def _default_workers(paths: Sequence[Path]) -> int:
    total = sum(p.stat().st_size for p in paths)
    if total < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(8, os.cpu_count() or 1))


def scan_corpus(
    index: NgramIndex,
    paths: Sequence[str | Path],
    text_field: str = "text",
    workers: int | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Callable[[int], None] | None = None,
) -> ScanResult:
    """Which benchmark n-grams occur in the corpus. ``progress`` gets the bytes done after each chunk."""
    files = expand_corpus(paths)
    nw = workers if workers is not None else _default_workers(files)
    result = ScanResult(np.zeros(index.n_positions, dtype=bool), {}, [str(f) for f in files], workers=nw)
    t0 = time.perf_counter()

    def merge(r: ChunkResult) -> None:
        result.matched[r.canon] = True
        for c, w in r.where.items():
            result.where.setdefault(c, w)
        result.n_bytes += r.n_bytes
        result.n_docs += r.n_docs
        result.n_windows += r.n_windows
        result.n_bad += r.n_bad
        if progress is not None:
            progress(result.n_bytes)

    chunks = iter_chunks(files, text_field, chunk_bytes)
    if nw <= 1:
        for c in chunks:
            merge(scan_chunk(index, c))
    else:
        import multiprocessing as mp

        # fork where there is one (starts in milliseconds and works from any __main__, stdin included);
        # spawn elsewhere. Each worker hashes the benchmark itself (the hash salt is per process).
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(nw, mp.get_context(method), _init_worker, (index.texts, index.n)) as pool:
            pending: deque[Future[ChunkResult]] = deque()
            for c in chunks:
                pending.append(pool.submit(_scan_in_worker, c))
                # Bounded read-ahead: at most two chunks per worker are in memory at once.
                while len(pending) >= 2 * nw:
                    merge(pending.popleft().result())
            while pending:
                merge(pending.popleft().result())
    result.seconds = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True)
class ItemOverlap:
    key: str  # task/id, the form `evalkit run --exclude` reads
    n_ngrams: int
    n_matched: int
    ratio: float | None  # None when the item has fewer than n tokens
    flagged: bool
    example: str | None  # where one matched n-gram was seen

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class OverlapReport:
    n: int
    threshold: float
    items: list[ItemOverlap]
    scan: ScanResult
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> list[ItemOverlap]:
        return [i for i in self.items if i.flagged]

    @property
    def n_too_short(self) -> int:
        return sum(1 for i in self.items if i.ratio is None)

    def summary(self) -> dict[str, Any]:
        s = self.scan
        return {
            "n": self.n,
            "threshold": self.threshold,
            "items": len(self.items),
            "items_with_any_overlap": sum(1 for i in self.items if i.n_matched),
            "flagged": len(self.flagged),
            "too_short": self.n_too_short,
            "corpus_files": len(s.files),
            "corpus_mb": round(s.n_bytes / 1e6, 3),
            "corpus_documents": s.n_docs,
            "corpus_ngrams": s.n_windows,
            "corpus_bad_lines": s.n_bad,
            "seconds": round(s.seconds, 3),
            "mb_per_s": round(s.mb_per_s, 2),
            "workers": s.workers,
            **self.extra,
        }


def overlap_report(
    index: NgramIndex, keys: Sequence[str], scan: ScanResult, threshold: float = DEFAULT_THRESHOLD
) -> OverlapReport:
    """Per-item overlap ratios and flags from a scan."""
    if not 0.0 < threshold <= 1.0:
        raise EvalkitError(f"--threshold {threshold}: give a share of an item's n-grams in (0, 1], e.g. 0.5")
    items = []
    for i, key in enumerate(keys):
        canon = index.item_canon(i)
        if len(canon) == 0:
            items.append(ItemOverlap(key, 0, 0, None, False, None))
            continue
        hit = canon[scan.matched[canon]]
        ratio = len(hit) / len(canon)
        example = scan.where.get(int(hit[0])) if len(hit) else None
        items.append(ItemOverlap(key, len(canon), len(hit), ratio, ratio >= threshold, example))
    return OverlapReport(index.n, threshold, items, scan)


def check_overlap(
    items: Sequence[tuple[str, str]],
    corpus: Sequence[str | Path],
    n: int = DEFAULT_N,
    threshold: float = DEFAULT_THRESHOLD,
    text_field: str = "text",
    workers: int | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Callable[[int], None] | None = None,
) -> OverlapReport:
    """The whole check: ``items`` are (key, text) pairs, ``corpus`` files or folders."""
    keys = [k for k, _ in items]
    index = NgramIndex([t for _, t in items], n)
    scan = scan_corpus(index, corpus, text_field, workers, chunk_bytes, progress)
    return overlap_report(index, keys, scan, threshold)


def sample_text(question: str, choices: Sequence[str] | None = None) -> str:
    """What of an item is checked: its question and, for multiple choice, its options."""
    return question + ("\n" + "\n".join(choices) if choices else "")


def task_items(
    tasks: Sequence[str], data_dir: str | None = None, tasks_dirs: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """(``task/id``, text) of every item of the named tasks, loaded as ``evalkit run`` would."""
    from evalkit.tasks.data import resolve_data_dir
    from evalkit.tasks.registry import discover
    from evalkit.tasks.samples import load_samples

    index = discover(tasks_dirs)
    dd = resolve_data_dir(data_dir)
    out = []
    for name in tasks:
        task = index.get(name)
        samples, _ = load_samples(task, dd)
        out += [(f"{task.spec.name}/{s.id}", sample_text(s.question, s.choices)) for s in samples]
    return out


def write_flagged_ids(path: str | Path, report: OverlapReport) -> int:
    """Write the flagged items' ``task/id`` lines (what ``evalkit run --exclude`` reads)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    flagged = report.flagged
    header = (
        f"# evalkit contamination ngram: {len(flagged)} items with >= {report.threshold:g} of their "
        f"{report.n}-grams in the corpus\n"
    )
    p.write_text(header + "".join(f"{i.key}\n" for i in flagged), encoding="utf-8")
    return len(flagged)

"""n-gram overlap between benchmark items and a training corpus, with the corpus streamed.

Both sides go through one normaliser: Unicode NFKC, case-folded, every run of characters that are not
letters or digits (punctuation, underscores, whitespace) turned into one space; tokens are what is
left between spaces. An item's overlap ratio is the share of its distinct n-grams seen anywhere in the
corpus; it is flagged at ``ratio >= threshold``. An item with fewer than n tokens has no n-gram: it is
checked by its whole text instead (``method: whole_text``), found when its whole normalised token
sequence occurs in one corpus document as a contiguous run of tokens (ratio 1.0, so flagged at any
threshold), never by its tokens occurring apart or in another order. Only an item with no token at all
is not checked.

A chunk of documents is normalised at once: ASCII text by one bytes.translate, other text by NFKC
over the chunk and then a per-code-point table (case fold, letter or digit or space) built once per
process from str.casefold and str.isalnum; both give exactly the tokens of the regex above.

Hashing, all vectorised with numpy over a chunk of a few MB (no Python-level work per token):

- a token of up to 8 bytes is its bytes packed into a 64-bit word and put through the splitmix64
  finaliser, a bijection, so two different short tokens never share a hash; longer tokens fold their
  further 8-byte words into the hash (over 64 bytes, rare: blake2b per token);
- the hash of the k tokens from position i is ``sum_j t[i+j] * R^j mod 2^64``, read off one prefix
  sum as ``(G[i+k] - G[i]) * R^-i`` (R odd, so invertible mod 2^64). One prefix sum serves the n-grams
  and every shorter whole-text length, and no window's hash depends on where it sits.

The hashes are deterministic: the same in every process and on every machine (no salt), so worker
processes and shards on other machines agree without exchanging hashes. Results still travel as
positions in the benchmark's n-gram list (shard files hold per item the positions of its matched
n-grams), which is what makes a merge exact. Collisions are negligible (about one in 10^6 for a 1 GB
corpus against 100k benchmark n-grams).

The benchmark's n-grams are few (a few hundred thousand at most) and sit in a sorted array with a
bit filter in front; the corpus is read in chunks (``corpus.py``) and never held whole. Chunks are
hashed in worker processes; memory is bounded by the chunk size times the number of chunks in flight.

A corpus too big for one machine is split into shards by file (``scan_shard``: files i, i+n, ... of
the sorted paths); each shard's per-item counts (``ItemCounts``: the positions of the matched n-grams
in each item's list, saved as JSON by ``write_counts``) are merged with ``merge_shards`` into exactly
the single-process report, examples included: a union of positions, since an item's ratio counts
distinct n-grams. See ``scan_shard`` for running the shards as a Slurm array or a Ray job.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.contamination.corpus import (
    DEFAULT_CHUNK_BYTES,
    Chunk,
    chunk_texts,
    expand_corpus,
    iter_chunks,
    shard_files,
)
from evalkit.errors import EvalkitError

DEFAULT_N = 13
DEFAULT_THRESHOLD = 0.5
# Corpora smaller than this are scanned in-process: starting workers would cost more than it saves.
PARALLEL_MIN_BYTES = 64 << 20
COUNTS_FORMAT = "evalkit-ngram-counts/1"

_NONWORD = re.compile(r"[\W_]+")
_DOC_SEP = b"\x1e"  # a token the normaliser never produces from text: n-grams never cross documents
_U64 = np.uint64
_R = 0x9E3779B97F4A7C15  # odd multiplier of the polynomial window hash
_R_INV = pow(_R, -1, 1 << 64)
_MIX1, _MIX2 = _U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB)  # splitmix64
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
_MAX_FOLDED_TOKEN = 64  # longer tokens are hashed one by one with blake2b


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
    """Documents normalised and joined by separator tokens (space, separator, space): the tokens of
    ``_normalize_doc`` of each, whole chunks at a time."""
    if not texts:
        return b""
    joined = " \x1e ".join(texts)
    clean = joined.count("\x1e") == len(texts) - 1
    if joined.isascii() and clean:
        return joined.encode("ascii").translate(_ASCII_JOINED)  # one pass over the whole chunk
    if not clean:  # a separator character inside a document is punctuation there
        joined = " \x1e ".join(t.replace("\x1e", " ") for t in texts)
    # NFKC and case folding are per character or bounded by starters such as " \x1e ", so a whole
    # chunk normalises as its documents one by one.
    return _fold_unicode(unicodedata.normalize("NFKC", joined))


_FOLDS_TO_MANY = np.uint32(1 << 31)  # flag: the character's case fold is several (e.g. "ß" -> "ss")
_TABLES: list[np.ndarray] = []


def _fold_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per code point: (its case fold if that is a letter or digit, else a space, with the flag
    above; itself if a letter or digit, else a space). Built once per process (about half a second)
    from str.casefold and str.isalnum, which is what re's \\w is for str patterns (less "_")."""
    if not _TABLES:
        chars = "".join(map(chr, range(0x110000)))
        folds = [c.casefold() for c in chars]
        single = "".join(f if len(f) == 1 else c for c, f in zip(chars, folds, strict=True))
        for text in (single, chars):
            table = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).copy()
            table[~np.fromiter(map(str.isalnum, text), dtype=bool, count=len(text))] = 32
            table[0x1E] = 0x1E  # the separator we put between documents
            _TABLES.append(table)
        _TABLES[0][np.fromiter((len(f) != 1 for f in folds), dtype=bool, count=len(folds))] |= _FOLDS_TO_MANY
    return _TABLES[0], _TABLES[1]


def _utf32(text: str) -> np.ndarray:
    try:
        raw = text.encode("utf-32-le")
    except UnicodeEncodeError:  # lone surrogates (JSON "\ud800" escapes): not letters, made spaces
        raw = text.encode("utf-32-le", "surrogatepass")
    return np.frombuffer(raw, dtype=np.uint32)


def _fold_unicode(text: str) -> bytes:
    """NFKC text case-folded, every character but letters and digits made a space, as UTF-8: what
    ``_NONWORD.sub(" ", text.casefold())`` gives, token for token, vectorised over code points."""
    fold_or_space, self_or_space = _fold_tables()
    out = np.take(fold_or_space, _utf32(text))  # take: much faster than indexing with uint32 indices
    if (out >= _FOLDS_TO_MANY).any():  # str.casefold does the whole text; then classify
        out = np.take(self_or_space, _utf32(text.casefold()))
    return out.tobytes().decode("utf-32-le").encode("utf-8")


# --------------------------------------------------------------------------------------------------
# Hashing


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place: a bijection of 64-bit words that spreads every input bit."""
    z ^= z >> _U64(30)
    z *= _MIX1
    z ^= z >> _U64(27)
    z *= _MIX2
    z ^= z >> _U64(31)
    return z


def token_hashes(normalized: bytes) -> np.ndarray:
    """A 64-bit hash per token of normalised bytes (tokens are separated by single or repeated spaces;
    normalised text holds no NUL byte, so zero padding cannot be mistaken for a token's bytes)."""
    n = len(normalized)
    padded = normalized + bytes(8)
    is_tok = np.zeros(n + 2, dtype=bool)
    np.not_equal(np.frombuffer(padded, dtype=np.uint8, count=n), 32, out=is_tok[1:-1])
    edges = np.flatnonzero(is_tok[1:] != is_tok[:-1])
    starts, lengths = edges[0::2], edges[1::2] - edges[0::2]
    # The 8 bytes from every offset as one little-endian word (an unaligned view, no copy).
    words = np.ndarray((n + 1,), dtype="<u8", buffer=padded, strides=(1,))
    h = _mix(words[starts] & _LOW_BYTES[np.minimum(lengths, 8)])
    todo = np.flatnonzero(lengths > 8)
    done = 8
    while len(todo) and done < _MAX_FOLDED_TOKEN:
        w = words[starts[todo] + done] & _LOW_BYTES[np.minimum(lengths[todo] - done, 8)]
        h[todo] = _mix(h[todo] ^ w)
        done += 8
        todo = todo[lengths[todo] > done]
    for t in todo.tolist():  # tokens over 64 bytes: few in any text
        s = int(starts[t])
        digest = hashlib.blake2b(normalized[s : s + int(lengths[t])], digest_size=8).digest()
        h[t] = int.from_bytes(digest, "little")
    return h


_SEP_HASH = token_hashes(_DOC_SEP)[0]
_POWERS: list[np.ndarray] = [np.ones(1, dtype=np.uint64), np.ones(1, dtype=np.uint64)]


def _powers(m: int) -> tuple[np.ndarray, np.ndarray]:
    """(R^i, R^-i) for i < m, mod 2^64 (grown by doubling and kept per process)."""
    if len(_POWERS[0]) < m:
        size = max(m, 2 * len(_POWERS[0]))
        for k, base in enumerate((_R, _R_INV)):
            p = np.full(size, base, dtype=np.uint64)
            p[0] = 1
            _POWERS[k] = np.cumprod(p, dtype=np.uint64)  # uint64 products wrap mod 2^64
    return _POWERS[0][:m], _POWERS[1][:m]


def prefix_sums(th: np.ndarray) -> np.ndarray:
    """G with G[i] = sum_{j<i} th[j] * R^j: the hash of tokens i..i+k-1 is (G[i+k] - G[i]) * R^-i."""
    g = np.zeros(len(th) + 1, dtype=np.uint64)
    np.cumsum(th * _powers(len(th))[0], out=g[1:])
    return g


def window_hashes(g: np.ndarray, k: int) -> np.ndarray:
    """Hash of every run of k tokens (``g`` from ``prefix_sums``); the same wherever the run sits."""
    m = len(g) - k
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    w = g[k:] - g[:m]
    w *= _powers(m)[1]
    return w


def _filter_bits(n_keys: int) -> int:
    """Bits of the filter: 128-256 slots per key (few false hits), 64 KB to 16 MB (mostly 1-4 MB)."""
    return int(min(24, max(16, int(n_keys).bit_length() + 8)))


def _dedupe(hashes: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted distinct hashes, canonical id of each, canonical id of every input): the canonical id
    of a hash is the first position holding it."""
    uniq, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    canon_of_sorted = positions[first].astype(np.int64)
    return uniq, canon_of_sorted, canon_of_sorted[inverse.reshape(-1)]


def _lookup_sorted(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices into ``values`` found among the sorted ``keys``, their index in ``keys``)."""
    idx = np.searchsorted(keys, values)
    idx[idx == len(keys)] = 0
    ok = np.flatnonzero(keys[idx] == values)
    return ok, idx[ok]


# --------------------------------------------------------------------------------------------------
# The benchmark side


class NgramIndex:
    """The benchmark's n-grams and whole short items.

    Every item contributes positions to one list: its n-grams in order, or for an item of fewer than
    n tokens one position standing for its whole text. Canonical ids are first positions of a hash in
    that list, the same in every process and on every machine."""

    def __init__(self, texts: Sequence[str], n: int = DEFAULT_N) -> None:
        if n < 1:
            raise EvalkitError(f"--n {n}: the n-gram length must be at least 1")
        self.texts = list(texts)
        self.n = n
        token_lists = [token_hashes(_normalize_doc(t)) for t in self.texts]
        self.n_tokens = np.array([len(th) for th in token_lists], dtype=np.int64)
        grams = []  # per item: its n-gram hashes, or its whole text's hash (G[k]), or nothing
        for th in token_lists:
            g = prefix_sums(th)
            grams.append(window_hashes(g, n) if len(th) >= n else g[len(th) :] if len(th) else g[:0])
        self.offsets = np.zeros(len(grams) + 1, dtype=np.int64)
        self.offsets[1:] = np.cumsum([len(h) for h in grams])
        all_h = np.concatenate(grams) if grams else np.empty(0, dtype=np.uint64)
        self.canon_of_pos = np.zeros(len(all_h), dtype=np.int64)
        is_whole = np.repeat((self.n_tokens > 0) & (self.n_tokens < n), np.diff(self.offsets))

        pos = np.flatnonzero(~is_whole)
        self.sorted_hashes, self.canon_of_sorted, self.canon_of_pos[pos] = _dedupe(all_h[pos], pos)
        self._bits = _filter_bits(len(self.sorted_hashes))
        self.filter = np.zeros(1 << self._bits, dtype=bool)
        self.filter[self.sorted_hashes >> _U64(64 - self._bits)] = True

        # Whole short items, looked up from candidate starts: tokens that begin some short item.
        pos = np.flatnonzero(is_whole)
        self.whole_hashes, self.whole_canon, self.canon_of_pos[pos] = _dedupe(all_h[pos], pos)
        item_of_pos = np.repeat(np.arange(len(grams)), np.diff(self.offsets))
        self.whole_lengths = sorted({int(k) for k in self.n_tokens[item_of_pos[pos]]})
        firsts = [token_lists[i][0] for i in item_of_pos[pos].tolist()]
        self.first_tokens = np.unique(np.array(firsts, dtype=np.uint64))
        self.first_filter = np.zeros(1 << 16, dtype=bool)
        self.first_filter[self.first_tokens >> _U64(48)] = True

    @property
    def n_positions(self) -> int:
        return int(self.offsets[-1])

    def item_canon(self, i: int) -> np.ndarray:
        """Distinct canonical ids of item ``i`` (its n-grams, or its whole text when short)."""
        return np.unique(self.canon_of_pos[self.offsets[i] : self.offsets[i + 1]])

    def method(self, i: int) -> str:
        """How item ``i`` is checked: ``ngram``, ``whole_text`` (fewer than n tokens) or ``none``."""
        k = int(self.n_tokens[i])
        return "ngram" if k >= self.n else "whole_text" if k else "none"

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(window positions whose n-gram hash is a benchmark n-gram, their canonical ids)."""
        if len(hashes) == 0 or len(self.sorted_hashes) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        cand = np.flatnonzero(self.filter[hashes >> _U64(64 - self._bits)])
        ok, idx = _lookup_sorted(self.sorted_hashes, hashes[cand])
        return cand[ok], self.canon_of_sorted[idx]

    def lookup_whole(self, th: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(token positions where a short item's whole token sequence starts, its canonical ids):
        only positions whose token begins some short item are hashed, once per short length."""
        if len(self.whole_hashes) == 0 or len(th) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        cand = np.flatnonzero(self.first_filter[th >> _U64(48)])
        ok, _ = _lookup_sorted(self.first_tokens, th[cand])
        cand = cand[ok]
        rinv = _powers(len(th))[1]
        hit_pos, hit_canon = [], []
        for k in self.whole_lengths:
            c = cand[cand + k <= len(th)]
            w = (g[c + k] - g[c]) * rinv[c]
            ok, idx = _lookup_sorted(self.whole_hashes, w)
            hit_pos.append(c[ok])
            hit_canon.append(self.whole_canon[idx])
        return np.concatenate(hit_pos), np.concatenate(hit_canon)


# --------------------------------------------------------------------------------------------------
# The corpus side: chunks read in the main process, hashed in workers


@dataclass
class ChunkResult:
    canon: np.ndarray  # distinct canonical ids seen in the chunk
    where: dict[int, str]  # canonical id -> "file:line" of one document holding it
    source: str = ""
    n_bytes: int = 0
    n_docs: int = 0
    n_windows: int = 0
    n_bad: int = 0  # JSONL lines that are not JSON objects with a string text field


def scan_chunk(index: NgramIndex, chunk: Chunk) -> ChunkResult:
    """The n-grams of one chunk that are benchmark n-grams, and the short items it holds whole."""
    texts, where, bad = chunk_texts(chunk)
    th = token_hashes(_join_docs(texts))
    g = prefix_sums(th)
    pos, canon = index.lookup(window_hashes(g, index.n))
    wpos, wcanon = index.lookup_whole(th, g)
    if len(wpos):
        pos, canon = np.concatenate((pos, wpos)), np.concatenate((canon, wcanon))
    n_bytes = len(chunk.payload) if isinstance(chunk.payload, bytes) else sum(len(t) for t in texts)
    seps = np.flatnonzero(th == _SEP_HASH)
    doc_lengths = np.diff(np.concatenate(([-1], seps, [len(th)]))) - 1
    n_windows = int(np.maximum(doc_lengths - index.n + 1, 0).sum())  # windows inside one document
    # Plain text is one document per file, however many chunks it is read in.
    n_docs = len(texts) if chunk.kind != "text" else int(chunk.first == 1)
    res = ChunkResult(np.unique(canon), {}, chunk.source, n_bytes, n_docs, n_windows, bad)
    if len(pos):
        order = np.argsort(pos, kind="stable")  # the first document holding each id is its example
        docs = np.searchsorted(seps, pos[order])
        for c, d in zip(canon[order].tolist(), docs.tolist(), strict=True):
            res.where.setdefault(c, where[min(d, len(where) - 1)])
    return res


_WORKER_INDEX: NgramIndex | None = None


def _init_worker(texts: list[str], n: int) -> None:
    global _WORKER_INDEX
    _WORKER_INDEX = NgramIndex(texts, n)


def _scan_in_worker(chunk: Chunk) -> ChunkResult:
    assert _WORKER_INDEX is not None
    return scan_chunk(_WORKER_INDEX, chunk)


@dataclass
class ScanResult:
    matched: np.ndarray  # bool per canonical id (indexed by position; only first occurrences are set)
    where: dict[int, str]  # canonical id -> where it was seen first, in the lowest-ranked file
    files: list[str]
    n_bytes: int = 0
    n_docs: int = 0
    n_windows: int = 0
    n_bad: int = 0
    seconds: float = 0.0
    workers: int = 1
    where_rank: dict[int, int] = field(default_factory=dict)  # canonical id -> rank of that file

    @property
    def mb_per_s(self) -> float:
        return self.n_bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


def _default_workers(paths: Sequence[Path]) -> int:
    total = sum(p.stat().st_size for p in paths)
    if total < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(8, os.cpu_count() or 1))


def scan_files(
    index: NgramIndex,
    files: Sequence[Path],
    text_field: str = "text",
    workers: int | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Callable[[int], None] | None = None,
    ranks: Sequence[int] | None = None,
) -> ScanResult:
    """Which benchmark n-grams occur in ``files``, read in order. ``progress`` gets the bytes done
    after each chunk; ``ranks`` are the files' places in the sorted paths of the whole corpus (by
    default of ``files``): an example is taken from the lowest-ranked file holding it."""
    nw = workers if workers is not None else _default_workers(files)
    result = ScanResult(np.zeros(index.n_positions, dtype=bool), {}, [str(f) for f in files], workers=nw)
    if ranks is None:
        by_path = {str(f): r for r, f in reversed(list(enumerate(sorted(files, key=str))))}
        ranks = [by_path[str(f)] for f in files]
    rank_of = dict(zip(map(str, files), ranks, strict=True))
    t0 = time.perf_counter()

    def merge(r: ChunkResult) -> None:
        result.matched[r.canon] = True
        rank = rank_of[r.source]
        for c, w in r.where.items():
            # The example is the first place in sorted-path order, whatever order files are read in,
            # so that merged shards name the same one.
            if c not in result.where_rank or rank < result.where_rank[c]:
                result.where[c] = w
                result.where_rank[c] = rank
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
        # spawn elsewhere.
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


def scan_corpus(
    index: NgramIndex,
    paths: Sequence[str | Path],
    text_field: str = "text",
    workers: int | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Callable[[int], None] | None = None,
) -> ScanResult:
    """Which benchmark n-grams occur in the corpus (files or folders, see ``expand_corpus``)."""
    return scan_files(index, expand_corpus(paths), text_field, workers, chunk_bytes, progress)


# --------------------------------------------------------------------------------------------------
# Per-item counts: what a scan (or a shard of one) knows about each item, and what merges exactly


@dataclass
class ItemCounts:
    """One item's matches: ``matched`` are positions in the item's own n-gram list (the first place
    of each distinct n-gram; ``[0]`` for a whole-text match); shards merge by their union."""

    key: str
    method: str  # "ngram", "whole_text" or "none"
    n_tokens: int
    n_ngrams: int  # distinct n-grams (1 for whole_text: the whole token sequence)
    matched: list[int]
    example: tuple[int, int, str] | None = None  # (position, corpus file rank, where it was seen)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["example"] = list(self.example) if self.example else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ItemCounts:
        return cls(d["key"], d["method"], d["n_tokens"], d["n_ngrams"], list(d["matched"]), _example(d))


def _example(d: dict[str, Any]) -> tuple[int, int, str] | None:
    ex = d.get("example")
    return (int(ex[0]), int(ex[1]), str(ex[2])) if ex else None


def item_counts(index: NgramIndex, keys: Sequence[str], scan: ScanResult) -> list[ItemCounts]:
    """Per-item matched positions and one example: where the item's first matched position was seen
    in the lowest-ranked file holding it (first there in reading order)."""
    out = []
    for i, key in enumerate(keys):
        canon = index.canon_of_pos[index.offsets[i] : index.offsets[i + 1]]
        distinct, first = np.unique(canon, return_index=True)
        hit = np.sort(first[scan.matched[distinct]])
        example = None
        if len(hit):
            c = int(canon[hit[0]])
            example = (int(hit[0]), scan.where_rank.get(c, 0), scan.where.get(c, ""))
        out.append(
            ItemCounts(key, index.method(i), int(index.n_tokens[i]), len(distinct), hit.tolist(), example)
        )
    return out


# --------------------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True)
class ItemOverlap:
    key: str  # task/id, the form `evalkit run --exclude` reads
    n_ngrams: int
    n_matched: int
    ratio: float | None  # None when the item has no token at all
    flagged: bool
    example: str | None  # where one matched n-gram (or the whole text) was seen
    method: str = "ngram"  # "ngram", "whole_text" (fewer than n tokens) or "none" (no tokens)
    n_tokens: int = 0

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

    def summary(self) -> dict[str, Any]:
        s = self.scan
        whole = [i for i in self.items if i.method == "whole_text"]
        return {
            "n": self.n,
            "threshold": self.threshold,
            "items": len(self.items),
            "items_with_any_overlap": sum(1 for i in self.items if i.n_matched),
            "flagged": len(self.flagged),
            "whole_text_items": len(whole),
            "whole_text_flagged": sum(1 for i in whole if i.flagged),
            "no_tokens": sum(1 for i in self.items if i.method == "none"),
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


def _check_threshold(threshold: float) -> None:
    if not 0.0 < threshold <= 1.0:
        raise EvalkitError(f"--threshold {threshold}: give a share of an item's n-grams in (0, 1], e.g. 0.5")


def report_from_counts(
    counts: Sequence[ItemCounts],
    n: int,
    threshold: float,
    scan: ScanResult,
    extra: dict[str, Any] | None = None,
) -> OverlapReport:
    """Ratios and flags from per-item counts (of one scan or of merged shards)."""
    _check_threshold(threshold)
    items = []
    for c in counts:
        if c.n_ngrams == 0:
            items.append(ItemOverlap(c.key, 0, 0, None, False, None, c.method, c.n_tokens))
            continue
        ratio = len(c.matched) / c.n_ngrams
        example = c.example[2] if c.example else None
        flagged = ratio >= threshold
        items.append(
            ItemOverlap(c.key, c.n_ngrams, len(c.matched), ratio, flagged, example, c.method, c.n_tokens)
        )
    return OverlapReport(n, threshold, items, scan, dict(extra or {}))


def overlap_report(
    index: NgramIndex, keys: Sequence[str], scan: ScanResult, threshold: float = DEFAULT_THRESHOLD
) -> OverlapReport:
    """Per-item overlap ratios and flags from a scan."""
    _check_threshold(threshold)
    return report_from_counts(item_counts(index, keys, scan), index.n, threshold, scan)


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
    _check_threshold(threshold)
    keys = [k for k, _ in items]
    index = NgramIndex([t for _, t in items], n)
    scan = scan_corpus(index, corpus, text_field, workers, chunk_bytes, progress)
    return overlap_report(index, keys, scan, threshold)


# --------------------------------------------------------------------------------------------------
# Shards: part of the corpus per worker machine, merged exactly


def items_digest(items: Sequence[tuple[str, str]]) -> str:
    """What every shard of one check must share besides n: the items (keys and texts)."""
    return hashlib.sha256(json.dumps([list(i) for i in items], ensure_ascii=False).encode()).hexdigest()


def scan_shard(
    items: Sequence[tuple[str, str]],
    corpus: Sequence[str | Path],
    shard: int,
    n_shards: int,
    n: int = DEFAULT_N,
    threshold: float = DEFAULT_THRESHOLD,
    text_field: str = "text",
    workers: int | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> dict[str, Any]:
    """Scan shard ``shard`` of ``n_shards`` (0-based): corpus files shard, shard + n_shards, ... of
    the sorted paths. Returns the shard's counts (JSON-ready; ``write_counts`` saves them) that
    ``merge_shards`` combines into exactly the single-process report.

    Every shard lists the whole corpus (to pick its files) and hashes the items itself; hashes are
    deterministic, and counts are positions in each item's n-gram list, so shards may run anywhere.

    As a Slurm array (one task per shard; the merge waits for all of them)::

        #SBATCH --array=0-15
        evalkit contamination ngram -t math500 --corpus /data/corpus \\
            --shard $SLURM_ARRAY_TASK_ID/16 --counts counts/$SLURM_ARRAY_TASK_ID.json
        # then: sbatch --dependency=afterok:$JOBID --wrap \\
        #   'evalkit contamination ngram-merge counts/*.json --out flagged.txt'

    As a Ray job (the corpus on storage every node reads; counts come back as return values)::

        items = task_items(["math500"])
        scan = ray.remote(scan_shard)
        parts = ray.get([scan.remote(items, ["/data/corpus"], i, 16) for i in range(16)])
        report = merge_shards(parts)
    """
    _check_threshold(threshold)
    everything = expand_corpus(corpus)
    ordered = sorted(everything, key=str)
    mine = shard_files(everything, shard, n_shards)
    index = NgramIndex([t for _, t in items], n)
    rank = {str(f): r for r, f in reversed(list(enumerate(ordered)))}
    scan = scan_files(index, mine, text_field, workers, chunk_bytes, ranks=[rank[str(f)] for f in mine])
    counts = item_counts(index, [k for k, _ in items], scan)
    return {
        "format": COUNTS_FORMAT,
        "n": n,
        "threshold": threshold,
        "items_digest": items_digest(items),
        "shard": [shard, n_shards],
        "corpus_files": [str(f) for f in ordered],
        "files": scan.files,
        "scan": {
            k: getattr(scan, k) for k in ("n_bytes", "n_docs", "n_windows", "n_bad", "seconds", "workers")
        },
        "items": [c.to_dict() for c in counts],
    }


def write_counts(path: str | Path, counts: dict[str, Any]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(counts, ensure_ascii=False), encoding="utf-8")
    tmp.replace(p)  # a half-written file never looks like a finished shard


def read_counts(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise EvalkitError(f"{path}: not a readable n-gram counts file ({e})") from None
    if not isinstance(data, dict) or data.get("format") != COUNTS_FORMAT:
        raise EvalkitError(f"{path}: not an n-gram counts file (written by `contamination ngram --counts`)")
    return data


def _check_shards(parts: Sequence[dict[str, Any]]) -> None:
    first = parts[0]
    for p in parts[1:]:
        for k, what in (("n", "n"), ("items_digest", "items"), ("corpus_files", "corpus file list")):
            if p[k] != first[k]:
                raise EvalkitError(
                    f"shards {first['shard']} and {p['shard']} differ in their {what}: not one check"
                )
    n_shards = first["shard"][1]
    seen = sorted(p["shard"][0] for p in parts)
    if any(p["shard"][1] != n_shards for p in parts):
        raise EvalkitError("the counts files come from splits into different numbers of shards")
    if seen != list(range(n_shards)):
        missing = sorted(set(range(n_shards)) - set(seen))
        repeated = sorted({s for s in seen if seen.count(s) > 1})
        raise EvalkitError(
            f"need each of the {n_shards} shards exactly once (missing: {missing or 'none'}; "
            f"repeated: {repeated or 'none'})"
        )


def merge_shards(parts: Iterable[dict[str, Any]], threshold: float | None = None) -> OverlapReport:
    """One report from every shard's counts: per item the union of matched positions (the ratio is
    the share of distinct n-grams seen in any shard) and the example of the earliest (position, file).
    ``threshold`` defaults to the one the shards were run with."""
    parts = list(parts)
    if not parts:
        raise EvalkitError("ngram-merge: no counts files given")
    _check_shards(parts)
    first = parts[0]
    merged = [ItemCounts.from_dict(d) for d in first["items"]]
    for p in parts[1:]:
        for m, d in zip(merged, p["items"], strict=True):
            if d["matched"]:
                m.matched = sorted(set(m.matched) | set(d["matched"]))
            ex = _example(d)
            if ex is not None and (m.example is None or ex[:2] < m.example[:2]):
                m.example = ex  # the earliest (position in the item, file rank) across shards
    stats = [p["scan"] for p in parts]
    scan = ScanResult(
        np.zeros(0, dtype=bool),  # per-item counts replace the n-gram table in a merge
        {},
        [f for p in sorted(parts, key=lambda p: p["shard"][0]) for f in p["files"]],
        *(sum(s[k] for s in stats) for k in ("n_bytes", "n_docs", "n_windows", "n_bad")),
        seconds=max(s["seconds"] for s in stats),  # the slowest shard: the wall time when run at once
        workers=sum(s["workers"] for s in stats),
    )
    thr = first["threshold"] if threshold is None else threshold
    return report_from_counts(merged, first["n"], thr, scan, {"shards": len(parts)})


# --------------------------------------------------------------------------------------------------
# Items and outputs


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
        f"{report.n}-grams in the corpus (or, under {report.n} tokens, their whole text)\n"
    )
    p.write_text(header + "".join(f"{i.key}\n" for i in flagged), encoding="utf-8")
    return len(flagged)


def write_report_lines(path: str | Path, report: OverlapReport) -> None:
    """Every item's overlap as JSON lines, after one summary line."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as f:
        f.write(json.dumps({"summary": report.summary()}) + "\n")
        for i in report.items:
            f.write(json.dumps(i.to_dict()) + "\n")

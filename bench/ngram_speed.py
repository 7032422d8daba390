"""Speed and memory of `evalkit contamination ngram` on a generated ~1 GB corpus, candidates side by side.

Writes a synthetic JSONL corpus (Zipf-distributed pseudo-words, documents of 100-1,500 words; one
file gzipped) into a temporary folder, plants benchmark passages in it (whole items, first halves,
and copies with every third word dropped, plus a few short items whole), and checks it against a
real task's items (MATH-500 from the shared data folder when present, else freshly generated
problems). The corpus is deleted afterwards unless --keep.

1. One process, the candidates in turn (round robin, --repeats times, so load on a shared machine
   hits each alike); the table gives the median MB/s of wall time and of CPU time and the ratio to
   the implementation before vectorising:

   - ``v0``: that implementation's hashing (Python's salted hash per token over ``bytes.split()``,
     then n in-place multiply-add passes per n-gram, a 2^24 filter), copied here as it was;
   - ``numpy``: evalkit's path (token bytes packed into 64-bit words and mixed, windows read off
     one prefix sum, all vectorised);
   - ``numba``: the same with token hashing in a numba kernel (only when numba is installed:
     ``pip install numba``), to see whether a compiled path would pay for its dependency.

   Reading, JSON parsing and normalising are shared, so the ratios are end to end. The bench fails
   (exit 1) unless every candidate flags the same items with the same matched counts as v0 (v0
   cannot check items under n tokens; the others' whole-text results must agree with each other).
2. (Run first.) All cores through ``check_overlap`` (worker processes), with peak memory: RSS of this process
   and of its largest worker (getrusage), and the peak of their sum sampled after every chunk from
   /proc; the check fails (exit 1) when that sum reaches 1 GB.

    python bench/ngram_speed.py                          # 1 GB, 3 repeats, then all cores
    python bench/ngram_speed.py --size-gb 0.2 --repeats 5
    python bench/ngram_speed.py --size-gb 0.2 --non-ascii   # every document has non-ASCII text
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evalkit.contamination import ngram  # noqa: E402
from evalkit.contamination.corpus import chunk_texts, iter_chunks  # noqa: E402
from evalkit.contamination.ngram import check_overlap, task_items  # noqa: E402

LIMIT_BYTES = 1 << 30


def rss_kb(pid: int | str = "self") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children() -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def cpu_seconds() -> float:
    """User + system time of this process and of its reaped children."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


class RssSampler:
    """Peak of (this process + its worker processes) RSS, sampled in the progress callback."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self.t0 = time.perf_counter()

    def __call__(self, n_bytes: int) -> None:
        total = rss_kb() + sum(rss_kb(p) for p in children())
        self.peak_kb = max(self.peak_kb, total)


def benchmark_items(data_dir: str | None) -> tuple[str, list[tuple[str, str]]]:
    for cand in [data_dir, os.environ.get("EVALKIT_DATA_DIR"), str(REPO.parent / "shared" / "data")]:
        if cand and (Path(cand) / "hf" / "HuggingFaceH4" / "MATH-500").is_dir():
            return f"math500 (from {cand})", task_items(["math500"], cand)
    from evalkit.tasks.generated import BUILTIN_TEMPLATES_DIR, generate_items

    rows = generate_items(BUILTIN_TEMPLATES_DIR / "fresh_arithmetic.templates.yaml", 500, seed=0)
    return "500 generated fresh_arithmetic items (MATH-500 not found)", [
        (f"fresh/{r['id']}", r["question"]) for r in rows
    ]


def make_vocab(rng: np.random.Generator, size: int = 30_000) -> np.ndarray:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(2, 11, size)
    words = ["".join(rng.choice(letters, n)) for n in lengths]
    words[:6] = [",", ".", "the", "of", "and", "a"]
    return np.array(words, dtype=object)


def write_corpus(
    folder: Path, size_bytes: int, items: list[tuple[str, str]], seed: int = 0, non_ascii: bool = False
) -> tuple[list[Path], dict[str, str]]:
    """Files totalling about size_bytes of JSONL; returns them and the planted item keys -> kind.
    ``non_ascii``: one pair of curly quotes per document, as much web text has."""
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    vocab = make_vocab(rng)
    zipf_p = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    zipf_p /= zipf_p.sum()
    long_items = [(k, t) for k, t in items if len(t.split()) >= 40]
    short_items = [(k, t) for k, t in items if 0 < len(ngram.normalize_tokens(t)) < 13]
    planted_items = prng.sample(long_items, min(30, len(long_items)))
    planted_items += prng.sample(short_items, min(5, len(short_items)))
    kinds = ["whole"] * 10 + ["first_half"] * 10 + ["every_third_dropped"] * 10 + ["short_whole"] * 5
    planted = {k: kind for (k, _), kind in zip(planted_items, kinds, strict=False)}
    plant_texts = []
    for (_, text), kind in zip(planted_items, kinds, strict=False):
        w = text.split()
        if kind == "first_half":
            w = w[: len(w) // 2]
        elif kind == "every_third_dropped":
            w = [x for i, x in enumerate(w) if i % 3 != 2]
        plant_texts.append(" ".join(w))
    n_files = 4
    per_file = size_bytes // n_files
    files = []
    doc_id = 0
    n_docs_est = size_bytes // 4500
    plant_at = {
        int(x): t
        for x, t in zip(rng.integers(0, max(1, n_docs_est), len(plant_texts)), plant_texts, strict=False)
    }
    for fi in range(n_files):
        path = folder / (f"part{fi}.jsonl.gz" if fi == n_files - 1 else f"part{fi}.jsonl")
        opener = (
            (lambda p: gzip.open(p, "wt", compresslevel=1, encoding="utf-8"))
            if path.suffix == ".gz"
            else (lambda p: p.open("w", encoding="utf-8"))
        )
        written = 0
        with opener(path) as f:
            while written < per_file:
                lens = rng.integers(100, 1500, 256)
                idx = rng.choice(len(vocab), int(lens.sum()), p=zipf_p)
                words = vocab[idx].tolist()
                pos = 0
                lines = []
                for n in lens.tolist():
                    text = " ".join(words[pos : pos + n])
                    pos += n
                    if doc_id in plant_at:
                        text += " " + json.dumps(plant_at.pop(doc_id))[1:-1] + " " + text[:200]
                    if non_ascii:
                        text = text.replace(" the ", " \u201cthe\u201d ", 1)
                    lines.append(f'{{"id": {doc_id}, "text": "{text}"}}\n')
                    doc_id += 1
                block = "".join(lines)
                f.write(block)
                written += len(block)
        files.append(path)
    if plant_at:  # fewer documents than estimated: put the rest in the last plain file
        with files[0].open("a", encoding="utf-8") as f:
            for t in plant_at.values():
                f.write(json.dumps({"id": doc_id, "text": t}) + "\n")
                doc_id += 1
    return files, planted


# --------------------------------------------------------------------------------------------------
# Candidates: each scans the files in one process and returns (matched n-grams per item, bytes)


class V0Index:
    """The benchmark side as it was before vectorising (Python's salted hash, n passes per n-gram)."""

    P = np.uint64(0x9E3779B97F4A7C15)
    BITS = 24

    @staticmethod
    def token_hashes(normalized: bytes) -> np.ndarray:
        tokens = normalized.split()
        return np.fromiter(map(hash, tokens), dtype=np.int64, count=len(tokens)).view(np.uint64)

    @classmethod
    def ngram_hashes(cls, th: np.ndarray, n: int) -> np.ndarray:
        m = len(th) - n + 1
        if m <= 0:
            return np.empty(0, dtype=np.uint64)
        h = th[:m].copy()
        for j in range(1, n):
            np.multiply(h, cls.P, out=h)
            np.add(h, th[j : j + m], out=h)
        return h

    def __init__(self, texts: Sequence[str], n: int) -> None:
        self.n = n
        per_item = [self.ngram_hashes(self.token_hashes(ngram._normalize_doc(t)), n) for t in texts]
        self.offsets = np.concatenate(([0], np.cumsum([len(h) for h in per_item])))
        all_h = np.concatenate(per_item)
        self.uniq, first, inverse = np.unique(all_h, return_index=True, return_inverse=True)
        self.canon_of_sorted = first
        self.canon_of_pos = first[inverse.reshape(-1)]
        self.filter = np.zeros(1 << self.BITS, dtype=bool)
        self.filter[(self.uniq >> np.uint64(64 - self.BITS)).astype(np.int64)] = True

    def scan(self, normalized: bytes) -> np.ndarray:
        hashes = self.ngram_hashes(self.token_hashes(normalized), self.n)
        cand = np.flatnonzero(self.filter[(hashes >> np.uint64(64 - self.BITS)).astype(np.int64)])
        hc = hashes[cand]
        idx = np.searchsorted(self.uniq, hc)
        idx[idx == len(self.uniq)] = 0
        return self.canon_of_sorted[idx[self.uniq[idx] == hc]]


def v0_old_join(texts: Sequence[str]) -> bytes:
    if not texts:
        return b""
    joined = "\x1e".join(texts)
    if joined.isascii() and joined.count("\x1e") == len(texts) - 1:
        return joined.replace("\x1e", " \x1e ").encode("ascii").translate(ngram._ASCII_JOINED)
    return (b" " + ngram._DOC_SEP + b" ").join(ngram._normalize_doc(t) for t in texts)


def scan_v0(items: list[tuple[str, str]], files: list[Path], n: int) -> tuple[dict[str, int | None], int]:
    index = V0Index([t for _, t in items], n)
    matched = np.zeros(int(index.offsets[-1]), dtype=bool)
    n_bytes = 0
    for chunk in iter_chunks(files):
        texts, _, _ = chunk_texts(chunk)
        matched[index.scan(v0_old_join(texts))] = True
        n_bytes += len(chunk.payload)
    out: dict[str, int | None] = {}
    for i, (key, _) in enumerate(items):
        canon = np.unique(index.canon_of_pos[index.offsets[i] : index.offsets[i + 1]])
        out[key] = int(matched[canon].sum()) if len(canon) else None  # None: under n tokens, unchecked
    return out, n_bytes


def scan_evalkit(
    items: list[tuple[str, str]], files: list[Path], n: int
) -> tuple[dict[str, int | None], int]:
    rep = check_overlap(items, files, n=n, workers=1)
    return {i.key: i.n_matched for i in rep.items}, rep.scan.n_bytes


def numba_token_hashes() -> Callable[[bytes], np.ndarray] | None:
    """evalkit's token hash (ngram.token_hashes) as a numba kernel: one pass over the bytes."""
    try:
        import numba
    except ImportError:
        return None
    kernel = _numba_kernel(numba)

    def token_hashes(normalized: bytes) -> np.ndarray:
        h, any_too_long = kernel(np.frombuffer(normalized, dtype=np.uint8))
        # A token over 64 bytes is hashed with blake2b by evalkit: leave such a chunk to it.
        return ngram.token_hashes(normalized) if any_too_long else h

    token_hashes(b"warm up the compiler")
    return token_hashes


def _numba_kernel(numba: Any) -> Callable[[np.ndarray], tuple[np.ndarray, bool]]:  # noqa: C901 - as plain as C
    m1, m2 = ngram._MIX1, ngram._MIX2

    @numba.njit(nogil=True)
    def mix(z: np.uint64) -> np.uint64:
        z ^= z >> np.uint64(30)
        z *= m1
        z ^= z >> np.uint64(27)
        z *= m2
        return z ^ (z >> np.uint64(31))

    @numba.njit(nogil=True)
    def kernel(buf: np.ndarray) -> tuple[np.ndarray, bool]:
        n = len(buf)
        out = np.empty(n // 2 + 1, dtype=np.uint64)
        t, i, too_long = 0, 0, False
        while i < n:
            while i < n and buf[i] == 32:
                i += 1
            if i >= n:
                break
            start, h, w, k, words = i, np.uint64(0), np.uint64(0), 0, 0
            while i < n and buf[i] != 32:
                w |= np.uint64(buf[i]) << np.uint64(8 * k)
                k += 1
                i += 1
                if k == 8:
                    h = mix(w) if words == 0 else mix(h ^ w)
                    words += 1
                    w, k = np.uint64(0), 0
            if k:
                h = mix(w) if words == 0 else mix(h ^ w)
            too_long |= i - start > 64
            out[t] = h
            t += 1
        return out[:t], too_long

    return kernel


def scan_with(
    token_hashes: Callable[[bytes], np.ndarray],
) -> Callable[..., tuple[dict[str, int | None], int]]:
    def scan(items: list[tuple[str, str]], files: list[Path], n: int) -> tuple[dict[str, int | None], int]:
        saved = ngram.token_hashes
        ngram.token_hashes = token_hashes  # scan_chunk looks it up at call time
        try:
            return scan_evalkit(items, files, n)
        finally:
            ngram.token_hashes = saved

    return scan


def compare_candidates(
    items: list[tuple[str, str]], files: list[Path], n: int, repeats: int
) -> tuple[bool, dict[str, float]]:
    """Median MB/s per candidate, side by side; True when they agree with v0 (and each other)."""
    candidates: dict[str, Callable[..., tuple[dict[str, int | None], int]]] = {
        "v0": scan_v0,
        "numpy": scan_evalkit,
    }
    nb = numba_token_hashes()
    if nb is not None:
        candidates["numba"] = scan_with(nb)
    wall: dict[str, list[float]] = {k: [] for k in candidates}
    cpu: dict[str, list[float]] = {k: [] for k in candidates}
    results: dict[str, dict[str, int | None]] = {}
    n_bytes = 0
    for _ in range(repeats):
        for name, scan in candidates.items():
            t0, c0 = time.perf_counter(), time.process_time()
            results[name], n_bytes = scan(items, files, n)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    mb = n_bytes / 1e6
    med = {k: mb / statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: mb / statistics.median(v) for k, v in cpu.items()}
    print(f"\none process, {mb:.0f} MB, median of {repeats} runs each (round robin):")
    print(
        f"  {'candidate':10s} {'MB/s wall':>10s} {'MB/CPU-s':>10s} {'x v0 wall':>10s} {'x v0 CPU':>10s}"
        "  runs (s)"
    )
    for k in candidates:
        runs = ", ".join(f"{t:.1f}" for t in wall[k])
        print(
            f"  {k:10s} {med[k]:10.1f} {med_cpu[k]:10.1f} {med[k] / med['v0']:10.2f} "
            f"{med_cpu[k] / med_cpu['v0']:10.2f}  {runs}"
        )
    if nb is None:
        print("  numba      (not installed: pip install numba to measure it)")
    ok = True
    checked = {k: v for k, v in results["v0"].items() if v is not None}
    for k in candidates:
        same_counts = {key: results[k][key] for key in checked} == checked
        same_all = k == "v0" or results[k] == results["numpy"]  # v0 leaves short items unchecked
        print(
            f"  {k}: same matched counts as v0 on its {len(checked)} checkable items: {same_counts}; "
            f"same as numpy on all {len(results[k])}: {same_all}"
        )
        ok &= same_counts and same_all
    return ok, med


def items_sha(items: list[tuple[str, str]]) -> str:
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:12]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=1.0)
    ap.add_argument("--n", type=int, default=13)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each candidate in one process")
    ap.add_argument(
        "--workers", type=int, default=None, help="for the all-cores run (default: the CPU count)"
    )
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--dir", default=None, help="where to write the corpus (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the corpus")
    ap.add_argument("--non-ascii", action="store_true", help="curly quotes in every document")
    args = ap.parse_args()

    label, items = benchmark_items(args.data_dir)
    folder = Path(tempfile.mkdtemp(prefix="evalkit-ngram-bench-", dir=args.dir))
    try:
        t0 = time.perf_counter()
        files, planted = write_corpus(folder, int(args.size_gb * 1e9), items, non_ascii=args.non_ascii)
        on_disk = sum(f.stat().st_size for f in files)
        print(
            f"corpus: {len(files)} files in {folder}, {on_disk / 1e6:.0f} MB on disk, "
            f"written in {time.perf_counter() - t0:.0f} s"
        )
        print(f"benchmark: {label} ({items_sha(items)}), {len(items)} items; planted {len(planted)} passages")
        # All cores first: workers fork from this process, which is smallest before the candidates run.
        mem_ok = all_cores(items, files, planted, args)
        same, _ = compare_candidates(items, files, args.n, args.repeats)
        print("candidates agree: " + ("yes" if same else "NO"))
        return 0 if same and mem_ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def all_cores(
    items: list[tuple[str, str]], files: list[Path], planted: dict[str, str], args: argparse.Namespace
) -> bool:
    """The all-cores run with memory sampled; prints what was found; True when under 1 GB."""
    sampler = RssSampler()
    workers = args.workers or os.cpu_count() or 1
    cpu0 = cpu_seconds()
    load0 = os.getloadavg()[0]
    rep = check_overlap(items, files, n=args.n, threshold=args.threshold, workers=workers, progress=sampler)
    cpu = cpu_seconds() - cpu0  # workers are reaped when the pool closes, so their time is in
    load1 = os.getloadavg()[0]
    s = rep.summary()
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    total_peak = sampler.peak_kb * 1024
    by_key = {i.key: i for i in rep.items}
    print(
        f"all cores: scanned {s['corpus_mb']:.0f} MB of JSONL ({s['corpus_documents']} documents, "
        f"{s['corpus_ngrams']:,} {args.n}-grams) in {s['seconds']:.1f} s with {s['workers']} workers: "
        f"{s['mb_per_s']:.1f} MB/s"
    )
    print(
        f"CPU time (main + workers): {cpu:.1f} s = {s['corpus_mb'] / cpu:.1f} MB per CPU-second; load "
        f"average {load0:.1f} before, {load1:.1f} after on {os.cpu_count()} cores (other work slows the "
        "wall clock)"
    )
    print(
        f"peak RSS: main process {self_peak / 2**20:.0f} MiB, largest worker {child_peak / 2**20:.0f} MiB, "
        f"all processes together (sampled) {total_peak / 2**20:.0f} MiB"
    )
    for kind in ("whole", "first_half", "every_third_dropped", "short_whole"):
        keys = [k for k, v in planted.items() if v == kind]
        if keys:
            ratios = [by_key[k].ratio or 0.0 for k in keys]
            flagged = sum(by_key[k].flagged for k in keys)
            print(
                f"planted {kind:20s}: {len(keys)} items, overlap {min(ratios):.2f}-{max(ratios):.2f}, "
                f"flagged {flagged}"
            )
    others = [i for i in rep.items if i.key not in planted and i.flagged]
    print(
        f"flagged without being planted: {len(others)} ({', '.join(i.key for i in others[:5])}); items "
        f"with any overlap: {s['items_with_any_overlap']}; under {args.n} tokens, checked by whole text: "
        f"{s['whole_text_items']} ({s['whole_text_flagged']} found)"
    )
    ok = max(total_peak, self_peak + child_peak) < LIMIT_BYTES
    print("memory under 1 GB: " + ("yes" if ok else "NO"))
    return ok


if __name__ == "__main__":
    sys.exit(main())

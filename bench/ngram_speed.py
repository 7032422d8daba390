"""Speed and memory of `evalkit contamination ngram` on a generated ~1 GB corpus.

Writes a synthetic JSONL corpus (Zipf-distributed pseudo-words, documents of 100-1,500 words; one
file gzipped) into a temporary folder, plants benchmark passages in it (whole items, first halves,
and copies with every third word dropped), runs the overlap check against a real task's items
(MATH-500 from the shared data folder when present, else freshly generated problems) and prints
MB/s and peak memory. The corpus is deleted afterwards unless --keep.

    python bench/ngram_speed.py                 # 1 GB, all cores
    python bench/ngram_speed.py --size-gb 0.2 --workers 1

Memory: peak RSS of this process and of its largest worker (getrusage), and the peak of their sum
sampled after every chunk from /proc; the check fails (exit 1) when that sum reaches 1 GB.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

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
    folder: Path, size_bytes: int, items: list[tuple[str, str]], seed: int = 0
) -> tuple[list[Path], dict[str, str]]:
    """Files totalling about size_bytes of JSONL; returns them and the planted item keys -> kind."""
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    vocab = make_vocab(rng)
    zipf_p = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    zipf_p /= zipf_p.sum()
    long_items = [(k, t) for k, t in items if len(t.split()) >= 40]
    planted_items = prng.sample(long_items, min(30, len(long_items)))
    kinds = ["whole"] * 10 + ["first_half"] * 10 + ["every_third_dropped"] * 10
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=1.0)
    ap.add_argument("--n", type=int, default=13)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--workers", type=int, default=None, help="default: the CPU count")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--dir", default=None, help="where to write the corpus (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the corpus")
    args = ap.parse_args()

    label, items = benchmark_items(args.data_dir)
    folder = Path(tempfile.mkdtemp(prefix="evalkit-ngram-bench-", dir=args.dir))
    try:
        t0 = time.perf_counter()
        files, planted = write_corpus(folder, int(args.size_gb * 1e9), items)
        on_disk = sum(f.stat().st_size for f in files)
        print(
            f"corpus: {len(files)} files in {folder}, {on_disk / 1e6:.0f} MB on disk, written in {time.perf_counter() - t0:.0f} s"
        )
        print(f"benchmark: {label}, {len(items)} items; planted {len(planted)} passages")
        sampler = RssSampler()
        workers = args.workers or os.cpu_count() or 1
        cpu0 = cpu_seconds()
        load0 = os.getloadavg()[0]
        rep = check_overlap(
            items, files, n=args.n, threshold=args.threshold, workers=workers, progress=sampler
        )
        cpu = cpu_seconds() - cpu0  # workers are reaped when the pool closes, so their time is in
        load1 = os.getloadavg()[0]
        s = rep.summary()
        self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        total_peak = sampler.peak_kb * 1024
        by_key = {i.key: i for i in rep.items}
        print(
            f"scanned {s['corpus_mb']:.0f} MB of JSONL ({s['corpus_documents']} documents, {s['corpus_ngrams']:,} "
            f"{args.n}-grams) in {s['seconds']:.1f} s with {s['workers']} workers: {s['mb_per_s']:.1f} MB/s"
        )
        print(
            f"CPU time (main + workers): {cpu:.1f} s = {s['corpus_mb'] / cpu:.1f} MB per CPU-second; "
            f"load average {load0:.1f} before, {load1:.1f} after on {os.cpu_count()} cores (other work slows the wall clock)"
        )
        print(
            f"peak RSS: main process {self_peak / 2**20:.0f} MiB, largest worker {child_peak / 2**20:.0f} MiB, "
            f"all processes together (sampled) {total_peak / 2**20:.0f} MiB"
        )
        for kind in ("whole", "first_half", "every_third_dropped"):
            keys = [k for k, v in planted.items() if v == kind]
            ratios = [by_key[k].ratio or 0.0 for k in keys]
            flagged = sum(by_key[k].flagged for k in keys)
            print(
                f"planted {kind:20s}: {len(keys)} items, overlap {min(ratios):.2f}-{max(ratios):.2f}, flagged {flagged}"
            )
        others = [i for i in rep.items if i.key not in planted and i.flagged]
        print(
            f"flagged without being planted: {len(others)}; items with any overlap: {s['items_with_any_overlap']}"
        )
        ok = max(total_peak, self_peak + child_peak) < LIMIT_BYTES
        print("memory under 1 GB: " + ("yes" if ok else "NO"))
        return 0 if ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

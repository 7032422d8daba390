"""Grading speed and accuracy on MATH-500's reference solutions, evalkit against plain math-verify.

Each MATH-500 item's reference ``solution`` ends in a ``\\boxed{}`` answer; graded against the
item's ``answer`` field, every check must come out correct. Three measurements in one run:

  evalkit          the runner's path: ``score_completion(..., "boxed", "math")`` (extraction, fast
                   exact paths, sandboxed symbolic check), called from --threads threads;
  evalkit sandbox  the same pairs forced through the sandboxed math-verify worker processes (no
                   fast path), to show the cost of the process isolation itself;
  math-verify      plain ``math_verify.parse`` + ``verify`` on the same pairs, in-process,
                   single-threaded (its SIGALRM timeouts only work in the main thread).

Usage: python bench/grade_speed.py [--data-dir DIR] [--threads N] [--rounds R] [--json]
(``--data-dir`` defaults to $EVALKIT_DATA_DIR, else ../shared/data next to the repository.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evalkit.scoring import score_completion  # noqa: E402
from evalkit.scoring.extractors.math import extract_boxed  # noqa: E402
from evalkit.scoring.latex import normalize_answer  # noqa: E402
from evalkit.scoring.mathequiv import clear_cache  # noqa: E402
from evalkit.scoring.sandbox import default_sandbox  # noqa: E402
from evalkit.types import Completion, Sample, ScoringContext  # noqa: E402

DATA_FILE = Path("hf") / "HuggingFaceH4" / "MATH-500" / "test.jsonl"


def percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def report(name: str, lat: list[float], wall: float, correct: int, n: int) -> dict[str, float]:
    """Print one line of results and return them."""
    rate = n / wall
    print(
        f"{name:<16} {rate:>9.0f} checks/s   p50 {1000 * statistics.median(lat):>7.3f} ms   "
        f"p99 {1000 * percentile(lat, 0.99):>8.3f} ms   accuracy {correct}/{n} = {correct / n:.2%}"
    )
    return {
        "rate": rate,
        "p50": statistics.median(lat),
        "p99": percentile(lat, 0.99),
        "accuracy": correct / n,
    }


Timing = tuple[list[float], float, int]  # per-check latencies, wall seconds, correct checks
Miss = tuple[str, str, str, str | None, str]  # method, item id, gold, answer, reason


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_dir = os.environ.get("EVALKIT_DATA_DIR") or str(REPO.parent / "shared" / "data")
    ap.add_argument(
        "--data-dir", default=default_dir, help="data folder holding hf/HuggingFaceH4/MATH-500/test.jsonl"
    )
    ap.add_argument("--threads", type=int, default=default_sandbox().size, help="grading threads for evalkit")
    ap.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds per method; the best is reported"
    )
    ap.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    return ap.parse_args()


def fresh_sandbox() -> float:
    """A new pool (empty caches, as at the start of a run); returns its start-up time."""
    default_sandbox().close()
    clear_cache()
    t = time.perf_counter()
    default_sandbox().check("1", "2")
    return time.perf_counter() - t


def _threaded(n: int, threads: int, one: Callable[[int], tuple[float, bool]]) -> Timing:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        out = list(pool.map(one, range(n)))
    return [x[0] for x in out], time.perf_counter() - t0, sum(x[1] for x in out)


class Methods:
    """The three ways of grading the same MATH-500 pairs; each records what it did not grade correct."""

    def __init__(self, rows: list[dict], threads: int) -> None:
        self.rows = rows
        self.threads = threads
        self.misses: list[Miss] = []
        self.ctx = ScoringContext()
        self.samples = [
            Sample(id=r["unique_id"], task="math500", question="", answer=r["answer"]) for r in rows
        ]
        self.comps = [Completion(text=r["solution"], finish_reason="stop") for r in rows]
        self.pairs = []
        for smp, c in zip(self.samples, self.comps, strict=True):
            ex = extract_boxed(c, smp, self.ctx)
            self.pairs.append((normalize_answer(smp.answer), normalize_answer(ex.answer or "")))

    def _miss(self, method: str, i: int, answer: str | None, reason: str) -> None:
        self.misses.append((method, self.rows[i]["unique_id"], self.rows[i]["answer"], answer, reason))

    def evalkit(self) -> Timing:
        def one(i: int) -> tuple[float, bool]:
            t = time.perf_counter()
            ex, g = score_completion(self.comps[i], self.samples[i], "boxed", "math", self.ctx)
            if not g.correct:
                self._miss("evalkit", i, ex.answer, g.reason)
            return time.perf_counter() - t, g.correct

        return _threaded(len(self.rows), self.threads, one)

    def sandbox(self) -> Timing:
        sandbox = default_sandbox()

        def one(i: int) -> tuple[float, bool]:
            t = time.perf_counter()
            ok, reason = sandbox.check(self.pairs[i][0], self.pairs[i][1])
            if not ok:
                self._miss("sandbox", i, self.pairs[i][1], reason)
            return time.perf_counter() - t, ok

        return _threaded(len(self.rows), self.threads, one)

    def math_verify(self) -> Timing:
        from math_verify import parse, verify

        lat, correct = [], 0
        t0 = time.perf_counter()
        for i, r in enumerate(self.rows):
            t = time.perf_counter()
            ok = verify(parse("\\boxed{" + r["answer"] + "}"), parse(r["solution"]))
            lat.append(time.perf_counter() - t)
            correct += ok
            if not ok:
                self._miss("math-verify", i, None, "not verified")
        return lat, time.perf_counter() - t0, correct


def run_rounds(methods: Methods, rounds: int) -> tuple[dict[str, Timing], dict[str, Timing]]:
    """(first round, best round) per method.

    Interleaved rounds: the machine may be shared, and a background burst should not decide the
    ratio. Each evalkit round starts a fresh pool (empty caches, as a new evaluation would);
    math-verify stays in this process, so its later rounds run with ANTLR tables warmed by the
    earlier ones. Round 1 is cold for all three (this process never parsed LaTeX before).
    """
    first: dict[str, Timing] = {}
    best: dict[str, Timing] = {}
    for _ in range(rounds):
        for name, fn in (
            ("evalkit", methods.evalkit),
            ("evalkit sandbox", methods.sandbox),
            ("math-verify", methods.math_verify),
        ):
            if name != "math-verify":
                fresh_sandbox()
            res = fn()
            first.setdefault(name, res)
            if name not in best or res[1] < best[name][1]:
                best[name] = res
    return first, best


def main() -> int:
    args = parse_args()
    path = Path(args.data_dir) / DATA_FILE
    if not path.is_file():
        print(
            f"error: {path} not found. Point --data-dir (or EVALKIT_DATA_DIR) at the data folder that "
            f"holds {DATA_FILE} (the shared one sits beside the repo as ../shared/data).",
            file=sys.stderr,
        )
        return 2
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    n = len(rows)
    methods = Methods(rows, args.threads)
    startup = fresh_sandbox()
    print(
        f"sandbox start-up: {startup:.2f} s ({default_sandbox().size} worker processes; once per evaluation)"
    )
    print(
        f"{n} MATH-500 reference solutions, {args.rounds} interleaved round(s) per method, "
        f"{args.threads} grading thread(s), {os.cpu_count()} CPU(s)\n"
    )
    first, best = run_rounds(methods, args.rounds)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for label, table in (("round 1 (cold)", first), (f"best of {args.rounds} rounds", best)):
        print(f"-- {label}")
        results[label] = {name: report(name, *table[name], n) for name in table}
        ek, sb, mv = (results[label][k] for k in ("evalkit", "evalkit sandbox", "math-verify"))
        print(
            f"   ratio evalkit / math-verify {ek['rate'] / mv['rate']:.1f}x, "
            f"evalkit sandbox / math-verify {sb['rate'] / mv['rate']:.2f}x\n"
        )
    st = default_sandbox().stats
    print(
        f"last pool: {st.checks} checks, {st.timeouts} timeouts, {st.crashes} crashes, "
        f"{st.started} workers started"
    )
    if methods.misses:
        print("\nnot graded correct:")
        for m in sorted(set(methods.misses), key=str):
            print("  ", m)
    else:
        print("\nevery reference answer graded correct by all three, in every round")
    if args.json:
        print(json.dumps({"startup_s": startup, **results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

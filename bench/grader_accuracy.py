"""Grader accuracy on the labelled corpus in tests/grading_corpus: evalkit against plain math-verify
(math) and against TIGER-Lab's MMLU-Pro regexes (multiple choice).

Math (``math.jsonl``: pred, gold, equal, class, source, optional finish_reason):
  evalkit      the real CLI path, ``evalkit grade --kind math FILE`` in a subprocess (finish_reason
               passed through, so cut-off outputs are graded as the runner grades them);
  math-verify  plain math-verify as lighteval uses it: ``parse`` of the gold and of the pred, each
               with ``LatexExtractionConfig()`` + ``ExprExtractionConfig()``, then ``verify(gold,
               pred)``; every case in a worker process that is killed after --timeout seconds, so a
               hang costs one case (graded unequal), not the bench.
A grader is right on a case when its verdict equals the label. False positive: graded equal where
the label says unequal; false negative: the other way round.

Choice (``choice.jsonl``: pred, choices or n_options, gold_read = the letter a careful reader takes,
or null for no answer):
  evalkit      ``evalkit grade --kind choice FILE``; its ``extracted`` letter is compared;
  official     TIGER-Lab's evaluate_from_local.py regexes re-implemented: ``answer is \\(?([A-J])\\)?``
               (first match), then ``.*[aA]nswer:\\s*([A-J])``, then the last standalone ``\\b[A-J]\\b``;
               no random fallback (nothing found is reported as null).
Right: the extracted letter (or null) equals gold_read. False extraction: a letter where gold_read
is another letter or null.

Usage: python bench/grader_accuracy.py [--corpus DIR] [--out FILE.json] [--timeout S] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO / "tests" / "grading_corpus"
_CLI = "import sys; sys.argv[0] = 'evalkit'; from evalkit.cli import main; main()"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# evalkit through its CLI


def evalkit_grade(lines: Sequence[dict[str, Any]], kind: str, threads: int) -> list[dict[str, Any]]:
    """Run ``evalkit grade --kind KIND`` on ``lines`` in a subprocess; the graded lines in order."""
    with tempfile.TemporaryDirectory(prefix="grader-accuracy-") as tmp:
        src, dst = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        src.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable, "-c", _CLI, "grade", "--kind", kind, str(src), "--out", str(dst)]
        cmd += ["--threads", str(threads)]
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"evalkit grade --kind {kind} failed ({proc.returncode}):\n{proc.stderr}")
        graded = read_jsonl(dst)
    by_id = {str(g["id"]): g for g in graded}
    return [by_id[str(x["id"])] for x in lines]


def evalkit_math(cases: Sequence[dict[str, Any]], threads: int) -> list[bool]:
    lines = []
    for i, c in enumerate(cases):
        line = {"id": str(i), "pred": c["pred"], "gold": c["gold"]}
        if c.get("finish_reason"):
            line["finish_reason"] = c["finish_reason"]
        lines.append(line)
    return [bool(g["correct"]) for g in evalkit_grade(lines, "math", threads)]


def evalkit_choice(cases: Sequence[dict[str, Any]], threads: int) -> list[str | None]:
    lines = []
    for i, c in enumerate(cases):
        # 'gold' is required by the file format but only the extracted letter is compared here.
        line: dict[str, Any] = {"id": str(i), "pred": c["pred"], "gold": c["gold_read"] or "A"}
        if c.get("choices"):
            line["choices"] = c["choices"]
        lines.append(line)
    return [g.get("extracted") for g in evalkit_grade(lines, "choice", threads)]


# ---------------------------------------------------------------------------------------------
# plain math-verify, one killable worker process per slot


_DELIMITED = ("$", "\\(", "\\[", "\\boxed")
# Suites whose tests hand math-verify's parse (lighteval's is math-verify) the gold as written.
_GOLD_AS_GIVEN = ("Math-Verify", "huggingface/lighteval")


def mv_gold_text(case: dict[str, Any]) -> str:
    """The gold as plain math-verify is given it. Cases from Math-Verify's own tests: exactly as its
    tests pass them. Any other gold is a bare answer field (``4\\sqrt{2}``, ``x \\ge 5``); lighteval
    hands math-verify the reference solution, where that answer sits in math mode, so a bare gold is
    wrapped in ``$...$`` (its expression extraction alone would read ``4\\sqrt{2}`` as ``4``)."""
    gold = str(case["gold"])
    if case["source"].startswith(_GOLD_AS_GIVEN) or any(d in gold for d in _DELIMITED):
        return gold
    return f"${gold}$"


def _mv_worker(conn: Any) -> None:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig(), ExprExtractionConfig()]
    while True:
        job = conn.recv()
        if job is None:
            return
        gold, pred = job
        try:
            ok = bool(verify(parse(gold, config), parse(pred, config)))
            conn.send((ok, None))
        except Exception as e:  # noqa: BLE001 - a crash on one case is that case's verdict
            conn.send((False, f"{type(e).__name__}: {e}"))


class _Slot:
    """One worker process; replaced when a case runs past the timeout."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self._start()

    def _start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_mv_worker, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        self.warm = False  # the first case of a fresh worker also pays for importing sympy

    def run(self, gold: str, pred: str, timeout: float) -> tuple[bool, str | None]:
        self.conn.send((gold, pred))
        if self.conn.poll(timeout if self.warm else timeout + 60):
            try:
                self.warm = True
                return self.conn.recv()
            except EOFError:
                self._restart()
                return False, "worker died"
        self._restart()
        return False, "timeout"

    def _restart(self) -> None:
        self.proc.kill()
        self.proc.join()
        self._start()

    def close(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


def math_verify_math(cases: Sequence[dict[str, Any]], workers: int, timeout: float) -> list[dict[str, Any]]:
    """Plain math-verify's verdict on every case, with timeouts and errors recorded."""
    ctx = mp.get_context("spawn")
    slots = [_Slot(ctx) for _ in range(workers)]
    free = list(slots)
    lock = threading.Lock()

    def one(case: dict[str, Any]) -> dict[str, Any]:
        with lock:
            slot = free.pop()
        try:
            ok, err = slot.run(mv_gold_text(case), case["pred"], timeout)
        finally:
            with lock:
                free.append(slot)
        return {"equal": ok, "error": err}

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, cases))
    finally:
        for s in slots:
            s.close()


# ---------------------------------------------------------------------------------------------
# TIGER-Lab MMLU-Pro regexes (evaluate_from_local.py: extract_answer, extract_again, extract_final)


def official_mmlu_pro(text: str) -> str | None:
    """evalkit's linear-time copy of the three regexes (tests/test_scoring_extract.py checks it
    against the verbatim ones), with no random guess."""
    from evalkit.scoring.extractors.mmlu_pro_official import official_mmlu_pro_answer

    return official_mmlu_pro_answer(text)[0]


# ---------------------------------------------------------------------------------------------
# scoring and the table


def math_scores(cases: Sequence[dict[str, Any]], verdicts: Sequence[bool]) -> dict[str, Any]:
    n = len(cases)
    right = sum(v == c["equal"] for c, v in zip(cases, verdicts, strict=True))
    fp = sum(v and not c["equal"] for c, v in zip(cases, verdicts, strict=True))
    fn = sum(c["equal"] and not v for c, v in zip(cases, verdicts, strict=True))
    return {
        "n": n,
        "right": right,
        "accuracy": right / n if n else 0.0,
        "false_positives": fp,
        "false_negatives": fn,
        "n_unequal": sum(not c["equal"] for c in cases),
        "n_equal": sum(bool(c["equal"]) for c in cases),
    }


def choice_scores(cases: Sequence[dict[str, Any]], letters: Sequence[str | None]) -> dict[str, Any]:
    n = len(cases)
    right = sum(let == c["gold_read"] for c, let in zip(cases, letters, strict=True))
    false_ext = sum(let is not None and let != c["gold_read"] for c, let in zip(cases, letters, strict=True))
    invented = sum(let is not None and c["gold_read"] is None for c, let in zip(cases, letters, strict=True))
    missed = sum(let is None and c["gold_read"] is not None for c, let in zip(cases, letters, strict=True))
    return {
        "n": n,
        "right": right,
        "accuracy": right / n if n else 0.0,
        "false_extractions": false_ext,
        "letter_on_no_answer": invented,
        "missed": missed,
    }


def by_group(
    cases: Sequence[dict[str, Any]],
    results: dict[str, Sequence[Any]],
    key: Callable[[dict[str, Any]], str],
    score: Callable[[Sequence[dict[str, Any]], Sequence[Any]], dict[str, Any]],
) -> dict[str, dict[str, dict[str, Any]]]:
    idx: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(cases):
        idx[key(c)].append(i)
    return {
        g: {name: score([cases[i] for i in ids], [res[i] for i in ids]) for name, res in results.items()}
        for g, ids in sorted(idx.items())
    }


def _source_group(c: dict[str, Any]) -> str:
    s = c["source"]
    if s.startswith("Math-Verify"):
        return "Math-Verify tests"
    if s.startswith("hand-written") or s.startswith("SmolLM2"):
        return "hand-written" if s.startswith("hand-written") else "model outputs"
    return s.split()[0]  # another project's suite: its owner/name


def _fmt(s: dict[str, Any], errors: str = "false_positives", misses: str = "false_negatives") -> str:
    frac = f"({s['right']}/{s['n']})"
    return f"{s['accuracy']:.3f} {frac:<10}{s[errors]:>3} {s[misses]:>4}"


def table(title: str, rows: dict[str, dict[str, dict[str, Any]]], names: Sequence[str], cols: str) -> str:
    head = f"{'':<26}" + "".join(f"{n:<26}" for n in names)
    sub = f"{'':<26}" + "".join(f"{'acc   (right/n)  ' + cols:<26}" for _ in names)
    out = [title, head, sub]
    errors, misses = (
        ("false_positives", "false_negatives") if cols == "FP   FN" else ("false_extractions", "missed")
    )
    for g, per in rows.items():
        marks = ""
        if len(names) == 2 and per[names[0]]["right"] < per[names[1]]["right"]:
            marks = "  <"
        out.append(f"{g:<26}" + "".join(f"{_fmt(per[n], errors, misses):<26}" for n in names) + marks)
    return "\n".join(out)


def _math_part(path: Path, args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    cases = read_jsonl(path)
    t0 = time.perf_counter()
    ek = evalkit_math(cases, args.threads)
    t_ek = time.perf_counter() - t0
    t0 = time.perf_counter()
    mv_raw = math_verify_math(cases, args.workers, args.timeout)
    t_mv = time.perf_counter() - t0
    mv = [r["equal"] for r in mv_raw]
    results = {"evalkit": ek, "math-verify": mv}
    overall = {name: math_scores(cases, res) for name, res in results.items()}
    per_source = by_group(cases, results, _source_group, math_scores)
    per_class = by_group(cases, results, lambda c: c["class"], math_scores)
    lines = [
        table(
            f"math: {len(cases)} cases ({overall['evalkit']['n_equal']} equal, "
            f"{overall['evalkit']['n_unequal']} unequal)",
            {"ALL": {n: overall[n] for n in results}, **per_source},
            list(results),
            "FP   FN",
        ),
        "",
        table(
            "math per class ('<': evalkit right on fewer cases than math-verify)",
            per_class,
            list(results),
            "FP   FN",
        ),
        f"math-verify timeouts/errors: {sum(r['error'] is not None for r in mv_raw)}; "
        f"time: evalkit {t_ek:.1f} s (CLI, incl. start-up), math-verify {t_mv:.1f} s",
    ]
    losing = [g for g, per in per_class.items() if per["evalkit"]["right"] < per["math-verify"]["right"]]
    cases_out = [
        {
            "i": i,
            "class": c["class"],
            "source": c["source"],
            "equal": c["equal"],
            "evalkit": ek[i],
            "math_verify": mv[i],
            "math_verify_error": mv_raw[i]["error"],
        }
        for i, c in enumerate(cases)
    ]
    return {
        "overall": overall,
        "per_source": per_source,
        "per_class": per_class,
        "classes_evalkit_loses": losing,
        "cases": cases_out,
    }, lines


def _choice_part(corpus: Path, args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    cases = read_jsonl(corpus / "choice.jsonl")
    ek = evalkit_choice(cases, args.threads)
    off = [official_mmlu_pro(c["pred"]) for c in cases]
    results = {"evalkit": ek, "official": off}
    overall = {name: choice_scores(cases, res) for name, res in results.items()}
    per_class = by_group(cases, results, lambda c: c["class"], choice_scores)
    n_null = sum(c["gold_read"] is None for c in cases)
    lines = [
        table(
            f"choice: {len(cases)} cases ({n_null} with no answer); FE = false extractions, MISS = no letter "
            "where a reader reads one",
            {"ALL": overall, **per_class},
            list(results),
            "FE MISS",
        )
    ]
    cases_out = [
        {"i": i, "class": c["class"], "gold_read": c["gold_read"], "evalkit": ek[i], "official": off[i]}
        for i, c in enumerate(cases)
    ]
    return {"overall": overall, "per_class": per_class, "cases": cases_out}, lines


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help="folder with math.jsonl, choice.jsonl"
    )
    ap.add_argument(
        "--math-file",
        type=Path,
        default=None,
        help="grade this math file (same schema, e.g. the held-out heldout.jsonl) instead of DIR/math.jsonl; "
        "the choice part is then skipped",
    )
    ap.add_argument("--out", type=Path, default=None, help="write the results (and per-case verdicts) here")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per math-verify case")
    ap.add_argument("--workers", type=int, default=2, help="math-verify worker processes")
    ap.add_argument("--threads", type=int, default=2, help="evalkit grade --threads")
    args = ap.parse_args()

    from importlib.metadata import version

    import math_verify  # noqa: F401 - fail early when it is missing

    try:
        corpus_name = str(args.corpus.resolve().relative_to(REPO))
    except ValueError:
        corpus_name = str(args.corpus)
    header = (
        f"grader accuracy, {time.strftime('%Y-%m-%d')}, commit {_commit()}, "
        f"math-verify {version('math-verify')}, corpus {corpus_name}"
    )
    result: dict[str, Any] = {"header": header}
    lines = [header, ""]
    math_file = args.math_file or args.corpus / "math.jsonl"
    if math_file.exists():
        result["math"], part = _math_part(math_file, args)
        lines += [f"math file: {math_file.name}"] + part + [""]
    if args.math_file is None and (args.corpus / "choice.jsonl").exists():
        result["choice"], part = _choice_part(args.corpus, args)
        lines += part
    print("\n".join(lines))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

"""The cross-grader diff: the same stored answers graded by several graders, and where they disagree.

``evalkit rescore RUN --compare-graders evalkit,math-verify,official,minerva`` (run/compare_graders.py)
and ``evalkit grade FILE --compare-graders ...`` build ``CompareItem`` s and call ``compare_items``.
No model is called. The graders:

  evalkit      the task's own scorer (its primary one), as ``evalkit run`` grades today;
  math-verify  plain math-verify as lighteval calls it (``parse`` + ``verify``, LaTeX and expression
               extraction), in the sandbox worker processes: it runs sympy on model text;
  official     the benchmark's own check where one exists: TIGER-Lab's MMLU-Pro regexes (extractor
               ``mmlu_pro_official``, without the random guess: nothing found is wrong) for MMLU-Pro;
               Hendrycks' MATH check (``hendrycks_is_equiv`` below) for MATH-derived tasks;
  minerva      lm-eval's Minerva normaliser (``lm_eval.tasks.minerva_math.utils``:
               ``get_unnormalized_answer``, ``normalize_final_answer``, ``is_equiv``), in the sandbox
               (it calls sympy); n/a when the lmeval extra is not importable there.
A grader that does not apply to an item (math-verify on a multiple-choice item, official on a task
without an official check) is n/a for it, never counted as wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.scoring.registry import score_completion
from evalkit.types import Completion, Sample, ScoringContext

GRADERS = ("evalkit", "math-verify", "official", "minerva")
OFFICIAL_MMLU_PRO = "mmlu_pro"
OFFICIAL_HENDRYCKS = "hendrycks_math"


@dataclass(frozen=True)
class Verdict:
    """One grader on one item: what it extracted and whether it grades the answer right."""

    extracted: str | None
    correct: bool

    def to_dict(self) -> dict[str, Any]:
        return {"extracted": self.extracted, "correct": self.correct}


@dataclass(frozen=True)
class CompareItem:
    """One stored answer: where it comes from, its text and gold, and evalkit's own verdict."""

    task: str
    sample_id: str
    repeat: int
    kind: str  # "math", "choice" or another grader name (the task's grader)
    completion: Completion
    sample: Sample
    evalkit: Verdict
    official: str | None = None  # OFFICIAL_MMLU_PRO, OFFICIAL_HENDRYCKS or None
    ctx: ScoringContext = field(default_factory=ScoringContext)


def parse_grader_names(value: str) -> list[str]:
    """``"evalkit,math-verify"`` -> the names, checked."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in GRADERS]
    if unknown or not names:
        raise EvalkitError(f"--compare-graders takes names from {', '.join(GRADERS)} (got {value!r})")
    return list(dict.fromkeys(names))


def official_for(task_name: str, grader: str, extractors: Sequence[str], dataset: str = "") -> str | None:
    """Which official check applies to a task: TIGER-Lab's for a task that has an
    ``mmlu_pro_official`` scorer, Hendrycks' for a math task on MATH data; else None (n/a)."""
    if "mmlu_pro_official" in extractors:
        return OFFICIAL_MMLU_PRO
    text = f"{task_name} {dataset}".lower()
    if grader == "math" and "math" in text:
        return OFFICIAL_HENDRYCKS
    return None


# ---------------------------------------------------------------------------------------------
# Hendrycks' MATH check, re-implemented from hendrycks/math modeling/math_equivalence.py (commit
# 940d1bf, MIT licence, Copyright (c) 2021 Dan Hendrycks) and the last_boxed_only_string /
# remove_boxed extraction of its modeling/eval_math_gpt.py. Behaviour kept, bare excepts narrowed.


def _fix_fracs(string: str) -> str:
    substrs = string.split("\\frac")
    new_str = substrs[0]
    for substr in substrs[1:]:
        new_str += "\\frac"
        if substr and substr[0] == "{":
            new_str += substr
            continue
        if len(substr) < 2:
            return string
        a, b = substr[0], substr[1]
        if b != "{":
            new_str += "{" + a + "}{" + b + "}" + substr[2:]
        else:
            new_str += "{" + a + "}" + b + substr[2:]
    return new_str


def _fix_a_slash_b(string: str) -> str:
    parts = string.split("/")
    if len(parts) != 2:
        return string
    try:
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        return string
    if string != f"{a}/{b}":
        return string
    return "\\frac{" + str(a) + "}{" + str(b) + "}"


def _remove_right_units(string: str) -> str:
    if "\\text{ " in string:
        splits = string.split("\\text{ ")
        if len(splits) != 2:
            raise ValueError("several unit texts")  # the original asserts; is_equiv falls back
        return splits[0]
    return string


def _fix_sqrt(string: str) -> str:
    if "\\sqrt" not in string:
        return string
    splits = string.split("\\sqrt")
    new_string = splits[0]
    for split in splits[1:]:
        if split and split[0] != "{":
            new_string += "\\sqrt{" + split[0] + "}" + split[1:]
        else:
            new_string += "\\sqrt" + split
    return new_string


def hendrycks_strip_string(string: str) -> str:
    """Hendrycks' ``_strip_string`` normalisation, step by step as in the MATH repository."""
    string = string.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    string = string.replace("tfrac", "frac").replace("dfrac", "frac")
    string = string.replace("\\left", "").replace("\\right", "")
    string = string.replace("^{\\circ}", "").replace("^\\circ", "")
    string = string.replace("\\$", "")
    string = _remove_right_units(string)
    string = string.replace("\\%", "")  # the original also removes "\%", the same two characters
    string = string.replace(" .", " 0.").replace("{.", "{0.")
    if not string:
        return string
    if string[0] == ".":
        string = "0" + string
    if len(string.split("=")) == 2 and len(string.split("=")[0]) <= 2:
        string = string.split("=")[1]
    string = _fix_sqrt(string)
    string = string.replace(" ", "")
    string = _fix_fracs(string)
    if string == "0.5":
        string = "\\frac{1}{2}"
    return _fix_a_slash_b(string)


def hendrycks_is_equiv(str1: str | None, str2: str | None) -> bool:
    """Hendrycks' ``is_equiv``: equal after ``_strip_string`` (raw equality if that fails)."""
    if str1 is None and str2 is None:
        return True
    if str1 is None or str2 is None:
        return False
    try:
        return hendrycks_strip_string(str1) == hendrycks_strip_string(str2)
    except (ValueError, IndexError):
        return str1 == str2


def hendrycks_last_boxed(string: str) -> str | None:
    """``remove_boxed(last_boxed_only_string(s))``: the content of the last ``\\boxed{...}``."""
    idx = string.rfind("\\boxed")
    if idx < 0:
        idx = string.rfind("\\fbox")
        if idx < 0:
            return None
    depth = 0
    for i in range(idx, len(string)):
        if string[i] == "{":
            depth += 1
        elif string[i] == "}":
            depth -= 1
            if depth == 0:
                boxed = string[idx : i + 1]
                left = "\\boxed{"
                return boxed[len(left) : -1] if boxed.startswith(left) else None
    return None


# ---------------------------------------------------------------------------------------------
# The graders


def _official(item: CompareItem) -> Verdict | None:
    if item.official == OFFICIAL_MMLU_PRO:
        extraction, grade = score_completion(
            item.completion, item.sample, "mmlu_pro_official", "choice", item.ctx
        )
        return Verdict(extraction.answer, grade.correct)
    if item.official == OFFICIAL_HENDRYCKS:
        pred = hendrycks_last_boxed(item.completion.text)
        gold = item.sample.answer
        gold = hendrycks_last_boxed(gold) or gold if "\\boxed" in gold else gold
        return Verdict(pred, hendrycks_is_equiv(pred, gold))
    return None


class _SandboxedGrader:
    """A grader that runs in the sandbox workers; remembers when it cannot run there (n/a)."""

    def __init__(self, check: str) -> None:
        self.check = check
        self.unavailable: str | None = None

    def __call__(self, item: CompareItem) -> Verdict | None:
        if item.kind != "math" or self.unavailable is not None:
            return None
        from evalkit.scoring.sandbox import default_sandbox

        equal, reason = default_sandbox().check(
            item.sample.answer, item.completion.text, options={"check": self.check}
        )
        try:
            info = json.loads(reason)
        except ValueError:
            return Verdict(None, False)  # timeout, crash, memory limit: graded wrong, as lighteval would
        if "na" in info:
            self.unavailable = str(info["na"])
            return None
        return Verdict(info.get("extracted"), bool(equal))


@dataclass
class CompareResult:
    graders: list[str]
    rows: list[dict[str, Any]]  # one per item: task, sample_id, repeat, gold, graders
    unavailable: dict[str, str] = field(default_factory=dict)  # grader -> why it could not run

    @property
    def disagreements(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["disagree"]]

    def scores(self) -> dict[str, dict[str, tuple[int, int]]]:
        """task -> grader -> (correct, graded); a grader with nothing graded is absent (n/a)."""
        out: dict[str, dict[str, list[int]]] = {}
        for r in self.rows:
            per = out.setdefault(r["task"], {})
            for g, v in r["graders"].items():
                if v is not None:
                    c = per.setdefault(g, [0, 0])
                    c[0] += bool(v["correct"])
                    c[1] += 1
        return {t: {g: (c[0], c[1]) for g, c in per.items()} for t, per in out.items()}

    def pair_disagreements(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(a, b) -> (items where their verdicts differ, items both graded)."""
        out = {}
        for a, b in combinations(self.graders, 2):
            both = [
                r for r in self.rows if r["graders"].get(a) is not None and r["graders"].get(b) is not None
            ]
            diff = sum(r["graders"][a]["correct"] != r["graders"][b]["correct"] for r in both)
            out[(a, b)] = (diff, len(both))
        return out


def _row(item: CompareItem, verdicts: dict[str, Verdict | None]) -> dict[str, Any]:
    graded = {g: v.to_dict() if v is not None else None for g, v in verdicts.items()}
    decided = {v.correct for v in verdicts.values() if v is not None}
    return {
        "task": item.task,
        "sample_id": item.sample_id,
        "repeat": item.repeat,
        "gold": item.sample.answer,
        "graders": graded,
        "disagree": len(decided) > 1,
    }


def compare_items(items: Sequence[CompareItem], graders: Sequence[str], threads: int = 4) -> CompareResult:
    """Grade every item with every grader (see the module docstring)."""
    sandboxed = {"math-verify": _SandboxedGrader("math_verify"), "minerva": _SandboxedGrader("minerva")}
    funcs: dict[str, Callable[[CompareItem], Verdict | None]] = {
        "evalkit": lambda it: it.evalkit,
        "official": _official,
        **sandboxed,
    }

    def one(item: CompareItem) -> dict[str, Any]:
        return _row(item, {g: funcs[g](item) for g in graders})

    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="evalkit-compare") as pool:
        rows = list(pool.map(one, items))
    unavailable = {
        g: s.unavailable for g, s in sandboxed.items() if g in graders and s.unavailable is not None
    }
    if unavailable:  # a grader that could not run somewhere is n/a everywhere, not partly graded
        for r in rows:
            for g in unavailable:
                r["graders"][g] = None
            r["disagree"] = len({v["correct"] for v in r["graders"].values() if v is not None}) > 1
    return CompareResult(list(graders), rows, unavailable)


def format_summary(result: CompareResult, examples: int = 5, where: str | None = None) -> list[str]:
    """The printed summary: each grader's score per task, pairwise disagreements, first examples."""
    lines = []
    scores = result.scores()
    for task in sorted(scores):
        cells = []
        for g in result.graders:
            c = scores[task].get(g)
            cells.append(f"{g} {c[0] / c[1]:.4f} ({c[0]}/{c[1]})" if c and c[1] else f"{g} n/a")
        lines.append(f"{task}: " + ", ".join(cells))
    for g, why in result.unavailable.items():
        lines.append(f"{g}: n/a ({why})")
    for (a, b), (diff, both) in result.pair_disagreements().items():
        lines.append(f"{a} vs {b}: {diff} of {both} items disagree" if both else f"{a} vs {b}: n/a")
    dis = result.disagreements
    lines.append(f"{len(dis)} items where the graders disagree" + (f", written to {where}" if where else ""))
    for r in dis[:examples]:
        verdicts = "; ".join(
            f"{g} {'n/a' if v is None else ('right' if v['correct'] else 'wrong')} ({_short(v)})"
            for g, v in r["graders"].items()
        )
        lines.append(f"  {r['task']} {r['sample_id']}#{r['repeat']} gold {_clip(r['gold'])}: {verdicts}")
    return lines


def _short(v: dict[str, Any] | None) -> str:
    return "-" if v is None or v["extracted"] is None else _clip(str(v["extracted"]))


def _clip(s: str, n: int = 40) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 1] + "\u2026"


def write_disagreements(path: Any, result: CompareResult) -> int:
    """Write one JSON line per item where the graders disagree; how many were written."""
    from pathlib import Path

    dis = result.disagreements
    text = "".join(
        json.dumps({k: v for k, v in r.items() if k != "disagree"}, ensure_ascii=False) + "\n" for r in dis
    )
    Path(path).write_text(text, encoding="utf-8")
    return len(dis)


def items_from_graded_lines(
    lines: Sequence[tuple[int, dict[str, Any]]],
    graded: Sequence[dict[str, Any]],
    name: str,
    grader: str,
    official: str | None,
    ctx: ScoringContext,
) -> list[CompareItem]:
    """CompareItems for the lines of an ``evalkit grade`` file, with evalkit's verdict from ``graded``
    (the lines as ``grade_lines`` returned them)."""
    items = []
    for (lineno, obj), g in zip(lines, graded, strict=True):
        choices = obj.get("choices")
        gold = obj["gold"]
        sample = Sample(
            id=str(obj.get("id", lineno)),
            task=name,
            question="",
            answer=str(int(gold)) if isinstance(gold, float) and gold.is_integer() else str(gold),
            choices=tuple(str(c) for c in choices) if choices is not None else None,
            meta=dict(obj.get("meta") or {}),
        )
        completion = Completion(text=obj["pred"], finish_reason=obj.get("finish_reason", "stop"))
        kind = "math" if grader == "math" else ("choice" if grader.startswith("choice") else grader)
        items.append(
            CompareItem(
                task=name,
                sample_id=sample.id,
                repeat=0,
                kind=kind,
                completion=completion,
                sample=sample,
                evalkit=Verdict(g.get("extracted"), bool(g["correct"])),
                official=official,
                ctx=ScoringContext(stop=ctx.stop),
            )
        )
    return items

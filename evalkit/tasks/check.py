"""``evalkit tasks check``: prove a task is wired correctly before any model runs.

It loads the task's real data, renders every prompt (with its few-shot exemplars), then passes
answers written the way a model writes them through the task's own extractor and grader, via the
same ``score_completion`` the runner uses:

- **gold pass**: the gold answer ("... so the answer is (C).", "... so the answer is
  \\boxed{17/3}.", Minerva's "Final Answer: The final answer is $X$. I hope it is correct.", an
  AIME integer in a box) must score 100%;
- **wrong pass**: the answer rotated to a wrong option (the next letter of the item's own options)
  or a wrong value (the next item's different answer) must score 0%. A wrong value can only be
  accepted when it is the same number or expression written differently; such items are listed
  with both values so a reader can judge them;
- **abstain pass** (tasks whose prompt offers ``\\boxed{blank}``): an explicit blank must come out
  as status ``abstain``, not as a letter.

When the task has stop sequences, every written answer is followed by a stop sequence and then an
invented continuation carrying the *other* answer (the wrong one after the gold, the gold after the
wrong one), the way base models keep writing new questions: a task that does not cut at its stop
sequences fails both passes. It also checks that every item has a date, a non-empty question and
answer, a gold letter within its own options, an integer gold for integer graders, and the
requested number of few-shot exemplars.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.errors import TaskError
from evalkit.scoring import ScoringContext, score_completion
from evalkit.tasks.loader import LoadedTask
from evalkit.tasks.prompt import render
from evalkit.tasks.samples import load_fewshot_pool, load_samples, select_fewshot
from evalkit.types import Completion, Sample

LETTER_EXTRACTORS = frozenset({"choice", "mmlu_pro_official"})
INTEGER_GRADERS = frozenset({"integer"})
# Graders that compare values (not letters): a wrong value equal to the gold in another form passes.
VALUE_EXTRACTORS = frozenset({"boxed", "answer_line", "integer", "exact"})

_REASONING = "Let's think step by step. We work through the problem carefully and check each step."


@dataclass(frozen=True)
class ItemProblem:
    """One item that failed a check."""

    sample_id: str
    check: str  # data | render | fewshot | gold | wrong | abstain
    message: str
    completion: str | None = None


@dataclass
class PassResult:
    """How a set of written answers scored."""

    name: str  # gold | wrong | abstain
    n: int = 0
    correct: int = 0
    failed: int = 0  # items whose outcome was not the expected one
    statuses: Counter[str] = field(default_factory=Counter)
    points: Counter[float] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.correct / self.n if self.n else 0.0


@dataclass
class CheckReport:
    task: str
    version: int
    source: str
    n_items: int = 0
    n_rendered: int = 0
    fewshot_k: int = 0
    passes: list[PassResult] = field(default_factory=list)
    problems: list[ItemProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dates: Counter[str] = field(default_factory=Counter)
    problem_counts: Counter[str] = field(default_factory=Counter)  # by check, including those not kept
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problem_counts

    def problems_of(self, check: str) -> list[ItemProblem]:
        return [p for p in self.problems if p.check == check]


# ---------------------------------------------------------------------------------------------
# Writing answers the way a model does


def _template_text(task: LoadedTask) -> str:
    p = task.spec.prompt
    return p.template + (p.system or "")


def answer_writer(task: LoadedTask) -> Callable[[str], str]:
    """A function turning an answer (a letter or a value) into the final sentence of a model output,
    in the form this task's prompt asks for and its extractor reads."""
    name = task.spec.extract.name
    boxed = "\\boxed" in _template_text(task)
    if name in LETTER_EXTRACTORS:
        if boxed:
            return lambda a: (
                f"Checking the options, the answer is option {a}, so the answer is \\boxed{{{a}}}."
            )
        return lambda a: f"The answer is ({a})."
    if name == "boxed":
        return lambda a: f"Putting it together, the answer is \\boxed{{{a}}}."
    if name == "answer_line":
        return lambda a: (
            f"Therefore the result follows.\nFinal Answer: The final answer is ${a}$. I hope it is correct."
        )
    if name == "integer":
        if boxed:
            return lambda a: f"Putting it together, the answer is \\boxed{{{a}}}."
        return lambda a: f"The answer is {a}."
    if name == "exact":
        return lambda a: a
    raise TaskError(
        f"tasks check: no way to write answers for extractor {name!r} (known: "
        f"{', '.join(sorted(LETTER_EXTRACTORS | VALUE_EXTRACTORS))}); add one to evalkit/tasks/check.py"
    )


def _with_continuation(body: str, decoy: str, stop: Sequence[str]) -> str:
    """``body``, then (when the task has stop sequences) an invented continuation after the first
    stop sequence that states ``decoy``: base models keep writing new questions with answers."""
    stops = [s for s in stop if s.strip()]
    if not stops:
        return body
    return f"{body}\n\n{stops[0]}\nA further question the model invented.\n{decoy}"


def write_completion(task: LoadedTask, writer: Callable[[str], str], answer: str, decoy: str | None) -> str:
    if task.spec.extract.name == "exact":
        text = answer
    else:
        text = f"{_REASONING}\n{writer(answer)}"
    if decoy is not None:
        text = _with_continuation(text, writer(decoy), task.spec.generation.stop)
    return text


# ---------------------------------------------------------------------------------------------
# Wrong answers


def _norm_value(s: str) -> str:
    """A light normal form, so the wrong value chosen for an item is not its own gold in another
    spelling (``x=5`` for ``5``, ``\\dfrac`` for ``\\frac``, ``5^\\circ`` for ``5``)."""
    t = s.strip().strip("$").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\!", "")
    t = t.replace("\\left", "").replace("\\right", "").replace("^\\circ", "").replace("^{\\circ}", "")
    t = re.sub(r"\s+", "", t).lower()
    t = re.sub(r"^[a-z]=", "", t)
    return t.rstrip(".")


def _as_int(s: str) -> int | None:
    t = s.strip()
    return int(t) if re.fullmatch(r"[+-]?\d+", t) else None


def wrong_values(samples: Sequence[Sample]) -> list[str]:
    """For each item, a value that differs from its gold: the next item's answer (cyclically) whose
    normalised form differs (integers compared as numbers)."""
    n = len(samples)
    out = []
    for i, s in enumerate(samples):
        mine, mine_int = _norm_value(s.answer), _as_int(s.answer)
        pick = None
        for j in range(1, n):
            cand = samples[(i + j) % n].answer
            ci = _as_int(cand)
            if mine_int is not None and ci is not None:
                if ci != mine_int:
                    pick = cand
                    break
            elif _norm_value(cand) != mine:
                pick = cand
                break
        if pick is None:  # every item has the same answer: shift the integer, or append a digit
            pick = str(mine_int + 1) if mine_int is not None else s.answer + "1"
        out.append(pick)
    return out


def wrong_letter(sample: Sample, gold: str) -> str:
    letters = sample.letters or tuple("ABCDE")
    if gold not in letters:
        return letters[0] if letters[0] != gold else letters[-1]
    return letters[(letters.index(gold) + 1) % len(letters)]


# ---------------------------------------------------------------------------------------------
# The check


def _gold_letter(sample: Sample) -> str:
    from evalkit.scoring.grade import gold_letter

    return gold_letter(sample)


def _data_problems(task: LoadedTask, s: Sample, is_letter: bool) -> list[ItemProblem]:
    out = []
    if s.date is None:
        out.append(
            ItemProblem(s.id, "data", "no date: give fields.date, fields.date_from or a task-level date")
        )
    if not s.question.strip():
        out.append(ItemProblem(s.id, "data", "empty question"))
    if not s.answer.strip():
        out.append(ItemProblem(s.id, "data", "empty gold answer"))
    if is_letter:
        if not s.choices:
            out.append(ItemProblem(s.id, "data", "letter task but the item has no options (fields.choices)"))
        else:
            g = _gold_letter(s)
            if g not in s.letters:
                out.append(
                    ItemProblem(
                        s.id,
                        "data",
                        f"gold {s.answer!r} is not one of the item's option letters {''.join(s.letters)}",
                    )
                )
    if task.spec.grade.name in INTEGER_GRADERS:
        from evalkit.scoring.extract import parse_integer

        if parse_integer(s.answer) is None:
            out.append(
                ItemProblem(s.id, "data", f"gold {s.answer!r} is not an integer but the grader is 'integer'")
            )
    return out


def _score(
    task: LoadedTask, text: str, sample: Sample, ctx: ScoringContext
) -> tuple[str, bool, float | None, str | None]:
    ex, gr = score_completion(
        Completion(text=text, finish_reason="stop"), sample, task.spec.extract.name, task.spec.grade.name, ctx
    )
    return ex.status, gr.correct, gr.points, ex.answer


def _record(p: PassResult, status: str, correct: bool, points: float | None) -> None:
    p.n += 1
    p.correct += int(correct)
    p.statuses[status] += 1
    if points is not None:
        p.points[points] += 1


def check_task(task: LoadedTask, data_dir: Path | None, max_problems: int = 1000) -> CheckReport:
    """Run every check on ``task`` with its real data. Data errors (a missing file) raise DataError."""
    t0 = time.perf_counter()
    spec = task.spec
    samples, loaded = load_samples(task, data_dir)
    rep = CheckReport(spec.name, spec.version, loaded.source, n_items=len(samples))
    if not samples:
        rep.problems.append(ItemProblem("-", "data", f"no items in {loaded.source}"))
        rep.problem_counts["data"] += 1
        return rep
    pool = load_fewshot_pool(task, data_dir)
    fs = spec.prompt.fewshot
    # select_fewshot keeps pool order and filters by the `same` field; handing it only that group
    # gives the identical exemplars without normalising the whole pool for every item.
    groups: dict[str, list[Sample]] = {}
    same = fs.same if fs is not None else None
    if same is not None:
        for e in pool:
            groups.setdefault(repr(e.meta.get(same)), []).append(e)

    def pool_for(s: Sample) -> list[Sample]:
        return pool if same is None else groups.get(repr(s.meta.get(same)), [])

    rep.fewshot_k = fs.k if fs else 0
    is_letter = spec.extract.name in LETTER_EXTRACTORS
    writer = answer_writer(task)
    ctx = ScoringContext.for_task(spec)
    offers_blank = "\\boxed{blank}" in _template_text(task)
    gold_p, wrong_p, blank_p = PassResult("gold"), PassResult("wrong"), PassResult("abstain")
    wrong_vals = None if is_letter else wrong_values(samples)
    dup_options = 0

    def add(problem: ItemProblem) -> None:
        rep.problem_counts[problem.check] += 1
        if len(rep.problems) < max_problems:
            rep.problems.append(problem)

    for i, s in enumerate(samples):
        rep.dates[s.date.isoformat() if s.date else "none"] += 1
        for prob in _data_problems(task, s, is_letter):
            add(prob)
        exemplars = select_fewshot(spec, s, pool_for(s))
        if rep.fewshot_k and len(exemplars) != rep.fewshot_k:
            add(ItemProblem(s.id, "fewshot", f"{len(exemplars)} exemplars found, {rep.fewshot_k} asked"))
        try:
            render(task, s, exemplars)
            rep.n_rendered += 1
        except TaskError as e:
            add(ItemProblem(s.id, "render", str(e)))
            continue
        if is_letter:
            if s.choices and len(set(s.choices)) < len(s.choices):
                dup_options += 1
            gold = _gold_letter(s)
            wrong = wrong_letter(s, gold)
        else:
            assert wrong_vals is not None
            gold, wrong = s.answer, wrong_vals[i]
        for p, ans, decoy in ((gold_p, gold, wrong), (wrong_p, wrong, gold)):
            text = write_completion(task, writer, ans, decoy)
            try:
                status, correct, points, got = _score(task, text, s, ctx)
            except Exception as e:  # a grader crash on real data is exactly what this command is for
                p.n += 1
                p.failed += 1
                add(ItemProblem(s.id, p.name, f"scoring raised {type(e).__name__}: {e}", text))
                continue
            _record(p, status, correct, points)
            expected = p.name == "gold"
            if correct != expected:
                p.failed += 1
                if expected:
                    msg = f"gold {gold!r} scored wrong (extracted {got!r}, status {status})"
                else:
                    msg = f"wrong answer {wrong!r} accepted for gold {gold!r} (extracted {got!r})"
                    if not is_letter:
                        msg += "; if the two are the same value written differently, this is expected"
                add(ItemProblem(s.id, p.name, msg, text))
        if offers_blank:
            text = write_completion(
                task,
                lambda a: f"I cannot solve this reliably, so I leave it blank: \\boxed{{{a}}}.",
                "blank",
                None,
            )
            try:
                status, correct, points, got = _score(task, text, s, ctx)
            except Exception as e:
                blank_p.n += 1
                blank_p.failed += 1
                add(ItemProblem(s.id, "abstain", f"scoring raised {type(e).__name__}: {e}", text))
                continue
            _record(blank_p, status, correct, points)
            if status != "abstain" or correct:
                blank_p.failed += 1
                add(
                    ItemProblem(
                        s.id,
                        "abstain",
                        f"\\boxed{{blank}} gave status {status}, answer {got!r}, correct {correct}",
                        text,
                    )
                )

    rep.passes = [gold_p, wrong_p] + ([blank_p] if offers_blank else [])
    if dup_options:
        rep.notes.append(
            f"{dup_options} item(s) list the same option text under two letters; grading is by letter, so a "
            f"wrong letter with the gold's text still scores 0"
        )
    if spec.generation.stop:
        rep.notes.append(
            f"every written answer was followed by {spec.generation.stop[0]!r} and an invented continuation "
            f"with the other answer: the stop-sequence cut is exercised"
        )
    rep.seconds = time.perf_counter() - t0
    return rep


def format_report(rep: CheckReport, show: int = 20) -> list[str]:
    """Human-readable lines: the summary, then up to ``show`` failing items."""
    lines = [f"{rep.task} v{rep.version}: {rep.n_items} items from {rep.source}"]
    shots = f", {rep.fewshot_k} exemplars each" if rep.fewshot_k else ""
    lines.append(f"  prompts rendered   {rep.n_rendered}/{rep.n_items}{shots}")
    expect = {"gold": "must be 100%", "wrong": "must be 0%", "abstain": "must all be status abstain"}
    for p in rep.passes:
        pts = ""
        if p.points:
            pts = "  points " + ", ".join(f"{k:g}: {v}" for k, v in sorted(p.points.items()))
        status = "ok" if p.failed == 0 else f"FAIL ({p.failed} items)"
        label = {"gold": "gold answers", "wrong": "wrong answers", "abstain": "explicit blanks"}[p.name]
        lines.append(
            f"  {label:<18} {p.correct}/{p.n} correct ({100 * p.rate:.1f}%), {expect[p.name]}: {status}{pts}"
        )
    undated = rep.dates.get("none", 0)
    dated = [d for d in rep.dates if d != "none"]
    span = f" ({min(dated)} .. {max(dated)}, {len(dated)} distinct)" if dated else ""
    lines.append(f"  dates              {rep.n_items - undated}/{rep.n_items} items dated{span}")
    for note in rep.notes:
        lines.append(f"  note: {note}")
    if rep.problem_counts:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(rep.problem_counts.items()))
        lines.append(
            f"  {sum(rep.problem_counts.values())} problem(s) ({counts}); first {min(show, len(rep.problems))}:"
        )
        for prob in rep.problems[:show]:
            lines.append(f"    [{prob.check}] item {prob.sample_id}: {prob.message}")
            if prob.completion is not None:
                shown = prob.completion if len(prob.completion) <= 400 else prob.completion[:400] + " ..."
                lines.append("      completion: " + shown.replace("\n", "\n                  "))
    lines.append(f"  {'PASS' if rep.ok else 'FAIL'} in {rep.seconds:.1f} s")
    return lines

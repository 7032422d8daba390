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
from evalkit.scoring.extractors import EXAMPLE_REASONING
from evalkit.scoring.extractors.math import parse_integer
from evalkit.scoring.grade import gold_letter
from evalkit.scoring.registry import ExampleAnswer, extractor_entry, score_completion
from evalkit.tasks.loader import LoadedTask
from evalkit.tasks.prompt import render
from evalkit.tasks.samples import load_fewshot_pool, load_samples, select_fewshot
from evalkit.tasks.spec import TaskSpec
from evalkit.types import Completion, Extraction, Grade, Sample, ScoringContext

# Graders whose gold answers must be integers (checked on the data before any answer is scored).
INTEGER_GRADERS = frozenset({"integer"})


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

    def record(self, extraction: Extraction, grade: Grade) -> None:
        self.n += 1
        self.correct += int(grade.correct)
        self.statuses[extraction.status] += 1
        if grade.points is not None:
            self.points[grade.points] += 1


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
    max_problems: int = 1000  # problems kept in ``problems``; all are counted

    @property
    def ok(self) -> bool:
        return not self.problem_counts

    def problems_of(self, check: str) -> list[ItemProblem]:
        return [p for p in self.problems if p.check == check]

    def add(self, problem: ItemProblem) -> None:
        self.problem_counts[problem.check] += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(problem)


# ---------------------------------------------------------------------------------------------
# Writing answers the way a model does


def _template_text(spec: TaskSpec) -> str:
    p = spec.prompt
    return p.template + (p.system or "")


def _with_continuation(body: str, decoy: str, stop: Sequence[str]) -> str:
    """``body``, then (when the task has stop sequences) an invented continuation after the first
    stop sequence that states ``decoy``: base models keep writing new questions with answers."""
    stops = [s for s in stop if s.strip()]
    if not stops:
        return body
    return f"{body}\n\n{stops[0]}\nA further question the model invented.\n{decoy}"


@dataclass(frozen=True)
class ItemAnswers:
    """The gold answer of an item and a wrong one, as letters or as values."""

    gold: str
    wrong: str


@dataclass(frozen=True)
class Probe:
    """One pass of the check: the completion written for each item, and the outcome it must get."""

    name: str  # gold | wrong | abstain
    write_answer: Callable[[ItemAnswers], str]
    expected: Callable[[Extraction, Grade], bool]
    failure: Callable[[ItemAnswers, Extraction, Grade], str]  # the message when it does not


def probes(spec: TaskSpec) -> list[Probe]:
    """The passes for ``spec``: gold (must score correct), wrong (must not), and an explicit blank
    (must be status abstain) when the prompt offers ``\\boxed{blank}``. Answers are written by
    the extractor's own ``example_answer``, each followed by a decoy continuation stating the other
    answer after the task's first stop sequence."""
    entry = extractor_entry(spec.extract.name)
    write: ExampleAnswer = entry.example_answer
    boxed = "\\boxed" in _template_text(spec)
    stop = spec.generation.stop

    def stated(answer: str, decoy: str) -> str:
        return _with_continuation(write(answer, boxed), write(decoy, boxed), stop)

    same_value = (
        ""
        if entry.answer_kind == "letter"
        else ("; if the two are the same value written differently, this is expected")
    )
    out = [
        Probe(
            "gold",
            lambda a: stated(a.gold, a.wrong),
            lambda ex, gr: gr.correct,
            lambda a, ex, gr: f"gold {a.gold!r} scored wrong (extracted {ex.answer!r}, status {ex.status})",
        ),
        Probe(
            "wrong",
            lambda a: stated(a.wrong, a.gold),
            lambda ex, gr: not gr.correct,
            lambda a, ex, gr: (
                f"wrong answer {a.wrong!r} accepted for gold {a.gold!r} (extracted {ex.answer!r}){same_value}"
            ),
        ),
    ]
    if "\\boxed{blank}" in _template_text(spec):
        blank = f"{EXAMPLE_REASONING}\nI cannot solve this reliably, so I leave it blank: \\boxed{{blank}}."
        out.append(
            Probe(
                "abstain",
                lambda a: blank,
                lambda ex, gr: ex.status == "abstain" and not gr.correct,
                lambda a, ex, gr: (
                    f"\\boxed{{blank}} gave status {ex.status}, answer {ex.answer!r}, correct {gr.correct}"
                ),
            )
        )
    return out


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


def _differs(candidate: str, mine: str, mine_int: int | None) -> bool:
    """Is ``candidate`` a different answer from the gold (normal form ``mine``, integer ``mine_int``)?"""
    ci = _as_int(candidate)
    if mine_int is not None and ci is not None:
        return ci != mine_int
    return _norm_value(candidate) != mine


def wrong_values(samples: Sequence[Sample]) -> list[str]:
    """For each item, a value that differs from its gold: the next item's answer (cyclically) whose
    normalised form differs (integers compared as numbers)."""
    n = len(samples)
    out = []
    for i, s in enumerate(samples):
        mine, mine_int = _norm_value(s.answer), _as_int(s.answer)
        cands = (samples[(i + j) % n].answer for j in range(1, n))
        pick = next((c for c in cands if _differs(c, mine, mine_int)), None)
        if pick is None:  # every item has the same answer: shift the integer, or append a digit
            pick = str(mine_int + 1) if mine_int is not None else s.answer + "1"
        out.append(pick)
    return out


def wrong_letter(sample: Sample, gold: str) -> str:
    letters = sample.letters or tuple("ABCDE")
    if gold not in letters:
        return letters[0] if letters[0] != gold else letters[-1]
    return letters[(letters.index(gold) + 1) % len(letters)]


def item_answers(samples: Sequence[Sample], is_letter: bool) -> list[ItemAnswers]:
    """The gold and a wrong answer of every item: letters (the next of the item's own options) or
    values (another item's different answer)."""
    if is_letter:
        golds = [gold_letter(s) for s in samples]
        return [ItemAnswers(g, wrong_letter(s, g)) for s, g in zip(samples, golds, strict=True)]
    return [ItemAnswers(s.answer, w) for s, w in zip(samples, wrong_values(samples), strict=True)]


# ---------------------------------------------------------------------------------------------
# The check


def _letter_problems(s: Sample) -> list[ItemProblem]:
    if not s.choices:
        return [ItemProblem(s.id, "data", "letter task but the item has no options (fields.choices)")]
    g = gold_letter(s)
    if g not in s.letters:
        msg = f"gold {s.answer!r} is not one of the item's option letters {''.join(s.letters)}"
        return [ItemProblem(s.id, "data", msg)]
    return []


def _data_problems(spec: TaskSpec, s: Sample, is_letter: bool) -> list[ItemProblem]:
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
        out += _letter_problems(s)
    if spec.grade.name in INTEGER_GRADERS and parse_integer(s.answer) is None:
        msg = f"gold {s.answer!r} is not an integer but the grader is 'integer'"
        out.append(ItemProblem(s.id, "data", msg))
    return out


def _fewshot_source(task: LoadedTask, data_dir: Path | None) -> Callable[[Sample], list[Sample]]:
    """The exemplar pool to select from for each item.

    select_fewshot keeps pool order and filters by the `same` field; handing it only that group
    gives the identical exemplars without normalising the whole pool for every item.
    """
    pool = load_fewshot_pool(task, data_dir)
    fs = task.spec.prompt.fewshot
    same = fs.same if fs is not None else None
    if same is None:
        return lambda s: pool
    groups: dict[str, list[Sample]] = {}
    for e in pool:
        groups.setdefault(repr(e.meta.get(same)), []).append(e)
    return lambda s: groups.get(repr(s.meta.get(same)), [])


def _renders(task: LoadedTask, s: Sample, pool: list[Sample], rep: CheckReport) -> bool:
    """Render the item's prompt with its exemplars; record what fails."""
    exemplars = select_fewshot(task.spec, s, pool)
    if rep.fewshot_k and len(exemplars) != rep.fewshot_k:
        rep.add(ItemProblem(s.id, "fewshot", f"{len(exemplars)} exemplars found, {rep.fewshot_k} asked"))
    try:
        render(task, s, exemplars)
    except TaskError as e:
        rep.add(ItemProblem(s.id, "render", str(e)))
        return False
    rep.n_rendered += 1
    return True


def _run_probe(
    probe: Probe, result: PassResult, s: Sample, answers: ItemAnswers, spec: TaskSpec, ctx: ScoringContext
) -> ItemProblem | None:
    """Score the probe's completion for one item; the problem when the outcome is not the expected one."""
    text = probe.write_answer(answers)
    try:
        ex, gr = score_completion(
            Completion(text=text, finish_reason="stop"), s, spec.extract.name, spec.grade.name, ctx
        )
    except Exception as e:  # a grader crash on real data is exactly what this command is for
        result.n += 1
        result.failed += 1
        return ItemProblem(s.id, probe.name, f"scoring raised {type(e).__name__}: {e}", text)
    result.record(ex, gr)
    if probe.expected(ex, gr):
        return None
    result.failed += 1
    return ItemProblem(s.id, probe.name, probe.failure(answers, ex, gr), text)


def _notes(spec: TaskSpec, samples: Sequence[Sample], is_letter: bool) -> list[str]:
    notes = []
    dup_options = sum(1 for s in samples if is_letter and s.choices and len(set(s.choices)) < len(s.choices))
    if dup_options:
        notes.append(
            f"{dup_options} item(s) list the same option text under two letters; grading is by letter, so a "
            f"wrong letter with the gold's text still scores 0"
        )
    if spec.generation.stop:
        notes.append(
            f"every written answer was followed by {spec.generation.stop[0]!r} and an invented continuation "
            f"with the other answer: the stop-sequence cut is exercised"
        )
    return notes


def check_task(task: LoadedTask, data_dir: Path | None, max_problems: int = 1000) -> CheckReport:
    """Run every check on ``task`` with its real data. Data errors (a missing file) raise DataError."""
    t0 = time.perf_counter()
    spec = task.spec
    samples, loaded = load_samples(task, data_dir)
    rep = CheckReport(spec.name, spec.version, loaded.source, n_items=len(samples), max_problems=max_problems)
    if not samples:
        rep.add(ItemProblem("-", "data", f"no items in {loaded.source}"))
        return rep
    pool_for = _fewshot_source(task, data_dir)
    rep.fewshot_k = spec.prompt.fewshot.k if spec.prompt.fewshot else 0
    is_letter = extractor_entry(spec.extract.name).answer_kind == "letter"
    ctx = ScoringContext.for_task(spec)
    checks = probes(spec)
    rep.passes = [PassResult(p.name) for p in checks]
    for s, answers in zip(samples, item_answers(samples, is_letter), strict=True):
        rep.dates[s.date.isoformat() if s.date else "none"] += 1
        for prob in _data_problems(spec, s, is_letter):
            rep.add(prob)
        if not _renders(task, s, pool_for(s), rep):
            continue
        for probe, result in zip(checks, rep.passes, strict=True):
            problem = _run_probe(probe, result, s, answers, spec, ctx)
            if problem is not None:
                rep.add(problem)
    rep.notes = _notes(spec, samples, is_letter)
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
        total, shown = sum(rep.problem_counts.values()), min(show, len(rep.problems))
        lines.append(f"  {total} problem(s) ({counts}); first {shown}:")
        for prob in rep.problems[:show]:
            lines.append(f"    [{prob.check}] item {prob.sample_id}: {prob.message}")
            if prob.completion is not None:
                shown = prob.completion if len(prob.completion) <= 400 else prob.completion[:400] + " ..."
                lines.append("      completion: " + shown.replace("\n", "\n                  "))
    lines.append(f"  {'PASS' if rep.ok else 'FAIL'} in {rep.seconds:.1f} s")
    return lines


# What `evalkit run` refuses ----------------------------------------------------------------------
def broken_items(task: LoadedTask, samples: Sequence[Sample]) -> list[ItemProblem]:
    """The items `tasks check` reports that cannot be graded as written (an empty question or gold,
    a gold letter outside the item's options, a non-integer gold for the integer grader). A missing
    date is not among them: it only keeps the item out of cutoff splits."""
    is_letter = extractor_entry(task.spec.extract.name).answer_kind == "letter"
    return [
        p
        for s in samples
        for p in _data_problems(task.spec, s, is_letter)
        if not p.message.startswith("no date")
    ]


def refuse_broken_items(
    task: LoadedTask, samples: list[Sample], skip: bool, warn: Callable[[str], None]
) -> tuple[list[Sample], dict[str, object]]:
    """``samples`` when none is broken; else a TaskError naming the first, or (``skip``) the
    others, with the skipped ids for the manifest and one warning line."""
    if not samples:
        files = task.spec.dataset.files or []
        where = f"data file {', '.join(files)}" if files else "its dataset"
        raise TaskError(f"{task.path}: task {task.spec.name}: no items in {where}; nothing to evaluate")
    problems = broken_items(task, samples)
    if not problems:
        return samples, {}
    bad = sorted({p.sample_id for p in problems})
    first = problems[0]
    if not skip:
        more = f" (and {len(bad) - 1} more item(s))" if len(bad) > 1 else ""
        raise TaskError(
            f"{task.path}: task {task.spec.name}: item {first.sample_id}: {first.message}{more}\n"
            f"fix the data (`evalkit tasks check {task.spec.name}` lists them) or pass "
            f"--skip-broken-items to leave them out"
        )
    warn(
        f"task {task.spec.name}: skipped {len(bad)} broken item(s) (--skip-broken-items), e.g. item "
        f"{first.sample_id}: {first.message}"
    )
    return [s for s in samples if s.id not in set(bad)], {"skipped_broken": bad}

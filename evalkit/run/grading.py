"""Turn an answer into a Record: every scorer of its task, with the scoring code version.

The runner (inline and on resume), ``evalkit rescore`` and ``tasks check`` score through
``TaskScorer``, so a record's grades always say which extraction and grading code produced them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evalkit.scoring.registry import get_grader, score_completion, scorer_version
from evalkit.store import PRIMARY_SCORER, Record, Score, now_iso
from evalkit.types import Completion, Extraction, Request, Sample, ScoringContext

# The censoring class of an answer (DESIGN.md, "Judged answers and reasoning"):
#   answered   an answer was extracted (an output that ended at the token limit but still holds an
#              answer is answered; its finish_reason says it was truncated)
#   censored   no usable answer because of the budget: the output ended at the limit inside the
#              reasoning or before any answer (extraction status "truncated")
#   no_answer  no answer although the output finished
CENSORED, NO_ANSWER, ANSWERED = "censored", "no_answer", "answered"
JUDGED = "judged"  # the extra score a judge's reading of a rule miss gets


def censoring_class(extraction: Extraction) -> str:
    if extraction.status == "truncated":
        return CENSORED
    if extraction.status == "no_answer":
        return NO_ANSWER
    return ANSWERED


@dataclass(frozen=True)
class _Scorer:
    name: str
    extract: str
    grade: str
    context: ScoringContext
    version: str


class TaskScorer:
    """The scorers of one task (the primary one first), built once per task."""

    def __init__(self, spec) -> None:  # spec: a TaskSpec (tasks layer; typed loosely to keep run/ thin)
        self.spec = spec
        self.scorers = [
            _Scorer(
                s.name,
                s.extract.name,
                s.grade.name,
                ScoringContext.for_scorer(spec, s),
                scorer_version(s.extract.name, s.grade.name),
            )
            for s in spec.all_scorers()
        ]

    @property
    def versions(self) -> dict[str, str]:
        return {s.name: s.version for s in self.scorers}

    @property
    def uses_sandbox(self) -> bool:
        """Math grading blocks on sandbox processes: worth a worker thread; the rest is microseconds."""
        return any(s.grade == "math" for s in self.scorers)

    def score(self, completion: Completion, sample: Sample) -> dict[str, Score]:
        if not completion.ok:
            return {}
        out = {}
        for s in self.scorers:
            extraction, grade = score_completion(completion, sample, s.extract, s.grade, s.context)
            out[s.name] = Score(extraction, grade, s.version)
        return out

    def is_current(self, record: Record) -> bool:
        """Whether ``record`` was graded by exactly this task's scorers at their current versions."""
        if not record.ok:
            return True
        return {n: s.version for n, s in record.scores.items() if n != JUDGED} == self.versions

    def record(
        self, req: Request, sample: Sample, completion: Completion, model: str, cached: bool
    ) -> Record:
        scores = self.score(completion, sample)
        return Record(
            key=req.key,
            task=req.task,
            sample_id=req.sample_id,
            repeat=req.repeat,
            status="ok" if completion.ok else "error",
            completion=completion,
            task_version=self.spec.version,
            model=model,
            sample=sample,
            scores=scores,
            max_tokens=req.params.max_tokens,
            censoring=_censoring(scores),
            cached=cached,
            time=now_iso(),
        )

    def regrade(self, record: Record) -> Record:
        """The same answer scored again by the current code (no model call); a stored judge reply
        is graded again too."""
        if not record.ok or record.sample is None:
            return record
        scores = self.score(record.completion, record.sample)
        rec = record.replace(scores=scores, censoring=_censoring(scores), time=now_iso())
        return self.with_judge(rec, record.judge) if record.judge else rec

    def with_judge(self, record: Record, reply: Mapping[str, Any]) -> Record:
        """``record`` with a judge's reply stored and, for a rule miss the judge read, the extra score
        ``judged``: the judge's answer graded by this task's own grader (the judge never decides)."""
        main = self.scorers[0]
        reply = dict(reply)
        scores = {k: v for k, v in record.scores.items() if k != JUDGED}
        if reply.get("status") == "ok" and record.sample is not None:
            extraction = Extraction(str(reply["answer"]), "judge", "ok")
            grade = get_grader(main.grade)(extraction, record.sample, main.context)
            reply["correct"] = grade.correct
            if reply.get("role") == "rescue":
                version = f"{main.version}+judge.{reply.get('prompt_version')}"
                scores[JUDGED] = Score(extraction, grade, version)
        return record.replace(scores=scores, judge=reply, time=now_iso())


def _censoring(scores: dict[str, Score]) -> str | None:
    main = scores.get(PRIMARY_SCORER)
    return censoring_class(main.extraction) if main is not None else None

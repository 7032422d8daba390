"""``evalkit rescore RUN --compare-graders ...``: a run's stored answers graded by several graders.

Reads the run folder through evalkit.store (the latest record of every slot, ``status=ok`` only)
and the TaskSpec each task ran under (its manifest); evalkit's verdict is the task's primary scorer
with the current code (as a rescore would give it), the other graders are those of
scoring/graders_compare.py. Writes ``disagreements.jsonl`` into the run folder; the records,
summary and manifest are left as they are (a diagnosis, not a rescore). No model call.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.run.grading import TaskScorer
from evalkit.run.rescore import manifest_specs
from evalkit.scoring.graders_compare import CompareItem, CompareResult, Verdict, compare_items, official_for
from evalkit.scoring.graders_compare import write_disagreements as _write
from evalkit.store import Record, RunFolder
from evalkit.types import ScoringContext

DISAGREEMENTS = "disagreements.jsonl"


def _kind(grade: str) -> str:
    return "math" if grade == "math" else ("choice" if grade.startswith("choice") else grade)


def _dataset_name(spec: Any) -> str:
    hf = getattr(spec.dataset, "hf", None)
    return str(getattr(hf, "path", "") or "")


def _item(rec: Record, scorer: TaskScorer, official: str | None) -> CompareItem:
    main = scorer.scorers[0]
    assert rec.sample is not None
    score = scorer.score(rec.completion, rec.sample)[main.name]
    return CompareItem(
        task=rec.task,
        sample_id=rec.sample_id,
        repeat=rec.repeat,
        kind=_kind(main.grade),
        completion=rec.completion,
        sample=rec.sample,
        evalkit=Verdict(score.extraction.answer, score.grade.correct),
        official=official,
        ctx=main.context if official is None else ScoringContext(stop=main.context.stop),
    )


def compare_run_graders(
    run_dir: str | os.PathLike[str], graders: Sequence[str], threads: int = 4
) -> tuple[CompareResult, Path]:
    """Grade a run's stored answers with ``graders``; (the result, the disagreements file)."""
    folder = RunFolder(run_dir).require()
    specs = manifest_specs(folder, folder.require_manifest())
    if not folder.records_path.is_file():
        raise EvalkitError(f"{folder.records_path}: no records to compare")
    scorers = {name: TaskScorer(spec) for name, spec in specs.items()}
    officials = {
        name: official_for(name, s.scorers[0].grade, [x.extract for x in s.scorers], _dataset_name(s.spec))
        for name, s in scorers.items()
    }
    records = [r for r in folder.current_records() if r.ok and r.task in scorers and r.sample is not None]
    records.sort(key=lambda r: (r.task, r.sample_id, r.repeat))
    items = [_item(r, scorers[r.task], officials[r.task]) for r in records]
    result = compare_items(items, graders, threads=threads)
    path = folder.path / DISAGREEMENTS
    _write(path, result)
    return result, path

"""Plan: expand tasks x samples x repeats into Requests with stable cache keys."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.errors import TaskError
from evalkit.tasks.data import LoadedRows
from evalkit.tasks.loader import LoadedTask
from evalkit.tasks.prompt import render
from evalkit.tasks.samples import load_fewshot_pool, select_fewshot
from evalkit.types import GenParams, Message, Request, Sample


def request_key(
    model_identity: str,
    messages: Sequence[Message] | None,
    prompt: str | None,
    params: GenParams,
    repeat: int,
    kind: str = "generate",
    continuations: Sequence[str] = (),
) -> str:
    """Stable hash of everything that can change a model's output, and nothing that cannot.

    In: model identity and revision, the rendered request, output-affecting parameters, repeat index.
    Out: concurrency, timeouts, retries, the task name (two tasks sending the same request share it).
    """
    payload = {
        "model": model_identity,
        "kind": kind,
        "messages": [[m.role, m.content] for m in messages] if messages is not None else None,
        "prompt": prompt,
        "params": params.to_dict(),
        "repeat": repeat,
        "continuations": list(continuations),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class TaskPlan:
    task: LoadedTask
    samples: list[Sample]
    requests: list[Request]
    data_source: str
    data_revision: str | None
    data_sha256: str
    n_available: int  # items in the dataset before --limit / split filters
    excluded: dict[str, int] = field(default_factory=dict)  # reason -> count


def option_continuations(spec: object, sample: Sample) -> tuple[str, ...]:
    """The continuations a ``loglikelihood_choice`` task scores for ``sample``: the prefix (e.g. the
    space after "Answer:") then each option's letter (letter form) or text (cloze form)."""
    likelihood = spec.likelihood  # type: ignore[attr-defined]
    options = sample.letters if likelihood.form == "letter" else tuple(sample.choices or ())
    if not options:
        raise TaskError(f"task {sample.task}: item {sample.id} has no options to score")
    return tuple(likelihood.prefix + o for o in options)


def plan_task(
    task: LoadedTask,
    model_identity: str,
    data_dir: Path | None,
    samples: list[Sample],
    loaded: LoadedRows,
    n_available: int,
    repeats: int | None = None,
    param_overrides: dict | None = None,
    repeats_by_item: Mapping[str, int] | None = None,
) -> TaskPlan:
    """Build one Request per (item, repeat) of ``samples`` (the task's items after any selection;
    ``loaded`` the rows they came from, ``n_available`` the items before selection), rendering prompts.

    ``repeats_by_item`` (sample id -> repeats) gives items their own number of repeats (adaptive
    sampling, evalkit.run.adaptive); items it does not name get ``repeats``. A
    ``loglikelihood_choice`` task gets loglikelihood requests carrying its options as continuations."""
    chosen = samples
    pool = load_fewshot_pool(task, data_dir)
    params = task.spec.generation.params(param_overrides)
    n_rep = repeats if repeats is not None else task.spec.generation.repeats
    likelihood = task.spec.kind == "loglikelihood_choice"
    reqs: list[Request] = []
    for s in chosen:
        messages, prompt = render(task, s, select_fewshot(task.spec, s, pool))
        conts = option_continuations(task.spec, s) if likelihood else ()
        kind = "loglikelihood" if likelihood else "generate"
        for r in range((repeats_by_item or {}).get(s.id, n_rep)):
            key = request_key(model_identity, messages, prompt, params, r, kind, conts)
            reqs.append(
                Request(
                    key=key,
                    task=task.spec.name,
                    sample_id=s.id,
                    repeat=r,
                    params=params,
                    kind=kind,
                    messages=messages,
                    prompt=prompt,
                    continuations=conts,
                )
            )
    return TaskPlan(task, list(chosen), reqs, loaded.source, loaded.revision, loaded.sha256, n_available)

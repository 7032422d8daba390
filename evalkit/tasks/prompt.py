"""Render a task's Jinja2 prompt for a sample (sandboxed; undefined variables are errors)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from evalkit.errors import TaskError
from evalkit.tasks.loader import LoadedTask
from evalkit.types import Message, Sample


@lru_cache(maxsize=1)
def _env() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False
    )


@lru_cache(maxsize=256)
def _template(src: str) -> jinja2.Template:
    return _env().from_string(src)


def sample_context(sample: Sample) -> dict[str, Any]:
    """Variables a template sees for one item (and for each few-shot exemplar)."""
    choices = list(sample.choices or ())
    letters = list(sample.letters)
    return {
        "id": sample.id,
        "question": sample.question,
        "answer": sample.answer,
        "choices": choices,
        "letters": letters,
        "options": [{"letter": ltr, "text": t} for ltr, t in zip(letters, choices, strict=True)],
        "date": sample.date.isoformat() if sample.date else None,
        "meta": dict(sample.meta),
        **{k: v for k, v in sample.meta.items() if k.isidentifier()},
    }


def render(
    task: LoadedTask, sample: Sample, exemplars: Sequence[Sample] = ()
) -> tuple[tuple[Message, ...] | None, str | None]:
    """Return (messages, None) for chat tasks or (None, prompt) for completion tasks."""
    p = task.spec.prompt
    ctx = sample_context(sample)
    ctx["fewshot"] = [sample_context(e) for e in exemplars]
    try:
        body = _template(p.template).render(ctx)
        system = _template(p.system).render(ctx) if p.system is not None else None
    except jinja2.UndefinedError as e:
        raise TaskError(
            f"{task.path}: prompt: {e.message} while rendering item {sample.id}; variables: "
            f"{', '.join(sorted(k for k in ctx if k != 'fewshot'))}, fewshot"
        ) from None
    except jinja2.TemplateError as e:
        raise TaskError(f"{task.path}: prompt: {e} while rendering item {sample.id}") from None
    if p.format == "completion":
        return None, body
    msgs = []
    if system:
        msgs.append(Message("system", system))
    msgs.append(Message("user", body))
    return tuple(msgs), None

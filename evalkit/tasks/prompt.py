"""Render a task's Jinja2 prompt for a sample (sandboxed; undefined variables are errors)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from evalkit.errors import TaskError
from evalkit.tasks.loader import LoadedTask
from evalkit.types import Message, Sample

MAX_REPEAT = 10_000  # 'x' * n and [..] * n in a prompt: more is a memory bomb, not a prompt
MAX_EXPONENT = 1_000


class PromptEnvironment(SandboxedEnvironment):
    """Jinja's sandbox (no attribute starting with _, no unsafe calls, range capped) that also
    refuses the arithmetic that would exhaust memory or time: a huge repeat or power."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is larger than a prompt needs ({MAX_EXPONENT})")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and n > MAX_REPEAT:
                    raise SecurityError(f"repeating a sequence {n} times (at most {MAX_REPEAT})")
        return super().call_binop(context, operator, left, right)


@lru_cache(maxsize=1)
def _env() -> SandboxedEnvironment:
    return PromptEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


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
    except Exception as e:  # the template's own arithmetic or filters (`question + 1`, a huge range)
        raise TaskError(
            f"{task.path}: prompt: {type(e).__name__}: {e} while rendering item {sample.id}"
        ) from None
    if p.format == "completion":
        return None, body
    msgs = []
    if system:
        msgs.append(Message("system", system))
    msgs.append(Message("user", body))
    return tuple(msgs), None

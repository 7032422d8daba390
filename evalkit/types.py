"""Core value types shared by every layer (DESIGN.md section 3).

Everything here is plain data: frozen dataclasses that serialise to JSON with ``to_dict``.
No module in this file imports anything from evalkit.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FinishReason = Literal["stop", "length", "error"]
RequestKind = Literal["generate", "loglikelihood"]
ErrorKind = Literal["rate_limit", "transient", "fatal"]
ExtractionStatus = Literal["ok", "no_answer", "truncated", "abstain"]


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class GenParams:
    """Generation parameters. Every field here can change the output, so all are in the cache key."""

    max_tokens: int = 1024
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "stop": list(self.stop)}


@dataclass(frozen=True)
class Sample:
    """One benchmark item."""

    id: str
    task: str
    question: str
    answer: str
    choices: tuple[str, ...] | None = None  # option letters come from len(choices): A..J for MMLU-Pro
    date: _dt.date | None = None  # first public availability (contest day)
    meta: Mapping[str, Any] = field(default_factory=dict)  # category, level, contest ...

    @property
    def letters(self) -> tuple[str, ...]:
        return tuple(chr(ord("A") + i) for i in range(len(self.choices or ())))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task": self.task,
            "question": self.question,
            "answer": self.answer,
            "choices": list(self.choices) if self.choices is not None else None,
            "date": self.date.isoformat() if self.date else None,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Sample:
        date = d.get("date")
        return cls(
            id=str(d["id"]),
            task=str(d["task"]),
            question=str(d["question"]),
            answer=str(d["answer"]),
            choices=tuple(d["choices"]) if d.get("choices") is not None else None,
            date=_dt.date.fromisoformat(date) if date else None,
            meta=dict(d.get("meta") or {}),
        )


@dataclass(frozen=True)
class Request:
    """What a backend is asked. ``key`` is the stable cache key (see evalkit.run.plan.request_key)."""

    key: str
    task: str
    sample_id: str
    repeat: int
    params: GenParams
    kind: RequestKind = "generate"
    messages: tuple[Message, ...] | None = None  # chat form
    prompt: str | None = None  # plain completion form
    continuations: tuple[str, ...] = ()  # loglikelihood only


@dataclass
class Usage:
    """Token counts as the server reports them; None where it does not report them."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None  # everything generated, reasoning included
    reasoning_tokens: int | None = None  # the reasoning part of completion_tokens


@dataclass
class Completion:
    text: str
    finish_reason: FinishReason
    usage: Usage = field(default_factory=Usage)
    reasoning: str | None = None  # reasoning kept apart from the answer text
    logprobs: tuple[float, ...] | None = None  # loglikelihood: one sum per continuation
    greedy: tuple[bool, ...] | None = None  # loglikelihood: is each continuation the greedy one
    token_logprobs: tuple[tuple[float, ...], ...] | None = None  # loglikelihood: per token, per continuation
    latency_s: float = 0.0
    error: str | None = None
    error_kind: ErrorKind | None = None
    attempts: int = 1

    @classmethod
    def failed(cls, message: str, kind: ErrorKind = "fatal", *, attempts: int = 1) -> Completion:
        """A request that got no answer: recorded as an error, never graded as a wrong answer."""
        return cls(text="", finish_reason="error", error=message, error_kind=kind, attempts=attempts)

    @property
    def ok(self) -> bool:
        return self.finish_reason != "error"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("logprobs", "greedy"):
            if d[k] is not None:
                d[k] = list(d[k])
        if d["token_logprobs"] is not None:
            d["token_logprobs"] = [list(t) for t in d["token_logprobs"]]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Completion:
        usage = d.get("usage") or {}
        return cls(
            text=d.get("text") or "",
            finish_reason=d.get("finish_reason", "stop"),
            usage=Usage(
                usage.get("prompt_tokens"), usage.get("completion_tokens"), usage.get("reasoning_tokens")
            ),
            reasoning=d.get("reasoning"),
            logprobs=tuple(d["logprobs"]) if d.get("logprobs") is not None else None,
            greedy=tuple(d["greedy"]) if d.get("greedy") is not None else None,
            token_logprobs=(
                tuple(tuple(t) for t in d["token_logprobs"]) if d.get("token_logprobs") is not None else None
            ),
            latency_s=float(d.get("latency_s") or 0.0),
            error=d.get("error"),
            error_kind=d.get("error_kind"),
            attempts=int(d.get("attempts") or 1),
        )


@dataclass(frozen=True)
class Extraction:
    """What an extractor found in a completion. ``answer`` is None unless status is ok."""

    answer: str | None
    method: str  # which rule matched, e.g. "answer_is", "boxed", "none"
    status: ExtractionStatus = "ok"


@dataclass(frozen=True)
class Grade:
    correct: bool
    reason: str = ""
    points: float | None = None  # benchmark-specific points (AMC), None when not applicable


class _Component(Protocol):
    """A named extractor or grader with its options (``tasks.spec.ComponentRef`` has this shape)."""

    @property
    def name(self) -> str: ...
    @property
    def options(self) -> Mapping[str, Any]: ...


class _Scorer(Protocol):
    """An extractor and a grader (``tasks.spec.ScorerSpec`` has this shape)."""

    @property
    def extract(self) -> _Component: ...
    @property
    def grade(self) -> _Component: ...


class _Generation(Protocol):
    @property
    def stop(self) -> Sequence[str]: ...


class _Task(_Scorer, Protocol):
    """What scoring reads of a task (``tasks.spec.TaskSpec`` has this shape): its stop sequences and
    its primary scorer (the top-level ``extract``/``grade``)."""

    @property
    def generation(self) -> _Generation: ...


@dataclass(frozen=True)
class ScoringContext:
    """The task-level settings an extractor and a grader see: the task's stop sequences (every
    extractor cuts there, even where the backend ignored them) and the options written under
    ``extract:``/``grade:`` in the YAML."""

    stop: tuple[str, ...] = ()
    extract_options: Mapping[str, Any] = field(default_factory=dict)
    grade_options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def for_scorer(cls, spec: _Task, scorer: _Scorer) -> ScoringContext:
        """The context one of a task's scorers runs with: the task's stop sequences and that
        scorer's component options.

        Every scoring path (runner, rescore, `evalkit grade --task`, `tasks check`, lm-eval export)
        builds its context here, so they cannot drift apart.
        """
        return cls(
            stop=tuple(spec.generation.stop),
            extract_options=dict(scorer.extract.options),
            grade_options=dict(scorer.grade.options),
        )

    @classmethod
    def for_task(cls, spec: _Task) -> ScoringContext:
        """The context of a task's primary scorer (its top-level ``extract``/``grade``)."""
        return cls.for_scorer(spec, spec)


@dataclass(frozen=True)
class BackendInfo:
    """Identity of a model behind a backend. ``identity`` goes into every cache key."""

    backend: str  # openai | hf | vllm | lmeval | replay
    model: str
    revision: str | None = None
    params_total: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # never holds secrets
    # Backend settings that change outputs but are neither the model nor its revision (an openai
    # server's URL and extra request fields, an hf model's dtype): part of the identity.
    variant: str | None = None

    @property
    def identity(self) -> str:
        base = f"{self.backend}:{self.model}@{self.revision or '-'}"
        return f"{base}#{self.variant}" if self.variant else base

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model": self.model,
            "revision": self.revision,
            "params_total": self.params_total,
            "extra": dict(self.extra),
            "variant": self.variant,
            "identity": self.identity,
        }

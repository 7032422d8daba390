"""Named extractors, graders and metrics. Task YAMLs refer to these names; no code lives in YAML.

An extractor is ``(completion, sample, ctx) -> Extraction`` and a grader is
``(extraction, sample, ctx) -> Grade``; both are pure. ``ctx`` carries the task-level settings
(stop sequences, the options written under ``extract:``/``grade:`` in the YAML).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from evalkit.types import Completion, Extraction, Grade, Sample


@dataclass(frozen=True)
class ScoringContext:
    stop: tuple[str, ...] = ()
    extract_options: Mapping[str, Any] = field(default_factory=dict)
    grade_options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def for_task(cls, spec: Any) -> ScoringContext:
        """The context a task (a TaskSpec) is scored with: its stop sequences and component options.

        Every scoring path (runner, rescore, `evalkit grade --task`, `tasks check`, lm-eval export)
        builds its context here, so they cannot drift apart.
        """
        return cls(
            stop=tuple(spec.generation.stop),
            extract_options=dict(spec.extract.options),
            grade_options=dict(spec.grade.options),
        )


Extractor = Callable[[Completion, Sample, ScoringContext], Extraction]
Grader = Callable[[Extraction, Sample, ScoringContext], Grade]

EXTRACTORS: dict[str, Extractor] = {}
GRADERS: dict[str, Grader] = {}
# Option names each extractor/grader accepts, so a YAML typo is caught at validation time.
EXTRACTOR_OPTIONS: dict[str, frozenset[str]] = {}
GRADER_OPTIONS: dict[str, frozenset[str]] = {}


def register_extractor(name: str, options: tuple[str, ...] = ()) -> Callable[[Extractor], Extractor]:
    def deco(fn: Extractor) -> Extractor:
        EXTRACTORS[name] = fn
        EXTRACTOR_OPTIONS[name] = frozenset(options)
        return fn

    return deco


def register_grader(name: str, options: tuple[str, ...] = ()) -> Callable[[Grader], Grader]:
    def deco(fn: Grader) -> Grader:
        GRADERS[name] = fn
        GRADER_OPTIONS[name] = frozenset(options)
        return fn

    return deco


def _load_builtins() -> None:
    # Importing the modules registers their components.
    from evalkit.scoring import extract, grade, metrics  # noqa: F401


def get_extractor(name: str) -> Extractor:
    _load_builtins()
    try:
        return EXTRACTORS[name]
    except KeyError:
        raise KeyError(f"unknown extractor {name!r}; known: {', '.join(sorted(EXTRACTORS))}") from None


def get_grader(name: str) -> Grader:
    _load_builtins()
    try:
        return GRADERS[name]
    except KeyError:
        raise KeyError(f"unknown grader {name!r}; known: {', '.join(sorted(GRADERS))}") from None


def known_extractors() -> dict[str, frozenset[str]]:
    _load_builtins()
    return dict(EXTRACTOR_OPTIONS)


def known_graders() -> dict[str, frozenset[str]]:
    _load_builtins()
    return dict(GRADER_OPTIONS)


def scorer_version(extractor: str, grader: str) -> str:
    """The version of the code that turns an answer into a grade (stored with every grade)."""
    return f"{extractor}.1+{grader}.1"


def score_completion(
    completion: Completion, sample: Sample, extractor: str, grader: str, ctx: ScoringContext
) -> tuple[Extraction, Grade]:
    """The one scoring path used by the runner, ``evalkit grade`` and ``evalkit rescore``."""
    extraction = get_extractor(extractor)(completion, sample, ctx)
    grade = get_grader(grader)(extraction, sample, ctx)
    return extraction, grade

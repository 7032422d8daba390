"""The tables of named extractors, graders and metrics, and the decorators that fill them.

Task YAMLs refer to components by name; no code lives in YAML. An extractor is
``(completion, sample, ctx) -> Extraction`` and a grader ``(extraction, sample, ctx) -> Grade``;
both are pure. A metric is ``(rows, options) -> MetricResult`` over graded records. This module
imports no component: the built-ins register themselves when ``evalkit.scoring`` is imported
(its ``__init__`` imports ``extractors``, ``grade`` and ``metrics``, and any import of a
submodule runs the package ``__init__`` first).

Versions. Every extractor and grader carries an integer ``version``, starting at 1. Bump it
whenever a change to the component can change any grade: a new extraction tier, a different
precedence, a normalisation, a tolerance, a default option. Refactors that cannot change a
result keep the version. ``scorer_version(extract, grade)`` ("choice.1+choice.1") is stored with
every grade, so a rescore or a resumed run never silently mixes grades from old and new code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from evalkit.types import Completion, Extraction, Grade, Sample, ScoringContext

if TYPE_CHECKING:  # metrics.py imports this module; the types are only named here
    from evalkit.scoring.metrics import MetricResult, ScoredRow

Extractor = Callable[[Completion, Sample, ScoringContext], Extraction]
Grader = Callable[[Extraction, Sample, ScoringContext], Grade]
Metric = Callable[["Sequence[ScoredRow]", Mapping[str, Any]], "MetricResult"]
# A model output stating an answer (a letter or a value) the way the extractor reads it; ``boxed``
# says the task's prompt asks for ``\boxed{}``. `evalkit tasks check` scores these.
ExampleAnswer = Callable[[str, bool], str]
AnswerKind = Literal["letter", "value"]


@dataclass(frozen=True)
class ExtractorEntry:
    fn: Extractor
    options: frozenset[str]  # option names it accepts, so a YAML typo is caught at validation
    version: int
    example_answer: ExampleAnswer
    answer_kind: AnswerKind  # does it extract an option letter or a value?


@dataclass(frozen=True)
class GraderEntry:
    fn: Grader
    options: frozenset[str]
    version: int


EXTRACTORS: dict[str, ExtractorEntry] = {}
GRADERS: dict[str, GraderEntry] = {}
METRICS: dict[str, Metric] = {}
# Numbered metric families: ``pass@8`` is METRIC_FAMILIES["pass"]("pass@8"), for any K.
METRIC_FAMILIES: dict[str, Callable[[str], Metric]] = {}
# ``pass@8`` is family "pass", ``pass^8`` (all of k correct) family "pass^".
_FAMILY_RE = re.compile(r"(?P<family>[a-z_]+(?:@|\^))(?P<k>[1-9]\d*)")


def _check_version(kind: str, name: str, version: int) -> None:
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"{kind} {name!r}: version must be an integer >= 1, got {version!r}")


def register_extractor(
    name: str,
    *,
    example_answer: ExampleAnswer,
    options: tuple[str, ...] = (),
    version: int = 1,
    answer_kind: AnswerKind = "value",
) -> Callable[[Extractor], Extractor]:
    _check_version("extractor", name, version)

    def deco(fn: Extractor) -> Extractor:
        EXTRACTORS[name] = ExtractorEntry(fn, frozenset(options), version, example_answer, answer_kind)
        return fn

    return deco


def register_grader(
    name: str, *, options: tuple[str, ...] = (), version: int = 1
) -> Callable[[Grader], Grader]:
    _check_version("grader", name, version)

    def deco(fn: Grader) -> Grader:
        GRADERS[name] = GraderEntry(fn, frozenset(options), version)
        return fn

    return deco


def register_metric(name: str) -> Callable[[Metric], Metric]:
    def deco(fn: Metric) -> Metric:
        METRICS[name] = fn
        return fn

    return deco


def register_metric_family(family: str) -> Callable[[Callable[[str], Metric]], Callable[[str], Metric]]:
    """Register a maker of ``FAMILY@K`` metrics (``metrics: [pass@8]`` validates for any K)."""

    def deco(make: Callable[[str], Metric]) -> Callable[[str], Metric]:
        METRIC_FAMILIES[family] = make
        return make

    return deco


def extractor_entry(name: str) -> ExtractorEntry:
    try:
        return EXTRACTORS[name]
    except KeyError:
        raise KeyError(f"unknown extractor {name!r}; known: {', '.join(sorted(EXTRACTORS))}") from None


def grader_entry(name: str) -> GraderEntry:
    try:
        return GRADERS[name]
    except KeyError:
        raise KeyError(f"unknown grader {name!r}; known: {', '.join(sorted(GRADERS))}") from None


def get_extractor(name: str) -> Extractor:
    return extractor_entry(name).fn


def get_grader(name: str) -> Grader:
    return grader_entry(name).fn


def known_extractors() -> dict[str, frozenset[str]]:
    """Extractor name -> the option names it accepts."""
    return {name: e.options for name, e in EXTRACTORS.items()}


def known_graders() -> dict[str, frozenset[str]]:
    """Grader name -> the option names it accepts."""
    return {name: g.options for name, g in GRADERS.items()}


def known_metrics() -> list[str]:
    """The registered metric names, then the numbered families (``pass@K`` ...)."""
    return sorted(METRICS) + [f"{f}@K" for f in sorted(METRIC_FAMILIES)]


def get_metric(name: str) -> Metric:
    """A registered metric, or one of a numbered family: ``pass@K``, ``maj@K``, ``mean@K`` (K >= 1)."""
    if name in METRICS:
        return METRICS[name]
    m = _FAMILY_RE.fullmatch(name)
    family = m.group("family").removesuffix("@") if m else None
    if family in METRIC_FAMILIES:
        return METRIC_FAMILIES[family](name)
    raise KeyError(f"unknown metric {name!r}; known: {', '.join(known_metrics())}")


def is_metric(name: str) -> bool:
    try:
        get_metric(name)
    except KeyError:
        return False
    return True


def scorer_version(extract_name: str, grade_name: str) -> str:
    """The versions of an extractor and a grader, e.g. ``"choice.1+choice.1"``: stored with every
    grade, so grades from different scoring code are never mixed unnoticed."""
    extract_version = extractor_entry(extract_name).version
    return f"{extract_name}.{extract_version}+{grade_name}.{grader_entry(grade_name).version}"


def score_completion(
    completion: Completion, sample: Sample, extractor: str, grader: str, ctx: ScoringContext
) -> tuple[Extraction, Grade]:
    """The one scoring path used by the runner, ``evalkit grade`` and ``evalkit rescore``."""
    extraction = get_extractor(extractor)(completion, sample, ctx)
    grade = get_grader(grader)(extraction, sample, ctx)
    return extraction, grade

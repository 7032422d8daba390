"""TaskSpec: the strict schema of a task YAML (DESIGN.md section 4). Unknown keys are errors."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evalkit.store import PRIMARY_SCORER  # the scorer made of the top-level extract/grade/metrics
from evalkit.types import GenParams

NAME_RE = r"^[a-z][a-z0-9_]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HubDataset(Strict):
    path: str = Field(description="hub dataset id, ORG/NAME")
    name: str | None = Field(None, description="dataset configuration name")
    revision: str = Field(description="pinned commit sha or tag; required for reproducibility")

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", v):
            raise ValueError("must be a hub dataset id of the form ORG/NAME")
        return v


class GenerateSpec(Strict):
    """Items generated from a template file (fresh problems, evalkit.tasks.generated)."""

    template: str = Field(
        description="template file: next to the YAML, in <data-dir>/local/, or a built-in one"
    )
    n: int = Field(50, ge=1, le=100_000, description="how many items")
    seed: int = Field(0, description="the same seed, n and date give the same items")
    date: dt.date | None = Field(
        None, description="date every item carries; default: the day of generation (or $EVALKIT_FRESH_DATE)"
    )


def _check_files(files: list[str] | None) -> None:
    if files is not None:
        if not files:
            raise ValueError("'files' must list at least one file")
        for f in files:
            if not re.search(r"\.(jsonl|json|csv|parquet)$", f):
                raise ValueError(f"file {f!r}: supported formats are .jsonl, .json, .csv, .parquet")


SOURCE_COLUMN = "dataset_source"  # the column every row of a multi-source dataset gets: where it came from


class SourceSpec(Strict):
    """One source of a multi-source dataset (``dataset.sources``): a hub dataset or local files, with
    its rows brought to the task's column names. Each row gets a ``dataset_source`` column naming it."""

    hf: HubDataset | None = None
    files: list[str] | None = Field(None, description="data files, next to the YAML or in <data-dir>/local/")
    split: str = Field("test", description="hub split (ignored for files)")
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="new column -> an existing column, or a template such as 'aime_2026_{problem_idx}'",
    )
    set: dict[str, Any] = Field(default_factory=dict, description="columns given one value on every row")

    @model_validator(mode="after")
    def _one_kind(self) -> SourceSpec:
        if (self.hf is None) == (self.files is None):
            raise ValueError("each entry of 'sources' gives exactly one of 'hf' or 'files'")
        _check_files(self.files)
        for name, value in self.columns.items():
            try:
                value.format_map(_NameProbe())
            except (ValueError, IndexError) as e:
                raise ValueError(f"columns.{name}: {value!r} is not a valid template ({e})") from None
        return self

    def describe(self) -> str:
        if self.hf is not None:
            return f"hf {self.hf.path}@{self.hf.revision} [{self.split}]"
        return "files " + ", ".join(self.files or [])


class _NameProbe(dict):
    """Accepts any field name, so a template's syntax is checked without a row."""

    def __missing__(self, key: str) -> str:
        return ""


class DatasetSpec(Strict):
    """Where items come from: a hub dataset (``hf``), local files (``files``), templates (``generate``)
    or the union of several hub datasets and files (``sources``), each row keeping its source."""

    hf: HubDataset | None = None
    files: list[str] | None = Field(
        None, description="data files, found next to the YAML or in <data-dir>/local/"
    )
    generate: GenerateSpec | None = Field(None, description="items generated from templates (fresh problems)")
    sources: list[SourceSpec] | None = Field(
        None, description="several sources whose rows are concatenated in order (then deduplicated)"
    )
    split: str = Field("test", description="hub split to evaluate (ignored for files)")
    dedupe_on: str | None = Field(
        None,
        description="column whose repeated values mark the same problem; only the first such row is kept",
    )

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSpec:
        if sum(x is not None for x in (self.hf, self.files, self.generate, self.sources)) != 1:
            raise ValueError(
                "give exactly one of 'hf' (a hub dataset), 'files' (local data files), 'generate' "
                "(items generated from templates) or 'sources' (a list of hub datasets and files)"
            )
        _check_files(self.files)
        if self.sources is not None and not self.sources:
            raise ValueError("'sources' must list at least one source")
        return self


class DateRule(Strict):
    """Dates items from one of their fields: the first rule whose pattern matches wins."""

    match: str = Field(description="regular expression searched in the field's value")
    date: dt.date

    @field_validator("match")
    @classmethod
    def _regex(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"not a valid regular expression: {e}") from None
        return v


class DateFrom(Strict):
    field: str
    rules: list[DateRule] = Field(min_length=1)


class FieldMap(Strict):
    """Which dataset column feeds which Sample field."""

    id: str | None = Field(None, description="column holding a stable item id; default: row index")
    question: str
    answer: str
    choices: str | None = Field(
        None, description="column holding a list (or a letter->text mapping) of options"
    )
    answer_index: bool = Field(
        False, description="the answer column holds a 0-based option index, not a letter"
    )
    drop_choices: list[str] = Field(
        default_factory=list, description="option texts to drop, e.g. 'N/A' padding"
    )
    date: str | None = Field(None, description="column holding an ISO date")
    date_from: DateFrom | None = Field(None, description="date items by matching a column against patterns")
    meta: dict[str, str] = Field(default_factory=dict, description="extra metadata: name -> column")

    @model_validator(mode="after")
    def _one_date(self) -> FieldMap:
        if self.date and self.date_from:
            raise ValueError("give at most one of 'date' and 'date_from'")
        if self.answer_index and not self.choices:
            raise ValueError("'answer_index: true' needs a 'choices' column")
        return self


class FewShot(Strict):
    k: int = Field(ge=0, le=64)
    split: str | None = Field(None, description="hub split the exemplars come from (hub datasets)")
    files: list[str] | None = Field(None, description="files the exemplars come from (local datasets)")
    same: str | None = Field(
        None, description="meta field that exemplars must share with the item, e.g. category"
    )
    order: Literal["first", "random"] = Field(
        "first", description="first k in file order, or k drawn with the seed"
    )
    seed: int = 1234


class PromptSpec(Strict):
    format: Literal["chat", "completion"] = "chat"
    system: str | None = Field(None, description="Jinja2 system turn (chat only)")
    template: str = Field(description="Jinja2 user turn (chat) or full prompt (completion)")
    fewshot: FewShot | None = None

    @model_validator(mode="after")
    def _system_chat(self) -> PromptSpec:
        if self.system is not None and self.format != "chat":
            raise ValueError("'system' is only allowed with format: chat")
        return self


class ComponentRef(Strict):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)


def _component_shorthand(v: Any) -> Any:
    # `extract: choice` is shorthand for `extract: {name: choice}`.
    return {"name": v} if isinstance(v, str) else v


class ScorerSpec(Strict):
    """One way of scoring a task's answers: an extractor, a grader and metrics. A task's top-level
    ``extract``/``grade``/``metrics`` are its primary scorer (named "main"); ``scorers:`` lists
    more, each scoring the same completions (one request set, several scorings)."""

    name: str = Field(pattern=NAME_RE, description="a name unique within the task, not 'main'")
    extract: ComponentRef
    grade: ComponentRef
    metrics: list[str] = Field(default_factory=lambda: ["accuracy"], min_length=1)

    @field_validator("extract", "grade", mode="before")
    @classmethod
    def _component(cls, v: Any) -> Any:
        return _component_shorthand(v)

    @field_validator("name")
    @classmethod
    def _not_primary(cls, v: str) -> str:
        if v == PRIMARY_SCORER:
            raise ValueError(
                f"'{PRIMARY_SCORER}' names the task's top-level extract/grade; pick another name"
            )
        return v


class GenerationSpec(Strict):
    max_tokens: int = Field(1024, ge=1, le=1_000_000)
    temperature: float = Field(0.0, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = 1234
    stop: list[str] = Field(default_factory=list)
    repeats: int = Field(1, ge=1, le=1000)

    def params(self, overrides: dict[str, Any] | None = None) -> GenParams:
        """GenParams for requests, with command-line overrides (max_tokens, temperature, ...) applied."""
        vals: dict[str, Any] = {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "stop": tuple(self.stop),
        }
        for k, v in (overrides or {}).items():
            if v is not None:
                vals[k] = tuple(v) if k == "stop" else v
        return GenParams(**vals)


class LikelihoodSpec(Strict):
    """How a ``kind: loglikelihood_choice`` task scores its options: each option's continuation
    after the prompt is scored by the model's log-likelihood (no text is generated)."""

    form: Literal["letter", "cloze"] = Field(
        description="letter: the continuations are the option letters (after a prompt listing the "
        "options); cloze: the option texts themselves"
    )
    prefix: str = Field(" ", description="text put before each continuation, e.g. the space after 'Answer:'")


class ReportSpec(Strict):
    breakdown: list[str] = Field(default_factory=list, description="meta fields to break scores down by")


class TaskSpec(Strict):
    name: str = Field(pattern=NAME_RE)
    description: str = ""
    version: int = Field(ge=1)
    dataset: DatasetSpec
    fields: FieldMap
    date: dt.date | None = Field(None, description="task-level date for items that carry none")
    prompt: PromptSpec
    kind: Literal["generate", "loglikelihood_choice"] = Field(
        "generate", description="generate: the model writes an answer; loglikelihood_choice: options scored"
    )
    likelihood: LikelihoodSpec | None = Field(None, description="with kind: loglikelihood_choice")
    extract: ComponentRef
    grade: ComponentRef
    metrics: list[str] = Field(default_factory=lambda: ["accuracy"], min_length=1)
    scorers: list[ScorerSpec] = Field(
        default_factory=list, description="more scorers of the same completions, beside the top-level one"
    )
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    report: ReportSpec = Field(default_factory=ReportSpec)

    @field_validator("extract", "grade", mode="before")
    @classmethod
    def _component(cls, v: Any) -> Any:
        return _component_shorthand(v)

    @field_validator("scorers")
    @classmethod
    def _unique_scorer_names(cls, v: list[ScorerSpec]) -> list[ScorerSpec]:
        names = [s.name for s in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"scorer names must be unique within the task: {', '.join(dup)} repeated")
        return v

    def all_scorers(self) -> list[ScorerSpec]:
        """The primary scorer (the top-level extract/grade/metrics, named "main"), then ``scorers``."""
        # model_construct: the fields are validated already, and "main" is refused only for the
        # extra scorers a YAML lists.
        primary = ScorerSpec.model_construct(
            name=PRIMARY_SCORER, extract=self.extract, grade=self.grade, metrics=list(self.metrics)
        )
        return [primary, *self.scorers]

    @model_validator(mode="after")
    def _likelihood(self) -> TaskSpec:
        if (self.kind == "loglikelihood_choice") != (self.likelihood is not None):
            raise ValueError("'likelihood' goes with, and is required by, kind: loglikelihood_choice")
        if self.likelihood is None:
            return self
        if not self.fields.choices:
            raise ValueError("kind: loglikelihood_choice needs fields.choices (the options to score)")
        for s in self.all_scorers():
            # The extractor normalises by the continuations' lengths: it must know their form.
            if (
                s.extract.name != "loglikelihood"
                or s.extract.options.get("form", "letter") != self.likelihood.form
            ):
                raise ValueError(
                    f"scorer {s.name}: a loglikelihood_choice task scores with extract: "
                    f"{{name: loglikelihood, options: {{form: {self.likelihood.form}}}}}"
                )
        return self

    @model_validator(mode="after")
    def _fewshot_source(self) -> TaskSpec:
        fs = self.prompt.fewshot
        if fs is not None and fs.k > 0:
            if self.dataset.hf is not None and fs.split is None:
                raise ValueError(
                    "prompt.fewshot: give 'split' (a hub split other than the evaluated one, "
                    "e.g. validation) so exemplars never come from the test items"
                )
            if self.dataset.sources is not None:
                raise ValueError("prompt.fewshot: not supported with dataset.sources; use one source")
            if self.dataset.hf is None and fs.files is None:
                raise ValueError("prompt.fewshot: give 'files' holding the exemplars")
            if fs.same is not None and fs.same not in self.fields.meta:
                raise ValueError(f"prompt.fewshot.same: {fs.same!r} is not a field under fields.meta")
        for b in self.report.breakdown:
            if b not in self.fields.meta and b != "date":
                raise ValueError(f"report.breakdown: {b!r} is not a field under fields.meta")
        return self

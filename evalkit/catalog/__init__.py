"""Model catalog: parameter counts, dates and training cutoffs, each with its source; published scores
are in :mod:`evalkit.catalog.published`.

``models.yaml`` is the one place parameter counts come from (published score rows carry none).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

CATALOG_FILE = Path(__file__).with_name("models.yaml")
NO_SOURCE = "catalog (no source recorded)"


@dataclass(frozen=True)
class Cutoff:
    """The date a post-cutoff split starts after, which figure it is, where it comes from, for which model.

    ``figure`` is ``knowledge_cutoff`` or ``release_date`` (the catalog field the date is) or
    ``command_line`` (``--cutoff``). ``fallback`` is True when the release date stands in for an
    unpublished training cutoff. ``to_dict`` is what run manifests record (part of the run id).
    """

    date: dt.date
    figure: str
    source: str  # the catalog's source text, or "--cutoff on the command line"
    model: str | None  # catalog id, when the model is in the catalog
    fallback: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "text": self.source,
            "catalog_id": self.model,
            "fallback_to_release_date": self.fallback,
        }

    def describe(self) -> str:
        who = self.model or "the model"
        if self.figure == "command_line":
            return f"cutoff {self.date} from --cutoff"
        if self.fallback:
            return (
                f"{who} has no published training cutoff; using its release date {self.date} "
                f"(source: {self.source})"
            )
        return f"{who} training cutoff {self.date} (source: {self.source})"


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="short evalkit id, also usable as --model")
    name: str = Field(description="display name")
    aliases: list[str] = Field(default_factory=list)
    hub_id: str | None = None
    spec: str | None = Field(None, description="backend spec --model resolves to, e.g. hf:ORG/NAME")
    params_total: float | None = Field(None, description="total parameters, in billions")
    params_active: float | None = Field(
        None, description="active parameters per token (mixture-of-experts), billions"
    )
    release_date: dt.date | None = None
    knowledge_cutoff: dt.date | None = Field(
        None, description="training-data cutoff; a month means its last day"
    )
    sources: dict[str, str] = Field(default_factory=dict, description="figure name -> where it comes from")
    notes: str = ""
    pull: dict[str, Any] | None = Field(
        None, description="offline source for `evalkit models pull` (see catalog/pull.py)"
    )

    def cutoff(self) -> Cutoff | None:
        """The date a post-cutoff split starts after: the training cutoff, else the release date
        (``fallback``), else None when the catalog has neither."""
        if self.knowledge_cutoff is not None:
            source = self.sources.get("knowledge_cutoff", NO_SOURCE)
            return Cutoff(self.knowledge_cutoff, "knowledge_cutoff", source, self.id)
        if self.release_date is not None:
            source = self.sources.get("release_date", NO_SOURCE)
            return Cutoff(self.release_date, "release_date", source, self.id, fallback=True)
        return None


@lru_cache(maxsize=4)
def load_models(path: str | None = None) -> tuple[ModelEntry, ...]:
    data: Any = yaml.safe_load(Path(path or CATALOG_FILE).read_text(encoding="utf-8")) or {}
    return tuple(ModelEntry.model_validate(m) for m in data.get("models", []))


def find_model(name: str) -> ModelEntry | None:
    """Look a model up by id, alias, hub id or display name (case-insensitive)."""
    key = name.strip().lower()
    for m in load_models():
        names = {m.id, m.name, *(m.aliases), *([m.hub_id] if m.hub_id else [])}
        if key in {n.lower() for n in names}:
            return m
    return None


def match(names: Iterable[str | None]) -> ModelEntry | None:
    """The catalog entry of the first name the catalog knows, tried whole and then by its last path
    segment (``org/Model``, ``/models/Model/`` -> ``Model``); blank names are skipped.

    The one matcher for "which catalog model is this": run summaries, backend specs and ``--model``
    values all come here with the names they carry, most specific first.
    """
    for name in names:
        if not name:
            continue
        whole = str(name).strip()
        for candidate in dict.fromkeys((whole, whole.rstrip("/").rsplit("/", 1)[-1])):
            entry = find_model(candidate)
            if entry is not None:
                return entry
    return None

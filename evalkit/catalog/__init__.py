"""Model catalog: parameter counts, dates and training cutoffs, each with its source.

``models.yaml`` is the one place parameter counts come from (published score rows carry none).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

CATALOG_FILE = Path(__file__).with_name("models.yaml")


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

    def cutoff(self) -> tuple[dt.date | None, str]:
        """The date a post-cutoff split starts after, and which figure it is."""
        if self.knowledge_cutoff is not None:
            return self.knowledge_cutoff, "knowledge_cutoff"
        if self.release_date is not None:
            return self.release_date, "release_date (no published training cutoff)"
        return None, "none"


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

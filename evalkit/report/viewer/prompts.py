"""Prompts for the viewer: re-rendered from the manifest's task spec and each record's stored item.

Records keep no prompt text. The prompt is rendered again exactly as the run did
(:func:`evalkit.tasks.prompt.render` with the exemplars :func:`evalkit.tasks.samples.select_fewshot`
picks), and checked against the record's request key: a key that matches proves the text is what
the model was sent. Few-shot pools need the task's data; when it cannot be read the viewer shows the
item's question and says why the prompt is missing.

Long prompts mostly repeat one another (MMLU-Pro's 5-shot prefix is the same for every item of a
category), so :func:`share_prefixes` stores a long common prefix once per group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.store import Record
from evalkit.types import GenParams, Sample

MIN_SHARED = 200  # characters: shorter common prefixes are not worth a lookup
Messages = list[tuple[str, str]]  # (role, text); a completion prompt is one ("prompt", text)


@dataclass
class Rendered:
    messages: Messages | None
    note: str = ""  # why there is no prompt, or a caveat about it
    verified: bool | None = None  # the request key matches the re-rendered prompt


@dataclass
class PromptRenderer:
    """Renders one task's prompts for records of one run."""

    task: str
    entry: Mapping[str, Any]  # the manifest's tasks[task]
    identity: str  # the backend identity the request keys were made with
    data_dir: Path | None
    problem: str = ""  # why prompts cannot be rendered at all
    _loaded: Any = None
    _pool: list[Sample] = field(default_factory=list)
    _params: GenParams | None = None

    def __post_init__(self) -> None:
        from evalkit.tasks.loader import LoadedTask
        from evalkit.tasks.spec import TaskSpec

        spec = self.entry.get("spec")
        if not isinstance(spec, Mapping):
            self.problem = "the manifest holds no task spec for this task"
            return
        try:
            loaded = LoadedTask(TaskSpec.model_validate(spec), Path(str(self.entry.get("path") or ".")), "")
        except Exception as e:  # a spec from another evalkit version may not validate
            self.problem = f"the manifest's task spec does not load ({str(e).splitlines()[0][:200]})"
            return
        self._loaded = loaded
        self._params = _params(self.entry.get("generation"))
        fs = loaded.spec.prompt.fewshot
        if fs is not None and fs.k > 0:
            self._pool = self._load_pool(loaded)

    def _load_pool(self, loaded: Any) -> list[Sample]:
        from evalkit.tasks.data import mirror_path, set_offline
        from evalkit.tasks.samples import load_fewshot_pool

        ds, fs = loaded.spec.dataset, loaded.spec.prompt.fewshot
        if ds.hf is not None:
            has_mirror = self.data_dir is not None and mirror_path(
                self.data_dir, ds.hf.path, ds.hf.name, fs.split
            )
            if not has_mirror:
                set_offline()  # the viewer reads local data only (a mirror or the hub's local cache)
        try:
            return load_fewshot_pool(loaded, self.data_dir)
        except EvalkitError as e:
            first = str(e).splitlines()[0][:300]
            self.problem = f"its few-shot exemplars need the task's data, which could not be read ({first})"
            return []

    def render(self, rec: Record) -> Rendered:
        from evalkit.run.plan import request_key
        from evalkit.tasks.prompt import render
        from evalkit.tasks.samples import select_fewshot

        if self.problem or self._loaded is None:
            return Rendered(None, f"the prompt could not be rendered: {self.problem}")
        if rec.sample is None:
            return Rendered(None, "the prompt could not be rendered: the record keeps no item")
        spec = self._loaded.spec
        try:
            messages, prompt = render(self._loaded, rec.sample, select_fewshot(spec, rec.sample, self._pool))
        except EvalkitError as e:
            return Rendered(None, f"the prompt could not be rendered: {str(e).splitlines()[0][:300]}")
        verified = None
        if self._params is not None:
            verified = request_key(self.identity, messages, prompt, self._params, rec.repeat) == rec.key
        out = [("prompt", prompt or "")] if messages is None else [(m.role, m.content) for m in messages]
        note = (
            ""
            if verified in (True, None)
            else "re-rendered from the task spec; it may differ from what was sent"
        )
        return Rendered(out, note, verified)


def _params(d: Any) -> GenParams | None:
    if not isinstance(d, Mapping):
        return None
    try:
        return GenParams(**{**d, "stop": tuple(d.get("stop") or ())})
    except TypeError:
        return None


def common_prefix(texts: Sequence[str]) -> str:
    """The longest common prefix, cut back to the end of a line when it has one."""
    if not texts:
        return ""
    lo, hi = min(texts), max(texts)
    n = 0
    for a, b in zip(lo, hi, strict=False):
        if a != b:
            break
        n += 1
    shared = lo[:n]
    cut = shared.rfind("\n")
    return shared[: cut + 1] if cut >= 0 else shared


def share_prefixes(texts: Sequence[str | None], groups: Sequence[str]) -> tuple[list[str], list[int]]:
    """Long common prefixes of ``texts`` within each group (one group per distinct value of
    ``groups``), and for each text the index of its prefix (-1: none). A group of one text shares
    nothing. Callers strip ``len(prefixes[i])`` characters from each text."""
    members: dict[str, list[int]] = {}
    for i, (t, g) in enumerate(zip(texts, groups, strict=True)):
        if t is not None:
            members.setdefault(g, []).append(i)
    prefixes: list[str] = []
    which = [-1] * len(texts)
    for idx in members.values():
        if len(idx) < 2:
            continue
        p = common_prefix([texts[i] or "" for i in idx])
        if len(p) < MIN_SHARED:
            continue
        prefixes.append(p)
        for i in idx:
            which[i] = len(prefixes) - 1
    return prefixes, which

"""Post-cutoff splits: keep only the items a model cannot have seen in training (or only those it could).

An item's ``date`` is its first public availability (the contest day). A model's cutoff is its
published training-data cutoff from the catalog, else its release date (said so in the output), else
``--cutoff`` from the command line. With a margin of M days:

- post-cutoff keeps items dated strictly after ``cutoff + M days`` (items in the margin are dropped:
  data collected "up to June" often includes a few later weeks);
- pre-cutoff keeps items dated on or before the cutoff;
- items without a date belong to neither and are counted.

``--exclude FILE`` removes listed items (one id per line, ``task/id`` or a bare ``id``), for example the
items ``evalkit contamination ngram`` flagged. Everything that defines the selection goes into
``filter_info`` (recorded in the manifest and part of the run id); the per-task counts go into the
manifest under ``tasks.<name>.data.excluded``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from evalkit.catalog import Cutoff, ModelEntry, match
from evalkit.errors import EvalkitError
from evalkit.tasks.loader import LoadedTask
from evalkit.types import Sample

Split = Literal["all", "pre-cutoff", "post-cutoff"]
SPLITS: tuple[str, ...] = ("all", "pre-cutoff", "post-cutoff")
Side = Literal["pre", "post", "margin", "undated"]
# Below this many post-cutoff items a 95% interval on accuracy is wider than about +-15 points.
MIN_POST_ITEMS = 30

SampleFilter = Callable[[LoadedTask, list[Sample]], tuple[list[Sample], dict[str, Any]]]
Warn = Callable[[str], None]


def warn_stderr(message: str) -> None:
    """Default sink for warnings: one line on stderr (the CLI's convention for notes)."""
    sys.stderr.write(message.rstrip("\n") + "\n")


def parse_date(value: str | dt.date, option: str = "--cutoff") -> dt.date:
    """A YYYY-MM-DD date, with an error that says how to write it."""
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise EvalkitError(
            f"{option} {value!r}: write a date as YYYY-MM-DD, e.g. {option} 2024-06-30"
        ) from None


def _candidate_names(model_spec: str) -> list[str]:
    """Names under which a backend spec's model may be in the catalog, most specific first."""
    from evalkit.backends import parse_spec

    s = model_spec.strip()
    names = [s]
    try:
        spec = parse_spec(s)
    except EvalkitError:  # not a spec: a bare model name, looked up as it is
        spec = None
    if spec is not None:
        names += spec.model_names()
        if spec.kind == "replay":
            names += _replay_names(Path(spec.target))
    out: list[str] = []
    for n in names:
        for cand in (n, n.rstrip("/").rsplit("/", 1)[-1]):
            if cand and cand not in out:
                out.append(cand)
    return out


def _replay_names(run_dir: Path) -> list[str]:
    """The model of a replayed run, from its summary or manifest."""
    names = []
    for fname, keys in (("summary.json", ("alias", "spec", "model")), ("manifest.json", ("model_spec",))):
        p = run_dir / fname
        if not p.is_file():
            continue
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        holder = data.get("model", {}) if fname == "summary.json" else data
        names += [str(holder[k]) for k in keys if isinstance(holder, dict) and holder.get(k)]
    return names


def catalog_entry_for(*model_specs: str) -> ModelEntry | None:
    """The catalog entry of a ``--model`` value (an alias, a hub id, or the model inside a backend
    spec); given several (a run's alias, spec and model), the first the catalog knows."""
    return match(name for spec in model_specs if spec for name in _candidate_names(spec))


def entry_cutoff(entry: ModelEntry) -> Cutoff:
    """The catalog's cutoff for an entry (its training cutoff, else its release date), or a clear error."""
    cut = entry.cutoff()
    if cut is None:
        raise EvalkitError(
            f"the catalog entry {entry.id!r} has neither a knowledge_cutoff nor a release_date; pass "
            f"--cutoff YYYY-MM-DD"
        )
    return cut


def resolve_cutoff(model_spec: str, cutoff: dt.date | str | None = None) -> Cutoff:
    """``--cutoff`` when given, else the catalog's training cutoff, else its release date (flagged)."""
    entry = catalog_entry_for(model_spec) if model_spec else None
    if cutoff is not None:
        return Cutoff(
            parse_date(cutoff), "command_line", "--cutoff on the command line", entry.id if entry else None
        )
    if entry is None:
        raise EvalkitError(
            f"model {model_spec!r} is not in the catalog (evalkit models list), so its training cutoff is "
            f"unknown; pass it with --cutoff YYYY-MM-DD (e.g. the model card's data cutoff or release date)"
        )
    return entry_cutoff(entry)


def classify(date: dt.date | None, cutoff: dt.date, margin_days: int = 0) -> Side:
    """Which side of the cutoff an item falls on: pre (on or before), post (after cutoff + margin),
    margin (in between) or undated."""
    if date is None:
        return "undated"
    if date <= cutoff:
        return "pre"
    if date > cutoff + dt.timedelta(days=margin_days):
        return "post"
    return "margin"


@dataclass(frozen=True)
class ExcludeList:
    """Item ids to leave out of a run: ``task/id`` entries apply to one task, bare ids to every task."""

    path: str
    ids: frozenset[str]
    sha256: str

    def excludes(self, task: str, sample_id: str) -> bool:
        return sample_id in self.ids or f"{task}/{sample_id}" in self.ids

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.path, "n_ids": len(self.ids), "sha256": self.sha256}


def read_exclude_file(path: str | Path) -> ExcludeList:
    """One id per line (``task/id`` or ``id``); blank lines and lines starting with ``#`` are ignored."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise EvalkitError(
            f"--exclude {p}: cannot read ({e.strerror}); give a file of item ids, one per line"
        ) from None
    ids = set()
    for line in raw.decode("utf-8", errors="replace").splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            ids.add(s)
    return ExcludeList(str(p), frozenset(ids), hashlib.sha256(raw).hexdigest())


def make_split_filter(
    split: Split | str,
    model_spec: str,
    cutoff: dt.date | str | None = None,
    margin_days: int = 0,
    exclude: str | Path | ExcludeList | None = None,
    warn: Warn | None = warn_stderr,
) -> tuple[SampleFilter, dict[str, Any]]:
    """A sample filter for the runner and the ``filter_info`` that identifies it.

    ``filter_info`` holds what defines the selection (split, cutoff and its source, margin, the
    exclude list's hash) and so belongs in the run id; the filter's per-task dict holds the counts.
    """
    if split not in SPLITS:
        raise EvalkitError(f"--split {split!r}: use one of {', '.join(SPLITS)}")
    if margin_days < 0:
        raise EvalkitError(f"--margin-days {margin_days}: must be 0 or more")
    excl = exclude if isinstance(exclude, ExcludeList) or exclude is None else read_exclude_file(exclude)
    cut: Cutoff | None = None
    if split != "all":
        cut = resolve_cutoff(model_spec, cutoff)
        if warn is not None and (cut.fallback or cut.figure == "command_line"):
            warn(f"note: {cut.describe()}")
    elif cutoff is not None or margin_days:
        raise EvalkitError(
            "--cutoff and --margin-days only apply with --split pre-cutoff or --split post-cutoff"
        )

    selection: dict[str, Any] = {"split": split}  # what defines the split, in the info and every task
    if cut is not None:
        selection.update(cutoff=cut.date.isoformat(), cutoff_source=cut.to_dict(), margin_days=margin_days)
    info = dict(selection)
    if excl is not None:
        info["exclude"] = excl.to_dict()

    def sample_filter(task: LoadedTask, samples: list[Sample]) -> tuple[list[Sample], dict[str, Any]]:
        name = task.spec.name
        kept, counts = select(samples, name, split, cut.date if cut else None, margin_days, excl)
        out: dict[str, Any] = {**selection, **counts}
        if split == "post-cutoff" and len(kept) < MIN_POST_ITEMS:
            out["warning"] = (
                f"only {len(kept)} post-cutoff items in {name} (fewer than {MIN_POST_ITEMS}): the interval "
                f"will be wide"
            )
        if warn is not None:
            _warn_about(warn, name, split, out)
        return kept, out

    return sample_filter, info


def _warn_about(warn: Warn, task: str, split: str, counts: dict[str, Any]) -> None:
    """The filter's per-task warning (too few post-cutoff items) and the count of undated items left out."""
    if "warning" in counts:
        warn(f"warning: {counts['warning']}")
    if counts["n_excluded_undated"] and split != "all":
        warn(
            f"note: {task}: {counts['n_excluded_undated']} items without a date left out of the {split} split"
        )


def select(
    samples: Iterable[Sample],
    task: str,
    split: str,
    cutoff: dt.date | None,
    margin_days: int = 0,
    exclude: ExcludeList | None = None,
) -> tuple[list[Sample], dict[str, int]]:
    """The pure selection behind the filter: (kept samples, counts of what was left out and why)."""
    kept: list[Sample] = []
    n_in = n_listed = n_undated = n_other = n_margin = 0
    want = {"pre-cutoff": "pre", "post-cutoff": "post"}.get(split)
    for s in samples:
        n_in += 1
        if exclude is not None and exclude.excludes(task, s.id):
            n_listed += 1
            continue
        if want is None or cutoff is None:
            kept.append(s)
            continue
        side = classify(s.date, cutoff, margin_days)
        if side == want:
            kept.append(s)
        elif side == "undated":
            n_undated += 1
        elif side == "margin" and want == "post":
            n_margin += 1
        else:
            n_other += 1
    counts = {
        "n_input": n_in,
        "n_kept": len(kept),
        "n_excluded_undated": n_undated,
        "n_excluded_other_side": n_other,
        "n_excluded_margin": n_margin,
        "n_excluded_listed": n_listed,
    }
    return kept, counts


@dataclass(frozen=True)
class GroupCounts:
    """How one group of items (one value of a meta field) falls around a cutoff, and its dates."""

    group: str
    counts: dict[str, int]  # pre, post, margin, undated (see classify), and excluded (the exclude list)
    first: dt.date | None  # earliest and latest item date in the group
    last: dt.date | None

    def date_span(self) -> str:
        """``2024-11-06..11-12`` within a year, ``2023-11-08..2024-11-12`` across years, ``-`` undated."""
        lo, hi = self.first, self.last
        if lo is None or hi is None:
            return "-"
        if lo == hi:
            return str(lo)
        return f"{lo}..{hi:%m-%d}" if lo.year == hi.year else f"{lo}..{hi}"


def counts_by(
    samples: Iterable[Sample],
    cutoff: dt.date,
    field: str | None,
    margin_days: int = 0,
    exclude: ExcludeList | None = None,
    task: str = "",
) -> list[GroupCounts]:
    """Items per side of the cutoff for each value of the meta ``field`` (one group "all" without a
    field), earliest group first and undated groups last: what ``evalkit contamination split`` shows.
    Items on the exclude list count as "excluded" and not on any side."""
    counts: dict[str, dict[str, int]] = {}
    dates: dict[str, list[dt.date]] = {}
    for s in samples:
        group = str(s.meta.get(field)) if field else "all"
        c = counts.setdefault(group, {})
        dates.setdefault(group, [])
        side = "excluded" if exclude is not None and exclude.excludes(task, s.id) else None
        side = side or classify(s.date, cutoff, margin_days)
        c[side] = c.get(side, 0) + 1
        if s.date and side != "excluded":
            dates[group].append(s.date)
    groups = [
        GroupCounts(g, c, min(dates[g], default=None), max(dates[g], default=None)) for g, c in counts.items()
    ]
    return sorted(groups, key=lambda g: g.first or dt.date.max)


def split_options_to_filter(
    split: str = "all",
    model: str = "",
    cutoff: str | None = None,
    margin_days: int = 0,
    exclude: str | Path | None = None,
    warn: Warn | None = warn_stderr,
) -> tuple[SampleFilter | None, dict[str, Any]]:
    """The ``evalkit run`` options ``--split/--cutoff/--margin-days/--exclude`` as (filter, filter_info).

    Returns ``(None, {})`` when nothing is filtered, so a plain run keeps its run id.
    """
    if split == "all" and exclude is None and cutoff is None and not margin_days:
        return None, {}
    return make_split_filter(split, model, parse_date(cutoff) if cutoff else None, margin_days, exclude, warn)

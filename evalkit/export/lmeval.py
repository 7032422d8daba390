"""``evalkit export lmeval``: an evalkit task as an lm-evaluation-harness task that agrees with evalkit.

The exported folder holds, per task:

- ``evalkit_<task>.yaml``: the lm-eval task (``.yaml``: lm-eval ignores ``.yml``). lm-eval reads the
  items from local JSON at an absolute path (relative paths resolve against lm-eval's working
  directory), ``doc_to_target`` names a field (the ``"{{answer}}"`` form turns "[2,5]" into a list),
  ``num_fewshot`` is 0 (see below) and the generation kwargs are evalkit's (until, max_gen_toks,
  temperature), built by the same function the ``lmeval:`` backend uses.
- ``<task>.jsonl``: the items in evalkit's Sample dict form; ``<task>.fewshot.jsonl``: the few-shot
  pool, when the task has one, declared as lm-eval's ``fewshot_split``.
- ``<task>.evalkit.json``: the validated task spec and where it came from.
- ``evalkit_lmeval_utils.py``: lm-eval hooks (``doc_to_text``, ``process_results``, ``process_docs``)
  that call evalkit's own prompt rendering, few-shot selection and ``score_completion``, through
  ``ExportedTask`` below, so the prompt and the score cannot drift from evalkit's.

Few-shot: evalkit's rendered prompt already contains the task's k exemplars (chosen by
``select_fewshot`` from the exported pool, never the item itself). lm-eval adding its own would
show them twice, so ``num_fewshot`` is 0; the pool is still the task's ``fewshot_split`` so that a
``--num_fewshot`` override can never draw exemplars from the evaluated items.

Chat tasks: lm-eval sends the user turn (``doc_to_text``) and the system turn (``description``) as
chat messages only with ``--apply_chat_template``; without it, lm-eval glues them into plain text.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evalkit import __version__
from evalkit.errors import DataError, TaskError
from evalkit.scoring.registry import score_completion
from evalkit.tasks.data import read_rows_file
from evalkit.tasks.loader import LoadedTask
from evalkit.tasks.prompt import render
from evalkit.tasks.samples import load_fewshot_pool, load_samples, select_fewshot
from evalkit.tasks.spec import TaskSpec
from evalkit.types import Completion, Sample, ScoringContext

UTILS_MODULE = "evalkit_lmeval_utils"
TASK_PREFIX = "evalkit_"  # lm-eval task names: never collide with lm-eval's built-in tasks
BUNDLE_SUFFIX = ".evalkit.json"
SYSTEM_FIELD = "evalkit_system"  # doc field holding the rendered system turn (chat tasks)
# evalkit metrics that are a mean of a per-item value, so lm-eval's "mean" aggregation reproduces them.
PER_ITEM_METRICS = ("accuracy",)

UTILS_SOURCE = f'''"""lm-eval hooks for tasks exported by `evalkit export lmeval` (generated; do not edit).

Prompts are rendered and answers scored by evalkit itself (evalkit.export.lmeval), so
lm-eval and evalkit agree exactly. Needs evalkit installed where lm-eval runs.
"""

from pathlib import Path

from evalkit.export.lmeval import ExportedTask

_HERE = Path(__file__).resolve().parent


def doc_to_text(doc):
    return ExportedTask.load(_HERE, doc["task"]).doc_to_text(doc)


def process_docs(dataset):
    """Add the rendered system turn, which the task YAML uses as lm-eval's description."""

    def add_system(doc):
        return {{"{SYSTEM_FIELD}": ExportedTask.load(_HERE, doc["task"]).system_text(doc)}}

    return dataset.map(add_system, load_from_cache_file=False)


def process_results(doc, results):
    return ExportedTask.load(_HERE, doc["task"]).process_results(doc, results)
'''


@dataclass(frozen=True)
class ExportResult:
    """What ``export_lmeval`` wrote, and how to run it."""

    task: str  # evalkit task name
    lmeval_task: str  # the name lm-eval knows it by
    folder: Path
    yaml_path: Path
    data_path: Path
    fewshot_path: Path | None
    bundle_path: Path
    utils_path: Path
    n_samples: int
    chat: bool
    skipped_metrics: tuple[str, ...]

    def lm_eval_command(self, model: str = "hf", model_args: str = "pretrained=<model>") -> str:
        """A command line that runs the exported task with lm-eval's own CLI, offline."""
        chat = " --apply_chat_template" if self.chat else ""
        return (
            f"HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 lm_eval --model {model} --model_args {model_args} "
            f"--include_path {self.folder} --tasks {self.lmeval_task}{chat}"
        )


# ---------------------------------------------------------------------------------------------
# Export (evalkit side)
# ---------------------------------------------------------------------------------------------


class _Function(str):
    """A YAML ``!function module.name`` reference (lm-eval's tag for Python hooks)."""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Stop sequences such as "\nQuestion:" read best with escapes, not as folded multi-line scalars.
    style = '"' if any(c in value for c in "\n\r\t") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(_Function, lambda d, v: d.represent_scalar("!function", str(v)))


def _json_kind(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


def check_arrow_friendly(rows: Sequence[Mapping[str, Any]], source: str) -> None:
    """lm-eval reads the items with ``datasets``' JSON loader, which needs one type per column.

    evalkit reads raw JSON and does not care; a column mixing types (a meta field that is a number
    in one item and text in another) would make lm-eval fail to load, so say so at export time.
    """
    kinds: dict[str, dict[str, str]] = {}
    for row in rows:
        flat = {
            **{k: v for k, v in row.items() if k != "meta"},
            **{f"meta.{k}": v for k, v in (row.get("meta") or {}).items()},
        }
        for key, value in flat.items():
            kind = _json_kind(value)
            if kind is None:
                continue
            seen = kinds.setdefault(key, {})
            seen.setdefault(kind, str(row.get("id")))
            if len(seen) > 1:
                detail = ", ".join(f"{k} (item {i})" for k, i in seen.items())
                raise DataError(
                    f"{source}: field {key!r} holds different types across items ({detail}); lm-eval's "
                    f"JSON loader needs one type per field: make the source column consistent"
                )


def _write_jsonl(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    with tmp.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n")
    tmp.replace(path)


def build_task_config(
    task: LoadedTask, data_path: Path, fewshot_path: Path | None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The lm-eval task config (as a dict ready for YAML) and the evalkit metrics left out."""
    spec = task.spec
    chat_system = spec.prompt.format == "chat" and spec.prompt.system is not None
    data_files = {"test": str(data_path)}
    if fewshot_path is not None:
        data_files["fewshot"] = str(fewshot_path)
    cfg: dict[str, Any] = {
        "task": TASK_PREFIX + spec.name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": data_files},
        "test_split": "test",
    }
    if fewshot_path is not None:
        cfg["fewshot_split"] = "fewshot"
    if chat_system:
        cfg["process_docs"] = _Function(f"{UTILS_MODULE}.process_docs")
        cfg["description"] = SYSTEM_FIELD  # field-name form: lm-eval looks the doc field up
    from evalkit.backends.lmeval import lmeval_gen_kwargs

    cfg.update(
        {
            "output_type": "generate_until",
            "doc_to_text": _Function(f"{UTILS_MODULE}.doc_to_text"),
            "doc_to_target": "answer",
            "process_results": _Function(f"{UTILS_MODULE}.process_results"),
            "num_fewshot": 0,
            "generation_kwargs": lmeval_gen_kwargs(spec.generation.params()),
            "repeats": spec.generation.repeats,
        }
    )
    if spec.generation.repeats > 1:
        # lm-eval's default filter keeps only the first repeat; evalkit scores every repeat.
        cfg["filter_list"] = [
            {"name": "none", "filter": [{"function": "take_first_k", "k": spec.generation.repeats}]}
        ]
    metrics = [m for m in spec.metrics if m in PER_ITEM_METRICS] or ["accuracy"]
    skipped = tuple(m for m in spec.metrics if m not in PER_ITEM_METRICS)
    cfg["metric_list"] = [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in metrics]
    cfg["metadata"] = {
        "version": spec.version,
        "evalkit_task": spec.name,
        "evalkit_task_path": str(task.path),
        "evalkit_task_sha256": task.sha256,
        "evalkit_version": __version__,
    }
    return cfg, skipped


def _yaml_header(task: LoadedTask, chat: bool, skipped: Sequence[str]) -> str:
    spec = task.spec
    lines = [
        f"# lm-eval task exported by `evalkit export lmeval` from {task.path} (sha256 {task.sha256[:12]}).",
        "# The prompt is rendered and the answer scored by evalkit itself (evalkit_lmeval_utils.py), so",
        "# lm-eval's score equals evalkit's on the same answers.",
        "# num_fewshot is 0 on purpose: evalkit's rendered prompt already holds its exemplars"
        + (f" ({spec.prompt.fewshot.k}-shot)." if spec.prompt.fewshot and spec.prompt.fewshot.k else "."),
        "# Do not pass --num_fewshot: lm-eval would add a second set of exemplars.",
    ]
    if chat:
        lines.append("# A chat task: run lm-eval with --apply_chat_template to send evalkit's chat messages.")
    if skipped:
        lines.append(f"# evalkit metrics not reproduced here (not a per-item mean): {', '.join(skipped)}.")
    return "\n".join(lines) + "\n"


def export_lmeval(task: LoadedTask, out_dir: str | Path, data_dir: Path | None = None) -> ExportResult:
    """Write ``task`` as an lm-eval task under ``out_dir`` (created if needed); see the module doc."""
    spec = task.spec
    folder = Path(out_dir).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    samples, _ = load_samples(task, data_dir)
    if not samples:
        raise TaskError(f"task {spec.name}: no items to export")
    pool = load_fewshot_pool(task, data_dir)
    rows = [s.to_dict() for s in samples]
    check_arrow_friendly(rows, f"task {spec.name}")
    data_path = folder / f"{spec.name}.jsonl"
    _write_jsonl(data_path, rows)
    fewshot_path = None
    if pool:
        pool_rows = [s.to_dict() for s in pool]
        check_arrow_friendly(pool_rows, f"task {spec.name} (few-shot pool)")
        fewshot_path = folder / f"{spec.name}.fewshot.jsonl"
        _write_jsonl(fewshot_path, pool_rows)
    bundle_path = folder / f"{spec.name}{BUNDLE_SUFFIX}"
    bundle = {
        "evalkit_version": __version__,
        "task_path": str(task.path),
        "task_sha256": task.sha256,
        "spec": spec.model_dump(mode="json"),
        "data_file": data_path.name,
        "fewshot_file": fewshot_path.name if fewshot_path else None,
    }
    bundle_path.write_text(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    utils_path = folder / f"{UTILS_MODULE}.py"
    utils_path.write_text(UTILS_SOURCE, encoding="utf-8")
    cfg, skipped = build_task_config(task, data_path, fewshot_path)
    chat = spec.prompt.format == "chat"
    yaml_path = folder / f"{TASK_PREFIX}{spec.name}.yaml"
    body = yaml.dump(cfg, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)
    yaml_path.write_text(_yaml_header(task, chat, skipped) + body, encoding="utf-8")
    return ExportResult(
        task=spec.name,
        lmeval_task=cfg["task"],
        folder=folder,
        yaml_path=yaml_path,
        data_path=data_path,
        fewshot_path=fewshot_path,
        bundle_path=bundle_path,
        utils_path=utils_path,
        n_samples=len(samples),
        chat=chat,
        skipped_metrics=skipped,
    )


# ---------------------------------------------------------------------------------------------
# Runtime (inside lm-eval, called from the generated utils module)
# ---------------------------------------------------------------------------------------------


class ExportedTask:
    """An exported task as lm-eval's hooks see it: evalkit's rendering and scoring for its docs.

    Items are looked up by id in the exported JSONL read with evalkit's own reader, not taken from
    the doc lm-eval passes in: ``datasets`` may coerce values on the way (fill missing keys with
    None, turn ints into floats), and the prompt must be exactly evalkit's.
    """

    def __init__(self, folder: Path, name: str) -> None:
        bundle_path = folder / f"{name}{BUNDLE_SUFFIX}"
        try:
            bundle = json.loads(bundle_path.read_text(encoding="utf-8"))
        except OSError as e:
            raise TaskError(
                f"{bundle_path}: cannot read the exported task ({e.strerror}); export it again"
            ) from None
        spec = TaskSpec.model_validate(bundle["spec"])
        self.task = LoadedTask(spec=spec, path=Path(bundle["task_path"]), sha256=bundle["task_sha256"])
        self.samples = self._read(folder / bundle["data_file"])
        self.pool = (
            list(self._read(folder / bundle["fewshot_file"]).values()) if bundle.get("fewshot_file") else []
        )
        self.ctx = ScoringContext.for_task(spec)

    @staticmethod
    def _read(path: Path) -> dict[str, Sample]:
        return {str(r["id"]): Sample.from_dict(r) for r in read_rows_file(path)}

    @classmethod
    def load(cls, folder: Path, name: str) -> ExportedTask:
        """One instance per exported task, shared by every hook call in the process (and
        rebuilt when the task is exported again)."""
        folder = Path(folder)
        try:
            stamp = (folder / f"{name}{BUNDLE_SUFFIX}").stat().st_mtime_ns
        except OSError:
            stamp = 0
        key = (str(folder), name)
        hit = _LOADED.get(key)
        if hit is None or hit[0] != stamp:
            hit = (stamp, cls(folder, name))
            _LOADED[key] = hit
        return hit[1]

    def sample(self, doc: Mapping[str, Any]) -> Sample:
        sid = str(doc["id"])
        if sid in self.samples:
            return self.samples[sid]
        for s in self.pool:  # a few-shot doc, if lm-eval is (wrongly) asked for exemplars
            if s.id == sid:
                return s
        raise KeyError(f"item {sid!r} is not in the exported task {self.task.spec.name}; export it again")

    def render(self, doc: Mapping[str, Any]) -> tuple[str | None, str]:
        """(system turn or None, user turn or plain prompt), exactly as evalkit renders the item."""
        s = self.sample(doc)
        messages, prompt = render(self.task, s, select_fewshot(self.task.spec, s, self.pool))
        if prompt is not None:
            return None, prompt
        assert messages is not None
        system = next((m.content for m in messages if m.role == "system"), None)
        return system, messages[-1].content

    def doc_to_text(self, doc: Mapping[str, Any]) -> str:
        return self.render(doc)[1]

    def system_text(self, doc: Mapping[str, Any]) -> str:
        return self.render(doc)[0] or ""

    def process_results(self, doc: Mapping[str, Any], results: Sequence[Any]) -> dict[str, float]:
        """Score lm-eval's answers with evalkit's extractor and grader (the runner's one path).

        ``results`` is ``[text]`` (one repeat) or ``[[text, ...]]`` (``take_first_k`` over repeats);
        the item's value is the mean over its repeats, as evalkit's accuracy weighs items.
        lm-eval gives no finish reason: every answer counts as finished, which can change an
        extraction's status (no_answer rather than truncated) but never its correctness.
        """
        first = results[0] if results else ""
        texts = list(first) if isinstance(first, (list, tuple)) else [first]
        s = self.sample(doc)
        spec = self.task.spec
        correct = []
        for text in texts:
            _, grade = score_completion(
                Completion(text=str(text), finish_reason="stop"),
                s,
                spec.extract.name,
                spec.grade.name,
                self.ctx,
            )
            correct.append(1.0 if grade.correct else 0.0)
        value = statistics.fmean(correct) if correct else 0.0
        metrics = [m for m in spec.metrics if m in PER_ITEM_METRICS] or ["accuracy"]
        return dict.fromkeys(metrics, value)


_LOADED: dict[tuple[str, str], tuple[int, ExportedTask]] = {}

"""Load task YAMLs into TaskSpecs with errors that name the file, line, field and the fix."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml
from pydantic import ValidationError

from evalkit.errors import TaskError
from evalkit.scoring import known_extractors, known_graders, known_metrics
from evalkit.scoring.registry import is_metric
from evalkit.tasks.spec import ComponentRef, ScorerSpec, TaskSpec

TASK_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LoadedTask:
    spec: TaskSpec
    path: Path
    sha256: str  # of the YAML bytes, recorded in the manifest

    @property
    def folder(self) -> Path:
        return self.path.parent


def _node_line(root: yaml.Node | None, loc: Iterable[Any]) -> int | None:
    """1-based line of the YAML node at ``loc`` (or of its nearest existing parent)."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                    nxt = v
                    line = k.start_mark.line + 1
                    break
            if nxt is None:
                return line
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _hint(err: dict[str, Any]) -> str:
    t = err.get("type", "")
    if t == "extra_forbidden":
        return "remove it or check its spelling (unknown keys are errors)"
    if t == "missing":
        return "add this required field"
    if t.startswith("string_pattern"):
        return "use lower-case letters, digits and underscores, starting with a letter"
    if "date" in t:
        return "write a date as YYYY-MM-DD"
    return ""


def format_validation_error(path: Path, root: yaml.Node | None, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = _node_line(root, loc)
        msg = err["msg"].removeprefix("Value error, ")
        hint = _hint(err)
        where = f"{path}:{line}" if line else str(path)
        lines.append(f"{where}: {field}: {msg}" + (f" ({hint})" if hint else ""))
    return "\n".join(lines)


def _check_component(
    path: Path,
    root: yaml.Node | None,
    loc: list[Any],
    kind: str,
    ref: ComponentRef,
    known: Mapping[str, frozenset[str]],
) -> list[str]:
    """Problems with one extractor or grader reference at YAML location ``loc``."""
    field = ".".join(map(str, loc))
    if ref.name not in known:
        line = _node_line(root, loc)
        return [
            f"{path}:{line}: {field}: unknown {kind} name {ref.name!r} (known: {', '.join(sorted(known))})"
        ]
    bad = set(ref.options) - set(known[ref.name])
    if not bad:
        return []
    line = _node_line(root, [*loc, "options"])
    allowed = ", ".join(sorted(known[ref.name])) or "none"
    return [
        f"{path}:{line}: {field}.options: unknown option(s) {', '.join(sorted(bad))} for "
        f"{ref.name!r} (allowed: {allowed})"
    ]


def _check_scorer(path: Path, root: yaml.Node | None, loc: list[Any], scorer: ScorerSpec) -> list[str]:
    """Problems with a scorer's components and metrics; ``loc`` is [] for the top-level one."""
    problems = _check_component(
        path, root, [*loc, "extract"], "extractor", scorer.extract, known_extractors()
    )
    problems += _check_component(path, root, [*loc, "grade"], "grader", scorer.grade, known_graders())
    for i, m in enumerate(scorer.metrics):
        if not is_metric(m):
            line = _node_line(root, [*loc, "metrics", i])
            field = ".".join(map(str, [*loc, "metrics"]))
            problems.append(
                f"{path}:{line}: {field}: unknown metric {m!r} (known: {', '.join(known_metrics())})"
            )
    return problems


# The variables a prompt template sees (evalkit.tasks.prompt.sample_context, plus fewshot and each
# fields.meta name) and the Jinja globals a prompt may use; any other name is an error at load time.
SAMPLE_VARIABLES = frozenset({"id", "question", "answer", "choices", "letters", "options", "date", "meta"})
TEMPLATE_GLOBALS = frozenset({"fewshot", "range", "namespace", "joiner", "dict", "loop"})


def _template_problems(src: str, known: frozenset[str]) -> list[tuple[int, str]]:
    """(line within the template, problem) for names the template cannot see and for attributes
    that start with an underscore (``cycler.__init__.__globals__``: never a prompt's business)."""
    from jinja2 import meta, nodes

    tree = jinja2.Environment().parse(src)
    problems = []
    for name in sorted(meta.find_undeclared_variables(tree) - known):
        line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == name), 1)
        problems.append((line, f"unknown variable {name!r} (variables: {', '.join(sorted(known))})"))
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        attr = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if isinstance(attr, str) and attr.startswith("_"):
            problems.append((node.lineno, f"attribute {attr!r} is not allowed (names starting with _)"))
    return problems


def _check_templates(path: Path, root: yaml.Node | None, spec: TaskSpec) -> list[str]:
    problems = []
    known = SAMPLE_VARIABLES | TEMPLATE_GLOBALS | {k for k in spec.fields.meta if k.isidentifier()}
    for key in ("template", "system"):
        src = getattr(spec.prompt, key)
        if src is None:
            continue
        base = _node_line(root, ["prompt", key]) or 0
        try:
            found = _template_problems(src, known)
        except jinja2.TemplateSyntaxError as e:
            found = [(e.lineno or 1, f"Jinja2 syntax error: {e.message}")]
        # A block scalar (|) starts on the line after its key; a quoted one on the key's line.
        offset = 0 if _is_inline(root, key) else 1
        problems += [f"{path}:{base + offset + line - 1}: prompt.{key}: {msg}" for line, msg in found]
    return problems


def _is_inline(root: yaml.Node | None, key: str) -> bool:
    node = root
    for part in ("prompt", key):
        if not isinstance(node, yaml.MappingNode):
            return True
        node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
    return not (isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"))


def _check_components(path: Path, root: yaml.Node | None, spec: TaskSpec) -> list[str]:
    """What the schema cannot check: component and metric names and options, prompt templates."""
    primary, *extra = spec.all_scorers()
    problems = _check_scorer(path, root, [], primary)
    for i, scorer in enumerate(extra):
        problems += _check_scorer(path, root, ["scorers", i], scorer)
    return problems + _check_templates(path, root, spec)


def load_task_file(path: str | os.PathLike[str]) -> LoadedTask:
    """Parse and validate one task YAML; raise TaskError listing every problem found."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise TaskError(f"{p}: cannot read task file ({e.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise TaskError(
            f"{p}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x}: {e.reason}); save the file as UTF-8"
        ) from None
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark else str(p)
        problem = getattr(e, "problem", None) or str(e)
        raise TaskError(f"{where}: not valid YAML: {problem} (check indentation and quoting)") from None
    if not isinstance(data, dict):
        raise TaskError(f"{p}:1: a task file must be a YAML mapping with keys name, version, dataset, ...")
    try:
        spec = TaskSpec.model_validate(data)
    except ValidationError as e:
        raise TaskError(format_validation_error(p, root, e)) from None
    problems = _check_components(p, root, spec)
    if problems:
        raise TaskError("\n".join(problems))
    return LoadedTask(spec=spec, path=p.resolve(), sha256=hashlib.sha256(raw).hexdigest())

"""Items generated from templates: a dataset source (``dataset.generate`` in a task YAML) for fresh
problems that no training set can contain.

A template file (YAML) holds templates; each has integer or choice variables, optional derived
values and conditions, a question (Jinja2, sandboxed) and an answer: a sympy expression over the
variables, computed exactly. Expressions are the template author's own text (trusted, like code in
a pull request) and are compiled once per template; nothing a model writes is ever parsed here.

```yaml
format: evalkit-templates/1
name: fresh_arithmetic
templates:
  - id: linear_equation
    variables:
      a: {int: [2, 12]}
      b: {int: [-30, 30], exclude: [0]}
      c: {int: [-60, 60]}
    where: ["Ne(c, b)"]                     # sympy conditions; values are drawn again until all hold
    question: "Solve for $x$: ${{ a }}x {{ b|signed }} = {{ c }}$."
    answer: "solve(Eq(a*x + b, c), x)[0]"   # names that are not variables are sympy symbols (x)
```

``generate_items`` is deterministic in (template file, n, seed, date): item k comes from template
``k mod T`` with its own random stream, so the first 50 items of n=100 are the items of n=50. Each
item is dated ``date`` (default: the day it is generated), the first day it could have been seen.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evalkit.errors import EvalkitError
from evalkit.tasks.data import LoadedRows, rows_sha256
from evalkit.tasks.spec import GenerateSpec

BUILTIN_TEMPLATES_DIR = Path(__file__).with_name("templates")
DATE_ENV = "EVALKIT_FRESH_DATE"  # a fixed generation date for reproducible runs
MAX_ATTEMPTS = 1000
_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VariableSpec(_Strict):
    """An integer drawn uniformly from ``int: [low, high]`` (inclusive), or one of ``choice``."""

    int_range: tuple[int, int] | None = Field(None, alias="int")
    choice: list[int | str] | None = Field(None, min_length=1)
    exclude: list[int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_kind(self) -> VariableSpec:
        if (self.int_range is None) == (self.choice is None):
            raise ValueError("give exactly one of 'int: [low, high]' or 'choice: [...]'")
        if self.int_range is not None:
            lo, hi = self.int_range
            if lo > hi:
                raise ValueError(f"int: [{lo}, {hi}]: low is above high")
            if set(range(lo, hi + 1)) <= set(self.exclude):
                raise ValueError(f"int: [{lo}, {hi}]: every value is excluded")
        return self


class TemplateSpec(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    question: str = Field(description="Jinja2 text; variables and derived values by name")
    variables: dict[str, VariableSpec] = Field(min_length=1)
    derived: dict[str, str] = Field(default_factory=dict, description="name -> sympy expression, in order")
    where: list[str] = Field(default_factory=list, description="sympy conditions that must all hold")
    answer: str = Field(description="sympy expression whose exact value is the answer")

    @field_validator("variables", "derived")
    @classmethod
    def _names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for k in v:
            if not re.fullmatch(_NAME, k):
                raise ValueError(f"{k!r} is not a valid name (letters, digits, underscore)")
        return v

    @model_validator(mode="after")
    def _distinct(self) -> TemplateSpec:
        clash = set(self.variables) & set(self.derived)
        if clash:
            raise ValueError(f"{', '.join(sorted(clash))}: defined both as variable and derived value")
        return self


class TemplateFile(_Strict):
    format: Literal["evalkit-templates/1"]
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    templates: list[TemplateSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> TemplateFile:
        ids = [t.id for t in self.templates]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"template ids must be unique: {', '.join(sorted(dup))}")
        return self


@lru_cache(maxsize=1)
def _sympy_namespace() -> dict[str, Any]:
    ns: dict[str, Any] = {}
    exec("from sympy import *", ns)  # the namespace sympy's own parser evaluates in
    return ns


@lru_cache(maxsize=1)
def _jinja() -> Any:
    import jinja2
    import sympy
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
    )
    env.filters["signed"] = lambda v: f"- {-v}" if v < 0 else f"+ {v}"  # "3x {{ b|signed }}" -> "3x - 5"
    env.filters["paren"] = lambda v: f"({v})" if v < 0 else str(v)
    env.filters["latex"] = lambda v: sympy.latex(sympy.sympify(v))
    return env


@dataclass
class _Compiled:
    spec: TemplateSpec
    derived: list[tuple[str, Any]]
    where: list[tuple[str, Any]]
    answer: Any
    question: Any


def _compile(spec: TemplateSpec, origin: str) -> _Compiled:
    from sympy.parsing.sympy_parser import convert_xor, standard_transformations, stringify_expr

    names = dict.fromkeys([*spec.variables, *spec.derived], 0)
    transformations = (*standard_transformations, convert_xor)

    def comp(src: str, what: str) -> Any:
        try:
            code = stringify_expr(src, names, _sympy_namespace(), transformations)
            return compile(code, f"<{origin}: template {spec.id}, {what}>", "eval")
        except Exception as e:  # SyntaxError, TokenError: the author's expression does not parse
            raise EvalkitError(
                f"{origin}: template {spec.id}: {what} {src!r} is not a valid expression ({e})"
            ) from None

    try:
        question = _jinja().from_string(spec.question)
    except Exception as e:
        raise EvalkitError(f"{origin}: template {spec.id}: question is not valid Jinja2 ({e})") from None
    return _Compiled(
        spec,
        [(k, comp(v, f"derived.{k}")) for k, v in spec.derived.items()],
        [(w, comp(w, "where")) for w in spec.where],
        comp(spec.answer, "answer"),
        question,
    )


@dataclass(frozen=True)
class LoadedTemplates:
    file: TemplateFile
    path: Path
    sha256: str
    compiled: tuple[_Compiled, ...]


def load_templates(path: str | Path) -> LoadedTemplates:
    """Read and check a template file; every expression is compiled up front so errors come early."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise EvalkitError(f"{p}: cannot read template file ({e.strerror})") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise EvalkitError(f"{p}: not valid YAML ({e})") from None
    try:
        tf = TemplateFile.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, er['loc']))}: {er['msg']}" for er in e.errors())
        raise EvalkitError(f"{p}: {problems}") from None
    compiled = tuple(_compile(t, p.name) for t in tf.templates)
    return LoadedTemplates(tf, p, hashlib.sha256(raw).hexdigest(), compiled)


def find_template(name: str, yaml_folder: Path | None = None, data_dir: Path | None = None) -> Path:
    """A template file: an absolute path as given; else, in this order, next to the task YAML, in
    ``<data-dir>/local/``, built in (``NAME`` or ``NAME.templates.yaml``), or relative to the
    current folder."""
    p = Path(name)
    cands = [p] if p.is_absolute() else []
    if not p.is_absolute():
        if yaml_folder is not None:
            cands.append(yaml_folder / p)
        if data_dir is not None:
            cands.append(data_dir / "local" / p.name)
        cands.append(BUILTIN_TEMPLATES_DIR / p.name)
        if not p.name.endswith((".yaml", ".yml")):
            cands.append(BUILTIN_TEMPLATES_DIR / f"{p.name}.templates.yaml")
        cands.append(Path.cwd() / p)
    for c in cands:
        if c.is_file():
            return c
    builtin = ", ".join(sorted(f.name for f in BUILTIN_TEMPLATES_DIR.glob("*.yaml"))) or "none"
    raise EvalkitError(
        f"template file {name!r} not found (looked in: {', '.join(map(str, cands))}); "
        f"built-in templates: {builtin}"
    )


def _draw(name: str, v: VariableSpec, rng: random.Random) -> Any:
    import sympy

    if v.choice is not None:
        value = rng.choice(v.choice)
        return sympy.Integer(value) if isinstance(value, int) else value
    assert v.int_range is not None
    lo, hi = v.int_range
    for _ in range(MAX_ATTEMPTS):
        value = rng.randint(lo, hi)
        if value not in v.exclude:
            return sympy.Integer(value)
    raise EvalkitError(f"variable {name}: no allowed value found in {MAX_ATTEMPTS} draws")  # pragma: no cover


def _exact(value: Any, where: str) -> Any:
    import sympy

    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise EvalkitError(f"{where}: the answer must be one value, got {len(value)}: {value}")
        value = value[0]
    value = sympy.sympify(value)
    if hasattr(value, "doit"):
        value = value.doit()
    if value.free_symbols or not value.is_number:
        raise EvalkitError(f"{where}: the answer {value} is not a number (free symbols {value.free_symbols})")
    if value.is_zero is None or value.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo):
        raise EvalkitError(
            f"{where}: the answer {value} is not a finite number; exclude such values with 'where'"
        )
    return sympy.nsimplify(value) if value.is_Float else value


def _plain(v: Any) -> Any:
    """A value for the question text and the item's metadata: int for integers, "p/q" for rationals."""
    import sympy

    if isinstance(v, sympy.Integer):
        return int(v)
    return v  # a Rational prints as p/q (the latex filter gives \frac{p}{q}); strings stay strings


def format_answer(value: Any) -> tuple[str, str, str]:
    """(answer text, answer type, LaTeX) of an exact sympy value."""
    import sympy

    if value.is_Integer:
        return str(int(value)), "integer", str(int(value))
    if value.is_Rational:
        return f"{value.p}/{value.q}", "fraction", sympy.latex(value)
    return sympy.sstr(value), "expression", sympy.latex(value)


def _json_value(v: Any) -> Any:
    p = _plain(v)
    return p if isinstance(p, (int, str)) else str(p)


def _one_item(t: _Compiled, rng: random.Random, origin: str) -> tuple[str, Any, dict[str, Any]] | None:
    """Draw values; None when a condition fails (the caller draws again)."""
    spec = t.spec
    ns = _sympy_namespace()
    values: dict[str, Any] = {k: _draw(k, v, rng) for k, v in spec.variables.items()}
    try:
        for k, code in t.derived:
            values[k] = eval(code, ns, dict(values))  # author's compiled expression, never model text
        for src, code in t.where:
            ok = eval(code, ns, dict(values))
            try:
                if not bool(ok):
                    return None
            except TypeError:
                raise EvalkitError(
                    f"{origin}: template {spec.id}: where {src!r} is not decidable ({ok})"
                ) from None
        drawn = ", ".join(f"{k}={v}" for k, v in values.items())
        answer = _exact(eval(t.answer, ns, dict(values)), f"{origin}: template {spec.id} (values {drawn})")
    except ZeroDivisionError:
        return None
    ctx = {k: _plain(v) for k, v in values.items()}
    try:
        question = t.question.render(ctx).strip()
    except Exception as e:
        raise EvalkitError(f"{origin}: template {spec.id}: question: {e}") from None
    return question, answer, {k: _json_value(v) for k, v in values.items()}


def generate_items(
    template_file: str | Path | LoadedTemplates, n: int, seed: int = 0, date: dt.date | str | None = None
) -> list[dict[str, Any]]:
    """``n`` distinct items as plain rows: id, question, answer, date, meta (plus template, answer_type)."""
    if n < 1:
        raise EvalkitError(f"n={n}: generate at least one item")
    loaded = template_file if isinstance(template_file, LoadedTemplates) else load_templates(template_file)
    day = generation_date(date)
    origin = loaded.path.name
    seen: set[str] = set()
    rows = []
    k_of: dict[str, int] = {}
    for k in range(n):
        t = loaded.compiled[k % len(loaded.compiled)]
        tid = t.spec.id
        k_of[tid] = k_of.get(tid, 0) + 1
        for attempt in range(MAX_ATTEMPTS):
            # A string seed is hashed with SHA-512 by random.Random: the same on every machine.
            rng = random.Random(f"{seed}:{tid}:{k}:{attempt}")
            got = _one_item(t, rng, origin)
            if got is not None and got[0] not in seen:
                break
        else:
            raise EvalkitError(
                f"{origin}: template {tid} gave no new item satisfying its conditions in "
                f"{MAX_ATTEMPTS} draws; widen its ranges or generate fewer items"
            )
        question, answer, variables = got
        seen.add(question)
        text, kind, latex = format_answer(answer)
        rows.append(
            {
                "id": f"{loaded.file.name}-{seed}-{k:05d}",
                "question": question,
                "answer": text,
                "answer_type": kind,
                "template": tid,
                "date": day.isoformat(),
                "meta": {
                    "template": tid,
                    "variables": variables,
                    "answer_latex": latex,
                    "seed": seed,
                    "template_file": origin,
                    "template_sha256": loaded.sha256,
                },
            }
        )
    return rows


def generation_date(date: dt.date | str | None = None) -> dt.date:
    """The date items carry: the one given, else $EVALKIT_FRESH_DATE, else today (local time)."""
    value: Any = date if date is not None else os.environ.get(DATE_ENV) or None
    if value is None:
        return dt.date.today()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        src = "date" if date is not None else DATE_ENV
        raise EvalkitError(f"{src} {value!r}: write a date as YYYY-MM-DD") from None


def load_generated(
    gen: GenerateSpec, yaml_folder: Path | None = None, data_dir: Path | None = None
) -> LoadedRows:
    """Rows for a task whose ``dataset.generate`` names a template file (found by ``find_template``)."""
    path = find_template(gen.template, yaml_folder, data_dir)
    rows = generate_items(path, gen.n, gen.seed, gen.date)
    source = f"template file {path} (generated: n {gen.n}, seed {gen.seed}, dated {rows[0]['date']})"
    return LoadedRows(rows, source, None, rows_sha256(rows))

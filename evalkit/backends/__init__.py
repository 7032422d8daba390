"""Model backends and the one place backend spec strings are parsed.

Spec strings (DESIGN.md section 3):
  openai:<base_url>@<model>      any OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama, ...)
  openai:<url>,<url>,...@<model> several replicas of one model, spread by load, with failover
  hf:<local path or hub id>       Hugging Face transformers in process (extra: hf)
  llamacpp:<file.gguf>            llama.cpp in process through llama-cpp-python (extra: test)
  vllm:<hub id or path>           vLLM in process (extra: vllm)
  lmeval:<model type>,<args>      any lm-evaluation-harness model (extra: lmeval)
  replay:<run folder>             answers from a previous run's records
  <catalog alias>                 e.g. smollm2-135m (see `evalkit models list`)
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evalkit.backends.base import Backend
from evalkit.errors import BackendError

# kind -> (module, class); imported lazily so `evalkit --help` never imports torch or lm_eval.
BACKENDS: dict[str, tuple[str, str]] = {
    "openai": ("evalkit.backends.openai", "OpenAIBackend"),
    "hf": ("evalkit.backends.hf", "HFBackend"),
    "llamacpp": ("evalkit.backends.llamacpp", "LlamaCppBackend"),
    "vllm": ("evalkit.backends.vllm", "VLLMBackend"),
    "lmeval": ("evalkit.backends.lmeval", "LMEvalBackend"),
    "replay": ("evalkit.backends.replay", "ReplayBackend"),
}

SPEC_HELP = (
    "use openai:<base_url>@<model> (replicas: openai:<url>,<url>@<model>), hf:<path or hub id>, "
    "llamacpp:<file.gguf>, vllm:<hub id>, lmeval:<type>,<args>, "
    "replay:<run folder>, or a catalog alias (evalkit models list)"
)


# lm-eval model args that name the model (lmeval:hf,pretrained=<this>).
_LMEVAL_MODEL_KEYS = ("pretrained", "model", "path")


@dataclass(frozen=True)
class BackendSpec:
    kind: str
    target: str  # everything after "<kind>:"
    raw: str
    alias: str | None = None  # catalog id when the spec came from an alias

    def model_names(self) -> list[str]:
        """Names under which this spec's model may be in the model catalog, most specific first:
        the catalog alias it came from, then the model the spec names (the served model of an
        openai spec, the hub id or path of hf and vllm, lm-eval's ``pretrained=`` value).

        A replay spec names a run folder, not a model: it has none here (the replayed model is
        recorded in that folder).
        """
        names = [self.alias] if self.alias else []
        if self.kind == "openai":
            names.append(self.target.rpartition("@")[2])
        elif self.kind in ("hf", "vllm", "llamacpp"):
            names += [self.target, self.target.rpartition("@")[0] or self.target]
        elif self.kind == "lmeval":
            from evalkit.backends.lmeval import parse_model_args

            _, _, args = self.target.partition(",")
            try:
                pairs = parse_model_args(args)
            except BackendError:
                pairs = []
            names += [v for k, v in pairs if k in _LMEVAL_MODEL_KEYS and v]
        return list(dict.fromkeys(n for n in names if n))


def parse_spec(spec: str) -> BackendSpec:
    """Parse a backend spec string; catalog aliases resolve to their entry's spec."""
    s = spec.strip()
    kind, sep, target = s.partition(":")
    if sep and kind in BACKENDS:
        if not target:
            raise BackendError(f"--model {spec!r}: nothing after '{kind}:'; {SPEC_HELP}")
        if kind == "openai":
            base, at, model = target.rpartition("@")
            if not at or not base or not model:
                raise BackendError(
                    f"--model {spec!r}: an openai spec needs a base URL and a model name, "
                    f"e.g. openai:http://127.0.0.1:8000/v1@my-model"
                )
            urls = [u.strip() for u in base.split(",")]
            if not all(u.startswith(("http://", "https://")) for u in urls):
                raise BackendError(
                    f"--model {spec!r}: each base URL must start with http:// or https:// "
                    "(several replicas: openai:http://a:8000/v1,http://b:8000/v1@model)"
                )
        return BackendSpec(kind, target, s)
    from evalkit.catalog import find_model

    entry = find_model(s)
    if entry is not None and entry.pull:
        # A model evalkit can fetch without the Hub runs from its pulled GGUF: through llama.cpp in
        # process when llama-cpp-python is installed, else through the hf backend (one printed line
        # says so). Only the cache path is computed here; the backend pulls on first use, so parsing
        # and validation never download anything.
        from evalkit.catalog.pull import gguf_backend_kind, local_path

        target = str(local_path(entry))
        kind = gguf_backend_kind(entry.id)
        return BackendSpec(kind, target, f"{kind}:{target}", alias=entry.id)
    if entry is not None and entry.spec:
        inner = parse_spec(entry.spec)
        return BackendSpec(inner.kind, inner.target, inner.raw, alias=entry.id)
    raise BackendError(f"--model {spec!r}: unknown backend or alias; {SPEC_HELP}")


def make_backend(
    spec: str | BackendSpec, options: Mapping[str, Any] | None = None, concurrency: int | str | None = None
) -> Backend:
    """Instantiate the backend for a spec. ``options`` are backend keyword arguments (--model-arg);
    ``concurrency`` is the run's --concurrency, requests in flight: the connection pool of an HTTP
    backend, the batch size of an in-process one (None: the backend's default; ``"auto"``: the
    adaptive limit of a backend that has one, the default size of one that has not)."""
    bs = parse_spec(spec) if isinstance(spec, str) else spec
    module_name, cls_name = BACKENDS[bs.kind]
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        extra = {"hf": "hf", "vllm": "vllm", "lmeval": "lmeval", "llamacpp": "test"}.get(bs.kind)
        hint = f"; install it with: pip install 'evalkit[{extra}]'" if extra else ""
        raise BackendError(f"backend {bs.kind!r} is not available ({e}){hint}") from None
    cls = getattr(module, cls_name)
    # Passed to the backends that size themselves by it; one with nothing to size (replay answers
    # from a run folder) need not take it, and the engine then holds it to that backend's own size.
    sizing = {}
    if concurrency == "auto" and not getattr(cls, "adaptive_concurrency", False):
        concurrency = None  # an in-process model has no server to push back: its own batch size
    if concurrency is not None and "concurrency" in inspect.signature(cls.from_spec).parameters:
        sizing["concurrency"] = concurrency
    return cls.from_spec(bs, dict(options or {}), **sizing)

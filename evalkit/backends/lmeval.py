"""Any lm-evaluation-harness model as an evalkit backend: ``lmeval:<model type>,<key=value,...>``.

``lmeval:hf,pretrained=/models/x,dtype=float32`` builds lm-eval's own ``hf`` model through its
registry, exactly as ``lm_eval --model hf --model_args pretrained=...`` would, so every model lm-eval
supports (hf, vllm, local-completions, local-chat-completions, sglang, ...) runs under evalkit's
cache, retries, records and scoring. Requests map onto lm-eval's interface:

- generate -> ``lm.generate_until`` with ``(context, gen_kwargs)``; chat messages are rendered with
  ``lm.apply_chat_template`` when the model implements it, else joined with blank lines;
  gen_kwargs = until (stop), max_gen_toks, temperature, do_sample (and top_p when below 1).
- loglikelihood -> ``lm.loglikelihood`` with one ``(context, continuation)`` per continuation.

lm-eval calls block and its models are not thread-safe: they run one at a time on a worker thread
so the event loop stays free. lm-eval reports neither finish reasons nor token counts: both are
recomputed from the model's tokenizer where it has one (see ``_usage``).

Options (``--model-arg key=value``): device, batch_size, max_batch_size (passed to the lm-eval model
like lm-eval's own command-line flags), and chunk_size (how many evalkit requests go to one lm-eval
call; default 64: larger batches better, smaller loses less work when killed; the same setting as
the run's --concurrency).

The identity is the model type with its args (secrets and throughput args left out), the weights'
fingerprint, and the dtype an in-process model runs in (``identity_variant``, as hf and vllm).

lm_eval is imported here only, and lazily: ``evalkit --help`` never loads it.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import inspect
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.backends.base import BackendBase
from evalkit.backends.local import identity_variant, local_fingerprint, plan_loglikelihood
from evalkit.backends.options import one_concurrency, option_int, reject_unknown
from evalkit.errors import BackendError, NotSupported
from evalkit.secrets import is_secret_name
from evalkit.types import BackendInfo, Completion, ErrorKind, GenParams, Request, Usage

if TYPE_CHECKING:
    from evalkit.backends import BackendSpec

# Passed to the lm-eval model constructor, as lm_eval's --device/--batch_size/--max_batch_size do.
LM_OPTIONS = ("device", "batch_size", "max_batch_size")
OPTIONS = (*LM_OPTIONS, "chunk_size")
DEFAULT_CHUNK_SIZE = 64
# Model args that cannot change an answer (throughput and patience) stay out of the identity, so
# changing them keeps the response cache valid.
_NOT_IDENTITY = frozenset({"num_concurrent", "max_retries", "timeout"})
# Joins chat turns for models without a chat template (lm-eval's fewshot delimiter).
CHAT_JOIN = "\n\n"


def lmeval_gen_kwargs(params: GenParams) -> dict[str, Any]:
    """lm-eval ``generation_kwargs`` for evalkit's generation parameters.

    Shared with ``evalkit export lmeval`` so that both directions send the model the same request.
    lm-eval has no per-request seed: with temperature > 0 the model's global RNG decides.
    """
    kw: dict[str, Any] = {
        "until": list(params.stop),
        "max_gen_toks": int(params.max_tokens),
        "temperature": float(params.temperature),
        "do_sample": params.temperature > 0,
    }
    if params.top_p < 1.0:
        kw["top_p"] = float(params.top_p)
    return kw


def split_target(target: str) -> tuple[str, str]:
    """``hf,pretrained=x,dtype=float32`` -> (``hf``, ``pretrained=x,dtype=float32``)."""
    model_type, _, args = target.partition(",")
    model_type = model_type.strip()
    if not model_type or "=" in model_type:
        raise BackendError(
            f"lmeval:{target}: start with the lm-eval model type, e.g. "
            "lmeval:hf,pretrained=/path/to/model,dtype=float32"
        )
    return model_type, args.strip().strip(",")


def parse_model_args(args: str) -> list[tuple[str, str]]:
    """``pretrained=x,dtype=float32`` -> [(``pretrained``, ``x``), (``dtype``, ``float32``)]."""
    out = []
    for part in (p for p in args.split(",") if p.strip()):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise BackendError(f"lmeval model args: {part!r} is not key=value (args: {args!r})")
        out.append((key.strip(), value.strip()))
    return out


def _classify(e: BaseException) -> ErrorKind:
    """Connection problems are worth retrying on a later run; anything else will fail again."""
    if isinstance(e, (ConnectionError, TimeoutError)):
        return "transient"
    name = type(e).__name__.lower()
    return "transient" if any(w in name for w in ("timeout", "connection", "ratelimit")) else "fatal"


def _default_device() -> str:
    """lm-eval's hf model defaults to device="cuda" and fails on a CPU-only machine."""
    if importlib.util.find_spec("torch") is None:
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _lm_option(name: str, value: Any) -> Any:
    """Type one option passed on to the lm-eval model (they arrive as strings)."""
    text = str(value).strip()
    if name == "device":
        return text
    if name == "batch_size" and text.lower().startswith("auto"):
        return text  # lm-eval's "auto" / "auto:N"
    return option_int(name, text)


class LMEvalBackend(BackendBase):
    """An lm-eval ``LM`` instance behind evalkit's Backend protocol."""

    max_concurrency = 1  # lm-eval models are not thread-safe; they batch internally instead

    def __init__(self, lm: Any, info: BackendInfo, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        """Wrap an already built lm-eval ``LM`` (tests and ``from_spec`` use this)."""
        self.lm = lm
        self.info = info
        self.batch_size = max(1, int(chunk_size))
        self._lock = threading.Lock()
        from lm_eval.api.model import LM

        # HFLM and the chat API models override apply_chat_template; the base class only raises.
        self._has_chat_template = type(lm).apply_chat_template is not LM.apply_chat_template

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def from_spec(
        cls, spec: BackendSpec, options: dict[str, Any], concurrency: int | None = None
    ) -> LMEvalBackend:
        """Build the lm-eval model named by ``lmeval:<model type>,<args>`` through lm-eval's registry.
        ``concurrency`` (the run's --concurrency) is the chunk size."""
        reject_unknown(
            "lmeval", options, OPTIONS, " (lm-eval model args go in the spec: lmeval:<type>,key=value,...)"
        )
        model_type, args = split_target(spec.target)
        pairs = parse_model_args(args)
        extra = {k: _lm_option(k, v) for k, v in options.items() if k in LM_OPTIONS}
        chunk_size = one_concurrency("lmeval", concurrency, "chunk_size", options) or DEFAULT_CHUNK_SIZE
        public = _public_target(model_type, pairs)
        try:
            # get_model() imports lm_eval.models only while its registry is empty: import it first,
            # or a model registered by the caller (@register_model) hides lm-eval's own types.
            import lm_eval.models  # noqa: F401
            from lm_eval.api.registry import get_model
        except ImportError as e:
            raise BackendError(
                f"the lmeval backend needs lm-evaluation-harness ({e}); "
                "install it with: pip install 'evalkit[lmeval]'"
            ) from None
        try:
            lm_cls = get_model(model_type)
        except (ValueError, KeyError) as e:
            first = str(e).splitlines()[0][:300]
            raise BackendError(
                f"lmeval:{public}: unknown lm-eval model type {model_type!r} ({first})"
            ) from None
        given = {k for k, _ in pairs} | set(extra)
        if "device" not in given and "device" in _init_params(lm_cls):
            extra["device"] = _default_device()
        try:
            lm = lm_cls.create_from_arg_string(args, extra)
        except Exception as e:  # lm-eval and transformers raise many types; all mean "cannot load"
            detail = str(e).strip().splitlines()[0][:400] if str(e).strip() else type(e).__name__
            raise BackendError(f"lmeval:{public}: lm-eval could not build the model: {detail}") from None
        info = BackendInfo(
            backend="lmeval",
            model=_public_target(model_type, [p for p in pairs if p[0] not in _NOT_IDENTITY]),
            revision=_revision(dict(pairs)),
            variant=identity_variant(_torch_dtype(lm)),
            params_total=_params_total(lm),
            extra={
                "model_type": model_type,
                "model_args": {k: ("<redacted>" if is_secret_name(k) else v) for k, v in pairs},
                "lm_class": f"{type(lm).__module__}.{type(lm).__qualname__}",
                "device": str(extra.get("device")) if "device" in extra else None,
                "lm_eval_version": _lm_eval_version(),
            },
        )
        return cls(lm, info, chunk_size=chunk_size)

    # -- protocol ----------------------------------------------------------------------------------

    async def generate(self, reqs: Sequence[Request]) -> list[Completion]:
        return await asyncio.to_thread(self._locked, self._generate_sync, list(reqs))

    async def loglikelihood(self, reqs: Sequence[Request]) -> list[Completion]:
        return await asyncio.to_thread(self._locked, self._loglikelihood_sync, list(reqs))

    async def aclose(self) -> None:
        """Drop the model so its memory can be freed (the runner closes every backend it made)."""
        self.lm = None
        gc.collect()

    def _locked(self, fn: Any, reqs: list[Request]) -> list[Completion]:
        with self._lock:
            return fn(reqs)

    # -- prompts -----------------------------------------------------------------------------------

    def render(self, req: Request) -> str:
        """The text lm-eval conditions on: the plain prompt, or the chat messages rendered."""
        if req.messages is None:
            if req.prompt is None:
                raise ValueError("request has neither messages nor prompt")
            return req.prompt
        if not self._has_chat_template:
            return CHAT_JOIN.join(m.content for m in req.messages)
        msgs = [{"role": m.role, "content": m.content} for m in req.messages]
        try:
            return self.lm.apply_chat_template(msgs, add_generation_prompt=True)
        except Exception as e:
            raise ValueError(
                f"cannot apply the model's chat template ({type(e).__name__}: {e}); use a plain-prompt "
                "task (prompt.format: completion) or a model with a chat template"
            ) from None

    # -- generation --------------------------------------------------------------------------------

    def _generate_sync(self, reqs: list[Request]) -> list[Completion]:
        from lm_eval.api.instance import Instance

        out: list[Completion | None] = [None] * len(reqs)
        todo: list[tuple[int, Any]] = []
        contexts: dict[int, str] = {}
        for i, req in enumerate(reqs):
            try:
                if req.kind != "generate":
                    raise ValueError(f"a {req.kind} request was sent to generate")
                contexts[i] = self.render(req)
            except Exception as e:
                out[i] = Completion.failed(f"cannot build the prompt: {e}")
                continue
            args = (contexts[i], lmeval_gen_kwargs(req.params))
            todo.append((i, Instance("generate_until", {}, args, idx=0, metadata=("evalkit", i, 1))))
        for idxs, result, dt in self._run("generate_until", todo):
            for i, res in zip(idxs, result, strict=True):
                if isinstance(res, Completion):
                    out[i] = res
                else:
                    text = res if isinstance(res, str) else str(res)
                    out[i] = self._completion(reqs[i], contexts[i], text, dt / len(idxs))
        return [c if c is not None else Completion.failed("no result") for c in out]

    def _completion(self, req: Request, context: str, text: str, latency: float) -> Completion:
        prompt_tokens, completion_tokens = self._usage(context, text)
        length = completion_tokens is not None and completion_tokens >= req.params.max_tokens
        return Completion(
            text=text,
            finish_reason="length" if length else "stop",
            usage=Usage(prompt_tokens, completion_tokens),
            latency_s=latency,
        )

    def _usage(self, context: str, text: str) -> tuple[int | None, int | None]:
        """Token counts by re-encoding with the model's tokenizer (lm-eval returns text only).

        A completion that re-encodes to max_tokens or more tokens is taken as cut by the length
        limit. Re-encoding can differ from the generated ids by a token at merges, so this is close,
        not exact; models without a local tokenizer (chat APIs) report no counts and always "stop".
        """
        if getattr(self.lm, "tokenizer", None) is None or not hasattr(self.lm, "tok_encode"):
            return None, None
        try:
            n_prompt = len(self.lm.tok_encode(context)) if context else 0
            n_text = len(self.lm.tok_encode(text, add_special_tokens=False)) if text else 0
            return n_prompt, n_text
        except Exception:
            return None, None

    # -- loglikelihood -----------------------------------------------------------------------------

    def _loglikelihood_sync(self, reqs: list[Request]) -> list[Completion]:
        from lm_eval.api.instance import Instance

        # The context window is lm-eval's to apply: its models cut from the left themselves (HFLM
        # with the same max_length + 1 rule as evalkit's hf backend, see local.forward_pass_window).
        contexts: dict[int, str] = {}

        def build(i: int, c: int, context: str, cont: str) -> tuple[tuple[int, int], Any]:
            contexts[i] = context
            inst = Instance("loglikelihood", {}, (context, cont), idx=c, metadata=("evalkit", i, 1))
            return (i, c), inst

        todo, out = plan_loglikelihood(reqs, self.render, build)
        got: dict[int, dict[int, tuple[float, bool]]] = {}
        latency: dict[int, float] = {}
        for keys, result, dt in self._run("loglikelihood", todo):
            for (i, c), res in zip(keys, result, strict=True):
                latency[i] = latency.get(i, 0.0) + dt / len(keys)
                if isinstance(res, Completion):
                    out.setdefault(i, res)
                else:
                    got.setdefault(i, {})[c] = (float(res[0]), bool(res[1]))
        for i, req in enumerate(reqs):
            if i in out:
                continue
            scores = [got[i][c] for c in range(len(req.continuations))]
            n_context, _ = self._usage(contexts[i], "")
            n_cont = [self._usage("", c)[1] for c in req.continuations]
            out[i] = Completion(
                text="",
                finish_reason="stop",
                usage=Usage(n_context, None if None in n_cont else sum(n for n in n_cont if n is not None)),
                logprobs=tuple(s[0] for s in scores),
                greedy=tuple(s[1] for s in scores),
                latency_s=latency.get(i, 0.0),
            )
        return [out.get(i) or Completion.failed("no result") for i in range(len(reqs))]

    # -- calling lm-eval ---------------------------------------------------------------------------

    def _call(self, method: str, instances: list[Any]) -> list[Any]:
        fn = getattr(self.lm, method)
        kwargs = {"disable_tqdm": True} if "disable_tqdm" in _params(fn) else {}
        result = list(fn(instances, **kwargs))
        if len(result) != len(instances):
            raise RuntimeError(
                f"lm-eval {method} returned {len(result)} results for {len(instances)} requests"
            )
        return result

    def _run(self, method: str, todo: list[tuple[Any, Any]]) -> list[tuple[list[Any], list[Any], float]]:
        """(keys, results, seconds) per lm-eval call; all instances go in one call when it works.

        When the call raises, the batch is retried one instance at a time (unless the failure looks
        like a lost connection, which would only fail N more times), so one bad request costs only
        its own answer. A failure becomes error Completions in the results, never an exception;
        only a method the model does not implement at all raises NotSupported.
        """
        if not todo:
            return []
        keys = [k for k, _ in todo]
        t0 = time.perf_counter()
        try:
            return [(keys, self._call(method, [inst for _, inst in todo]), time.perf_counter() - t0)]
        except NotImplementedError:
            # e.g. chat API models have no loglikelihood: the whole kind is unsupported, say so once.
            raise NotSupported(
                f"the lm-eval model {type(self.lm).__name__} does not implement {method}"
            ) from None
        except Exception as e:
            kind = _classify(e)
            if len(todo) == 1 or kind == "transient":
                err = Completion.failed(f"lm-eval {method} failed: {type(e).__name__}: {e}", kind)
                return [(keys, [err] * len(keys), time.perf_counter() - t0)]
        out = []
        for key, inst in todo:
            t1 = time.perf_counter()
            try:
                res = self._call(method, [inst])[0]
            except Exception as e:
                res = Completion.failed(f"lm-eval {method} failed: {type(e).__name__}: {e}", _classify(e))
            out.append(([key], [res], time.perf_counter() - t1))
        return out


def _params(fn: Any) -> Mapping[str, inspect.Parameter]:
    try:
        return inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}


def _init_params(cls: type) -> Mapping[str, inspect.Parameter]:
    """Named constructor parameters (a model taking only **kwargs has none we can rely on)."""
    return {k: p for k, p in _params(cls.__init__).items() if p.kind is not inspect.Parameter.VAR_KEYWORD}


def _public_target(model_type: str, pairs: Sequence[tuple[str, str]]) -> str:
    """``<type>,k=v,...`` with secret values removed: the model part of the backend identity."""
    kept = [f"{k}={v}" for k, v in pairs if not is_secret_name(k)]
    return ",".join([model_type, *kept])


def _revision(args: Mapping[str, str]) -> str | None:
    """An explicit revision arg, or a content fingerprint of a local model folder or GGUF file
    (the hf backend's, so both name the same weights alike)."""
    if args.get("revision"):
        return str(args["revision"])
    for key in ("pretrained", "model", "path"):
        value = args.get(key)
        if not value:
            continue
        p = Path(str(value)).expanduser()
        gguf = args.get("gguf_file")
        if p.is_dir():
            return local_fingerprint(p, str(gguf) if gguf and (p / str(gguf)).is_file() else None)
        if p.is_file() and p.suffix == ".gguf":
            return local_fingerprint(p.parent, p.name)
    return None


def _torch_dtype(lm: Any) -> str | None:
    """The dtype an in-process torch model runs in (lm-eval's "auto" resolved); None for API models."""
    dtype = getattr(getattr(lm, "model", None), "dtype", None)
    text = str(dtype) if dtype is not None else ""
    return text if text.startswith("torch.") else None


def _params_total(lm: Any) -> int | None:
    """Parameter count of an in-process torch model (HFLM and friends); None for API models."""
    try:
        params = getattr(getattr(lm, "model", None), "parameters", None)
        return int(sum(p.numel() for p in params())) if callable(params) else None
    except Exception:
        return None


def _lm_eval_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("lm_eval")
    except Exception:
        return None

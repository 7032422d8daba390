"""vLLM in process: ``vllm:<hub id or path>`` (extra: vllm; needs a GPU).

The mapping from evalkit Requests to vLLM calls is kept in pure functions (``plan_generate``,
``sampling_kwargs``, ``completions_from_output``, ``plan_loglikelihood``, ``score_prompt_logprobs``)
so it is unit-tested on machines without vLLM; ``VLLMBackend`` only feeds them to ``vllm.LLM``.

- Repeats of one prompt (requests that differ only by repeat index and key) become one vLLM
  request with ``SamplingParams(n=k)``: the prompt is prefilled once. Greedy groups ask for one
  output and copy it to every repeat (greedy repeats are identical by definition).
- Prompts are rendered exactly as in the hf backend (chat template with the generation prompt, or
  the plain prompt with BOS) and sent as token ids, so both backends see the same tokens.
- Loglikelihood uses ``prompt_logprobs=1`` over context + continuation, split at the context
  length as lm-eval does, planned by the same ``plan_token_loglikelihood`` as the hf backend
  (with vLLM's window: see ``local.prompt_logprobs_window``).
- The identity covers the weights (revision), the dtype vLLM runs in and the context length
  (``vllm_backend_info``); the batch size, tensor parallelism and memory share do not.

Options (``--model-arg``): dtype, revision, trust_remote_code, max_length (max_model_len),
tensor_parallel_size, gpu_memory_utilization, batch_size (requests per call, default 256; the
same setting as the run's --concurrency).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.backends.base import BackendBase
from evalkit.backends.local import (
    LLRow,
    encode_prompt,
    identity_variant,
    local_fingerprint,
    plan_token_loglikelihood,
    prompt_logprobs_window,
)
from evalkit.backends.options import (
    one_concurrency,
    option_bool,
    option_float,
    option_int,
    reject_unknown,
)
from evalkit.errors import BackendError
from evalkit.types import BackendInfo, Completion, GenParams, Request, Usage

if TYPE_CHECKING:
    from evalkit.backends import BackendSpec

OPTIONS = (
    "dtype",
    "revision",
    "trust_remote_code",
    "max_length",
    "tensor_parallel_size",
    "gpu_memory_utilization",
    "batch_size",
)
DEFAULT_BATCH_SIZE = 256
INSTALL_HINT = "install evalkit[vllm] on a machine with a GPU (pip install 'evalkit[vllm]')"


# ---------------------------------------------------------------------------------------------
# Pure mapping: evalkit requests -> vLLM calls -> evalkit completions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VLLMCall:
    """One vLLM request: a prompt (token ids), its SamplingParams keyword arguments, and which
    evalkit requests (indices, in repeat order) its outputs answer."""

    prompt_token_ids: tuple[int, ...]
    sampling: Mapping[str, Any]
    targets: tuple[int, ...]
    fan_out: bool = False  # greedy group: the one output answers every target


def _group_key(req: Request) -> tuple:
    """Everything that defines a request except its repeat index and key."""
    return (req.kind, req.task, req.sample_id, req.messages, req.prompt, req.params, req.continuations)


def group_repeats(reqs: Sequence[Request]) -> list[list[int]]:
    """Indices of requests that differ only by repeat, in first-seen order, each sorted by repeat."""
    groups: dict[tuple, list[int]] = {}
    for i, req in enumerate(reqs):
        groups.setdefault(_group_key(req), []).append(i)
    return [sorted(g, key=lambda i: reqs[i].repeat) for g in groups.values()]


def group_seed(reqs: Sequence[Request]) -> int:
    """The vLLM seed of a group: the task seed, the keys and the repeats it holds. Sending the same
    repeats again draws the same samples; a top-up of other repeats draws different ones."""
    h = hashlib.sha256()
    for req in reqs:
        h.update(f"{req.params.seed}|{req.key}|{req.repeat}\n".encode())
    return int.from_bytes(h.digest()[:8], "big") & (2**63 - 1)


def sampling_kwargs(params: GenParams, n: int, seed: int | None) -> dict[str, Any]:
    """SamplingParams keyword arguments for evalkit GenParams. Everything else keeps vLLM's neutral
    defaults (no penalties, no top_k): an explicit SamplingParams never takes a model's
    generation_config, so a "greedy" run stays greedy."""
    kw: dict[str, Any] = {
        "n": n,
        "max_tokens": params.max_tokens,
        "stop": list(params.stop),
    }
    if params.temperature > 0:
        kw.update(temperature=params.temperature, top_p=params.top_p, seed=seed)
    else:
        kw.update(temperature=0.0, top_p=1.0)
    return kw


def plan_generate(
    reqs: Sequence[Request], encode: Callable[[Request], list[int]]
) -> tuple[list[VLLMCall], dict[int, Completion]]:
    """Group generation requests into vLLM calls. Requests whose prompt cannot be built come back
    as error Completions by index instead of failing the batch."""
    calls: list[VLLMCall] = []
    errors: dict[int, Completion] = {}
    for group in group_repeats(reqs):
        first = reqs[group[0]]
        try:
            if first.kind != "generate":
                raise ValueError(f"a {first.kind} request was sent to generate")
            ids = tuple(encode(first))
        except Exception as e:
            for i in group:
                errors[i] = Completion.failed(f"cannot build the prompt: {e}")
            continue
        greedy = first.params.temperature <= 0
        n = 1 if greedy else len(group)
        seed = None if greedy else group_seed([reqs[i] for i in group])
        calls.append(VLLMCall(ids, sampling_kwargs(first.params, n, seed), tuple(group), fan_out=greedy))
    return calls, errors


def completions_from_output(call: VLLMCall, output: Any, latency_s: float) -> list[tuple[int, Completion]]:
    """Map a vLLM RequestOutput (``.outputs[k]`` with text, token_ids, finish_reason) back to the
    call's target requests. vLLM has already cut the text at the stop string."""
    outs = list(output.outputs)
    needed = 1 if call.fan_out else len(call.targets)
    if len(outs) < needed:
        return [
            (i, Completion.failed(f"vLLM returned {len(outs)} outputs for {needed}")) for i in call.targets
        ]
    prompt_tokens = len(call.prompt_token_ids)
    result = []
    for k, i in enumerate(call.targets):
        o = outs[0] if call.fan_out else outs[k]
        reason = getattr(o, "finish_reason", None)
        if reason not in ("stop", "length"):
            comp = Completion.failed(f"vLLM finished with {reason!r}", "transient")
        else:
            comp = Completion(
                text=o.text,
                finish_reason=reason,
                usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(o.token_ids)),
                latency_s=latency_s,
            )
        result.append((i, comp))
    return result


def score_prompt_logprobs(prompt_logprobs: Sequence[Any], row: LLRow) -> tuple[float, bool]:
    """Sum of the continuation tokens' log p and whether each was the top-1 token.

    ``prompt_logprobs[t]`` is vLLM's dict {token id: Logprob(logprob, rank, ...)} for prompt
    position t (None at t=0); with ``prompt_logprobs=1`` it holds the actual token and the top one.
    """
    total, greedy = 0.0, True
    for t in range(row.n_context, len(row.token_ids)):
        tok = row.token_ids[t]
        entry = prompt_logprobs[t]
        if entry is None or tok not in entry:
            raise ValueError(f"vLLM returned no logprob for prompt position {t}")
        total += float(entry[tok].logprob)
        rank = getattr(entry[tok], "rank", None)
        if rank is not None:
            greedy = greedy and rank == 1
        else:
            greedy = greedy and all(entry[tok].logprob >= v.logprob for v in entry.values())
    return total, greedy


def loglikelihood_sampling_kwargs() -> dict[str, Any]:
    """Score the prompt only: one throwaway greedy token, prompt logprobs with the top-1."""
    return {"n": 1, "max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 1, "detokenize": False}


# ---------------------------------------------------------------------------------------------
# The backend
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VLLMOptions:
    dtype: str = "auto"
    revision: str | None = None
    trust_remote_code: bool = False
    max_length: int | None = None  # vLLM's max_model_len; None: the model's own
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    batch_size: int = DEFAULT_BATCH_SIZE

    @classmethod
    def parse(cls, options: Mapping[str, Any], concurrency: int | None = None) -> VLLMOptions:
        """Typed ``--model-arg`` values; the run's ``concurrency`` is the batch size."""
        reject_unknown("vllm", options, OPTIONS)
        max_length = options.get("max_length")
        return cls(
            dtype=str(options.get("dtype", "auto")).lower(),
            revision=str(options["revision"]) if options.get("revision") else None,
            trust_remote_code=option_bool("trust_remote_code", options.get("trust_remote_code", False)),
            max_length=option_int("max_length", max_length, 2) if max_length else None,
            tensor_parallel_size=option_int("tensor_parallel_size", options.get("tensor_parallel_size", 1)),
            gpu_memory_utilization=option_float(
                "gpu_memory_utilization", options.get("gpu_memory_utilization", 0.9), 0.0
            ),
            batch_size=one_concurrency("vllm", concurrency, "batch_size", options) or DEFAULT_BATCH_SIZE,
        )


def engine_kwargs(target: str, opts: VLLMOptions) -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM`` (seed 0: evalkit seeds every sampled request itself)."""
    kw: dict[str, Any] = {
        "model": target,
        "trust_remote_code": opts.trust_remote_code,
        "dtype": opts.dtype,
        "tensor_parallel_size": opts.tensor_parallel_size,
        "gpu_memory_utilization": opts.gpu_memory_utilization,
        "seed": 0,
    }
    if opts.revision:
        kw["revision"] = opts.revision
    if opts.max_length:
        kw["max_model_len"] = opts.max_length
    return kw


def vllm_backend_info(
    spec: BackendSpec,
    opts: VLLMOptions,
    *,
    dtype: str,
    revision: str,
    params_total: int | None = None,
) -> BackendInfo:
    """The identity of a vLLM model. ``dtype`` is the one the engine runs in ("auto" resolved, as
    ``model_config.dtype`` reports it). The context length counts when it was set: the model's
    default follows from the weights, which the revision covers (the hf backend's rule)."""
    dtype_name = str(dtype).removeprefix("torch.")
    return BackendInfo(
        backend="vllm",
        model=spec.alias or spec.target,
        revision=revision,
        params_total=params_total,
        extra={"dtype": dtype_name, "tensor_parallel_size": opts.tensor_parallel_size},
        variant=identity_variant(dtype_name, max_length=opts.max_length),
    )


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as e:
        raise BackendError(f"vllm is not available ({e}); {INSTALL_HINT}") from None
    return vllm


class VLLMBackend(BackendBase):
    """vllm.LLM in this process. vLLM schedules and batches internally, so calls carry many requests."""

    max_concurrency = 1

    def __init__(
        self, llm: Any, info: BackendInfo, *, batch_size: int = DEFAULT_BATCH_SIZE, max_length: int = 4096
    ) -> None:
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()
        self.info = info
        self.batch_size = batch_size
        self.max_length = max_length
        self._lock = threading.Lock()

    @classmethod
    def from_spec(cls, spec: BackendSpec, options: dict, concurrency: int | None = None) -> VLLMBackend:
        """Start a vLLM engine for the spec's model; BackendError when vLLM or the model is missing.
        ``concurrency`` (the run's --concurrency) is the batch size."""
        opts = VLLMOptions.parse(options, concurrency)
        vllm = _import_vllm()
        try:
            llm = vllm.LLM(**engine_kwargs(spec.target, opts))
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise BackendError(f"vllm:{spec.target}: could not start the engine: {first}") from None
        model_config = llm.llm_engine.model_config
        local = Path(spec.target).expanduser()
        if local.is_dir():
            revision = local_fingerprint(local)
        else:
            hf_config = getattr(model_config, "hf_config", None)
            revision = getattr(hf_config, "_commit_hash", None) or opts.revision or "main"
        info = vllm_backend_info(
            spec,
            opts,
            dtype=str(getattr(model_config, "dtype", opts.dtype)),
            revision=revision,
            params_total=_count_params(spec.target, opts.revision),
        )
        max_len = int(getattr(model_config, "max_model_len", 4096))
        return cls(llm, info, batch_size=opts.batch_size, max_length=max_len)

    async def generate(self, reqs: Sequence[Request]) -> list[Completion]:
        return await asyncio.to_thread(self._generate_sync, list(reqs))

    async def loglikelihood(self, reqs: Sequence[Request]) -> list[Completion]:
        return await asyncio.to_thread(self._loglikelihood_sync, list(reqs))

    async def aclose(self) -> None:
        self.llm = None

    def _generate_sync(self, reqs: list[Request]) -> list[Completion]:
        from vllm import SamplingParams

        out: dict[int, Completion] = {}
        calls, errors = plan_generate(reqs, lambda r: encode_prompt(self.tokenizer, r))
        out.update(errors)
        if calls:
            t0 = time.perf_counter()
            try:
                with self._lock:
                    results = self.llm.generate(
                        [{"prompt_token_ids": list(c.prompt_token_ids)} for c in calls],
                        [SamplingParams(**c.sampling) for c in calls],
                        use_tqdm=False,
                    )
                dt = time.perf_counter() - t0
                for call, res in zip(calls, results, strict=True):
                    out.update(completions_from_output(call, res, dt))
            except Exception as e:  # recorded per request, never raised
                for call in calls:
                    for i in call.targets:
                        out[i] = Completion.failed(f"{type(e).__name__}: {e}")
        return [out.get(i) or Completion.failed("no result") for i in range(len(reqs))]

    def _loglikelihood_sync(self, reqs: list[Request]) -> list[Completion]:
        from vllm import SamplingParams

        window = prompt_logprobs_window(self.max_length)
        rows, out = plan_token_loglikelihood(reqs, self.tokenizer, window)
        if rows:
            t0 = time.perf_counter()
            try:
                with self._lock:
                    results = self.llm.generate(
                        [{"prompt_token_ids": list(r.token_ids)} for r in rows],
                        SamplingParams(**loglikelihood_sampling_kwargs()),
                        use_tqdm=False,
                    )
            except Exception as e:
                for r in rows:
                    out[r.request] = Completion.failed(f"{type(e).__name__}: {e}")
            else:
                out.update(completions_from_prompt_logprobs(reqs, rows, results, time.perf_counter() - t0))
        return [out.get(i) or Completion.failed("no result") for i in range(len(reqs))]


def completions_from_prompt_logprobs(
    reqs: Sequence[Request], rows: Sequence[LLRow], results: Sequence[Any], latency_s: float
) -> dict[int, Completion]:
    """One Completion per request from vLLM's RequestOutputs (``.prompt_logprobs``) of its rows."""
    out: dict[int, Completion] = {}
    scores: dict[int, dict[int, tuple[float, bool]]] = {}
    for r, res in zip(rows, results, strict=True):
        try:
            scores.setdefault(r.request, {})[r.continuation] = score_prompt_logprobs(res.prompt_logprobs, r)
        except Exception as e:
            out[r.request] = Completion.failed(str(e))
    by_request: dict[int, list[LLRow]] = {}
    for r in rows:
        by_request.setdefault(r.request, []).append(r)
    for i, mine in by_request.items():
        if i in out:
            continue
        got = [scores[i][c] for c in range(len(reqs[i].continuations))]
        out[i] = Completion(
            text="",
            finish_reason="stop",
            usage=Usage(
                prompt_tokens=mine[0].n_context, completion_tokens=sum(r.n_continuation for r in mine)
            ),
            logprobs=tuple(g[0] for g in got),
            greedy=tuple(g[1] for g in got),
            latency_s=latency_s,
        )
    return out


def _count_params(target: str, revision: str | None) -> int | None:
    """Total parameters from the safetensors headers (vLLM's workers hold the weights out of reach)."""
    import json
    import struct

    folder = Path(target).expanduser()
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(target, revision=revision, local_files_only=True))
        except Exception:
            return None
    total = 0
    files = sorted(folder.glob("*.safetensors"))
    for f in files:
        with f.open("rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for name, meta in header.items():
            if name != "__metadata__":
                count = 1
                for d in meta["shape"]:
                    count *= d
                total += count
    return total or None

"""Hugging Face transformers in process: ``hf:<local folder, .gguf file or hub id>`` (extra: hf).

Batched generation with left padding (greedy, or seeded sampling per request so that a repeat's
output never depends on which other requests shared its batch), stop sequences, chat templates
from the tokenizer, and ``loglikelihood`` of continuations split at the context boundary the way
lm-eval does. The model runs in a worker thread so the event loop stays free.

Local weights load on the first request: their identity comes from the files, so a run whose
answers are all recorded or cached never spends the load. A hub model loads at construction,
since its revision is only known once the hub (or its cache) has answered.

Options (``--model-arg key=value``): gguf_file, dtype (auto|float32|bfloat16|float16),
device (auto|cpu|cuda), batch_size (int or auto; the same setting as the run's --concurrency),
revision, trust_remote_code (false), max_length (context window in tokens; default from the
model config).

torch and transformers are imported here only: ``evalkit --help`` must never load them.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
)

from evalkit.backends.base import BackendBase
from evalkit.backends.local import (
    LLRow,
    decode_until_stop,
    encode_prompt,
    forward_pass_window,
    identity_variant,
    local_fingerprint,
    plan_token_loglikelihood,
)
from evalkit.backends.options import one_concurrency, option_bool, option_int, reject_unknown
from evalkit.console import note
from evalkit.errors import BackendError
from evalkit.types import BackendInfo, Completion, Request, Usage

if TYPE_CHECKING:
    from evalkit.backends import BackendSpec

OPTIONS = ("gguf_file", "dtype", "device", "batch_size", "revision", "trust_remote_code", "max_length")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
CPU_BATCH_SIZE = 8  # CPU throughput stops improving around here for small models on few cores
CUDA_START_BATCH_SIZE = 64  # halved on out-of-memory until it fits
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

T = TypeVar("T")
U = TypeVar("U")


def request_seed(req: Request) -> int:
    """A per-request sampling seed: the task's seed combined with the request key (which holds the
    repeat index), so every repeat differs and the same request always samples the same text."""
    digest = hashlib.sha256(f"{req.params.seed}|{req.key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


# ---------------------------------------------------------------------------------------------
# Options and weights
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HFOptions:
    gguf_file: str | None = None
    dtype: str = "auto"
    device: str = "auto"
    batch_size: int | None = None  # None = auto
    revision: str | None = None
    trust_remote_code: bool = False
    max_length: int | None = None

    @classmethod
    def parse(cls, options: Mapping[str, Any], concurrency: int | None = None) -> HFOptions:
        """Validate ``--model-arg`` values (strings from the CLI) into typed options. The run's
        ``concurrency`` is the batch size, unless ``batch_size`` says the same."""
        reject_unknown("hf", options, OPTIONS)
        dtype = str(options.get("dtype", "auto")).lower()
        if dtype not in ("auto", *DTYPES):
            raise BackendError(f"--model-arg dtype={dtype!r}: use auto, float32, bfloat16 or float16")
        device = str(options.get("device", "auto")).lower()
        if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
            raise BackendError(f"--model-arg device={device!r}: use auto, cpu or cuda")
        bs = options.get("batch_size", "auto")
        given = {} if str(bs).lower() == "auto" else {"batch_size": bs}
        max_length = options.get("max_length")
        return cls(
            gguf_file=options.get("gguf_file") or None,
            dtype=dtype,
            device=device,
            batch_size=one_concurrency("hf", concurrency, "batch_size", given),
            revision=options.get("revision") or None,
            trust_remote_code=option_bool("trust_remote_code", options.get("trust_remote_code", False)),
            max_length=option_int("max_length", max_length, 2) if max_length is not None else None,
        )


@dataclass(frozen=True)
class Weights:
    """Where an hf model comes from (``_resolve_source``)."""

    source: str  # what from_pretrained gets: a folder or a hub id
    gguf_file: str | None
    local: Path | None  # the local folder; None for a hub id

    def describe(self) -> str:
        return str(self.local) if self.local is not None else f"hub:{self.source}"


def _pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError("--model-arg device=cuda: no CUDA device is available here; use device=cpu")
    return torch.device(device)


def _pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype != "auto":
        return DTYPES[dtype]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32  # CPU half precision is slow and lossy


def _backend_info(
    *,
    model_name: str,
    revision: str | None,
    weights: Weights,
    device: torch.device,
    dtype: torch.dtype,
    max_length: int | None,
    params_total: int | None = None,
) -> BackendInfo:
    dtype_name = str(dtype).removeprefix("torch.")
    return BackendInfo(
        backend="hf",
        model=model_name,
        revision=revision,
        params_total=params_total,
        extra={
            "source": weights.describe(),
            "gguf_file": weights.gguf_file,
            "dtype": dtype_name,
            "device": str(device),
        },
        # Numeric precision and the context cap change outputs, so they are part of the identity.
        variant=identity_variant(dtype_name, max_length=max_length),
    )


# ---------------------------------------------------------------------------------------------
# Generation helpers running inside model.generate
# ---------------------------------------------------------------------------------------------


class _RowSampler(LogitsProcessor):
    """Samples each sampling row with its own generator, then leaves only that token finite.

    ``generate`` runs greedy (argmax) over the result, so greedy rows and sampled rows can share a
    batch and a row's draws depend only on its own seed, never on its batch neighbours.
    """

    def __init__(self, rows: list[tuple[float, float, torch.Generator] | None]) -> None:
        self.rows = rows

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for i, row in enumerate(self.rows):
            if row is None:
                continue
            temperature, top_p, gen = row
            probs = torch.softmax(scores[i].float() / temperature, dim=-1)
            if top_p < 1.0:
                sorted_p, order = probs.sort(descending=True)
                keep = (sorted_p.cumsum(0) - sorted_p) < top_p  # smallest prefix reaching top_p
                keep[0] = True  # top_p <= 0 still keeps the most likely token
                sorted_p = sorted_p * keep
                choice = order[torch.multinomial(sorted_p, 1, generator=gen)]
            else:
                choice = torch.multinomial(probs, 1, generator=gen)
            scores[i] = float("-inf")
            scores[i, choice] = 0.0
        return scores


class _RowStop(StoppingCriteria):
    """Per-row stop: the row's token budget or one of its stop strings in the generated text."""

    def __init__(self, tokenizer: Any, prompt_len: int, budgets: list[int], stops: list[tuple[str, ...]]):
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.budgets = budgets
        self.stops = stops
        longest = max((len(s) for row in stops for s in row), default=0)
        # A character can take up to 4 byte-level tokens; a few more cover a token holding the start.
        self.window = 4 * longest + 4
        self.done_at: list[int | None] = [None] * len(budgets)  # generated length when the row stopped

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        n = input_ids.shape[1] - self.prompt_len
        for i in range(input_ids.shape[0]):
            if self.done_at[i] is not None:
                continue
            if n >= self.budgets[i]:
                self.done_at[i] = n
            elif self.stops[i]:
                tail = input_ids[i, max(self.prompt_len, input_ids.shape[1] - self.window) :]
                text = self.tokenizer.decode(tail, skip_special_tokens=False)
                if any(s in text for s in self.stops[i]):
                    self.done_at[i] = n
        done = [d is not None for d in self.done_at]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


@dataclass
class _GenRow:
    index: int
    ids: list[int]
    budget: int  # tokens this row may generate (max_tokens, capped by the context window)


class TokenScore(NamedTuple):
    """What one forward pass says about one continuation."""

    logprob: float  # sum of log p over the continuation's tokens
    greedy: bool  # whether greedy decoding yields exactly the continuation
    seconds: float  # this row's share of the batch's time
    token_logprobs: tuple[float, ...]  # log p of each continuation token


@dataclass(frozen=True)
class Failure:
    """A row of a batch that produced no result (``HFBackend._batched``)."""

    message: str


@dataclass(frozen=True)
class _Pending:
    """What an unloaded backend loads on its first request."""

    target: str
    weights: Weights
    opts: HFOptions
    dtype: torch.dtype
    model_name: str


# ---------------------------------------------------------------------------------------------
# The backend
# ---------------------------------------------------------------------------------------------


class HFBackend(BackendBase):
    """A transformers causal LM in this process. One call at a time; batching happens inside.

    Built from a loaded model and tokenizer (tests, benchmarks), or by ``for_target``, which
    leaves local weights unloaded until the first request (``load`` loads them at once).
    """

    max_concurrency = 1

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        info: BackendInfo,
        *,
        device: torch.device,
        batch_size: int | None = None,
        max_length: int | None = None,
        worker: ThreadPoolExecutor | None = None,
    ) -> None:
        self.info = info
        self.device = device
        self.batch_size = batch_size or (CUDA_START_BATCH_SIZE if device.type == "cuda" else CPU_BATCH_SIZE)
        self.model: Any = None
        self.tokenizer: Any = None
        self.max_length = max_length or 0  # the model's own window when not given (known once loaded)
        self._max_length_option = max_length
        self.eos_ids: list[int] = []
        self.pad_id = 0
        self._pending: _Pending | None = None
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        # One long-lived worker thread loads and runs the model: torch's intra-op (OpenMP) pool and
        # CUDA state are per calling thread, so they are created once instead of once per call.
        self._worker = worker or ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalkit-hf")
        if model is not None:
            self._attach(model, tokenizer)

    def _attach(self, model: Any, tokenizer: Any) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.max_length = self._max_length_option or _model_max_length(model, tokenizer)
        gc_ = model.generation_config
        eos = gc_.eos_token_id if gc_.eos_token_id is not None else tokenizer.eos_token_id
        self.eos_ids = [e for e in (eos if isinstance(eos, list) else [eos]) if e is not None]
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in self.eos_ids:
            self.eos_ids.append(int(tokenizer.eos_token_id))
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else (self.eos_ids[0] if self.eos_ids else 0))
        # evalkit sets every sampling parameter itself: a model's shipped defaults (temperature,
        # repetition penalty, top_k) would otherwise leak into "greedy" runs and break reproducibility.
        model.generation_config = GenerationConfig(
            eos_token_id=self.eos_ids or None,
            pad_token_id=self.pad_id,
            bos_token_id=tokenizer.bos_token_id,
        )

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def from_spec(cls, spec: BackendSpec, options: dict, concurrency: int | None = None) -> HFBackend:
        """The backend for an ``hf:`` spec (or a catalog alias resolved to one); ``concurrency``
        (the run's --concurrency) is its batch size."""
        opts = HFOptions.parse(options, concurrency)
        target = spec.target
        if spec.alias:
            target = _ensure_catalog_model(spec.alias, target)
        return cls.for_target(target, opts, model_name=spec.alias or spec.target)

    @classmethod
    def for_target(
        cls, target: str, opts: HFOptions | None = None, *, model_name: str | None = None
    ) -> HFBackend:
        """A local folder or ``.gguf`` file (loaded on first use) or a hub id (loaded now).
        Failures -> BackendError."""
        opts = opts or HFOptions()
        weights = _resolve_source(target, opts.gguf_file)
        device = _pick_device(opts.device)
        dtype = _pick_dtype(opts.dtype, device)
        name = model_name or target
        revision = local_fingerprint(weights.local, weights.gguf_file) if weights.local is not None else None
        info = _backend_info(
            model_name=name,
            revision=revision,
            weights=weights,
            device=device,
            dtype=dtype,
            max_length=opts.max_length,
        )
        backend = cls(None, None, info, device=device, batch_size=opts.batch_size, max_length=opts.max_length)
        backend._pending = _Pending(target, weights, opts, dtype, name)
        if weights.local is None:
            try:
                backend.load()
            except BaseException:
                backend._worker.shutdown(wait=False)
                raise
        return backend

    @property
    def loaded(self) -> bool:
        return self.model is not None

    def load(self) -> HFBackend:
        """Load the weights now, if they are not loaded yet (a request loads them itself)."""
        self._worker.submit(self._load_here).result()
        return self

    def _load_here(self) -> None:
        """Load on the thread that will run the model (see __init__), so torch work stays on one thread."""
        with self._load_lock:
            if self.model is not None:
                return
            p = self._pending
            if p is None:
                raise BackendError("the hf backend was closed")
            kw: dict[str, Any] = {"trust_remote_code": p.opts.trust_remote_code}
            if p.opts.revision:
                kw["revision"] = p.opts.revision
            if p.weights.gguf_file:
                kw["gguf_file"] = p.weights.gguf_file
                note(f"loading {p.weights.gguf_file} (dequantising a GGUF takes a few seconds)")
            if p.weights.local is None:  # an unreachable hub is retried for a while: say what waits
                note(f"loading {p.weights.source} from the Hugging Face Hub cache or the Hub")
            try:
                tokenizer = AutoTokenizer.from_pretrained(p.weights.source, **kw)
                model = AutoModelForCausalLM.from_pretrained(p.weights.source, dtype=p.dtype, **kw)
                model = model.to(self.device).eval()
            except Exception as e:  # transformers raises OSError, ValueError, EnvironmentError ...
                raise _load_error(p.target, p.weights.local, e) from None
            revision = self.info.revision
            if p.weights.local is None:
                revision = getattr(model.config, "_commit_hash", None) or p.opts.revision or "main"
            info = _backend_info(
                model_name=p.model_name,
                revision=revision,
                weights=p.weights,
                device=self.device,
                dtype=p.dtype,
                max_length=p.opts.max_length,
                params_total=sum(q.numel() for q in model.parameters()),
            )
            if p.weights.local is not None and info.identity != self.info.identity:
                raise BackendError(f"hf:{p.target}: the weights changed while evalkit was running")
            self.info = info
            self._attach(model, tokenizer)

    # -- protocol ------------------------------------------------------------------------------

    async def generate(self, reqs: Sequence[Request]) -> list[Completion]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, self._locked, self._generate_sync, list(reqs))

    async def loglikelihood(self, reqs: Sequence[Request]) -> list[Completion]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, self._locked, self._loglikelihood_sync, list(reqs))

    async def aclose(self) -> None:
        self._worker.shutdown(wait=True)
        was_loaded = self.model is not None
        self.model = None
        self._pending = None
        if was_loaded:
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    def _locked(
        self, fn: Callable[[list[Request]], list[Completion]], reqs: list[Request]
    ) -> list[Completion]:
        self._load_here()
        with self._lock, torch.inference_mode():
            return fn(reqs)

    # -- generation ----------------------------------------------------------------------------

    def _generate_sync(self, reqs: list[Request]) -> list[Completion]:
        out: list[Completion | None] = [None] * len(reqs)
        rows: list[_GenRow] = []
        for i, req in enumerate(reqs):
            try:
                if req.kind != "generate":
                    raise ValueError(f"a {req.kind} request was sent to generate")
                ids = encode_prompt(self.tokenizer, req)
            except Exception as e:
                out[i] = Completion.failed(f"cannot build the prompt: {e}")
                continue
            room = self.max_length - len(ids)
            if room < 1:
                out[i] = Completion.failed(
                    f"the prompt has {len(ids)} tokens and the model's context is {self.max_length}; "
                    "shorten the prompt (fewer shots) or raise max_length if the model allows"
                )
                continue
            budget = min(req.params.max_tokens, room)
            rows.append(_GenRow(i, ids, budget))
        # Longest first (as lm-eval): similar lengths share a batch, and an OOM shows up at once.
        rows.sort(key=lambda r: -len(r.ids))
        for chunk, result in self._batched(rows, lambda chunk: self._generate_batch(reqs, chunk)):
            for row, comp in zip(chunk, result, strict=True):
                out[row.index] = comp if isinstance(comp, Completion) else Completion.failed(comp.message)
        return [c if c is not None else Completion.failed("no result") for c in out]

    def _generate_batch(self, reqs: list[Request], rows: list[_GenRow]) -> list[Completion]:
        t0 = time.perf_counter()
        width = max(len(r.ids) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for j, r in enumerate(rows):  # LEFT padding: every row's next token lands in the same column
            input_ids[j, width - len(r.ids) :] = torch.tensor(r.ids)
            attention[j, width - len(r.ids) :] = 1
        sampler_rows: list[tuple[float, float, torch.Generator] | None] = []
        for r in rows:
            p = reqs[r.index].params
            if p.temperature > 0:
                g = torch.Generator(device=self.device).manual_seed(request_seed(reqs[r.index]))
                sampler_rows.append((p.temperature, p.top_p, g))
            else:
                sampler_rows.append(None)
        stops = [tuple(s for s in reqs[r.index].params.stop if s) for r in rows]
        budgets = [r.budget for r in rows]
        processors = LogitsProcessorList([_RowSampler(sampler_rows)] if any(sampler_rows) else [])
        row_stop = _RowStop(self.tokenizer, width, budgets, stops)
        criteria = StoppingCriteriaList([row_stop])
        gen_cfg = GenerationConfig(
            max_new_tokens=max(budgets),
            do_sample=False,
            num_beams=1,
            eos_token_id=self.eos_ids or None,
            pad_token_id=self.pad_id,
        )
        seq = self.model.generate(
            input_ids=input_ids.to(self.device),
            attention_mask=attention.to(self.device),
            generation_config=gen_cfg,
            logits_processor=processors,
            stopping_criteria=criteria,
        )
        seq = seq[:, width:].tolist()
        latency = time.perf_counter() - t0
        result = []
        for j, r in enumerate(rows):
            # Tokens after a row stopped are padding: keep only what the row generated itself.
            toks = seq[j][: row_stop.done_at[j] or r.budget]
            n_generated = len(toks)
            finish = "length"
            eos_at = next((k for k, t in enumerate(toks) if t in self.eos_ids), None)
            if eos_at is not None:
                toks, finish, n_generated = toks[:eos_at], "stop", eos_at + 1
            text, stopped = decode_until_stop(self.tokenizer, toks, stops[j])
            if stopped:
                finish = "stop"
            result.append(
                Completion(
                    text=text,
                    finish_reason=finish,
                    usage=Usage(prompt_tokens=len(r.ids), completion_tokens=n_generated),
                    latency_s=latency,
                )
            )
        return result

    # -- loglikelihood ---------------------------------------------------------------------------

    def _loglikelihood_sync(self, reqs: list[Request]) -> list[Completion]:
        rows, out = plan_token_loglikelihood(reqs, self.tokenizer, forward_pass_window(self.max_length))
        rows.sort(key=lambda r: -len(r.token_ids))
        scores: dict[tuple[int, int], TokenScore] = {}
        for chunk, results in self._batched(rows, self._score_batch):
            for row, res in zip(chunk, results, strict=True):
                if isinstance(res, Failure):
                    out.setdefault(row.request, Completion.failed(res.message))
                else:
                    scores[(row.request, row.continuation)] = res
        by_request: dict[int, list[LLRow]] = {}
        for row in rows:
            by_request.setdefault(row.request, []).append(row)
        for i, mine in by_request.items():
            if i in out:
                continue
            mine.sort(key=lambda r: r.continuation)
            got = [scores[(i, r.continuation)] for r in mine]
            out[i] = Completion(
                text="",
                finish_reason="stop",
                usage=Usage(
                    prompt_tokens=mine[0].n_context, completion_tokens=sum(r.n_continuation for r in mine)
                ),
                logprobs=tuple(g.logprob for g in got),
                greedy=tuple(g.greedy for g in got),
                token_logprobs=tuple(g.token_logprobs for g in got),
                latency_s=sum(g.seconds for g in got),
            )
        return [out.get(i) or Completion.failed("no result") for i in range(len(reqs))]

    def _score_batch(self, rows: list[LLRow]) -> list[TokenScore]:
        t0 = time.perf_counter()
        inputs = [r.token_ids[:-1] for r in rows]  # predict token t from tokens < t
        width = max(len(x) for x in inputs)
        keep = max(r.n_continuation for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for j, x in enumerate(inputs):  # left padding, so every continuation ends at the last column
            input_ids[j, width - len(x) :] = torch.tensor(x)
            attention[j, width - len(x) :] = 1
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        logits = self.model(
            input_ids=input_ids.to(self.device),
            attention_mask=attention.to(self.device),
            position_ids=positions.to(self.device),
            logits_to_keep=keep,
        ).logits
        logp = torch.log_softmax(logits.float(), dim=-1)
        dt = (time.perf_counter() - t0) / len(rows)
        result = []
        for j, row in enumerate(rows):
            n = row.n_continuation
            if not n:
                result.append(TokenScore(0.0, True, dt, ()))
                continue
            target = torch.tensor(row.token_ids[-n:], device=logp.device)
            lp = logp[j, keep - n :]
            per_token = lp.gather(-1, target[:, None]).squeeze(-1)
            greedy = bool((lp.argmax(-1) == target).all().item())
            tokens = tuple(float(x) for x in per_token.tolist())
            result.append(TokenScore(float(per_token.sum().item()), greedy, dt, tokens))
        return result

    # -- batching with out-of-memory back-off ----------------------------------------------------

    def _batched(
        self, rows: list[T], fn: Callable[[list[T]], list[U]]
    ) -> Iterator[tuple[list[T], list[U | Failure]]]:
        """Yield (chunk, results). On out-of-memory, halve the batch size and retry the chunk;
        a row that fails even alone, or any other error, yields a ``Failure`` per row."""
        i = 0
        while i < len(rows):
            chunk = rows[i : i + self.batch_size]
            results: list[U | Failure]
            try:
                results = list(fn(chunk))
            except torch.cuda.OutOfMemoryError:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if len(chunk) > 1:
                    self.batch_size = max(1, len(chunk) // 2)
                    note(f"hf backend: out of memory at batch size {len(chunk)}; now {self.batch_size}")
                    continue
                results = [Failure("out of memory on a single request")]
            except Exception as e:  # a failed batch is recorded as errors, never raised
                results = [Failure(f"{type(e).__name__}: {e}")] * len(chunk)
            yield chunk, results
            i += len(chunk)


def _model_max_length(model: Any, tokenizer: Any) -> int:
    cfg = model.config
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        v = getattr(cfg, attr, None)
        if isinstance(v, int) and v > 0:
            return v
    v = getattr(tokenizer, "model_max_length", None)
    return v if isinstance(v, int) and 0 < v < 10**7 else 2048


def _resolve_source(target: str, gguf_file: str | None) -> Weights:
    path = Path(target).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        if gguf_file and gguf_file != path.name:
            raise BackendError(f"hf:{target} is a .gguf file; drop --model-arg gguf_file={gguf_file}")
        return Weights(str(path.parent), path.name, path.parent.resolve())
    if path.is_dir():
        if gguf_file and not (path / gguf_file).is_file():
            raise BackendError(f"hf:{target}: no file {gguf_file!r} in that folder (--model-arg gguf_file)")
        if not gguf_file and not (path / "config.json").is_file():
            ggufs = sorted(p.name for p in path.glob("*.gguf"))
            hint = f"; pick a GGUF with --model-arg gguf_file={ggufs[0]}" if ggufs else ""
            raise BackendError(f"hf:{target}: the folder has no config.json{hint}")
        return Weights(str(path), gguf_file, path.resolve())
    looks_like_path = target.startswith(("/", ".", "~")) or target.endswith(".gguf") or target.count("/") > 1
    if looks_like_path or not _HUB_ID.match(target):
        raise BackendError(
            f"hf:{target}: no such file or folder; pass a model folder (config.json + weights), "
            "a .gguf file, or a Hugging Face hub id such as HuggingFaceTB/SmolLM2-135M-Instruct"
        )
    return Weights(target, gguf_file, None)


def _load_error(target: str, local: Path | None, e: Exception) -> BackendError:
    detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if local is None:
        return BackendError(
            f"hf:{target}: could not load it from the Hugging Face Hub (the hub is unreachable or the "
            f"model is not in the local cache: {detail}); pass a local path (hf:/path/to/model) "
            "or use `evalkit models pull <catalog id>`"
        )
    return BackendError(f"hf:{target}: could not load the model from {local}: {detail}")


def _ensure_catalog_model(alias: str, target: str) -> str:
    """For a catalog alias with a ``pull`` section, download the model on first use."""
    from evalkit.catalog import find_model

    entry = find_model(alias)
    if entry is None or not entry.pull:
        return target
    from evalkit.catalog.pull import ensure_pulled

    return str(ensure_pulled(entry))

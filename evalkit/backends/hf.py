"""Hugging Face transformers in process: ``hf:<local folder, .gguf file or hub id>`` (extra: hf).

Batched generation with left padding (greedy, or seeded sampling per request so that a repeat's
output never depends on which other requests shared its batch), stop sequences, chat templates
from the tokenizer, and ``loglikelihood`` of continuations split at the context boundary the way
lm-eval does. The model runs in a worker thread so the event loop stays free.

Options (``--model-arg key=value``): gguf_file, dtype (auto|float32|bfloat16|float16),
device (auto|cpu|cuda), batch_size (int or auto), revision, trust_remote_code (false),
max_length (context window in tokens; default from the model config).

torch and transformers are imported here only: ``evalkit --help`` must never load them.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

from evalkit.errors import BackendError
from evalkit.types import BackendInfo, Completion, Request, Usage

if TYPE_CHECKING:
    from evalkit.backends import BackendSpec

OPTIONS = ("gguf_file", "dtype", "device", "batch_size", "revision", "trust_remote_code", "max_length")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
CPU_BATCH_SIZE = 8  # CPU throughput stops improving around here for small models on few cores
CUDA_START_BATCH_SIZE = 64  # halved on out-of-memory until it fits
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack")
_TOKENIZER_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "tokenizer.model",
)


# ---------------------------------------------------------------------------------------------
# Prompt rendering and tokenization (shared with the vllm backend)
# ---------------------------------------------------------------------------------------------


def render_context(tokenizer: Any, req: Request) -> tuple[str, bool]:
    """The text a request conditions on, and whether encoding it should add special tokens (BOS).

    Chat messages go through the tokenizer's chat template with the generation prompt; the
    template writes BOS itself, so no special tokens are added again. Plain prompts get them.
    """
    if req.messages is not None:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                "the tokenizer has no chat template: use a plain-prompt task or a chat/instruct model"
            )
        msgs = [{"role": m.role, "content": m.content} for m in req.messages]
        text = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return str(text), False
    if req.prompt is None:
        raise ValueError("request has neither messages nor prompt")
    return req.prompt, True


def encode_prompt(tokenizer: Any, req: Request) -> list[int]:
    """Token ids of a generation request's prompt (chat template or plain text)."""
    text, add_special = render_context(tokenizer, req)
    ids = list(tokenizer(text, add_special_tokens=add_special)["input_ids"])
    if not ids:
        ids = [_prefix_token_id(tokenizer)]
    return ids


def _prefix_token_id(tokenizer: Any) -> int:
    tid = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if tid is None:
        raise ValueError("empty context and the tokenizer has neither a BOS nor an EOS token to start from")
    return int(tid)


def encode_context_continuation(
    tokenizer: Any, context: str, continuation: str, add_special: bool
) -> tuple[list[int], list[int]]:
    """Split ``context + continuation`` into context and continuation token ids, as lm-eval does.

    Encoding the two halves separately would tokenize the boundary differently from how the model
    reads the whole text (``" Paris"`` is one token, ``" "`` + ``"Paris"`` two), so the whole text
    is encoded once and split at the length of the encoded context. Trailing spaces of the context
    move to the continuation first, for the same reason.
    """
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = list(tokenizer(context + continuation, add_special_tokens=add_special)["input_ids"])
    ctx = list(tokenizer(context, add_special_tokens=add_special)["input_ids"])
    if not ctx:  # nothing to condition on: start from BOS (or EOS), as lm-eval's prefix token
        prefix = _prefix_token_id(tokenizer)
        return [prefix], list(tokenizer(continuation, add_special_tokens=False)["input_ids"])
    return ctx, whole[len(ctx) :]


def request_seed(req: Request) -> int:
    """A per-request sampling seed: the task's seed combined with the request key (which holds the
    repeat index), so every repeat differs and the same request always samples the same text."""
    digest = hashlib.sha256(f"{req.params.seed}|{req.key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def decode_until_stop(tokenizer: Any, toks: Sequence[int], stops: Sequence[str]) -> tuple[str, bool]:
    """Decode generated tokens without special tokens (as vLLM and OpenAI-compatible servers return
    text) and cut at the first stop sequence. A stop sequence that is itself a special token (say
    ``<|im_end|>``) only shows in the raw decode: then the text ends before the token completing it."""
    text, stopped = cut_at_stop(tokenizer.decode(toks, skip_special_tokens=True), stops)
    if stopped or not stops or not cut_at_stop(tokenizer.decode(toks, skip_special_tokens=False), stops)[1]:
        return text, stopped
    for k in range(1, len(toks) + 1):  # rare path: find the token that completes the stop
        if cut_at_stop(tokenizer.decode(toks[:k], skip_special_tokens=False), stops)[1]:
            return tokenizer.decode(toks[: k - 1], skip_special_tokens=True), True
    return text, False


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop sequence; report whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


# ---------------------------------------------------------------------------------------------
# Model identity
# ---------------------------------------------------------------------------------------------


def _sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def local_fingerprint(folder: Path, gguf_file: str | None = None) -> str:
    """A short content fingerprint of a local model, used as its revision in cache keys.

    A GGUF file is hashed whole. A folder hashes its config and tokenizer files, its weight file
    names and sizes, and three 1 MiB samples of each weight file (start, middle, end): names and
    sizes alone do not change when a model of the same shape is retrained, and hashing every byte
    of a 15 GB checkpoint on each start would take a minute.
    """
    if gguf_file:
        return "sha256:" + _sha256_file(folder / gguf_file)[:16]
    h = hashlib.sha256()
    for name in _TOKENIZER_FILES:
        p = folder / name
        if p.is_file():
            h.update(f"{name}\0".encode())
            h.update(p.read_bytes())
    weights = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES))
    sample = 1 << 20
    for p in weights:
        size = p.stat().st_size
        h.update(f"{p.name}\0{size}\0".encode())
        with p.open("rb") as f:
            for off in sorted({0, max(0, size // 2 - sample // 2), max(0, size - sample)}):
                f.seek(off)
                h.update(f.read(sample))
    return "local:" + h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off", ""):
        return False
    raise BackendError(f"--model-arg {name}={value!r}: expected true or false")


def _as_int(name: str, value: Any, minimum: int = 1) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise BackendError(f"--model-arg {name}={value!r}: expected an integer") from None
    if n < minimum:
        raise BackendError(f"--model-arg {name}={value!r}: must be at least {minimum}")
    return n


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
    def parse(cls, options: Mapping[str, Any]) -> HFOptions:
        """Validate ``--model-arg`` values (strings from the CLI) into typed options."""
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise BackendError(
                f"hf backend: unknown --model-arg {', '.join(unknown)}; known: {', '.join(OPTIONS)}"
            )
        dtype = str(options.get("dtype", "auto")).lower()
        if dtype not in ("auto", *DTYPES):
            raise BackendError(f"--model-arg dtype={dtype!r}: use auto, float32, bfloat16 or float16")
        device = str(options.get("device", "auto")).lower()
        if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
            raise BackendError(f"--model-arg device={device!r}: use auto, cpu or cuda")
        bs = options.get("batch_size", "auto")
        batch_size = None if str(bs).lower() == "auto" else _as_int("batch_size", bs)
        max_length = options.get("max_length")
        return cls(
            gguf_file=options.get("gguf_file") or None,
            dtype=dtype,
            device=device,
            batch_size=batch_size,
            revision=options.get("revision") or None,
            trust_remote_code=_as_bool("trust_remote_code", options.get("trust_remote_code", False)),
            max_length=_as_int("max_length", max_length, 2) if max_length is not None else None,
        )


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


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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


# ---------------------------------------------------------------------------------------------
# The backend
# ---------------------------------------------------------------------------------------------


class HFBackend:
    """A transformers causal LM in this process. One call at a time; batching happens inside."""

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
        self.model = model
        self.tokenizer = tokenizer
        self.info = info
        self.device = device
        self.batch_size = batch_size or (CUDA_START_BATCH_SIZE if device.type == "cuda" else CPU_BATCH_SIZE)
        self.max_length = max_length or _model_max_length(model, tokenizer)
        gc_ = model.generation_config
        eos = gc_.eos_token_id if gc_.eos_token_id is not None else tokenizer.eos_token_id
        self.eos_ids: list[int] = [e for e in (eos if isinstance(eos, list) else [eos]) if e is not None]
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in self.eos_ids:
            self.eos_ids.append(int(tokenizer.eos_token_id))
        pad = tokenizer.pad_token_id
        self.pad_id: int = int(pad if pad is not None else (self.eos_ids[0] if self.eos_ids else 0))
        # evalkit sets every sampling parameter itself: a model's shipped defaults (temperature,
        # repetition penalty, top_k) would otherwise leak into "greedy" runs and break reproducibility.
        model.generation_config = GenerationConfig(
            eos_token_id=self.eos_ids or None,
            pad_token_id=self.pad_id,
            bos_token_id=tokenizer.bos_token_id,
        )
        self._lock = threading.Lock()
        # One long-lived worker thread loads and runs the model: torch's intra-op (OpenMP) pool and
        # CUDA state are per calling thread, so they are created once instead of once per call.
        self._worker = worker or ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalkit-hf")

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def from_spec(cls, spec: BackendSpec, options: dict) -> HFBackend | LazyHFBackend:
        """The backend for an ``hf:`` spec (or a catalog alias resolved to one).

        Local weights are loaded on first use (LazyHFBackend): their identity needs no model, and a
        run whose answers are all cached or recorded then never spends the load. Hub models load now,
        since their revision is only known once the hub (or its cache) has answered.
        """
        opts = HFOptions.parse(options)
        target = spec.target
        if spec.alias:
            target = _ensure_catalog_model(spec.alias, target)
        name = spec.alias or spec.target
        if _resolve_source(target, opts.gguf_file)[2] is not None:
            return LazyHFBackend(target, opts, name)
        return cls.load(target, opts, model_name=name)

    @classmethod
    def load(cls, target: str, opts: HFOptions | None = None, *, model_name: str | None = None) -> HFBackend:
        """Load from a local folder, a ``.gguf`` file, or a hub id. Failures -> BackendError."""
        opts = opts or HFOptions()
        source, gguf_file, local = _resolve_source(target, opts.gguf_file)
        device = _pick_device(opts.device)
        dtype = _pick_dtype(opts.dtype, device)
        kw: dict[str, Any] = {"trust_remote_code": opts.trust_remote_code}
        if opts.revision:
            kw["revision"] = opts.revision
        if gguf_file:
            kw["gguf_file"] = gguf_file
            _stderr(f"loading {gguf_file} (dequantising a GGUF takes a few seconds)")
        if local is None:  # an unreachable hub is retried for a while before it fails: say what waits
            _stderr(f"loading {source} from the Hugging Face Hub cache or the Hub")

        def load_model() -> tuple[Any, Any]:
            tokenizer = AutoTokenizer.from_pretrained(source, **kw)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kw)
            return tokenizer, model.to(device).eval()

        # Load on the thread that will run the model (see __init__), so torch work stays on one thread.
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalkit-hf")
        try:
            tokenizer, model = worker.submit(load_model).result()
        except Exception as e:  # transformers raises OSError, ValueError, EnvironmentError ...
            worker.shutdown(wait=False)
            raise _load_error(target, local, e) from None
        if local is not None:
            revision = local_fingerprint(local, gguf_file)
        else:
            revision = getattr(model.config, "_commit_hash", None) or opts.revision or "main"
        info = _backend_info(
            model_name or target,
            revision,
            opts,
            source,
            gguf_file,
            local,
            device,
            dtype,
            params_total=sum(p.numel() for p in model.parameters()),
        )
        return cls(
            model,
            tokenizer,
            info,
            device=device,
            batch_size=opts.batch_size,
            max_length=opts.max_length,
            worker=worker,
        )

    # -- protocol ------------------------------------------------------------------------------

    async def generate(self, reqs: Sequence[Request]) -> list[Completion]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, self._locked, self._generate_sync, list(reqs))

    async def loglikelihood(self, reqs: Sequence[Request]) -> list[Completion]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, self._locked, self._loglikelihood_sync, list(reqs))

    async def aclose(self) -> None:
        self._worker.shutdown(wait=True)
        self.model = None
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _locked(
        self, fn: Callable[[list[Request]], list[Completion]], reqs: list[Request]
    ) -> list[Completion]:
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
                out[i] = _error(f"cannot build the prompt: {e}")
                continue
            room = self.max_length - len(ids)
            if room < 1:
                out[i] = _error(
                    f"the prompt has {len(ids)} tokens and the model's context is {self.max_length}; "
                    "shorten the prompt (fewer shots) or raise max_length if the model allows"
                )
                continue
            budget = min(req.params.max_tokens, room)
            rows.append(_GenRow(i, ids, budget))
        # Longest first (as lm-eval): similar lengths share a batch, and an OOM shows up at once.
        rows.sort(key=lambda r: -len(r.ids))
        for chunk, result in self._batched(rows, lambda chunk: self._generate_batch(reqs, chunk), _error):
            for row, comp in zip(chunk, result, strict=True):
                out[row.index] = comp
        return [c if c is not None else _error("no result") for c in out]

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
        out: list[Completion | None] = [None] * len(reqs)
        rows: list[tuple[int, int, list[int], int]] = []  # (request, continuation, ids, n_continuation)
        ctx_tokens: dict[int, int] = {}
        for i, req in enumerate(reqs):
            try:
                if not req.continuations:
                    raise ValueError("a loglikelihood request needs at least one continuation")
                context, add_special = render_context(self.tokenizer, req)
                for c, cont in enumerate(req.continuations):
                    ctx, cont_ids = encode_context_continuation(self.tokenizer, context, cont, add_special)
                    if len(cont_ids) >= self.max_length:
                        raise ValueError(f"continuation {c} has {len(cont_ids)} tokens, over max_length")
                    ids = (ctx + cont_ids)[-(self.max_length + 1) :]  # left-truncate like lm-eval
                    rows.append((i, c, ids, len(cont_ids)))
                    ctx_tokens[i] = len(ctx)
            except Exception as e:
                out[i] = _error(f"cannot build the loglikelihood request: {e}")
                rows = [r for r in rows if r[0] != i]
        scores: dict[tuple[int, int], tuple[float, bool, tuple[float, ...]]] = {}
        latency: dict[int, float] = {}
        failed: dict[int, str] = {}
        rows.sort(key=lambda r: -len(r[2]))
        for chunk, result in self._batched(rows, self._score_batch, str):
            for (i, c, _, _), res in zip(chunk, result, strict=True):
                if isinstance(res, str):
                    failed[i] = res
                else:
                    scores[(i, c)] = (res[0], res[1], res[3])
                    latency[i] = latency.get(i, 0.0) + res[2]
        for i, req in enumerate(reqs):
            if out[i] is not None:
                continue
            if i in failed:
                out[i] = _error(failed[i])
                continue
            got = [scores[(i, c)] for c in range(len(req.continuations))]
            n_cont = sum(r[3] for r in rows if r[0] == i)
            out[i] = Completion(
                text="",
                finish_reason="stop",
                usage=Usage(prompt_tokens=ctx_tokens.get(i), completion_tokens=n_cont),
                logprobs=tuple(g[0] for g in got),
                greedy=tuple(g[1] for g in got),
                token_logprobs=tuple(g[2] for g in got),
                latency_s=latency.get(i, 0.0),
            )
        return [c if c is not None else _error("no result") for c in out]

    def _score_batch(
        self, rows: list[tuple[int, int, list[int], int]]
    ) -> list[tuple[float, bool, float, tuple[float, ...]]]:
        """Per row: sum of log p over the continuation, whether greedy decoding yields it exactly,
        the seconds spent, and log p of each continuation token."""
        t0 = time.perf_counter()
        inputs = [ids[:-1] for _, _, ids, _ in rows]  # predict token t from tokens < t
        width = max(len(x) for x in inputs)
        keep = max(n for *_, n in rows)
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
        for j, (_, _, ids, n) in enumerate(rows):
            target = torch.tensor(ids[-n:], device=logp.device) if n else None
            if target is None:
                result.append((0.0, True, dt, ()))
                continue
            lp = logp[j, keep - n :]
            per_token = lp.gather(-1, target[:, None]).squeeze(-1)
            greedy = bool((lp.argmax(-1) == target).all().item())
            result.append(
                (float(per_token.sum().item()), greedy, dt, tuple(float(x) for x in per_token.tolist()))
            )
        return result

    # -- batching with out-of-memory back-off ----------------------------------------------------

    def _batched(self, rows: list, fn: Callable[[list], list], on_error: Callable[[str], Any]):
        """Yield (chunk, results). On out-of-memory, halve the batch size and retry the chunk;
        a row that fails even alone, or any other error, yields ``on_error(message)`` per row."""
        i = 0
        while i < len(rows):
            chunk = rows[i : i + self.batch_size]
            try:
                results = fn(chunk)
            except torch.cuda.OutOfMemoryError:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if len(chunk) > 1:
                    self.batch_size = max(1, len(chunk) // 2)
                    _stderr(f"hf backend: out of memory at batch size {len(chunk)}; now {self.batch_size}")
                    continue
                results = [on_error("out of memory on a single request")]
            except Exception as e:  # a failed batch is recorded as errors, never raised
                results = [on_error(f"{type(e).__name__}: {e}")] * len(chunk)
            yield chunk, results
            i += len(chunk)


class LazyHFBackend:
    """An hf backend over local weights that loads the model on its first request.

    Its identity (weights fingerprint, dtype, max_length) is computed from the files alone and is
    the one the loaded backend reports; ``params_total`` is filled in once the model is loaded.
    Attribute access other than the protocol (``model``, ``tokenizer`` ...) loads the model too.
    """

    max_concurrency = 1
    cacheable = True  # asked by the runner before it knows whether anything must be sent

    def __init__(self, target: str, opts: HFOptions, model_name: str) -> None:
        source, gguf_file, local = _resolve_source(target, opts.gguf_file)
        assert local is not None, "LazyHFBackend is for local weights"
        device = _pick_device(opts.device)
        dtype = _pick_dtype(opts.dtype, device)
        self._target, self._opts, self._model_name = target, opts, model_name
        self._real: HFBackend | None = None
        self._lock = threading.Lock()
        self.batch_size = opts.batch_size or (
            CUDA_START_BATCH_SIZE if device.type == "cuda" else CPU_BATCH_SIZE
        )
        self.info = _backend_info(
            model_name,
            local_fingerprint(local, gguf_file),
            opts,
            source,
            gguf_file,
            local,
            device,
            dtype,
            None,
        )

    def load(self) -> HFBackend:
        with self._lock:
            if self._real is None:
                self._real = HFBackend.load(self._target, self._opts, model_name=self._model_name)
                assert self._real.info.identity == self.info.identity, "lazy and loaded identities differ"
                self.info = self._real.info
            return self._real

    async def generate(self, reqs: Sequence[Request]) -> list[Completion]:
        return await (await asyncio.to_thread(self.load)).generate(reqs)

    async def loglikelihood(self, reqs: Sequence[Request]) -> list[Completion]:
        return await (await asyncio.to_thread(self.load)).loglikelihood(reqs)

    async def aclose(self) -> None:
        if self._real is not None:
            await self._real.aclose()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_real", "_lock", "_target", "_opts", "_model_name"):
            raise AttributeError(name)
        return getattr(self.load(), name)


def _backend_info(
    model_name: str,
    revision: str,
    opts: HFOptions,
    source: str,
    gguf_file: str | None,
    local: Path | None,
    device: torch.device,
    dtype: torch.dtype,
    params_total: int | None,
) -> BackendInfo:
    return BackendInfo(
        backend="hf",
        model=model_name,
        revision=revision,
        params_total=params_total,
        extra={
            "source": str(local) if local is not None else f"hub:{source}",
            "gguf_file": gguf_file,
            "dtype": str(dtype).removeprefix("torch."),
            "device": str(device),
        },
        # Numeric precision and the context cap change outputs, so they are part of the identity.
        variant=str(dtype).removeprefix("torch.")
        + (f",max_length={opts.max_length}" if opts.max_length else ""),
    )


def _error(message: str, kind: str = "fatal") -> Completion:
    return Completion(text="", finish_reason="error", error=message, error_kind=kind)  # type: ignore[arg-type]


def _model_max_length(model: Any, tokenizer: Any) -> int:
    cfg = model.config
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        v = getattr(cfg, attr, None)
        if isinstance(v, int) and v > 0:
            return v
    v = getattr(tokenizer, "model_max_length", None)
    return v if isinstance(v, int) and 0 < v < 10**7 else 2048


def _resolve_source(target: str, gguf_file: str | None) -> tuple[str, str | None, Path | None]:
    """(what to pass to from_pretrained, gguf file name, local folder or None for the hub)."""
    path = Path(target).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        if gguf_file and gguf_file != path.name:
            raise BackendError(f"hf:{target} is a .gguf file; drop --model-arg gguf_file={gguf_file}")
        return str(path.parent), path.name, path.parent.resolve()
    if path.is_dir():
        if gguf_file and not (path / gguf_file).is_file():
            raise BackendError(f"hf:{target}: no file {gguf_file!r} in that folder (--model-arg gguf_file)")
        if not gguf_file and not (path / "config.json").is_file():
            ggufs = sorted(p.name for p in path.glob("*.gguf"))
            hint = f"; pick a GGUF with --model-arg gguf_file={ggufs[0]}" if ggufs else ""
            raise BackendError(f"hf:{target}: the folder has no config.json{hint}")
        return str(path), gguf_file, path.resolve()
    looks_like_path = target.startswith(("/", ".", "~")) or target.endswith(".gguf") or target.count("/") > 1
    if looks_like_path or not _HUB_ID.match(target):
        raise BackendError(
            f"hf:{target}: no such file or folder; pass a model folder (config.json + weights), "
            "a .gguf file, or a Hugging Face hub id such as HuggingFaceTB/SmolLM2-135M-Instruct"
        )
    return target, gguf_file, None


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

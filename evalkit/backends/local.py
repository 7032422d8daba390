"""What the in-process backends (hf, vllm, lmeval) share; imports no torch, transformers or vLLM.

- Prompt rendering and tokenization (``render_context``, ``encode_prompt``,
  ``encode_context_continuation``, ``decode_until_stop``), so hf and vllm feed a model the same tokens.
- Loglikelihood planning (``plan_loglikelihood``) and its one context-window rule (``fit_window``).
- Model identity: the weights fingerprint (``local_fingerprint``) and the output-affecting settings
  (``identity_variant``).

The tokenizer arguments are Hugging Face tokenizers (anything with ``__call__``, ``decode`` and
``apply_chat_template``); this module only calls them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from evalkit.stops import cut_at_stop
from evalkit.types import Completion, Request

C = TypeVar("C")
R = TypeVar("R")

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
# Prompt rendering and tokenization
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


def decode_until_stop(tokenizer: Any, toks: Sequence[int], stops: Sequence[str]) -> tuple[str, bool]:
    """Decode generated tokens without special tokens (as vLLM and OpenAI-compatible servers return
    text) and cut at the first stop sequence; also say whether a stop sequence ended the text.

    A stop sequence that is itself a special token (say ``<|im_end|>``) only shows in the raw
    decode: then the text ends before the token completing it.
    """

    def stopped_in(text: str) -> bool:
        return len(cut_at_stop(text, stops)) < len(text)

    full = tokenizer.decode(toks, skip_special_tokens=True)
    text = cut_at_stop(full, stops)
    if (
        len(text) < len(full)
        or not stops
        or not stopped_in(tokenizer.decode(toks, skip_special_tokens=False))
    ):
        return text, len(text) < len(full)
    for k in range(1, len(toks) + 1):  # rare path: find the token that completes the stop
        if stopped_in(tokenizer.decode(toks[:k], skip_special_tokens=False)):
            return tokenizer.decode(toks[: k - 1], skip_special_tokens=True), True
    return text, False


# ---------------------------------------------------------------------------------------------
# Loglikelihood planning
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LLRow:
    """One continuation to score: the token sequence and where the continuation starts in it."""

    request: int  # index of the request in the batch
    continuation: int  # index of the continuation in the request
    token_ids: tuple[int, ...]
    n_context: int

    @property
    def n_continuation(self) -> int:
        return len(self.token_ids) - self.n_context


def forward_pass_window(max_length: int) -> int:
    """Tokens of context + continuation a forward pass over ``max_length`` positions can score.

    The last token is only ever a prediction target, never an input, so ``max_length + 1`` tokens
    fill exactly ``max_length`` positions: lm-eval's rule (``HFLM``), which is why evalkit's hf
    backend and ``lmeval:hf`` agree even on inputs longer than the window.
    """
    return max_length + 1


def prompt_logprobs_window(max_length: int) -> int:
    """The same window for an engine that scores a *prompt* and must generate one token after it
    (vLLM's ``prompt_logprobs``): every scored token is an input there, and vLLM refuses a prompt
    that leaves no position for the generated token, so ``max_length - 1`` tokens fit."""
    return max_length - 1


def fit_window(
    request: int, continuation: int, ctx: Sequence[int], cont: Sequence[int], window: int
) -> LLRow:
    """The context-window rule, one for every in-process backend: a sequence longer than
    ``window`` tokens loses its oldest context tokens (cut from the left, as lm-eval does); the
    continuation is never cut, and at least one context token must remain for its first token to
    be predicted from."""
    if len(cont) >= window:
        raise ValueError(
            f"continuation {continuation} has {len(cont)} tokens and the model scores at most "
            f"{window} tokens of context + continuation"
        )
    ids = (list(ctx) + list(cont))[-window:]
    return LLRow(request, continuation, tuple(ids), len(ids) - len(cont))


def plan_loglikelihood(
    reqs: Sequence[Request],
    prepare: Callable[[Request], C],
    build: Callable[[int, int, C, str], R],
) -> tuple[list[R], dict[int, Completion]]:
    """One row per (request, continuation), built by ``build(request index, continuation index,
    prepared context, continuation)`` from ``prepare(request)`` (rendered once per request).

    A request that cannot be built (no continuations, no prompt, a continuation over the window)
    comes back as an error Completion by index and none of its rows are kept; the others go on.
    """
    rows: list[R] = []
    errors: dict[int, Completion] = {}
    for i, req in enumerate(reqs):
        try:
            if not req.continuations:
                raise ValueError("a loglikelihood request needs at least one continuation")
            prepared = prepare(req)
            mine = [build(i, c, prepared, cont) for c, cont in enumerate(req.continuations)]
        except Exception as e:
            errors[i] = Completion.failed(f"cannot build the loglikelihood request: {e}")
            continue
        rows.extend(mine)
    return rows, errors


def plan_token_loglikelihood(
    reqs: Sequence[Request], tokenizer: Any, window: int
) -> tuple[list[LLRow], dict[int, Completion]]:
    """``plan_loglikelihood`` for backends that score token ids (hf, vllm): the context rendered
    as for generation, split from each continuation as lm-eval does, fitted to ``window``."""

    def build(i: int, c: int, rendered: tuple[str, bool], cont: str) -> LLRow:
        ctx, cont_ids = encode_context_continuation(tokenizer, rendered[0], cont, rendered[1])
        return fit_window(i, c, ctx, cont_ids, window)

    return plan_loglikelihood(reqs, lambda r: render_context(tokenizer, r), build)


# ---------------------------------------------------------------------------------------------
# Model identity
# ---------------------------------------------------------------------------------------------


def identity_variant(dtype: str | None, **settings: Any) -> str | None:
    """The ``BackendInfo.variant`` of an in-process model: the settings besides the weights that
    change its outputs, e.g. ``float16,max_length=2048``.

    ``dtype`` is the precision the model actually runs in ("auto" resolved). ``settings`` are the
    other output-affecting settings the user gave (None: not given, left out, so an unset default
    keeps the identity it always had). Throughput settings (batch size, concurrency, devices to
    shard over) never belong here: they must keep the response cache valid.
    """
    parts = [dtype.removeprefix("torch.")] if dtype else []
    parts += [f"{k}={v}" for k, v in sorted(settings.items()) if v is not None]
    return ",".join(parts) or None


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

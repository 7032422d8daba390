"""OpenAI-compatible HTTP backend (vLLM, SGLang, llama.cpp, Ollama, hosted APIs).

aiohttp with one pooled session: a bare aiohttp client keeps 94% of the possible request rate at 32
and 80-84% at 128 concurrent requests against a 50 ms server here, where httpx's pool collapsed
(shared/NOTES.md); evalkit's own rates are measured by bench/engine_throughput.py (README, Speed).
The API key is read from an environment variable at request time and never stored or logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import re
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from evalkit.backends import BackendSpec
from evalkit.backends.base import BackendBase
from evalkit.backends.options import (
    one_concurrency,
    option_bool,
    option_float,
    option_int,
    reject_unknown,
    typed_value,
)
from evalkit.backends.retry import RETRYABLE, RetryPolicy, backoff_delay, classify_status, parse_retry_after
from evalkit.errors import BackendError, NotSupported
from evalkit.secrets import is_secret_name, redact_mapping, redact_text, remember_secret
from evalkit.types import BackendInfo, Completion, ErrorKind, Request, Usage

# OpenAI's API accepts at most 4 stop sequences; the rest are applied client-side by the extractors.
MAX_STOP = 4
# Request fields evalkit sets from the task and the command line; a body.<field> must not override
# them behind the cache key's back.
RESERVED_BODY = frozenset(
    {
        "model",
        "messages",
        "prompt",
        "max_tokens",
        "temperature",
        "top_p",
        "seed",
        "stop",
        "n",
        "echo",
        "logprobs",
    }
)


class _RequestFailed(Exception):
    def __init__(self, kind: ErrorKind, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


# Reasoning controls (-M options), passed to the server as request fields and so part of the
# identity (the cache and run folder of a thinking run never mix with a non-thinking one):
#   reasoning_effort=low|medium|high     the OpenAI API field (gpt-oss on vLLM, hosted reasoning APIs)
#   enable_thinking=true|false           chat_template_kwargs.enable_thinking (Qwen3 on vLLM/SGLang)
#   chat_template_kwargs.<key>=<value>   any chat-template variable, one key per option
#   thinking_budget=N                    vLLM's thinking_token_budget (needs its --reasoning-config);
#                                        for SGLang use chat_template_kwargs.thinking_budget=N
REASONING_OPTIONS = ("reasoning_effort", "enable_thinking", "thinking_budget")
REASONING_EFFORTS = ("minimal", "low", "medium", "high")


def reasoning_fields(options: dict[str, Any]) -> dict[str, Any]:
    """The request fields the reasoning options of ``options`` ask for."""
    out: dict[str, Any] = {}
    kwargs = {
        k.split(".", 1)[1]: typed_value(v)
        for k, v in options.items()
        if k.startswith("chat_template_kwargs.")
    }
    if "enable_thinking" in options:
        kwargs["enable_thinking"] = option_bool("enable_thinking", options["enable_thinking"])
    if kwargs:
        out["chat_template_kwargs"] = kwargs
    if "reasoning_effort" in options:
        effort = str(options["reasoning_effort"]).lower()
        if effort not in REASONING_EFFORTS:
            raise BackendError(f"-M reasoning_effort={effort}: use one of {', '.join(REASONING_EFFORTS)}")
        out["reasoning_effort"] = effort
    if "thinking_budget" in options:
        out["thinking_token_budget"] = option_int("thinking_budget", options["thinking_budget"], 1)
    return out


def usage_of(data: dict[str, Any]) -> Usage:
    """Token counts from a response's usage block; reasoning tokens where the server reports them
    (``completion_tokens_details.reasoning_tokens``), else None (missing, not zero)."""
    usage = data.get("usage") or {}
    details = usage.get("completion_tokens_details") or {}
    return Usage(usage.get("prompt_tokens"), usage.get("completion_tokens"), details.get("reasoning_tokens"))


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_unicode(text: str) -> str:
    """``text`` with lone surrogates (JSON may escape them, "\\ud800") replaced by U+FFFD: they cannot
    be written as UTF-8, so one such answer would stop the run at the cache or the records."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", text)


def _split_credentials(url: str) -> tuple[str, str | None]:
    """(the URL without user:password@, the basic-auth header value they make, or None)."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    user, password = unquote(parts.username), unquote(parts.password or "")
    remember_secret(password)
    auth = aiohttp.BasicAuth(user, password).encode()
    remember_secret(auth.split(" ", 1)[1])
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), auth


class OpenAIBackend(BackendBase):
    """``openai:<base_url>@<model>``.

    ``concurrency`` is the run's --concurrency: requests in flight, the size of the connection
    pool (default 32). Options (``--model-arg key=value``): api_key_env (default OPENAI_API_KEY;
    unset means no auth), timeout (seconds per request, default 600), max_retries (default 6),
    revision (a label for the served weights, part of the cache key), endpoint (auto|chat|completions),
    ``body.<name>=<value>`` for extra request fields (e.g. body.repeat_penalty=1.0 for llama.cpp),
    and concurrency (the same setting as --concurrency, kept for existing command lines).
    """

    batch_size = 1

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 32,
        timeout: float = 600.0,
        max_retries: int = 6,
        revision: str | None = None,
        endpoint: str = "auto",
        extra_body: dict[str, Any] | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # user:password@ in the URL is sent as basic auth (aiohttp refuses it beside an API key) and
        # kept out of every message; the identity still covers the URL as given.
        self._url, self._basic_auth = _split_credentials(self.base_url)
        self.model = model
        self.api_key_env = api_key_env
        self.max_concurrency = int(concurrency)
        self.timeout = float(timeout)
        self.policy = retry_policy or RetryPolicy(max_retries=int(max_retries))
        if endpoint not in ("auto", "chat", "completions"):
            raise BackendError(f"--model-arg endpoint={endpoint!r}: use auto, chat or completions")
        self.endpoint = endpoint
        self.extra_body = dict(extra_body or {})
        for name, value in self.extra_body.items():
            if is_secret_name(name):
                remember_secret(str(value))
        shadowed = sorted(RESERVED_BODY & set(self.extra_body))
        if shadowed:
            raise BackendError(
                f"--model-arg body.{shadowed[0]}: evalkit sets this field itself; use the run options "
                f"(--temperature, --max-tokens) or the task's generation settings instead"
            )
        # The identity (and so the cache key) covers what changes answers besides model and revision:
        # extra request fields always, and the server URL unless a revision label vouches for the weights.
        ident: dict[str, Any] = {"body": self.extra_body}
        if revision is None:
            ident["url"] = self.base_url
        variant = None
        if self.extra_body or revision is None:
            blob = json.dumps(ident, sort_keys=True, default=str)
            variant = hashlib.sha256(blob.encode()).hexdigest()[:10]
        self.info = BackendInfo(
            backend="openai",
            model=model,
            revision=revision,
            extra=redact_mapping({"base_url": self.base_url, "extra_body": self.extra_body}),
            variant=variant,
        )
        self._session: aiohttp.ClientSession | None = None
        self._rng = random.Random()

    @classmethod
    def from_spec(
        cls, spec: BackendSpec, options: dict[str, Any], concurrency: int | None = None
    ) -> OpenAIBackend:
        """``concurrency`` is the run's --concurrency (requests in flight)."""
        base_url, _, model = spec.target.rpartition("@")
        known = {
            "api_key_env",
            "concurrency",
            "timeout",
            "max_retries",
            "revision",
            "endpoint",
            *REASONING_OPTIONS,
        }
        plain = {k: v for k, v in options.items() if not k.startswith(("body.", "chat_template_kwargs."))}
        reject_unknown("openai", plain, known, ", body.<field>, chat_template_kwargs.<key>")
        extra = {k[len("body.") :]: typed_value(v) for k, v in options.items() if k.startswith("body.")}
        extra.update(reasoning_fields(options))
        kwargs: dict[str, Any] = {
            k: str(options[k]) for k in ("api_key_env", "revision", "endpoint") if k in options
        }
        if "max_retries" in options:
            kwargs["max_retries"] = option_int("max_retries", options["max_retries"], 0)
        if "timeout" in options:
            kwargs["timeout"] = option_float("timeout", options["timeout"], 0.001)
        pool = one_concurrency("openai", concurrency, "concurrency", options)
        if pool is not None:
            kwargs["concurrency"] = pool
        return cls(base_url, model, extra_body=extra, **kwargs)

    # -- HTTP plumbing -------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            remember_secret(key)
            headers["Authorization"] = f"Bearer {key}"
        elif self._basic_auth:
            headers["Authorization"] = self._basic_auth
        return headers

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_concurrency, limit_per_host=self.max_concurrency)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout)
            )
        return self._session

    async def check(self) -> None:
        """Fail fast with a clear message when the server cannot be reached at all."""
        session = await self._get_session()
        try:
            async with session.get(
                f"{self._url}/models", headers=self._headers(), timeout=aiohttp.ClientTimeout(total=15)
            ) as resp:
                await resp.read()
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError, OSError) as e:
            raise BackendError(
                redact_text(
                    f"cannot reach the OpenAI-compatible server at {self.base_url} "
                    f"({type(e).__name__}: {e}); start the server or fix the base URL in "
                    "--model openai:<base_url>@<model>"
                )
            ) from None

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        session = await self._get_session()
        try:
            async with session.post(f"{self._url}{path}", json=body, headers=self._headers()) as resp:
                raw = await resp.read()
                kind = classify_status(resp.status)
                if kind is not None:
                    msg = raw[:500].decode("utf-8", errors="replace")
                    raise _RequestFailed(  # a server may echo the key in its error: redacted
                        kind,
                        redact_text(f"HTTP {resp.status}: {msg}"),
                        parse_retry_after(resp.headers.get("Retry-After")),
                    )
        except _RequestFailed:
            raise
        except asyncio.TimeoutError:
            raise _RequestFailed("transient", f"timed out after {self.timeout:.0f} s") from None
        except (aiohttp.ClientError, OSError) as e:
            raise _RequestFailed("transient", redact_text(f"{type(e).__name__}: {e}")) from None
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            raise _RequestFailed("transient", redact_text(f"response is not JSON: {raw[:200]!r}")) from None
        if not isinstance(data, dict) or not data.get("choices"):
            raise _RequestFailed("transient", redact_text(f"response has no choices: {str(data)[:300]}"))
        choice = data["choices"][0]
        # A choice with neither a chat message nor a completion text is not an answer (an empty one
        # would be graded wrong): retried like any other broken response.
        if not isinstance(choice, dict) or not (isinstance(choice.get("message"), dict) or "text" in choice):
            raise _RequestFailed("transient", redact_text(f"response is not a completion: {str(data)[:300]}"))
        return data

    async def _with_retries(
        self, path: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, Completion | None, int]:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._post(path, body), None, attempt
            except _RequestFailed as e:
                if e.kind not in RETRYABLE or attempt > self.policy.max_retries:
                    return None, Completion.failed(str(e), e.kind, attempts=attempt), attempt
                await asyncio.sleep(backoff_delay(attempt, self.policy, e.retry_after, self._rng))

    # -- requests ------------------------------------------------------------------------------

    def _sampling(self, req: Request) -> dict[str, Any]:
        p = req.params
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": p.max_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
        }
        if p.seed is not None:
            # Different repeats must be able to differ: derive the per-request seed from the repeat.
            body["seed"] = p.seed + req.repeat
        if p.stop:
            body["stop"] = list(p.stop[:MAX_STOP])
        body.update(self.extra_body)
        return body

    def _use_chat(self, req: Request) -> bool:
        if self.endpoint == "chat":
            if req.messages is None:
                raise NotSupported(
                    "endpoint=chat but the task renders a plain prompt (prompt.format: completion)"
                )
            return True
        if self.endpoint == "completions":
            if req.prompt is None:
                raise NotSupported(
                    "endpoint=completions but the task renders chat messages (prompt.format: chat)"
                )
            return False
        return req.messages is not None

    async def _generate_one(self, req: Request) -> Completion:
        t0 = time.perf_counter()
        chat = self._use_chat(req)
        body = self._sampling(req)
        if chat:
            body["messages"] = [{"role": m.role, "content": m.content} for m in req.messages or ()]
        else:
            body["prompt"] = req.prompt
        data, err, attempts = await self._with_retries("/chat/completions" if chat else "/completions", body)
        latency = time.perf_counter() - t0
        if err is not None:
            err.latency_s = latency
            return err
        assert data is not None
        choice = data["choices"][0]
        reasoning = None
        if chat:
            msg = choice.get("message") or {}
            text = msg.get("content") or ""
            reasoning = msg.get("reasoning_content") or msg.get("reasoning")
        else:
            text = choice.get("text") or ""
        fr = choice.get("finish_reason")
        return Completion(
            text=valid_unicode(text),
            finish_reason="length" if fr == "length" else "stop",
            usage=usage_of(data),
            reasoning=valid_unicode(reasoning) if isinstance(reasoning, str) else reasoning,
            latency_s=latency,
            attempts=attempts,
        )

    async def generate(self, reqs: Sequence[Request]) -> list[Completion]:
        return list(await asyncio.gather(*(self._generate_one(r) for r in reqs)))

    async def _loglikelihood_one(self, req: Request) -> Completion:
        """Sum of token log-probabilities of each continuation via /completions with echo.

        max_tokens is 1, not 0: llama.cpp's server reads 0 as "until the context is full".
        """
        if req.prompt is None:
            raise NotSupported("loglikelihood needs a plain prompt (chat APIs return no prompt logprobs)")
        t0 = time.perf_counter()
        sums: list[float] = []
        greedy: list[bool] = []
        attempts_total = 0
        for cont in req.continuations:
            body = {
                "model": self.model,
                "prompt": req.prompt + cont,
                "max_tokens": 1,
                "temperature": 0.0,
                "echo": True,
                "logprobs": 1,
                **self.extra_body,
            }
            data, err, attempts = await self._with_retries("/completions", body)
            attempts_total += attempts
            if err is not None:
                err.latency_s = time.perf_counter() - t0
                return err
            assert data is not None
            lp = data["choices"][0].get("logprobs") or {}
            offsets = lp.get("text_offset") or []
            token_lps = lp.get("token_logprobs") or []
            tops = lp.get("top_logprobs") or []
            tokens = lp.get("tokens") or []
            if not offsets or not token_lps:
                return Completion.failed("server returned no prompt logprobs (echo unsupported)")
            total, is_greedy = 0.0, True
            start = len(req.prompt)
            n_prompt = len(req.prompt + cont)
            for i, off in enumerate(offsets):
                if off < start or off >= n_prompt or token_lps[i] is None:
                    continue
                total += float(token_lps[i])
                if i < len(tops) and tops[i]:
                    best = max(tops[i].items(), key=lambda kv: kv[1])[0]
                    is_greedy = is_greedy and best == tokens[i]
            sums.append(total)
            greedy.append(is_greedy)
        return Completion(
            text="",
            finish_reason="stop",
            logprobs=tuple(sums),
            greedy=tuple(greedy),
            latency_s=time.perf_counter() - t0,
            attempts=attempts_total,
        )

    async def loglikelihood(self, reqs: Sequence[Request]) -> list[Completion]:
        return list(await asyncio.gather(*(self._loglikelihood_one(r) for r in reqs)))

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

"""OpenAI-compatible HTTP backend (vLLM, SGLang, llama.cpp, Ollama, hosted APIs).

aiohttp with one pooled session: a bare aiohttp client keeps 94% of the possible request rate at 32
and 80-84% at 128 concurrent requests against a 50 ms server here, where httpx's pool collapsed
(shared/NOTES.md); evalkit's own rates are measured by bench/engine_throughput.py (README, Speed).
The API key is read from an environment variable at request time and never stored or logged.

Several base URLs (``openai:http://a:8000/v1,http://b:8000/v1@model``) are replicas of one model:
each request goes to the endpoint with the fewest requests outstanding (below ``endpoint_concurrency``
each); an endpoint that stops answering (connection refused or reset, timeout, 5xx) is set aside
for a cool-off that doubles while it keeps failing, its requests are retried on the others at once,
and it gets traffic again when the cool-off ends and a request to it succeeds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
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
from evalkit.secrets import is_secret_name, redact_mapping, redact_text, redact_url, remember_secret
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
    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        retry_after: float | None = None,
        pushback: bool = False,
        moved: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after
        self.pushback = pushback  # the server is overloaded (429, 503, timeout): slow down
        self.moved = moved  # this endpoint failed and another is up: retry there without waiting


def split_base_urls(base: str) -> list[str]:
    """``http://a/v1,http://b/v1`` -> the base URLs of one model's replicas."""
    return [u.strip() for u in base.split(",") if u.strip()]


def server_info_from(
    model: str, headers: Mapping[str, str], models_body: bytes, probes: Mapping[str, Any]
) -> dict[str, Any]:
    """The serving engine and version, from what the server reports about itself: ``owned_by`` of
    the model in ``/v1/models``, the ``Server`` header, and the version endpoints' answers."""
    info: dict[str, Any] = {}
    try:
        listed = json.loads(models_body).get("data") or []
    except (ValueError, AttributeError):
        listed = []
    entry = next((m for m in listed if isinstance(m, dict) and m.get("id") == model), None)
    entry = entry or next((m for m in listed if isinstance(m, dict)), None)
    if entry and entry.get("owned_by"):
        info["engine"] = str(entry["owned_by"])
    if entry and entry.get("max_model_len"):
        info["max_model_len"] = entry["max_model_len"]
    if headers.get("Server"):
        info["server_header"] = headers["Server"]
    if "version" in (probes.get("/version") or {}):
        info.setdefault("engine", "vllm")
        info["version"] = str(probes["/version"]["version"])
    props = probes.get("/props") or {}
    if props.get("build_info") or "default_generation_settings" in props:
        info["engine"] = "llama.cpp"
        if props.get("build_info"):
            info["version"] = str(props["build_info"])
    sglang = probes.get("/get_server_info") or {}
    if sglang.get("version"):
        info.setdefault("engine", "sglang")
        info["version"] = str(sglang["version"])
    return info


# Ceiling of calls in flight under ``--concurrency auto`` (the AIMD limit moves below it).
AUTO_CEILING = 512
# An endpoint that fails is set aside this long, doubling per consecutive failure up to the max.
COOL_OFF_S = 0.5
MAX_COOL_OFF_S = 30.0


class _Endpoint:
    def __init__(self, url: str, limit: int) -> None:
        self.url = url
        self.limit = limit
        self.outstanding = 0
        self.failures = 0  # consecutive
        self.down_until = 0.0
        self.sent = 0

    def usable(self, now: float) -> bool:
        return self.down_until <= now and self.outstanding < self.limit


class EndpointPool:
    """The base URLs of one model's replicas: least outstanding first, failed ones cooled off."""

    def __init__(self, urls: Sequence[str], limit_each: int) -> None:
        self.endpoints = [_Endpoint(u.rstrip("/"), max(1, limit_each)) for u in urls]
        self._freed: asyncio.Event | None = None

    def _event(self) -> asyncio.Event:
        if self._freed is None:
            self._freed = asyncio.Event()
        return self._freed

    async def acquire(self) -> _Endpoint:
        while True:
            now = time.monotonic()
            ready = [e for e in self.endpoints if e.usable(now)]
            if ready:
                best = min(ready, key=lambda e: (e.outstanding, e.sent))
                best.outstanding += 1
                best.sent += 1
                return best
            # All cooling off or full: wait for a slot, or for the first cool-off to end.
            cooling = [e.down_until for e in self.endpoints if e.down_until > now]
            wait = max(0.0, min(cooling) - now) if cooling else None
            freed = self._event()
            freed.clear()
            try:
                await asyncio.wait_for(freed.wait(), wait)
            except asyncio.TimeoutError:
                pass

    def release(self, ep: _Endpoint, failed: bool) -> None:
        ep.outstanding -= 1
        now = time.monotonic()
        if failed and len(self.endpoints) > 1:  # one endpoint: the retries' back-off is the wait
            if ep.down_until <= now:  # the requests in flight when it went down count as one failure
                ep.failures += 1
                ep.down_until = now + min(MAX_COOL_OFF_S, COOL_OFF_S * 2 ** (ep.failures - 1))
        elif ep.failures:
            ep.failures = 0
            ep.down_until = 0.0
        self._event().set()

    def others_up(self, ep: _Endpoint) -> bool:
        now = time.monotonic()
        return any(e is not ep and e.down_until <= now for e in self.endpoints)


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
    """``openai:<base_url>[,<base_url>...]@<model>``.

    ``concurrency`` is the run's --concurrency: requests in flight, the size of the connection
    pool (default 32; ``auto``: an AIMD limit below 512). Options (``--model-arg key=value``):
    api_key_env (default OPENAI_API_KEY; unset means no auth), timeout (seconds per request,
    default 600), max_retries (default 6), revision (a label for the served weights, part of the
    cache key), endpoint (auto|chat|completions), endpoint_concurrency (most requests outstanding
    at one base URL; default: all of them), ``body.<name>=<value>`` for extra request fields (e.g.
    body.repeat_penalty=1.0 for llama.cpp), and concurrency (the same setting as --concurrency).
    """

    batch_size = 1
    # The engine hands this backend the unseeded repeats of one prompt as one call: one ``n=k``
    # request where the server honours ``n`` (vLLM, SGLang, OpenAI), one request each otherwise.
    groups_repeats = True
    adaptive_concurrency = True

    def __init__(
        self,
        base_url: str | Sequence[str],
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
        endpoint_concurrency: int | None = None,
    ) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        self.base_urls = [u.rstrip("/") for u in urls]
        self.base_url = self.base_urls[0]
        # user:password@ in a URL is sent as basic auth (aiohttp refuses it beside an API key) and
        # kept out of every message; the identity still covers the URLs as given.
        split = [_split_credentials(u) for u in self.base_urls]
        self._urls = [u for u, _ in split]
        self._basic_auth = next((auth for _, auth in split if auth), None)
        self.model = model
        self.api_key_env = api_key_env
        self.max_concurrency = int(concurrency)
        self.pool = EndpointPool(self._urls, endpoint_concurrency or self.max_concurrency)
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
        self.info = BackendInfo(
            backend="openai",
            model=model,
            revision=revision,
            extra=redact_mapping(
                {
                    "base_url": self.base_url,
                    "base_urls": [redact_url(u) for u in self.base_urls],
                    "extra_body": self.extra_body,
                }
            ),
            variant=self._variant(revision),
        )
        self._session: aiohttp.ClientSession | None = None
        self._rng = random.Random()
        self._n_supported: bool | None = None  # learnt from the first n=k request
        self._n_probe: asyncio.Lock | None = None
        # Called on every push-back (429, 503, timeout) the retries absorb: --concurrency auto slows down.
        self.on_pushback: Callable[[], None] | None = None

    def _variant(self, revision: str | None) -> str | None:
        """The identity (and so the cache key) covers what changes answers besides model and revision:
        extra request fields always, and the server URL when one URL and no revision label vouch
        for the weights. Several URLs are replicas of one model: the identity is the model's, so
        adding or losing a replica keeps the run folder and the cache (README, Model specs)."""
        ident: dict[str, Any] = {"body": self.extra_body}
        if revision is None and len(self.base_urls) == 1:
            ident["url"] = self.base_url
        if not self.extra_body and "url" not in ident:
            return None
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:10]

    @classmethod
    def from_spec(
        cls, spec: BackendSpec, options: dict[str, Any], concurrency: int | str | None = None
    ) -> OpenAIBackend:
        """``concurrency`` is the run's --concurrency (requests in flight, or ``auto``)."""
        base_url, _, model = spec.target.rpartition("@")
        known = {
            "api_key_env",
            "concurrency",
            "timeout",
            "max_retries",
            "revision",
            "endpoint",
            "endpoint_concurrency",
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
        if "endpoint_concurrency" in options:
            kwargs["endpoint_concurrency"] = option_int(
                "endpoint_concurrency", options["endpoint_concurrency"], 1
            )
        if concurrency == "auto" or options.get("concurrency") == "auto":
            kwargs["concurrency"] = AUTO_CEILING
        else:
            pool = one_concurrency("openai", concurrency, "concurrency", options)  # type: ignore[arg-type]
            if pool is not None:
                kwargs["concurrency"] = pool
        return cls(split_base_urls(base_url), model, extra_body=extra, **kwargs)

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
        """Fail fast with a clear message when no server can be reached at all, and note the serving
        engine and version where the server says (``BackendInfo.extra["server"]``, in the manifest)."""
        session = await self._get_session()
        reached, first_error = [], None
        for url in self._urls:
            try:
                async with session.get(
                    f"{url}/models", headers=self._headers(), timeout=aiohttp.ClientTimeout(total=15)
                ) as resp:
                    body = await resp.read()
                    reached.append((url, resp.status, dict(resp.headers), body))
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError, OSError) as e:
                first_error = first_error or f"{url} ({type(e).__name__}: {e})"
        if not reached:
            raise BackendError(
                redact_text(
                    f"cannot reach the OpenAI-compatible server at {first_error}; start the server or "
                    "fix the base URL in --model openai:<base_url>@<model>"
                )
            ) from None
        url, status, headers, body = reached[0]
        server = await self._server_info(session, url, headers, body) if status < 400 else {}
        if server:
            self.info = dataclasses.replace(self.info, extra={**self.info.extra, "server": server})

    async def _server_info(
        self, session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: bytes
    ) -> dict[str, Any]:
        return server_info_from(self.model, headers, body, await self._version_probe(session, url))

    async def _version_probe(self, session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
        """vLLM answers ``GET /version``, llama.cpp ``GET /props``, SGLang ``GET /get_server_info``
        (at the server root, not under /v1); each is tried with a short timeout and may be absent."""
        root = url[: -len("/v1")] if url.endswith("/v1") else url
        found: dict[str, Any] = {}
        for path in ("/version", "/props", "/get_server_info"):
            try:
                async with session.get(
                    root + path, headers=self._headers(), timeout=aiohttp.ClientTimeout(total=2)
                ) as resp:
                    if resp.status == 200 and "json" in resp.headers.get("Content-Type", ""):
                        data = await resp.json()
                        if isinstance(data, dict):
                            found[path] = data
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
                continue
        return found

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        session = await self._get_session()
        ep = await self.pool.acquire()
        failed = True
        try:
            async with session.post(f"{ep.url}{path}", json=body, headers=self._headers()) as resp:
                raw = await resp.read()
                kind = classify_status(resp.status)
                if kind is not None:
                    failed = resp.status >= 500 and resp.status != 503
                    msg = raw[:500].decode("utf-8", errors="replace")
                    raise _RequestFailed(  # a server may echo the key in its error: redacted
                        kind,
                        redact_text(f"HTTP {resp.status}: {msg}"),
                        parse_retry_after(resp.headers.get("Retry-After")),
                        pushback=resp.status in (429, 503),
                        moved=failed and self.pool.others_up(ep),
                    )
                failed = False
        except _RequestFailed:
            raise
        except asyncio.TimeoutError:
            raise _RequestFailed(
                "transient",
                f"timed out after {self.timeout:.0f} s",
                pushback=True,
                moved=self.pool.others_up(ep),
            ) from None
        except (aiohttp.ClientError, OSError) as e:
            msg = redact_text(f"{type(e).__name__}: {e}")
            raise _RequestFailed("transient", msg, moved=self.pool.others_up(ep)) from None
        finally:
            self.pool.release(ep, failed)
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
        attempt = moves = 0
        while True:
            attempt += 1
            try:
                return await self._post(path, body), None, attempt
            except _RequestFailed as e:
                if e.pushback and self.on_pushback is not None:
                    self.on_pushback()
                if e.moved and moves < 2 * len(self.base_urls):
                    # Another replica is up: retry there at once; a move is not a retry of the model.
                    moves += 1
                    attempt -= 1
                    continue
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

    def _body(self, req: Request) -> tuple[str, dict[str, Any], bool]:
        chat = self._use_chat(req)
        body = self._sampling(req)
        if chat:
            body["messages"] = [{"role": m.role, "content": m.content} for m in req.messages or ()]
        else:
            body["prompt"] = req.prompt
        return ("/chat/completions" if chat else "/completions"), body, chat

    @staticmethod
    def _completion(
        choice: dict[str, Any], usage: Usage, chat: bool, latency: float, attempts: int
    ) -> Completion:
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
            usage=usage,
            reasoning=valid_unicode(reasoning) if isinstance(reasoning, str) else reasoning,
            latency_s=latency,
            attempts=attempts,
        )

    async def _generate_one(self, req: Request) -> Completion:
        t0 = time.perf_counter()
        path, body, chat = self._body(req)
        data, err, attempts = await self._with_retries(path, body)
        latency = time.perf_counter() - t0
        if err is not None:
            err.latency_s = latency
            return err
        assert data is not None
        return self._completion(data["choices"][0], usage_of(data), chat, latency, attempts)

    async def _generate_n(self, reqs: Sequence[Request]) -> list[Completion] | None:
        """The repeats of one unseeded prompt as one ``n=k`` request: choice i answers repeat i
        (each keeps its own record and cache key). None when the server does not honour ``n``
        (an error, or fewer choices than asked: llama.cpp's server answers one); the caller then
        sends them one by one and this backend stops asking."""
        t0 = time.perf_counter()
        path, body, chat = self._body(reqs[0])
        body["n"] = len(reqs)
        data, err, attempts = await self._with_retries(path, body)
        choices = (data or {}).get("choices") or []
        if err is not None and err.error_kind != "fatal":
            err.latency_s = time.perf_counter() - t0
            return [err] * len(reqs)  # the server is down, not refusing n: the repeats failed alike
        if err is not None or len(choices) != len(reqs):
            self._n_supported = False
            return None
        self._n_supported = True
        choices = sorted(choices, key=lambda c: c.get("index", 0))
        # Token counts come for the whole request: the prompt's is each repeat's, the answers' is not.
        prompt_tokens = ((data or {}).get("usage") or {}).get("prompt_tokens")
        latency = time.perf_counter() - t0
        return [self._completion(c, Usage(prompt_tokens, None), chat, latency, attempts) for c in choices]

    async def generate(self, reqs: Sequence[Request]) -> list[Completion]:
        if len(reqs) > 1 and self._n_supported is None:
            # The first n=k request finds out whether the server honours n; the others wait for it
            # rather than each sending one that may come back with a single choice.
            self._n_probe = self._n_probe or asyncio.Lock()
            async with self._n_probe:
                if self._n_supported is None:
                    grouped = await self._generate_n(reqs)
                    if grouped is not None:
                        return grouped
        if len(reqs) > 1 and self._n_supported:
            grouped = await self._generate_n(reqs)
            if grouped is not None:
                return grouped
        if len(reqs) == 1:  # the engine's usual call: no task per request
            return [await self._generate_one(reqs[0])]
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

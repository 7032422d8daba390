"""Keeping secrets out of files and messages: API keys are read from the environment at request
time; anything that looks like a credential in an option, a spec or a URL is redacted before it is
written or printed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

SECRET_RE = re.compile(
    r"(^|_|-)(api_?key|key|token|secret|password|passwd|auth|authorization|credentials?)$", re.IGNORECASE
)
# Option names that end like a secret but hold none (lm-eval model arguments).
NOT_SECRET = frozenset({"add_bos_token", "eos_token", "bos_token", "pad_token", "think_end_token"})
REDACTED = "<redacted>"


def is_secret_name(name: str) -> bool:
    """An option name that holds a secret (``api_key``, ``body.token``), not the name of where one
    lives (``api_key_env``) or a tokenizer setting (``eos_token``)."""
    name = name.rsplit(".", 1)[-1]
    return name not in NOT_SECRET and bool(SECRET_RE.search(name))


def redact_url(url: str) -> str:
    """A URL without user:password@ and without query parameters whose names look secret."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if parts.netloc != netloc:
        netloc = f"{REDACTED}@{netloc}"
    query = "&".join(
        f"{k}={REDACTED}" if is_secret_name(k) else (f"{k}={v}" if sep else k)
        for k, sep, v in (q.partition("=") for q in parts.query.split("&") if q)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


_URL_RE = re.compile(r"https?://[^\s,@]*@[^\s,]*|https?://[^\s,]*\?[^\s,]*")


# Secret values this process has handed to a server (API keys, URL passwords, secret body fields):
# a server may echo them back in an error body, so every redacted text is cleaned of them too.
_KNOWN_SECRETS: set[str] = set()
MIN_SECRET_LEN = 4  # shorter values would redact ordinary words


def remember_secret(value: str | None) -> None:
    """Redact ``value`` wherever it appears in text that goes through ``redact_text`` from now on."""
    if value and len(value) >= MIN_SECRET_LEN:
        _KNOWN_SECRETS.add(value)


def redact_text(text: str) -> str:
    """Redact credentials inside any URL in free text (specs, argv entries, error messages) and every
    secret value this process has used."""
    text = _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
    for secret in sorted(_KNOWN_SECRETS, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def redact_spec(spec: str) -> str:
    """A model spec with secret-looking key=value pairs and URL credentials hidden
    (lmeval specs can carry api_key=..., URLs can carry user:password@)."""
    parts = []
    for part in redact_text(spec).split(","):
        key, sep, _ = part.partition("=")
        parts.append(f"{key}={REDACTED}" if sep and is_secret_name(key) else part)
    return ",".join(parts)


def redact_mapping(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options with secret-looking names redacted (recursively) and URLs cleaned."""
    out: dict[str, Any] = {}
    for k, v in options.items():
        if is_secret_name(str(k)):
            out[k] = REDACTED
        elif isinstance(v, Mapping):
            out[k] = redact_mapping(v)
        elif isinstance(v, str):
            out[k] = redact_text(v)
        else:
            out[k] = v
    return out

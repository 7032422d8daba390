"""Retry policy shared by network backends: classify errors, back off exponentially with jitter,
honour Retry-After."""

from __future__ import annotations

import datetime as dt
import email.utils
import random
from dataclasses import dataclass

from evalkit.types import ErrorKind

RETRYABLE: frozenset[ErrorKind] = frozenset({"rate_limit", "transient"})


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 6  # attempts after the first
    base_delay_s: float = 0.5
    max_delay_s: float = 60.0
    max_retry_after_s: float = 300.0  # a server asking for more than this is treated as this


def classify_status(status: int) -> ErrorKind | None:
    """HTTP status -> error kind; None for success. 429 and 5xx (and 408) are retried, other 4xx not."""
    if status < 400:
        return None
    if status == 429:
        return "rate_limit"
    if status in (408, 409, 425) or status >= 500:
        return "transient"
    return "fatal"


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def backoff_delay(
    attempt: int, policy: RetryPolicy, retry_after: float | None = None, rng: random.Random | None = None
) -> float:
    """Delay before retry number ``attempt`` (1-based): full jitter on an exponential ceiling,
    but never less than what the server asked for in Retry-After."""
    r = rng or random
    ceiling = min(policy.max_delay_s, policy.base_delay_s * (2 ** (attempt - 1)))
    delay = r.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.max_retry_after_s))
    return delay

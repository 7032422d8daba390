"""Typing ``--model-arg`` (``-M key=value``) options: the one coercer every backend uses.

Values arrive as strings from the command line (and as typed values from Python callers). Each
error names the option and says what it expected, in one format for every backend.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from evalkit.errors import BackendError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def reject_unknown(backend: str, options: Mapping[str, Any], known: Collection[str], hint: str = "") -> None:
    """BackendError naming every option the backend does not take, and the ones it does."""
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise BackendError(
            f"unknown --model-arg {', '.join(unknown)} for the {backend} backend; "
            f"known: {', '.join(sorted(known))}{hint}"
        )


def option_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise BackendError(f"--model-arg {name}={value}: expected true or false")


def option_int(name: str, value: Any, minimum: int = 1) -> int:
    """An integer option; a number with a fractional part, or a boolean, is refused."""
    n: int | None = None
    if not isinstance(value, bool):
        text = str(value).strip()
        try:
            n = int(text)
        except ValueError:
            try:
                f = float(text)
                n = int(f) if f.is_integer() else None
            except (ValueError, OverflowError):
                n = None
    if n is None or n < minimum:
        raise BackendError(f"--model-arg {name}={value}: expected an integer >= {minimum}")
    return n


def option_float(name: str, value: Any, minimum: float | None = None) -> float:
    try:
        x = None if isinstance(value, bool) else float(str(value).strip())
    except (TypeError, ValueError):
        x = None
    if x is None or x != x or (minimum is not None and x < minimum):
        bound = f" >= {minimum:g}" if minimum is not None else ""
        raise BackendError(f"--model-arg {name}={value}: expected a number{bound}")
    return x


def typed_value(value: Any) -> Any:
    """A free-form value (an extra request field such as ``body.top_k=1``): numbers, booleans and
    JSON become typed values, anything else stays the string it was."""
    if not isinstance(value, str):
        return value
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(value)
        except ValueError:
            pass
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            pass
    return value


def one_concurrency(
    backend: str, concurrency: int | None, option: str, options: Mapping[str, Any]
) -> int | None:
    """The run's ``--concurrency`` and the backend's own spelling of the same quantity (``-M
    concurrency`` for openai, ``-M batch_size`` for in-process backends) are one knob: either may be
    given, and both only when they agree. None when neither is."""
    own = option_int(option, options[option]) if options.get(option) not in (None, "auto") else None
    if concurrency is not None and concurrency < 1:
        raise BackendError(f"--concurrency {concurrency}: must be at least 1")
    if own is not None and concurrency is not None and own != concurrency:
        raise BackendError(
            f"--concurrency {concurrency} and --model-arg {option}={own} disagree; for the {backend} "
            f"backend they are the same setting: give one"
        )
    return own if own is not None else concurrency

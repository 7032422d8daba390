"""Option values shared by several commands."""

from __future__ import annotations

from evalkit.errors import EvalkitError


def parse_key_values(items: list[str], option: str = "--model-arg") -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}``, with a clear error naming the option for a malformed item."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EvalkitError(f"{option} {item!r}: write it as key=value, e.g. {option} concurrency=8")
        out[key.strip()] = value
    return out

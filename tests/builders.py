"""Requests built for backend tests."""

from __future__ import annotations

from evalkit.types import GenParams, Message, Request


def ll_request(
    key: str,
    continuations: tuple[str, ...],
    prompt: str | None = None,
    messages: tuple[Message, ...] | None = None,
) -> Request:
    """A loglikelihood request: ``continuations`` scored after ``prompt`` (or after chat ``messages``)."""
    return Request(
        key=key,
        task="t",
        sample_id=key,
        repeat=0,
        params=GenParams(),
        kind="loglikelihood",
        prompt=prompt,
        messages=messages,
        continuations=continuations,
    )

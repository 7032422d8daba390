"""The faults the test server can inject, by name: what a flaky or broken OpenAI-compatible server
sends instead of a completion. Each error body says "The answer is (A)", so an item graded from an
error body would show in its record's text."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

BAIT = "The answer is (A)"  # inside every error body: it must never become an answer
STALL_S = 3.0  # longer than the -M timeout the tests give the client
TRICKLE_CHUNK_S = 0.02


def _ok_bytes(text: str | None) -> bytes:
    body = {
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 5},
    }
    return json.dumps(body).encode()


async def _trickle(request: web.Request, payload: bytes, chunk: int) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    for i in range(0, len(payload), chunk):
        await resp.write(payload[i : i + chunk])
        await asyncio.sleep(TRICKLE_CHUNK_S)
    await resp.write_eof()
    return resp


async def respond_with_fault(name: str, request: web.Request, server: Any) -> web.StreamResponse:
    """The response for fault ``name``; ``server.answer(item)`` is the real answer some faults wrap."""
    error = {"error": {"message": f"injected {name}: {BAIT}"}}
    if name == "429_retry_after":
        return web.json_response(error, status=429, headers={"Retry-After": "0.05"})
    if name in ("429", "500", "502", "503"):
        return web.json_response(error, status=int(name))
    if name == "reset":  # the connection drops before any response byte
        assert request.transport is not None
        request.transport.abort()
        await asyncio.sleep(0.01)
        return web.Response()
    if name == "stall":  # no byte until long after the client's timeout
        await asyncio.sleep(STALL_S)
        return web.json_response(error, status=500)
    if name == "truncated_json":
        return web.Response(body=_ok_bytes(BAIT)[:40], content_type="application/json")
    if name == "invalid_json":
        return web.Response(text=f"<html><body>{BAIT}</body></html>", content_type="text/html")
    if name == "empty_choices":
        return web.json_response({"choices": [], "usage": {}})
    if name == "not_a_completion":  # a 200 with an error object (or other JSON) instead of choices
        return web.json_response(error)
    if name == "choice_without_message":  # choices, but no message or text in them
        return web.json_response({"choices": [{"index": 0, "finish_reason": "stop", "note": BAIT}]})
    if name == "null_content":  # a well-formed completion whose content is null: an empty answer
        return web.Response(body=_ok_bytes(None), content_type="application/json")
    if name == "slow_trickle":  # the real answer, a few bytes at a time, within the timeout
        return await _trickle(request, _ok_bytes(server.answer(_item_of(request))), 24)
    raise AssertionError(f"unknown fault {name!r}")


def _item_of(request: web.Request) -> int:
    from harness import ITEM

    return request.get(ITEM, -1)


TRANSIENT = (
    "429_retry_after",
    "429",
    "500",
    "502",
    "503",
    "reset",
    "stall",
    "truncated_json",
    "invalid_json",
    "empty_choices",
    "not_a_completion",
    "choice_without_message",
)
"""Faults a retry recovers from (the next attempt gets the real answer)."""

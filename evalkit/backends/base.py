"""The Backend protocol every model backend implements (DESIGN.md section 3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from evalkit.types import BackendInfo, Completion, Request


@runtime_checkable
class Backend(Protocol):
    """A model behind one interface.

    ``generate`` and ``loglikelihood`` never raise for a failed request: they return a Completion
    with ``finish_reason="error"`` and ``error``/``error_kind`` set, so the engine records it as an
    error instead of grading it as a wrong answer. They may raise NotSupported for a whole kind.

    ``batch_size`` is how many requests one call should carry (1 for HTTP APIs, where concurrency
    comes from many calls in flight; larger for local models that batch on the device).
    ``max_concurrency`` is how many calls the engine may have in flight at once.
    """

    info: BackendInfo
    batch_size: int
    max_concurrency: int

    async def generate(self, reqs: Sequence[Request]) -> list[Completion]: ...

    async def loglikelihood(self, reqs: Sequence[Request]) -> list[Completion]: ...

    async def aclose(self) -> None: ...

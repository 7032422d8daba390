"""The Backend protocol every model backend implements (DESIGN.md section 3), and its defaults."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from evalkit.types import BackendInfo, Completion, Request


@runtime_checkable
class Backend(Protocol):
    """A model behind one interface.

    ``generate`` and ``loglikelihood`` never raise for a failed request: they return
    ``Completion.failed(...)``, so the engine records it as an error instead of grading it as a
    wrong answer. They may raise NotSupported for a whole kind.

    ``batch_size`` is how many requests one call should carry (1 for HTTP APIs, where concurrency
    comes from many calls in flight; larger for local models that batch on the device).
    ``max_concurrency`` is how many calls may be in flight at once. Together they hold the run's
    ``--concurrency`` (requests in flight), which ``make_backend`` passes in at construction: an
    HTTP backend takes it as calls in flight (its connection pool), an in-process backend as its
    batch size.

    ``cacheable`` is False for a backend whose answers must not go into the response cache
    (replay: they already live in a run folder). ``check`` fails fast, before any request, when
    the model cannot be reached at all. Neither may load a model: the runner asks both before it
    knows whether anything has to be sent.
    """

    info: BackendInfo
    batch_size: int
    max_concurrency: int
    cacheable: bool

    async def check(self) -> None: ...

    async def generate(self, reqs: Sequence[Request]) -> list[Completion]: ...

    async def loglikelihood(self, reqs: Sequence[Request]) -> list[Completion]: ...

    async def aclose(self) -> None: ...


class BackendBase:
    """Defaults for the protocol members most backends do not need to change."""

    batch_size: int = 1
    max_concurrency: int = 1
    cacheable: bool = True

    async def check(self) -> None:
        """Nothing to check before the first request (an in-process model fails when it loads)."""
        return None

    async def aclose(self) -> None:
        return None

"""SIGINT and SIGTERM: stop at a safe point, say what was kept and how to resume, exit 130 or 143.

The CLI turns both signals into ``Interrupted`` (a BaseException, so no ``except Exception`` on the
way swallows it, and not a KeyboardInterrupt, which typer turns into a silent exit 130). While a
run is sending requests, ``deferred_to(task)`` replaces that with an event-loop handler that only
cancels the run's task: the cancellation lands at the next ``await``, never inside a record
write, so every line written is whole. Imports nothing from evalkit.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The process was asked to stop by ``signum``; ``done`` says what was kept ("8 of 20 answers")."""

    def __init__(self, signum: int, done: str | None = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.done = done

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


def install() -> None:
    """Both signals raise Interrupted. A SIGINT the process was started ignoring (a background job
    of a non-interactive shell, nohup) stays ignored, as POSIX tools do."""
    for sig in SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _raise_interrupted)


@contextmanager
def deferred_to(task: asyncio.Task) -> Iterator[list[int]]:
    """While inside: a signal cancels ``task`` (at its next await) instead of raising wherever the
    code is; yields the list of signals received. The previous handlers come back on the way out
    (asyncio's own removal would reset them to the default, losing the CLI's)."""
    loop = task.get_loop()
    received: list[int] = []
    previous: dict[int, Callable | int | None] = {}

    def on_signal(signum: int) -> None:
        received.append(signum)
        task.cancel()

    for sig in SIGNALS:
        handler = signal.getsignal(sig)
        if handler is signal.SIG_IGN:
            continue
        previous[sig] = handler
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

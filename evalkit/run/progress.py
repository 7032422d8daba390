"""The run's progress bar on stderr: done/total, rate, ETA, errors."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.enabled = enabled and total > 0
        self.errors = 0
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self._p = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("[red]{task.fields[errors]}"),
            console=Console(file=sys.stderr),
            transient=False,
        )
        self._t0 = time.perf_counter()
        self._p.start()
        self._id = self._p.add_task("evaluating", total=total, rate="", errors="")

    def advance(self, ok: bool) -> None:
        if not self.enabled:
            return
        if not ok:
            self.errors += 1
        done = self._p.tasks[0].completed + 1
        rate = done / max(1e-9, time.perf_counter() - self._t0)
        errors = f"{self.errors} errors" if self.errors else ""
        self._p.update(self._id, advance=1, rate=f"{rate:.2f} req/s", errors=errors)

    def close(self) -> None:
        if self.enabled:
            self._p.stop()

"""Messages for the person at the terminal. Imports nothing from evalkit."""

from __future__ import annotations

import sys


def note(message: str) -> None:
    """A progress or status line on stderr, so stdout stays machine-readable."""
    print(message, file=sys.stderr, flush=True)

"""Stop sequences: the one cut used by backends (text they generate) and by scoring (text any backend
returned). Imports nothing from evalkit."""

from __future__ import annotations

from collections.abc import Sequence


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """``text`` up to the earliest stop sequence (empty stop strings are ignored).

    A stop was found exactly when the result is shorter than ``text``: a stop sequence is never
    empty, so it starts before the end of the text.
    """
    cut = len(text)
    for s in stops:
        if s:
            i = text.find(s, 0, cut)
            if i != -1:
                cut = i
    return text[:cut]

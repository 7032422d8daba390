"""Text preparation shared by extractors: reasoning split and stop-sequence cut."""

from __future__ import annotations

import re

from evalkit.types import Completion

_THINK_CLOSED = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def split_reasoning(text: str) -> tuple[str, str | None, bool]:
    """Return (answer_text, reasoning, truncated_in_reasoning).

    Text inside ``<think>...</think>`` is reasoning and never searched for the answer. An opening
    ``<think>`` without its closing tag means the output ended inside the reasoning.
    """
    reasoning_parts = [m.group(0)[7:-8] for m in _THINK_CLOSED.finditer(text)]
    rest = _THINK_CLOSED.sub("", text)
    # A model may emit only the closing tag (the opening one was in the prompt's template).
    if "</think>" in rest.lower():
        idx = rest.lower().rfind("</think>")
        reasoning_parts.append(rest[:idx])
        rest = rest[idx + len("</think>") :]
    lowered = rest.lower()
    if "<think>" in lowered:
        idx = lowered.find("<think>")
        reasoning_parts.append(rest[idx + len("<think>") :])
        return rest[:idx], "\n".join(reasoning_parts), True
    return rest, ("\n".join(reasoning_parts) if reasoning_parts else None), False


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """Cut ``text`` at the first stop sequence, even where the backend ignored it."""
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]


def answer_text(completion: Completion, stop: tuple[str, ...]) -> tuple[str, bool]:
    """The part of a completion searched for an answer, and whether it was truncated in reasoning."""
    text, _reasoning, truncated = split_reasoning(completion.text)
    return cut_at_stop(text, stop), truncated

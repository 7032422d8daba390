"""Text preparation shared by extractors: reasoning split and stop-sequence cut.

All functions are linear in the text length: model output is untrusted and may be megabytes long.
"""

from __future__ import annotations

import re

from evalkit.stops import cut_at_stop
from evalkit.types import Completion

_OPEN, _CLOSE = "<think>", "</think>"
# Answers sit at the end; a search window bounds the work on absurdly long outputs.
MAX_SEARCH_CHARS = 2_000_000


def split_reasoning(text: str) -> tuple[str, str | None, bool]:
    """Return (answer_text, reasoning, truncated_in_reasoning).

    Text inside ``<think>...</think>`` is reasoning and never searched for the answer. A closing
    tag with no opening one means the opening tag was in the prompt template: everything before
    it is reasoning. An opening ``<think>`` without its closing tag means the output ended inside
    the reasoning.
    """
    low = text.lower()
    if _OPEN not in low and _CLOSE not in low:
        return text, None, False
    reasoning: list[str] = []
    answer: list[str] = []
    truncated = False
    pos = 0
    first_open = low.find(_OPEN)
    first_close = low.find(_CLOSE)
    if first_close != -1 and (first_open == -1 or first_close < first_open):
        reasoning.append(text[:first_close])
        pos = first_close + len(_CLOSE)
    n = len(text)
    while pos <= n:
        i = low.find(_OPEN, pos)
        if i == -1:
            answer.append(text[pos:])
            break
        answer.append(text[pos:i])
        j = low.find(_CLOSE, i + len(_OPEN))
        if j == -1:
            reasoning.append(text[i + len(_OPEN) :])
            truncated = True
            break
        reasoning.append(text[i + len(_OPEN) : j])
        pos = j + len(_CLOSE)
    rest = "".join(answer)
    # A stray closing tag left in the answer: what precedes it was reasoning too.
    k = rest.lower().rfind(_CLOSE)
    if k != -1:
        reasoning.append(rest[:k])
        rest = rest[k + len(_CLOSE) :]
    return rest, ("\n".join(reasoning) if reasoning else None), truncated


def answer_text(completion: Completion, stop: tuple[str, ...] | list[str]) -> tuple[str, bool]:
    """The part of a completion searched for an answer, and whether it was truncated in reasoning.

    The reasoning is removed first, then the text is cut at the stop sequences (a base model's
    invented follow-up questions carry their own answers). A backend that returns reasoning in a
    separate field and an empty text because it hit max_tokens was truncated in the reasoning.
    """
    text, _reasoning, truncated = split_reasoning(completion.text or "")
    if not truncated and completion.finish_reason == "length" and completion.reasoning and not text.strip():
        truncated = True
    text = cut_at_stop(text, stop)
    if len(text) > MAX_SEARCH_CHARS:
        text = text[-MAX_SEARCH_CHARS:]
    return text, truncated


# Chat-template and end-of-text tokens: `<|im_end|>`, `<|eot_id|>`, `<|endoftext|>`, `<|end|>`,
# `<|im_start|>`, DeepSeek's fullwidth `<｜end▁of▁sentence｜>`, `</s>`, `<s>`, `<eos>`,
# `<end_of_turn>`, `<start_of_turn>`, `[INST]`/`[/INST]`. What follows one is an invented next
# turn (or the template's own text), never the answer to this question.
_SPECIAL_TOKEN_RE = re.compile(
    r"<[|\uff5c][^<>\n|\uff5c]{1,40}[|\uff5c]>|</?s>|<eos>|<(?:end|start)_of_turn>|\[/?INST\]"
)
# A role name that a leading turn-start token opens (`<|im_start|>assistant\n`).
_ROLE_RE = re.compile(r"[ \t]*(?:assistant|model|gpt|bot)?[ \t]*:?[ \t]*\n?", re.IGNORECASE)


def strip_chat_tokens(text: str) -> str:
    """The text up to the first chat-template / end-of-text token.

    Leading tokens (a template that echoes ``<|im_start|>assistant`` before the answer) are
    dropped first; then the text is cut at the first remaining token, so an invented next turn
    (``<|im_end|><|im_start|>user ...``, ``</s><s>[INST] ...``) and its answers do not count.
    """
    pos = 0
    while True:
        m = _SPECIAL_TOKEN_RE.match(text, pos)
        if m is None:
            stripped = text[pos:].lstrip()
            if stripped != text[pos:] and _SPECIAL_TOKEN_RE.match(stripped):
                pos = len(text) - len(stripped)
                continue
            break
        pos = m.end()
        role = _ROLE_RE.match(text, pos)
        if role:
            pos = role.end()
    m = _SPECIAL_TOKEN_RE.search(text, pos)
    return text[pos : m.start()] if m else text[pos:]

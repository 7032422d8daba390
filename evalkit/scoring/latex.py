"""LaTeX-aware string helpers for answer extraction: boxes with balanced braces, light normalisation.

Everything here is linear in the input length (model output is untrusted and can be megabytes of
nested braces), pure Python, and never evaluates anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_BOX_CMDS = ("\\boxed", "\\fbox")


@dataclass(frozen=True)
class Box:
    """One ``\\boxed{...}``/``\\fbox{...}`` (or ``\\boxed 5``) found in a text."""

    start: int  # index of the backslash
    end: int  # index just past the closing brace (or the bare token)
    content: str


def matching_braces(text: str) -> dict[int, int]:
    """Map the index of each group-opening ``{`` to its closing ``}`` in one pass.

    Escaped braces (``\\{``, ``\\}``) are literal characters in LaTeX, not groups. Unbalanced
    openings are left out (a truncated ``\\boxed{5`` has no content).
    """
    pairs: dict[int, int] = {}
    stack: list[int] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2  # skip the escaped character (covers \{ \} \\)
            continue
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            pairs[stack.pop()] = i
        i += 1
    return pairs


def find_boxes(text: str) -> list[Box]:
    """Every box in ``text`` in order of its start; nested boxes are listed too."""
    starts: list[tuple[int, str]] = []
    for cmd in _BOX_CMDS:
        i = text.find(cmd)
        while i != -1:
            starts.append((i, cmd))
            i = text.find(cmd, i + len(cmd))
    if not starts:
        return []
    starts.sort()
    pairs = matching_braces(text)
    boxes: list[Box] = []
    n = len(text)
    for start, cmd in starts:
        j = start + len(cmd)
        if j < n and (text[j].isalpha()):
            continue  # a longer command name such as \boxedtext
        k = j
        while k < n and text[k] in " \t":
            k += 1
        if k < n and text[k] == "{":
            close = pairs.get(k)
            if close is None:
                continue  # unbalanced: truncated output
            boxes.append(Box(start, close + 1, text[k + 1 : close]))
        elif k > j or (k < n and text[k].isdigit()):
            # `\boxed 5` / `\boxed5`: TeX takes one token; models mean the whole word.
            m = re.compile(r"\\[A-Za-z]+|[^\s$\\]+").match(text, k)
            if m:
                tok = m.group(0).rstrip(".,;:")
                if tok:
                    boxes.append(Box(start, m.end(), tok))
    return boxes


def last_box(text: str) -> Box | None:
    """The box that ends last (the outer one when boxes are nested), with nested boxes unwrapped."""
    boxes = find_boxes(text)
    if not boxes:
        return None
    best = max(boxes, key=lambda b: (b.end, -b.start))
    content = best.content.strip()
    # `\boxed{\boxed{5}}` -> 5
    for _ in range(10):
        inner = find_boxes(content)
        if len(inner) == 1 and inner[0].start == 0 and inner[0].end == len(content):
            content = inner[0].content.strip()
        else:
            break
    return Box(best.start, best.end, content)


_TEXT_WRAPPERS = re.compile(
    r"\\(?:text|textbf|textit|mathrm|mathbf|mathit|mbox|operatorname|textnormal)\s*\{"
)


def unwrap_commands(s: str) -> str:
    """Replace ``\\text{X}`` (and bold/roman variants) by ``X`` wherever it appears."""
    for _ in range(20):
        m = _TEXT_WRAPPERS.search(s)
        if not m:
            return s
        open_idx = m.end() - 1
        close = matching_braces(s).get(open_idx)
        if close is None:
            return s
        s = s[: m.start()] + s[open_idx + 1 : close] + s[close + 1 :]
    return s


_MATH_DELIMS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))


def strip_math_delimiters(s: str) -> str:
    """``$x$`` -> ``x`` (also ``$$``, ``\\(\\)``, ``\\[\\]``) when the delimiters wrap the whole string."""
    s = s.strip()
    changed = True
    while changed:
        changed = False
        for a, b in _MATH_DELIMS:
            if len(s) >= len(a) + len(b) and s.startswith(a) and s.endswith(b):
                inner = s[len(a) : len(s) - len(b)]
                if a == "$" and "$" in inner.replace("\\$", ""):
                    continue  # `$1$ and $2$` is two formulas, not one
                s = inner.strip()
                changed = True
    return s


# A `\\` (line break, matrix row) is consumed first so that `\\ 2` is not read as `\ ` + `2`.
_SPACE_CMDS = re.compile(r"\\\\|\\[,;:! ]|\\q?quad(?![A-Za-z])|~")
_SIZE_CMDS = re.compile(r"\\\\|\\(?:left|right|big|Big|bigg|Bigg|displaystyle)(?![A-Za-z])")


def _keep_linebreak(repl: str) -> Callable[[re.Match[str]], str]:
    return lambda m: m.group(0) if m.group(0) == "\\\\" else repl


_SPACE_AROUND = re.compile(r"\s*([,(){}\[\]=+\-<>^_])\s*")
_SCI = re.compile(r"([+-]?\d+(?:\.\d+)?)[eE]([+-]?\d+)")


def normalize_answer(s: str) -> str:
    """A canonical spelling of a short math answer, for identity checks and cache keys.

    Only rewrites that cannot change the value: delimiters, sizing and spacing commands, ``\\dfrac``,
    a trailing full stop, spaces next to punctuation, plain scientific notation (``1.5e3``).
    """
    s = s.strip()
    if s.endswith(".") and not s.endswith(".."):
        s = s[:-1]
    s = strip_math_delimiters(s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _SIZE_CMDS.sub(_keep_linebreak(""), s)
    # A thousands separator written `1\,000` or `1{,}000` is a plain comma.
    s = re.sub(r"(?<=\d)(?<!\\)(?:\\,|\{,\})(?=\d{3})", ",", s)
    s = _SPACE_CMDS.sub(_keep_linebreak(" "), s)
    s = s.replace("\\$", "").replace("\u2212", "-")
    s = re.sub(r"\s+", " ", s).strip()
    if s.endswith(".") and not s.endswith(".."):
        s = s[:-1].rstrip()
    s = _SPACE_AROUND.sub(r"\1", s)
    m = _SCI.fullmatch(s)
    if m:
        s = f"{m.group(1)}\\times10^{{{int(m.group(2))}}}"
    return s


_ELLIPSIS = re.compile(r"\\[lc]?dots[bc]?\b|\\ldotp|\.\.\.|\u2026")


def has_ellipsis(s: str) -> bool:
    return bool(_ELLIPSIS.search(s))


def split_top_level(s: str, sep: str = ",") -> list[str]:
    """Split at ``sep`` outside any bracket ``{}()[]`` (for sequences such as ``1, 2, \\ldots``)."""
    parts: list[str] = []
    depth = 0
    cur: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in "{}":
            cur.append(s[i : i + 2])
            i += 2
            continue
        if c in "{([":
            depth += 1
        elif c in "})]":
            depth = max(0, depth - 1)
        if c == sep and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur).strip())
    return parts


def is_ellipsis_token(s: str) -> bool:
    return bool(_ELLIPSIS.fullmatch(s.strip()))

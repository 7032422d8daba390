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


# Digit grouping: a separator between digit groups of exactly three digits after a first group
# of one to three digits that does not start with 0 (`10,455`, `1 000`, `1\,234\,567`,
# `1{,}000`, `16,\!386`, a no-break or thin space). One separator kind per number; a comma
# followed by a space (`32, 349`) is a list; a pair in brackets (`(100,200)`) is a tuple; `0,111`
# is never a grouping (mathequiv.decimal_comma reads it).
_GROUP_SEPS = (",\\! ", ",\\!", "{,}", "\\,", "\\!", ",", " ", "\\ ", "\u00a0", "\u202f", "\u2009", "'")
_GROUP_RES = [
    re.compile(
        rf"(?<![\d.,\\])(?<!\d )([1-9]\d{{0,2}})((?:{re.escape(sep)}\d{{3}})+)(?![\d])(?!{re.escape(sep)}\d)"
    )
    for sep in _GROUP_SEPS
]
_LIST_COMMA_RE = re.compile(r"(?<=\d)(?<!(?<![\d.])0),(?=\d{3}(?!\d))")  # not `0,111` (decimal comma)


def group_digits(s: str) -> str:
    """``10,455`` -> ``10455``, ``1 000`` -> ``1000``, ``1\\,000`` -> ``1000``: digit-group separators
    removed (the rule is above ``_GROUP_SEPS``); anything else is left as written."""
    for sep, rx in zip(_GROUP_SEPS, _GROUP_RES, strict=True):
        if sep not in s:
            continue

        def join(m: re.Match[str], sep: str = sep) -> str:
            before = m.string[m.start() - 1 : m.start()]
            after = m.string[m.end() : m.end() + 1]
            if before in "([" and before and after in ")]" and after:
                return m.group(0)  # `(100,200)`: a pair
            return m.group(1) + m.group(2).replace(sep, "")

        s = rx.sub(join, s)
    return s


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
    s = group_digits(s)
    s = _SPACE_CMDS.sub(_keep_linebreak(" "), s)
    s = s.replace("\\$", "").replace("\u2212", "-")
    s = re.sub(r"\s+", " ", s).strip()
    if s.endswith(".") and not s.endswith(".."):
        s = s[:-1].rstrip()
    s = _SPACE_AROUND.sub(r"\1", s)
    # Digit groups were joined above; a comma left before three digits separates list items
    # (`32, 349`), so it keeps its space and is never read as a thousands separator.
    s = _LIST_COMMA_RE.sub(", ", s)
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


# ---------------------------------------------------------------------------------------------
# Several boxes read as one answer


def top_level_boxes(text: str) -> list[Box]:
    """The boxes of ``text`` that are not inside another box, in order."""
    out: list[Box] = []
    for b in find_boxes(text):
        if out and b.start < out[-1].end:
            continue  # nested in the previous top-level box
        out.append(b)
    return out


_GAP_WRAPPER_RE = re.compile(r"\\(?:text|textbf|textit|mathrm|mbox|textnormal)\s*\{([^{}]{0,80})\}")
_GAP_NOISE_RE = re.compile(r"\$|\\[()\[\]]|\\q?quad(?![A-Za-z])|\\[,;:! ]|~|\\\\")
_GAP_WORD_RE = re.compile(r"[A-Za-z]+")
_TIGHT_CONNECTORS = frozenset({"and", "or"})
_MAX_GAP_CHARS = 80
_MAX_GAP_WORDS = 6
_MAX_GROUP_BOXES = 16  # more boxes in a row are a listing, not one answer; also bounds the work


def box_gap_kind(gap: str) -> str:
    """How the text between two boxes joins them: ``tight`` (nothing, a comma, "and", "or",
    ``\\quad``: one answer written in several boxes), ``loose`` (a short sentence break or a label
    such as ``. Part (b):``: one answer only when the gold has that many parts) or ``apart``."""
    if len(gap) > _MAX_GAP_CHARS or "\n\n" in gap:
        return "apart"
    g = _GAP_NOISE_RE.sub(" ", _GAP_WRAPPER_RE.sub(r" \1 ", gap))
    words = [w.lower() for w in _GAP_WORD_RE.findall(g)]
    if len(words) > _MAX_GAP_WORDS:
        return "apart"
    if "." not in g:
        label_words = [w for w in words if len(w) > 1 and w not in _TIGHT_CONNECTORS]
        if not g.strip() or (any(c in g for c in ",;&") and not label_words):
            return "tight"  # `\boxed{1}, \boxed{2}`, `x = \boxed{3}, y = \boxed{5}`
        if _TIGHT_CONNECTORS & set(words) and len(label_words) <= 3:
            return "tight"  # `\boxed{1} and \boxed{2}`, `\boxed{1} papers and \boxed{2}`
    if any(c in g for c in ".:;,\n"):
        return "loose"  # `. Part (b):`, `, then on reflection`
    return "apart"


def final_box_group(text: str) -> tuple[list[Box], str]:
    """The last box and the boxes joined to it (``box_gap_kind``), and the weakest join among
    them: ``single`` (one box), ``tight`` or ``loose``."""
    boxes = top_level_boxes(text)
    if not boxes:
        return [], "single"
    group = [boxes[-1]]
    kind = "single"
    for prev in reversed(boxes[-_MAX_GROUP_BOXES:-1]):
        gap = box_gap_kind(text[prev.end : group[0].start])
        if gap == "apart":
            break
        group.insert(0, prev)
        kind = "loose" if gap == "loose" or kind == "loose" else "tight"
    return group, kind


def strip_set_braces(s: str) -> str:
    """``\\{1, 2\\}`` / ``{1, 2}`` -> ``1, 2``."""
    t = s.strip()
    for a, b in (("\\{", "\\}"), ("{", "}")):
        if t.startswith(a) and t.endswith(b) and len(t) > len(a) + len(b):
            inner = t[len(a) : len(t) - len(b)]
            if a == "{" and matching_braces(t).get(0) != len(t) - 1:
                continue
            return inner.strip()
    return t


def answer_shape(s: str) -> tuple[str, int]:
    """The shape of an answer: (``tuple``, n) for ``(a, b)``, (``list``, n) for ``a, b`` or a set
    ``\\{a, b\\}``, (``single``, 1) otherwise. Several boxes in a prediction are read in this shape."""
    t = strip_math_delimiters(s.strip()).strip()
    inner = strip_set_braces(t)
    if inner != t:
        return "list", len([x for x in split_top_level(inner) if x])
    parts = [x for x in split_top_level(t) if x]
    if len(parts) > 1:
        return "list", len(parts)
    if len(t) > 2 and t[0] == "(" and t[-1] == ")":
        inside = [x for x in split_top_level(t[1:-1]) if x]
        if len(inside) > 1 and "\\infty" not in t:
            return "tuple", len(inside)
    return "single", 1


def read_boxes(text: str, gold_shape: tuple[str, int] | None = None) -> tuple[str, str, int] | None:
    """(answer, method) from the boxes of ``text``: the last box, or several joined boxes read as
    one answer in the gold's shape (a tuple ``(a, b)`` when the gold is a tuple, else the list
    ``a, b``, compared as a set). Boxes joined only loosely (``Part (a): \\boxed{5}. Part (b):
    \\boxed{7}``) form one answer only when the gold has that many parts; otherwise the last box
    counts (earlier boxes are intermediate results). Nested boxes are unwrapped. The same code reads
    a gold that is a full solution. Returns (answer, ``boxed`` | ``boxes``, end of the last box)."""
    group, kind = final_box_group(text)
    if not group:
        return None
    contents = [_unwrap_nested(b.content) for b in group]
    shape, n = gold_shape or ("single", 1)
    if len(group) > 1 and (kind == "tight" or (shape != "single" and n == len(group))):
        if shape == "tuple" and n == len(group):
            return "(" + ", ".join(contents) + ")", "boxes", group[-1].end
        return ", ".join(contents), "boxes", group[-1].end
    return contents[-1], "boxed", group[-1].end


def _unwrap_nested(content: str) -> str:
    content = content.strip()
    for _ in range(10):  # `\boxed{\boxed{5}}` -> 5
        inner = find_boxes(content)
        if len(inner) == 1 and inner[0].start == 0 and inner[0].end == len(content):
            content = inner[0].content.strip()
        else:
            break
    return content


def gold_answer(gold: str) -> str:
    """The answer a gold states: a gold that is a full solution (or several boxes) is read by the
    same box reader as a prediction (``latex.read_boxes``), otherwise the gold as written."""
    if "\\boxed" in gold or "\\fbox" in gold:
        found = read_boxes(gold.replace("\\\\boxed", "\\boxed"))
        if found is not None and found[0].strip():
            return found[0]
    return strip_trailing_backslash(gold)


def strip_trailing_backslash(s: str) -> str:
    """Broken LaTeX: a lone backslash that ends an answer escapes nothing (``185\\`` -> ``185``);
    a ``\\\\`` row break stays."""
    t = s.rstrip()
    while t.endswith("\\") and not t.endswith("\\\\"):
        t = t[:-1].rstrip()
    return t if t != s.rstrip() else s

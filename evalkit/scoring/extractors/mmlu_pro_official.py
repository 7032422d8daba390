"""MMLU-Pro's official extraction (TIGER-Lab evaluate_from_local.py), reproduced exactly.

Only the ``mmlu_pro_official`` task uses it, to reproduce published numbers. The ``mmlu_pro`` task
(evalkit's own numbers) uses the strict ``choice`` extractor (choice.py).
"""

from __future__ import annotations

import re

from evalkit.scoring.extractors._common import finish
from evalkit.scoring.extractors.choice import example_letter_answer
from evalkit.scoring.registry import register_extractor
from evalkit.scoring.text import answer_text
from evalkit.types import Completion, Extraction, Sample, ScoringContext

_OFFICIAL_FIRST = re.compile(r"answer is \(?([A-J])\)?")
_OFFICIAL_AGAIN = re.compile(r"(?=([aA]nswer:\s*([A-J])))")
_OFFICIAL_FINAL = re.compile(r"\b[A-J]\b")


def official_mmlu_pro_answer(text: str) -> tuple[str | None, str]:
    """The official MMLU-Pro cascade: ``answer is \\(?([A-J])\\)?`` (first match), then
    ``.*[aA]nswer:\\s*([A-J])``, then the last standalone letter A-J.

    Same results as the official regular expressions, computed in linear time: ``re.search`` of
    ``.*[aA]nswer:...`` without DOTALL matches at the start of the first line that holds an anchor
    and, greedily, takes the last anchor of that line; the final pattern's negative lookahead
    means "the last match".
    """
    m = _OFFICIAL_FIRST.search(text)
    if m:
        return m.group(1), "official_answer_is"
    line_end = None
    pick = None
    for a in _OFFICIAL_AGAIN.finditer(text):
        if line_end is None:
            line_end = text.find("\n", a.start())
        elif line_end != -1 and a.start() > line_end:
            break  # past the first line that holds an anchor
        pick = a.group(2)
    if pick is not None:
        return pick, "official_answer_colon"
    last = None
    for last in _OFFICIAL_FINAL.finditer(text):  # noqa: B007 - we want the last match
        pass
    if last is not None:
        return last.group(0), "official_last_letter"
    return None, "none"


@register_extractor(
    "mmlu_pro_official", version=1, example_answer=example_letter_answer, answer_kind="letter"
)
def extract_mmlu_pro_official(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
    """Official-compatible MMLU-Pro extraction (TIGER-Lab's script), for reproducing published
    numbers. Letters are A-J whatever the number of options, as in the official script. Pair with
    the ``choice_official_compatible`` grader, which adds the official seeded random guess when
    nothing is found. The strict ``choice`` extractor is the default for evalkit's own numbers."""
    text, truncated = answer_text(completion, ctx.stop)
    let, method = official_mmlu_pro_answer(text)
    return finish(let, method, completion, truncated)

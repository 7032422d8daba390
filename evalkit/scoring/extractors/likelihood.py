"""The ``loglikelihood`` extractor: the option a model finds likeliest (tasks of kind
``loglikelihood_choice``, whose completions carry one summed log-probability per option).

Two readings, as lm-eval's ``acc`` and ``acc_norm``:

- ``normalize: none`` (acc): the option with the largest summed log-probability of its continuation;
- ``normalize: chars`` (acc_norm): the largest log-probability divided by the option's length in
  characters (lm-eval divides by ``len(choice)``, the choice without the space before it;
  lighteval's ``acc_norm_nospace`` likewise), so long options are not penalised for their length.

With the letter form every continuation is one letter long, so both readings pick the same option.
Ties go to the first option, as numpy's argmax does in lm-eval.
"""

from __future__ import annotations

from collections.abc import Sequence

from evalkit.scoring.registry import register_extractor
from evalkit.scoring.text import answer_text
from evalkit.types import Completion, Extraction, Sample, ScoringContext

FORMS = ("letter", "cloze")
NORMALIZE = ("none", "chars")


def _example_likelihood(answer: str, boxed: bool) -> str:
    return answer  # no text is read: the answer comes from the per-option log-likelihoods


def option_lengths(sample: Sample, form: str) -> list[int]:
    """Characters of each option's continuation as lm-eval counts them (no leading space)."""
    if form == "letter":
        return [len(letter) for letter in sample.letters]
    return [max(1, len(c)) for c in sample.choices or ()]


def best_option(logprobs: Sequence[float], lengths: Sequence[int] | None = None) -> int:
    """Index of the likeliest option (per character with ``lengths``); the first one on ties."""
    scores = [lp / n for lp, n in zip(logprobs, lengths, strict=True)] if lengths else list(logprobs)
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


@register_extractor(
    "loglikelihood",
    version=1,
    options=("form", "normalize"),
    example_answer=_example_likelihood,
    answer_kind="letter",
)
def extract_loglikelihood(completion: Completion, sample: Sample, ctx: ScoringContext) -> Extraction:
    """The letter of the option with the highest (optionally length-normalised) log-likelihood."""
    form = str(ctx.extract_options.get("form", "letter"))
    normalize = str(ctx.extract_options.get("normalize", "none"))
    if form not in FORMS or normalize not in NORMALIZE:
        raise ValueError(f"loglikelihood: form must be one of {FORMS}, normalize one of {NORMALIZE}")
    logprobs = completion.logprobs
    n_options = len(sample.choices or ())
    if logprobs is None:
        # A stored reading with no log-likelihoods (`tasks check` writes the letter itself): only
        # an answer that is exactly one of the item's letters counts.
        text = answer_text(completion, ctx.stop)[0].strip()
        if text in sample.letters:
            return Extraction(text, "letter_text", "ok")
        return Extraction(None, "no_logprobs", "no_answer")
    if len(logprobs) != n_options or n_options == 0:
        return Extraction(None, "option_count_mismatch", "no_answer")
    lengths = option_lengths(sample, form) if normalize == "chars" else None
    best = best_option(logprobs, lengths)
    return Extraction(sample.letters[best], "loglikelihood_" + normalize, "ok")

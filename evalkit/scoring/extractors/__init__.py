"""Answer extractors, one module per benchmark family; task YAMLs refer to them by name.

- ``choice`` (choice.py): a multiple-choice letter limited to the item's own options. Every
  multiple-choice task uses it, **``mmlu_pro`` included**.
- ``mmlu_pro_official`` (mmlu_pro_official.py): the official MMLU-Pro script's extraction,
  reproduced exactly; only the ``mmlu_pro_official`` task uses it, to reproduce published numbers.
- ``boxed``, ``answer_line``, ``integer`` (math.py): math answers (MATH, AMC, AIME).
- ``exact`` (exact.py): the whole text, for short answers.
- ``loglikelihood`` (likelihood.py): the likeliest option of a ``loglikelihood_choice`` task (no
  text is read), raw or per character (lm-eval's acc / acc_norm).

Every extractor first splits off the reasoning (``<think>...</think>`` is never searched) and cuts
the text at the task's stop sequences (``ctx.stop``), even where the backend ignored them: base
models given few-shot prompts keep writing invented questions with their own answers. Each one
registers, next to itself, an ``example_answer`` writer (how a model states an answer so that
this extractor reads it), which `evalkit tasks check` scores.
"""

from evalkit.scoring.extractors import choice, exact, likelihood, math, mmlu_pro_official
from evalkit.scoring.extractors._common import EXAMPLE_REASONING

__all__ = ["EXAMPLE_REASONING", "choice", "exact", "likelihood", "math", "mmlu_pro_official"]

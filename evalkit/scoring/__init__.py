"""Answer extraction, grading, metrics and statistics (DESIGN.md section 6).

Importing this package registers the built-in extractors, graders and metrics (registry.py holds
the tables; the components register themselves when their modules are imported here).
"""

from evalkit.scoring.registry import (
    get_extractor,
    get_grader,
    get_metric,
    known_extractors,
    known_graders,
    known_metrics,
    score_completion,
    scorer_version,
)

# The built-in components; imported for their registrations.
from evalkit.scoring import extractors, grade, metrics  # noqa: E402, F401  isort: skip

__all__ = [
    "get_extractor",
    "get_grader",
    "get_metric",
    "known_extractors",
    "known_graders",
    "known_metrics",
    "score_completion",
    "scorer_version",
]

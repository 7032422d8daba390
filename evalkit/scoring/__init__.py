"""Answer extraction, grading, metrics and statistics (DESIGN.md section 6)."""

from evalkit.scoring.registry import (
    ScoringContext,
    get_extractor,
    get_grader,
    known_extractors,
    known_graders,
    score_completion,
)

__all__ = [
    "ScoringContext",
    "get_extractor",
    "get_grader",
    "known_extractors",
    "known_graders",
    "score_completion",
]

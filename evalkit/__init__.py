"""evalkit: contamination-aware, reproducible benchmark evaluation of language models."""

__version__ = "0.1.0"

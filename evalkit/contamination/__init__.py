"""Contamination-aware evaluation (DESIGN.md section 7).

A score on items the model saw in training says little about its ability. This package holds the
tools that make that visible:

- ``split``: keep only the items dated after a model's training cutoff (or before it), with the
  cutoff taken from the catalog and its source recorded; exclude listed item ids.
- ``ngram``: hashed n-gram overlap between benchmark items and a streamed training corpus.

The pre- versus post-cutoff gap of a run is a report (evalkit/report/cutoff_gap.py); problems
generated from templates are a dataset source (evalkit/tasks/).

Modules are imported on use; importing this package loads nothing heavy.
"""

"""Contamination-aware evaluation (DESIGN.md section 7).

A score on items the model saw in training says little about its ability. This package holds the
tools that make that visible:

- ``split``: keep only the items dated after a model's training cutoff (or before it), with the
  cutoff taken from the catalog and its source recorded; exclude listed item ids.
- ``ngram``: hashed n-gram overlap between benchmark items and a streamed training corpus (its
  readers in ``corpus``), sharded over files with an exact merge.
- fresh problems (``evalkit contamination fresh``): generated from templates, with answers computed
  by sympy, dated the day they are generated, so they cannot be in any training set. The template
  engine is a dataset source and lives in ``evalkit.tasks.generated``.

The pre- versus post-cutoff gap of a run is a report (evalkit/report/cutoff_gap.py).

Modules are imported on use; importing this package loads nothing heavy.
"""

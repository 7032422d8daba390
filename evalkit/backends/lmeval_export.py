"""Deprecated home of ``evalkit.export.lmeval``; kept for one release, then removed.

Task folders written by ``evalkit export lmeval`` before the move hold a generated hooks module
(``evalkit_lmeval_utils.py``) that runs ``from evalkit.backends.lmeval_export import ExportedTask``
inside lm-eval; this keeps those folders working until they are exported again. Nothing in evalkit
imports this module.
"""

from evalkit.export.lmeval import ExportedTask

__all__ = ["ExportedTask"]

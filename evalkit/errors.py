"""User-facing errors. The CLI prints these as one or two lines (no traceback) and exits 2."""

from __future__ import annotations


class EvalkitError(Exception):
    """An error caused by the user's input or environment, with a message that says how to fix it."""


class TaskError(EvalkitError):
    """A task YAML is malformed or refers to something that does not exist."""


class DataError(EvalkitError):
    """A dataset or data file cannot be found or read."""


class BackendError(EvalkitError):
    """A model spec is malformed or a backend cannot be reached or loaded."""


class NotSupported(EvalkitError):
    """A backend cannot serve this kind of request (for example loglikelihood over a chat API)."""

"""Fixtures of the fault-injection suite (defined in harness.py, beside the helpers they use)."""

from harness import fake_server, task_dir  # noqa: F401

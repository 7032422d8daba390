"""Task schema, YAML loading, registry, dataset loading and prompt rendering (DESIGN.md section 4)."""

from evalkit.tasks.loader import LoadedTask, load_task_file
from evalkit.tasks.registry import TaskIndex, discover

__all__ = ["LoadedTask", "TaskIndex", "discover", "load_task_file"]

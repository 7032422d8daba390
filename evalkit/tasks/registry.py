"""Find task YAMLs: the built-in tasks/ folder, folders from --tasks-dir and EVALKIT_TASKS_DIR."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evalkit.errors import TaskError
from evalkit.tasks.loader import TASK_SUFFIXES, LoadedTask, load_task_file


def builtin_tasks_dir() -> Path:
    """The repository's tasks/ in a source checkout, or the copy packaged into a wheel."""
    pkg = Path(__file__).resolve().parent.parent
    checkout = pkg.parent / "tasks"
    if checkout.is_dir() and (pkg.parent / "pyproject.toml").is_file():
        return checkout
    return pkg / "builtin_tasks"


def task_dirs(extra: Sequence[str | os.PathLike[str]] = ()) -> list[Path]:
    dirs = [Path(d) for d in extra]
    env = os.environ.get("EVALKIT_TASKS_DIR")
    if env:
        dirs += [Path(d) for d in env.split(os.pathsep) if d]
    dirs.append(builtin_tasks_dir())
    seen, out = set(), []
    for d in dirs:
        r = d.resolve()
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out


def task_files(dirs: Sequence[Path]) -> list[Path]:
    files = []
    for d in dirs:
        if d.is_dir():
            files += sorted(p for p in d.iterdir() if p.suffix in TASK_SUFFIXES and p.is_file())
    return files


@dataclass
class TaskIndex:
    """Every task found, by name; broken files are kept with their error, never skipped silently."""

    tasks: dict[str, LoadedTask]
    broken: dict[Path, str]

    def get(self, name: str) -> LoadedTask:
        if name in self.tasks:
            return self.tasks[name]
        # A path to a YAML file works as a task name too.
        p = Path(name)
        if p.suffix in TASK_SUFFIXES and p.is_file():
            return load_task_file(p)
        for path, err in self.broken.items():
            if path.stem == name:
                raise TaskError(f"task {name!r} is defined in a file that does not validate:\n{err}")
        known = ", ".join(sorted(self.tasks)) or "none"
        raise TaskError(
            f"unknown task {name!r} (known: {known}); add a YAML to tasks/ or point --tasks-dir "
            f"/ EVALKIT_TASKS_DIR at its folder"
        )


def discover(extra_dirs: Sequence[str | os.PathLike[str]] = ()) -> TaskIndex:
    tasks: dict[str, LoadedTask] = {}
    broken: dict[Path, str] = {}
    for f in task_files(task_dirs(extra_dirs)):
        try:
            t = load_task_file(f)
        except TaskError as e:
            broken[f] = str(e)
            continue
        if t.spec.name in tasks:
            # Earlier folders (user-given) take precedence over the built-in ones.
            continue
        tasks[t.spec.name] = t
    return TaskIndex(tasks, broken)

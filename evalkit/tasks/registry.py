"""Find task YAMLs. Folders in order of precedence (a task name found in an earlier folder hides the
same name in later ones): --tasks-dir, EVALKIT_TASKS_DIR, ./tasks/ in the current folder (where
`evalkit tasks new` writes), then the built-in tasks."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.errors import TaskError
from evalkit.tasks.loader import TASK_SUFFIXES, LoadedTask, load_task_file

LOCAL_TASKS_DIR = "tasks"  # ./tasks/ in the current folder is searched without flags


def builtin_tasks_dir() -> Path:
    """The repository's tasks/ in a source checkout, or the copy packaged into a wheel."""
    pkg = Path(__file__).resolve().parent.parent
    checkout = pkg.parent / "tasks"
    if checkout.is_dir() and (pkg.parent / "pyproject.toml").is_file():
        return checkout
    return pkg / "builtin_tasks"


def task_dirs(extra: Sequence[str | os.PathLike[str]] = ()) -> list[Path]:
    """Every folder searched for task YAMLs, in order of precedence, each once."""
    dirs = [Path(d) for d in extra]
    env = os.environ.get("EVALKIT_TASKS_DIR")
    if env:
        dirs += [Path(d) for d in env.split(os.pathsep) if d]
    local = Path.cwd() / LOCAL_TASKS_DIR
    if local.is_dir():
        dirs.append(local)
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


@dataclass(frozen=True)
class Shadowed:
    """A task file not used because a folder of higher precedence defines the same name."""

    name: str
    used: Path  # the file that defines the task
    hidden: Path  # the file it hides
    hides_builtin: bool  # a task from a user folder hides a built-in task


@dataclass
class TaskIndex:
    """Every task found, by name; broken files are kept with their error, never skipped silently."""

    tasks: dict[str, LoadedTask]
    broken: dict[Path, str]
    shadowed: list[Shadowed] = field(default_factory=list)

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
    """Load every task YAML of ``task_dirs(extra_dirs)``; an earlier folder's task hides a later
    one of the same name (recorded in ``shadowed``)."""
    tasks: dict[str, LoadedTask] = {}
    broken: dict[Path, str] = {}
    shadowed: list[Shadowed] = []
    builtin = builtin_tasks_dir().resolve()
    for f in task_files(task_dirs(extra_dirs)):
        try:
            t = load_task_file(f)
        except TaskError as e:
            broken[f] = str(e)
            continue
        first = tasks.setdefault(t.spec.name, t)
        if first is not t:
            hides_builtin = t.path.parent == builtin and first.path.parent != builtin
            shadowed.append(Shadowed(t.spec.name, first.path, t.path, hides_builtin))
    return TaskIndex(tasks, broken, shadowed)

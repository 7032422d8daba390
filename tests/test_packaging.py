"""Packaging: `evalkit --help` stays light, and a wheel carries the built-in tasks and catalog."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO

HEAVY = ("torch", "transformers", "datasets", "lm_eval", "pandas", "matplotlib", "sympy", "math_verify")


def test_help_imports_no_heavy_package() -> None:
    code = (
        "import sys; sys.argv = ['evalkit', '--help']\n"
        "from evalkit.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Commands" in r.stdout and "run" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "HEAVY=", r.stdout[-300:]


def _source_copy(dest: Path) -> Path:
    """The source tree copied out of the checkout: building a wheel writes build/ and *.egg-info
    beside the sources, and a test must not write into the checkout."""
    skip = shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "results", "__pycache__", ".*cache"
    )
    shutil.copytree(REPO, dest, ignore=skip)
    return dest


def test_wheel_ships_builtin_tasks_and_catalog(tmp_path: Path) -> None:
    src = _source_copy(tmp_path / "src")
    had_build = (REPO / "build").exists()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            str(src),
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert (REPO / "build").exists() == had_build  # nothing written into the checkout
    [wheel] = list(tmp_path.glob("evalkit-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    tasks = {p.name for p in (REPO / "tasks").iterdir() if p.suffix in (".yaml", ".jsonl")}
    assert {f"evalkit/builtin_tasks/{t}" for t in tasks} <= names
    assert {"evalkit/catalog/models.yaml", "evalkit/catalog/published.csv"} <= names
    assert any(n.startswith("evalkit/tasks/templates/") for n in names)
    # Installed from the wheel (no checkout beside it), discovery finds the packaged tasks.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = "from evalkit.tasks.registry import discover; print(sorted(discover().tasks))"
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "basic_facts" in r.stdout and "mmlu_pro" in r.stdout

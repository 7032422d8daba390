"""``manifest.json``: everything needed to reproduce a run. API keys never appear in it."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from evalkit.secrets import redact_spec

MANIFEST_FILE = "manifest.json"
PACKAGES = (
    "evalkit",
    "typer",
    "pydantic",
    "jinja2",
    "datasets",
    "pandas",
    "sympy",
    "math-verify",
    "latex2sympy2_extended",
    "aiohttp",
    "torch",
    "transformers",
    "gguf",
    "vllm",
    "lm-eval",
    "llama_cpp_python",
)


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> dict[str, Any] | None:
    """The commit of the evalkit source tree, when it runs from a git checkout."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if sha.returncode != 0:
        return None
    return {"commit": sha.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def redact_argv(argv: list[str]) -> list[str]:
    """argv with secrets hidden in values, also in the --flag=key=value and -Mkey=value forms."""
    out = []
    for a in argv:
        if a.startswith("-") and "=" in a:
            flag, _, value = a.partition("=")
            if flag.startswith("--"):
                out.append(f"{flag}={redact_spec(value)}")
                continue
            out.append(flag[:2] + redact_spec(a[2:]))  # -Mbody.token=x
            continue
        out.append(redact_spec(a) if ("=" in a or "://" in a) else a)
    return out


def environment() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "git": git_commit(),
        "argv": redact_argv(sys.argv),
        "cwd": os.getcwd(),
    }


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    p = run_dir / MANIFEST_FILE
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)

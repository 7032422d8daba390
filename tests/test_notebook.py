"""notebooks/frontier.ipynb runs top to bottom (nbclient), with and without run folders.

The kernel is this interpreter: a kernelspec written to a temporary JUPYTER_PATH points at
sys.executable, so the test does not depend on which `python3` kernel a machine (or CI) registered.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from test_frontier import write_run

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "frontier.ipynb"
KERNEL = "evalkit-test"


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "evalkit test kernel",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL


def execute(kernel: str) -> tuple[object, float]:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name=kernel, timeout=120, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    start = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - start


def text_outputs(nb: object) -> str:
    out = []
    for cell in nb.cells:  # type: ignore[attr-defined]
        for o in cell.get("outputs", []):
            out.append(o.get("text", ""))
            out.append(str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


def image_count(nb: object) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))  # type: ignore[attr-defined]


@pytest.mark.slow
def test_notebook_without_runs_uses_published_scores(
    kernel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALKIT_RUNS_DIR", str(tmp_path / "no-runs-here"))
    nb, seconds = execute(kernel)
    text = text_outputs(nb)
    assert "none; published scores only" in text
    assert "demonstrating with the Phi-4 report" in text
    assert "on the frontier: Qwen2.5-0.5B-Instruct" in text
    assert "P(on frontier), AIME 2025:" in text and "P = 0.9" in text
    assert "no dumbbells to draw" in text
    assert image_count(nb) == 3  # the frontier, the AIME 2025 uncertainty view, the cutoff comparison
    assert seconds < 60, f"notebook took {seconds:.0f} s; keep it well under a minute"


@pytest.mark.slow
def test_notebook_with_pre_and_post_cutoff_runs(
    kernel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    write_run(
        runs / "smol-pre",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        {"competition_math": (0.31, 0.25, 0.37, 400)},
        split="pre-cutoff",
        alias="smollm2-135m",
    )
    write_run(
        runs / "smol-post",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        {"competition_math": (0.12, 0.07, 0.19, 120)},
        split="post-cutoff",
        alias="smollm2-135m",
    )
    write_run(
        runs / "smol-all",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        {"mmlu_pro": (0.118, 0.112, 0.124, 12032)},
        alias="smollm2-135m",
    )
    monkeypatch.setenv("EVALKIT_RUNS_DIR", str(runs))
    nb, _ = execute(kernel)
    text = text_outputs(nb)
    assert "3 rows" in text
    assert "demonstrating with the Phi-4 report" not in text
    assert "SmolLM2-135M-Instruct (competition_math)" in text
    assert "on the frontier: SmolLM2-135M-Instruct" in text
    assert "on the frontier of pre-cutoff items only: none" in text
    assert image_count(nb) == 4  # and the post-cutoff chart with its dumbbell

"""What the backends share, without a model: the context-window rule and loglikelihood planning,
the identity variant, the --model-arg coercer, spec model names, the stop cut, the cache folder,
the protocol defaults, and the lm-eval exporter's old import path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from builders import ll_request

from evalkit.backends import BackendSpec, make_backend, parse_spec
from evalkit.backends.base import BackendBase
from evalkit.backends.local import (
    LLRow,
    fit_window,
    forward_pass_window,
    identity_variant,
    local_fingerprint,
    plan_loglikelihood,
    prompt_logprobs_window,
)
from evalkit.backends.options import one_concurrency, option_bool, option_float, option_int, typed_value
from evalkit.errors import BackendError
from evalkit.stops import cut_at_stop
from evalkit.types import Completion, Request

REPO = Path(__file__).resolve().parents[1]


def test_shared_backend_modules_import_no_torch() -> None:
    code = (
        "import sys, evalkit.backends.local, evalkit.backends.options, evalkit.backends.lmeval, "
        "evalkit.backends.vllm, evalkit.export.lmeval; "
        "heavy = [m for m in ('torch', 'transformers', 'lm_eval', 'vllm') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_context_window_rule() -> None:
    # hf scores max_length + 1 tokens in max_length positions; vLLM must fit them all as a prompt
    # plus one generated token.
    assert forward_pass_window(256) == 257 and prompt_logprobs_window(256) == 255
    ctx, cont = list(range(100, 110)), [1, 2, 3]
    assert fit_window(4, 1, ctx, cont, 20) == LLRow(4, 1, (*ctx, *cont), 10)  # fits: nothing cut
    row = fit_window(0, 0, ctx, cont, 5)
    assert row.token_ids == (108, 109, 1, 2, 3) and row.n_context == 2 and row.n_continuation == 3
    assert fit_window(0, 0, ctx, cont, 4).token_ids == (109, 1, 2, 3)  # one context token left
    with pytest.raises(ValueError, match="continuation 2 has 3 tokens.*at most 3 tokens"):
        fit_window(0, 2, ctx, cont, 3)


def test_loglikelihood_planning_isolates_bad_requests() -> None:
    prepared: list[str] = []

    def prepare(req: Request) -> str:
        if req.prompt is None:
            raise ValueError("request has neither messages nor prompt")
        prepared.append(req.key)
        return req.prompt

    def build(i: int, c: int, context: str, cont: str) -> tuple[int, int, str]:
        if cont == "boom":
            raise ValueError("too long")
        return i, c, context + cont

    reqs = [ll("a", (" x", " y")), ll("b", ()), ll("c", (" z",), prompt=None), ll("d", (" ok", "boom"))]
    rows, errors = plan_loglikelihood(reqs, prepare, build)
    assert rows == [(0, 0, "ctx x"), (0, 1, "ctx y")]  # d's first row is dropped with its request
    assert sorted(errors) == [1, 2, 3] and prepared == ["a", "d"]  # rendered once per request
    assert all(e.finish_reason == "error" and e.error_kind == "fatal" for e in errors.values())
    assert "at least one continuation" in (errors[1].error or "")
    assert "neither messages nor prompt" in (errors[2].error or "") and "too long" in (errors[3].error or "")


def test_identity_variant() -> None:
    assert identity_variant("torch.float16") == "float16"
    assert identity_variant("bfloat16", max_length=2048) == "bfloat16,max_length=2048"
    assert identity_variant("float32", max_length=None) == "float32"  # not given: left out
    assert identity_variant(None) is None
    assert identity_variant("float32", b=1, a=2) == "float32,a=2,b=1"  # stable order


def test_fingerprint_needs_no_torch_and_sees_the_bytes(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 4096)
    first = local_fingerprint(tmp_path)
    assert first.startswith("local:") and first == local_fingerprint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 2048 + b"\1" + b"\0" * 2047)
    assert local_fingerprint(tmp_path) != first
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert local_fingerprint(tmp_path, "m.gguf").startswith("sha256:")


def test_option_coercer_names_the_option() -> None:
    assert option_int("batch_size", "16") == 16 and option_int("n", 8.0) == 8 and option_int("r", "0", 0) == 0
    for bad in ("many", "1.5", True, "0"):
        with pytest.raises(BackendError, match=r"--model-arg batch_size=.*: expected an integer >= 1"):
            option_int("batch_size", bad)
    assert option_bool("trust_remote_code", "TRUE") is True and option_bool("x", "off") is False
    with pytest.raises(BackendError, match="--model-arg trust_remote_code=maybe: expected true or false"):
        option_bool("trust_remote_code", "maybe")
    assert option_float("timeout", "2.5", 0.001) == 2.5
    with pytest.raises(BackendError, match="--model-arg timeout=0: expected a number >= 0.001"):
        option_float("timeout", "0", 0.001)
    assert typed_value("1") == 1 and typed_value("1.5") == 1.5 and typed_value("false") is False
    assert typed_value('{"a": 1}') == {"a": 1} and typed_value("text") == "text"
    assert one_concurrency("hf", None, "batch_size", {}) is None
    assert one_concurrency("hf", 4, "batch_size", {"batch_size": "4"}) == 4
    with pytest.raises(BackendError, match="--concurrency 0: must be at least 1"):
        one_concurrency("hf", 0, "batch_size", {})


def test_spec_model_names_for_the_catalog() -> None:
    assert parse_spec("openai:http://127.0.0.1:8000/v1@org/m-7b").model_names() == ["org/m-7b"]
    assert parse_spec("hf:org/m-7b").model_names() == ["org/m-7b"]
    assert parse_spec("vllm:org/m-7b").model_names() == ["org/m-7b"]
    assert parse_spec("lmeval:hf,pretrained=/models/m-7b,dtype=float16").model_names() == ["/models/m-7b"]
    assert parse_spec("lmeval:local-completions,model=org/m,base_url=http://x/v1").model_names() == ["org/m"]
    assert parse_spec("lmeval:hf,not-a-pair").model_names() == []  # malformed args: nothing to match
    assert parse_spec("replay:/runs/r1").model_names() == []  # a run folder, not a model
    aliased = BackendSpec("hf", "/cache/x.gguf", "hf:/cache/x.gguf", alias="smollm2-135m")
    assert aliased.model_names() == ["smollm2-135m", "/cache/x.gguf"]


def test_one_stop_cut() -> None:
    from evalkit.scoring.text import cut_at_stop as scoring_cut

    assert scoring_cut is cut_at_stop
    assert cut_at_stop("abc Question: def zzz", ("zzz", "Question:")) == "abc "  # the earliest wins
    assert cut_at_stop("abc", ("",)) == "abc" and cut_at_stop("abc", ()) == "abc"
    assert cut_at_stop("stop at the end.", (".",)) == "stop at the end"


def test_one_cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.catalog import find_model
    from evalkit.catalog.pull import local_path
    from evalkit.paths import cache_dir
    from evalkit.run.cache import default_cache_path

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("EVALKIT_CACHE_DIR", "~/evalkit-cache")
    assert cache_dir() == tmp_path / "evalkit-cache"
    assert default_cache_path() == tmp_path / "evalkit-cache" / "responses.sqlite"
    entry = find_model("smollm2-135m")
    assert entry is not None and local_path(entry).is_relative_to(tmp_path / "evalkit-cache" / "models")


def test_failed_completion() -> None:
    c = Completion.failed("boom", "transient", attempts=3)
    assert (c.text, c.finish_reason, c.error, c.error_kind, c.attempts, c.ok) == (
        "",
        "error",
        "boom",
        "transient",
        3,
        False,
    )
    assert Completion.failed("x").error_kind == "fatal"


def test_protocol_defaults_exist_on_every_backend_class() -> None:
    """The runner asks ``cacheable`` and ``check`` of any backend before it knows whether anything
    must be sent: both are declared, so asking never loads a model."""
    from evalkit.backends.lmeval import LMEvalBackend
    from evalkit.backends.openai import OpenAIBackend
    from evalkit.backends.vllm import VLLMBackend

    classes = [OpenAIBackend, VLLMBackend, LMEvalBackend]
    try:
        from evalkit.backends.hf import HFBackend

        classes.append(HFBackend)
    except ImportError:  # the hf extra is not installed
        pass
    for cls in classes:
        assert issubclass(cls, BackendBase) and cls.cacheable is True and callable(cls.check)
    b = make_backend("openai:http://127.0.0.1:1/v1@m")
    assert b.cacheable and b.batch_size == 1


def test_exported_hooks_import_the_exporter_from_export() -> None:
    # A backend sees requests, not tasks: the exporter lives in evalkit.export (no shim in backends/).
    from evalkit.export.lmeval import UTILS_SOURCE

    assert "from evalkit.export.lmeval import ExportedTask" in UTILS_SOURCE
    assert "evalkit.backends" not in UTILS_SOURCE


def ll(key: str, continuations: tuple[str, ...], prompt: str | None = "ctx"):
    return ll_request(key, continuations, prompt=prompt)

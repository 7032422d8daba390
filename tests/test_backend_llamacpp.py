"""The in-process llama.cpp backend (``llamacpp:<file.gguf>``) against the hf backend on the same
SmolLM2-135M-Instruct GGUF: the same greedy answers, the same option ranking by log-likelihood,
and the catalog alias running through it by default."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from evalkit.backends import make_backend, parse_spec
from evalkit.types import GenParams, Message, Request
from tests.conftest import smollm2_gguf

pytest.importorskip("llama_cpp")
pytestmark = pytest.mark.slow  # loads a real model (the hf one dequantises the GGUF: ~20 s)

QUESTIONS = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "What colour is the sky on a clear day?",
    "Name the largest planet in the solar system.",
]


def chat(i: int, q: str, max_tokens: int = 24) -> Request:
    return Request(
        key=f"g{i}",
        task="t",
        sample_id=str(i),
        repeat=0,
        params=GenParams(max_tokens=max_tokens, temperature=0.0),
        messages=(Message("user", q),),
    )


def ll(prompt: str, options: tuple[str, ...]) -> Request:
    return Request(
        key="ll",
        task="t",
        sample_id="ll",
        repeat=0,
        params=GenParams(max_tokens=1),
        kind="loglikelihood",
        prompt=prompt,
        continuations=options,
    )


@pytest.fixture(scope="module")
def gguf() -> Path:
    return smollm2_gguf()


def run_both(gguf: Path, reqs: list[Request], kind: str = "generate") -> tuple[list, list]:
    async def main(spec: str) -> list:
        b = make_backend(spec)
        try:
            return await (b.generate(reqs) if kind == "generate" else b.loglikelihood(reqs))
        finally:
            await b.aclose()

    return asyncio.run(main(f"llamacpp:{gguf}")), asyncio.run(main(f"hf:{gguf}"))


def test_greedy_text_matches_the_hf_backend_on_the_same_gguf(gguf: Path) -> None:
    """The same greedy text, up to near ties. llama.cpp multiplies the Q4_1 blocks as stored with
    activations rounded to 8 bits (Q8_1); transformers dequantises the same blocks into float32.
    The logits differ by about 0.1, so where two tokens are that close the argmax can differ (for
    "What is the capital of France?" the top two first tokens are 'L' and 'The', 0.09 apart, in
    opposite order) and the texts part from there. So: every token of hf's greedy answer is
    llama.cpp's argmax too, or within 0.5 of it, under llama.cpp's own logits."""
    reqs = [chat(i, q) for i, q in enumerate(QUESTIONS)]
    lc, hf = run_both(gguf, reqs)
    assert all(c.ok for c in lc + hf)
    assert sum(a.text == b.text for a, b in zip(lc, hf, strict=True)) >= len(QUESTIONS) // 2

    import jinja2

    from evalkit.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(gguf, "smollm2")
    llm = backend._load(logits_all=True)
    template = jinja2.Environment().from_string(llm.metadata["tokenizer.chat_template"])
    for req, answer in zip(reqs, hf, strict=True):
        msgs = [{"role": m.role, "content": m.content} for m in req.messages or ()]
        prompt = template.render(messages=msgs, add_generation_prompt=True)
        p_toks = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        a_toks = llm.tokenize(answer.text.encode(), add_bos=False, special=False)
        llm.reset()
        llm.eval(p_toks + a_toks)
        for k, tok in enumerate(a_toks):
            row = llm.scores[len(p_toks) + k - 1]
            assert float(row.max() - row[tok]) < 0.5, (req.messages, k, answer.text)
    asyncio.run(backend.aclose())


def test_loglikelihood_agrees_with_the_hf_backend(gguf: Path) -> None:
    reqs = [ll("The capital of France is", (" Paris", " Berlin", " a banana")), ll("2 + 2 =", (" 4", " 5"))]
    lc, hf = run_both(gguf, reqs, kind="loglikelihood")
    for a, b in zip(lc, hf, strict=True):
        assert a.ok and b.ok
        assert a.logprobs is not None and b.logprobs is not None
        assert max(range(len(a.logprobs)), key=a.logprobs.__getitem__) == max(
            range(len(b.logprobs)), key=b.logprobs.__getitem__
        )
        for x, y in zip(a.logprobs, b.logprobs, strict=True):
            assert x == pytest.approx(y, abs=0.35)  # quantised vs dequantised arithmetic
        assert a.greedy == b.greedy


def test_catalog_alias_runs_through_llamacpp_with_it_in_the_identity(
    gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALKIT_SMOLLM2_GGUF", str(gguf))
    spec = parse_spec("smollm2-135m")
    assert spec.kind == "llamacpp" and spec.alias == "smollm2-135m"


def test_missing_llama_cpp_falls_back_to_hf_in_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import importlib.util

    from evalkit.catalog import pull

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "llama_cpp" else real(n, *a))
    monkeypatch.setattr(pull, "_fallback_noted", set())
    assert parse_spec("smollm2-135m").kind == "hf"
    assert parse_spec("smollm2-135m").kind == "hf"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "llama-cpp-python is not installed" in err[0]

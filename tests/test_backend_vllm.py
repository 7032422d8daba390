"""The vllm backend's request mapping and identity, tested without vLLM (it needs a GPU).

Prompts are encoded with the real tiny-model tokenizer, and prompt logprobs in vLLM's shape are
computed with the real tiny model, so the mapping is checked against the hf backend's numbers.
The engine arguments and the identity are pure functions of the options, checked here too.
"""

from __future__ import annotations

import asyncio
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from evalkit.backends import BackendSpec, make_backend, parse_spec  # noqa: E402
from evalkit.backends.local import (  # noqa: E402
    LLRow,
    encode_prompt,
    fit_window,
    plan_loglikelihood,
    plan_token_loglikelihood,
    prompt_logprobs_window,
    render_context,
)
from evalkit.backends.vllm import (  # noqa: E402
    VLLMCall,
    VLLMOptions,
    completions_from_output,
    completions_from_prompt_logprobs,
    engine_kwargs,
    group_repeats,
    group_seed,
    loglikelihood_sampling_kwargs,
    plan_generate,
    sampling_kwargs,
    score_prompt_logprobs,
    vllm_backend_info,
)
from evalkit.errors import BackendError  # noqa: E402
from evalkit.types import GenParams, Message, Request  # noqa: E402


@pytest.fixture(scope="module")
def hf(tiny_model: Path):
    return make_backend(f"hf:{tiny_model}", {"device": "cpu"}).load()


def req(
    sample: str,
    repeat: int = 0,
    prompt: str | None = "Bees",
    messages=None,
    continuations: tuple[str, ...] | None = None,
    **params,
) -> Request:
    """A generate request, or a loglikelihood one when ``continuations`` is given."""
    return Request(
        key=f"{sample}#{repeat}",
        task="t",
        sample_id=sample,
        repeat=repeat,
        params=GenParams(**params),
        prompt=prompt if messages is None else None,
        messages=messages,
        kind="generate" if continuations is None else "loglikelihood",
        continuations=continuations or (),
    )


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_missing_vllm_says_what_to_install() -> None:
    with pytest.raises(BackendError, match=r"evalkit\[vllm\] on a machine with a GPU"):
        make_backend(parse_spec("vllm:HuggingFaceTB/SmolLM2-135M-Instruct"))


def test_unknown_option_is_refused_before_importing_vllm() -> None:
    with pytest.raises(BackendError, match="unknown --model-arg"):
        make_backend("vllm:some/model", {"gpu_mem": "0.5"})


def test_repeats_become_one_request_with_n(hf) -> None:
    chat = (Message("user", "What is the capital of France?"),)
    reqs = [
        req("s", 2, temperature=0.7, seed=1, max_tokens=16, stop=("\n",)),
        req("g", 0, max_tokens=8),
        req("s", 0, temperature=0.7, seed=1, max_tokens=16, stop=("\n",)),
        req("c", 0, messages=chat, max_tokens=8),
        req("g", 1, max_tokens=8),
        req("s", 1, temperature=0.7, seed=1, max_tokens=16, stop=("\n",)),
        req("s", 3, temperature=0.7, seed=2, max_tokens=16, stop=("\n",)),  # other seed: own group
    ]
    assert group_repeats(reqs) == [[2, 5, 0], [1, 4], [3], [6]]
    calls, errors = plan_generate(reqs, lambda r: encode_prompt(hf.tokenizer, r))
    assert not errors
    sampled, greedy, chat_call, other = calls
    assert sampled.targets == (2, 5, 0) and not sampled.fan_out
    assert sampled.sampling == {
        "n": 3,
        "max_tokens": 16,
        "stop": ["\n"],
        "temperature": 0.7,
        "top_p": 1.0,
        "seed": group_seed([reqs[2], reqs[5], reqs[0]]),
    }
    assert greedy.fan_out and greedy.targets == (1, 4)
    assert (
        greedy.sampling["n"] == 1 and greedy.sampling["temperature"] == 0.0 and "seed" not in greedy.sampling
    )
    # token ids are exactly what the hf backend feeds the model: BOS + prompt, or the chat template
    assert list(greedy.prompt_token_ids) == hf.tokenizer("Bees")["input_ids"]
    assert greedy.prompt_token_ids[0] == hf.tokenizer.bos_token_id
    text, add_special = render_context(hf.tokenizer, reqs[3])
    assert not add_special and text.endswith("<|assistant|>")
    assert list(chat_call.prompt_token_ids) == hf.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert other.sampling["seed"] != sampled.sampling["seed"]


def test_group_seed_is_stable_and_depends_on_repeats() -> None:
    a = [req("s", r, temperature=1.0, seed=3) for r in range(4)]
    assert group_seed(a) == group_seed(list(a))
    assert group_seed(a) != group_seed(a[:2])  # topping up other repeats draws other samples
    assert group_seed(a) != group_seed([req("s", r, temperature=1.0, seed=4) for r in range(4)])


def test_prompt_errors_do_not_sink_the_batch(hf) -> None:
    bad = req("x", prompt=None)
    calls, errors = plan_generate([bad, req("ok")], lambda r: encode_prompt(hf.tokenizer, r))
    assert set(errors) == {0} and errors[0].finish_reason == "error"
    assert [c.targets for c in calls] == [(1,)]


def out(text: str, n_tokens: int, reason: str | None) -> SimpleNamespace:
    """A vLLM CompletionOutput's fields that the mapping reads."""
    return SimpleNamespace(text=text, token_ids=list(range(n_tokens)), finish_reason=reason)


def test_outputs_map_back_in_repeat_order() -> None:
    call = VLLMCall((1, 2, 3), {"n": 3}, targets=(4, 0, 2))
    res = SimpleNamespace(outputs=[out("a", 5, "stop"), out("b", 16, "length"), out("c", 2, "abort")])
    got = dict(completions_from_output(call, res, 0.5))
    assert (got[4].text, got[4].finish_reason, got[4].usage.completion_tokens) == ("a", "stop", 5)
    assert got[4].usage.prompt_tokens == 3 and got[4].latency_s == 0.5
    assert (got[0].text, got[0].finish_reason) == ("b", "length")
    assert got[2].finish_reason == "error" and got[2].error_kind == "transient"

    greedy = VLLMCall((1,), {"n": 1}, targets=(1, 3), fan_out=True)
    got = dict(completions_from_output(greedy, SimpleNamespace(outputs=[out("same", 2, "stop")]), 0.1))
    assert got[1].text == got[3].text == "same"

    short = dict(completions_from_output(call, SimpleNamespace(outputs=[out("a", 1, "stop")]), 0.1))
    assert all(c.finish_reason == "error" for c in short.values())


@dataclass
class Logprob:  # the fields of vllm.logprobs.Logprob the mapping reads
    logprob: float
    rank: int | None


def vllm_prompt_logprobs(model, ids: list[int]) -> list[dict[int, Logprob] | None]:
    """What vLLM returns for prompt_logprobs=1, computed with the real model: per position the actual
    token and the top-1 token with their log p and vocabulary rank."""
    import torch

    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    result: list[dict[int, Logprob] | None] = [None]
    for t in range(1, len(ids)):
        row = logp[t - 1]
        top = int(row.argmax())
        actual = ids[t]
        rank = int((row > row[actual]).sum()) + 1
        entry = {top: Logprob(float(row[top]), 1)}
        entry[actual] = Logprob(float(row[actual]), rank)
        result.append(entry)
    return result


def test_loglikelihood_mapping_matches_hf_backend(hf) -> None:
    reqs = [
        req("fr", prompt="The capital of France is", continuations=(" Paris.", " Tokyo.")),
        req("chat", messages=(Message("user", "What do bees make?"),), continuations=("Honey.", "Paris.")),
    ]
    rows, errors = plan_token_loglikelihood(reqs, hf.tokenizer, prompt_logprobs_window(256))
    assert not errors and [(r.request, r.continuation) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert rows[0].token_ids[: rows[0].n_context] == tuple(
        hf.tokenizer("The capital of France is")["input_ids"]
    )
    expected = asyncio.run(hf.loglikelihood(reqs))
    outputs = [
        SimpleNamespace(prompt_logprobs=vllm_prompt_logprobs(hf.model, list(r.token_ids))) for r in rows
    ]
    for r, o in zip(rows, outputs, strict=True):
        total, greedy = score_prompt_logprobs(o.prompt_logprobs, r)
        assert total == pytest.approx(expected[r.request].logprobs[r.continuation], abs=1e-4)
        assert greedy == expected[r.request].greedy[r.continuation]
    got = completions_from_prompt_logprobs(reqs, rows, outputs, 0.25)
    for i in (0, 1):
        assert got[i].logprobs == pytest.approx(expected[i].logprobs, abs=1e-4)
        assert got[i].greedy == expected[i].greedy and got[i].latency_s == 0.25
        assert got[i].usage.prompt_tokens == expected[i].usage.prompt_tokens
        assert got[i].usage.completion_tokens == expected[i].usage.completion_tokens
    assert expected[0].greedy == (True, False)
    assert loglikelihood_sampling_kwargs()["prompt_logprobs"] == 1


def test_loglikelihood_truncates_from_the_left_and_flags_bad_requests() -> None:
    window = prompt_logprobs_window(11)  # vLLM refuses a prompt that leaves no room for one token

    def build(i: int, c: int, _ctx: None, cont: str) -> LLRow:
        return fit_window(i, c, list(range(100, 130)), [7, 8, 9], window)

    rows, errors = plan_loglikelihood(
        [req("a", continuations=("c",)), req("b", continuations=())], lambda r: None, build
    )
    assert set(errors) == {1} and "at least one continuation" in (errors[1].error or "")
    (row,) = rows
    assert row.token_ids == (123, 124, 125, 126, 127, 128, 129, 7, 8, 9)  # max_length - 1 tokens
    assert row.n_context == 7 and row.n_continuation == 3
    entry = {7: Logprob(-0.5, 1)}, {8: Logprob(-1.0, 2), 3: Logprob(-0.2, 1)}, {9: Logprob(-0.25, 1)}
    prompt_logprobs = [None] * 7 + list(entry)
    assert score_prompt_logprobs(prompt_logprobs, row) == (-1.75, False)
    with pytest.raises(ValueError, match="no logprob"):
        score_prompt_logprobs([None] * 10, LLRow(0, 0, row.token_ids, 7))
    # The continuation is never cut, and one context token must stay: else the request fails alone.
    with pytest.raises(ValueError, match="at most 10 tokens"):
        fit_window(0, 0, [1, 2], list(range(10)), window)
    assert fit_window(0, 0, [1, 2], list(range(9)), window).token_ids == (2, *range(9))


def test_identity_covers_dtype_and_context_length_not_throughput() -> None:
    """vLLM's identity: the dtype the engine runs in and a set context length change it; the batch
    size (the run's concurrency), tensor parallelism and memory share do not."""
    spec = parse_spec("vllm:org/model")

    def ident(concurrency: int | None = None, dtype: str = "bfloat16", **options: str) -> str:
        opts = VLLMOptions.parse(options, concurrency)
        return vllm_backend_info(spec, opts, dtype=dtype, revision="abc").identity

    base = ident()
    assert base == "vllm:org/model@abc#bfloat16"
    assert ident(dtype="torch.float16") == "vllm:org/model@abc#float16" != base  # as model_config reports it
    assert ident(max_length="2048") == "vllm:org/model@abc#bfloat16,max_length=2048"
    assert ident(max_length="2048") != ident(max_length="4096") != base
    assert base == ident(64) == ident(batch_size="32") == ident(tensor_parallel_size="2")
    assert base == ident(gpu_memory_utilization="0.5")
    aliased = vllm_backend_info(
        BackendSpec("vllm", "org/model", "vllm:org/model", alias="m1"),
        VLLMOptions.parse({}),
        dtype="bfloat16",
        revision="abc",
    )
    assert aliased.model == "m1"


def test_engine_arguments_and_options() -> None:
    opts = VLLMOptions.parse(
        {"dtype": "Float16", "max_length": "2048", "revision": "r1", "trust_remote_code": "yes"}, 64
    )
    assert opts.batch_size == 64  # the run's --concurrency
    assert engine_kwargs("org/model", opts) == {
        "model": "org/model",
        "trust_remote_code": True,
        "dtype": "float16",
        "tensor_parallel_size": 1,
        "gpu_memory_utilization": 0.9,
        "seed": 0,
        "revision": "r1",
        "max_model_len": 2048,
    }
    assert VLLMOptions.parse({}).batch_size == 256
    assert "max_model_len" not in engine_kwargs("m", VLLMOptions.parse({}))
    with pytest.raises(BackendError, match="tensor_parallel_size=two: expected an integer"):
        VLLMOptions.parse({"tensor_parallel_size": "two"})
    with pytest.raises(BackendError, match="gpu_memory_utilization=lots: expected a number"):
        VLLMOptions.parse({"gpu_memory_utilization": "lots"})
    with pytest.raises(BackendError, match="disagree"):
        VLLMOptions.parse({"batch_size": "8"}, 16)


def test_sampling_kwargs_for_greedy_and_sampled() -> None:
    g = sampling_kwargs(GenParams(max_tokens=5, stop=("Q:",), temperature=0.0, top_p=0.5, seed=3), 1, None)
    assert g == {"n": 1, "max_tokens": 5, "stop": ["Q:"], "temperature": 0.0, "top_p": 1.0}
    s = sampling_kwargs(GenParams(max_tokens=5, temperature=0.6, top_p=0.9), 4, 123)
    assert s == {"n": 4, "max_tokens": 5, "stop": [], "temperature": 0.6, "top_p": 0.9, "seed": 123}

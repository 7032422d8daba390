"""Likelihood-scored multiple choice (kind: loglikelihood_choice) against a direct forward pass of the
tiny trained model: the likeliest option wins, acc and acc_norm differ where option lengths differ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.run.runner import RunConfig, run_evaluation
from evalkit.scoring.extractors.likelihood import best_option, extract_loglikelihood
from evalkit.store import RunFolder
from evalkit.types import Completion, Sample, ScoringContext

# Facts the tiny model memorised (tests/tinymodel.py). Egypt and Bees put the right answer in a long
# option: its summed log-probability is lower than a short wrong one's, its per-character one higher.
ITEMS = [
    {"id": "france", "q": "The capital of France is", "opts": ["Paris.", "Tokyo.", "Rome."], "gold": "A"},
    {
        "id": "egypt",
        "q": "The capital of Egypt is",
        "opts": ["Paris.", "Cairo. The capital of Italy is Rome."],
        "gold": "B",
    },
    {"id": "bees", "q": "Bees make", "opts": ["Au.", "honey. The sky on a clear day is blue."], "gold": "B"},
    {"id": "water", "q": "Water boils at", "opts": ["Tokyo.", "100 degrees."], "gold": "B"},
]

CLOZE_PROMPT = "{{ question }}"
LETTER_PROMPT = "{{ question }}\n{% for o in options %}{{ o.letter }}. {{ o.text }}\n{% endfor %}Answer:"


def _task(folder: Path, name: str, form: str, template: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ITEMS), encoding="utf-8")
    extract = f"{{name: loglikelihood, options: {{form: {form}, normalize: %s}}}}"
    yaml = (
        f"name: {name}\nversion: 1\ndataset: {{files: [items.jsonl]}}\n"
        "fields: {id: id, question: q, choices: opts, answer: gold}\ndate: 2020-01-01\n"
        f"prompt: {{format: completion, template: {json.dumps(template)}}}\n"
        f"kind: loglikelihood_choice\nlikelihood: {{form: {form}, prefix: ' '}}\n"
        f"extract: {extract % 'none'}\ngrade: choice\n"
        f"scorers: [{{name: norm, extract: {extract % 'chars'}, grade: choice}}]\n"
    )
    path = folder / f"{name}.yaml"
    path.write_text(yaml, encoding="utf-8")
    return path


def _direct_logprob(model, tok, context: str, continuation: str) -> float:
    """Sum of log p(continuation tokens | context), one forward pass over context + continuation."""
    import torch

    whole = tok(context + continuation)["input_ids"]
    n_ctx = len(tok(context)["input_ids"])
    with torch.no_grad():
        logp = model(torch.tensor([whole])).logits.log_softmax(-1)[0]
    return sum(float(logp[i - 1, whole[i]]) for i in range(n_ctx, len(whole)))


def _run(task: Path, model_dir: Path, out: Path) -> dict[str, dict]:
    cfg = RunConfig(tasks=[str(task)], model=f"hf:{model_dir}", out=out, progress=False, use_cache=False)
    result = run_evaluation(cfg)
    assert result.n_errors == 0
    return {r.sample_id: r for r in RunFolder(out).current_records()}, result.summary


@pytest.fixture(scope="module")
def direct(tiny_model: Path):
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(tiny_model)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    return lambda ctx, cont: _direct_logprob(model, tok, ctx, cont)


def test_cloze_scores_match_a_direct_forward_pass(tiny_model: Path, direct, tmp_path: Path) -> None:
    task = _task(tmp_path / "t", "tiny_cloze", "cloze", CLOZE_PROMPT)
    records, summary = _run(task, tiny_model, tmp_path / "run")
    for item in ITEMS:
        rec = records[item["id"]]
        want = [direct(item["q"], " " + o) for o in item["opts"]]
        assert rec.completion.logprobs == pytest.approx(want, abs=1e-3)
        letters = "ABCDEFGHIJ"
        raw = letters[max(range(len(want)), key=want.__getitem__)]
        per_char = letters[max(range(len(want)), key=lambda i: want[i] / len(item["opts"][i]))]
        assert rec.scores["main"].extraction.answer == raw
        assert rec.scores["norm"].extraction.answer == per_char
    # The likeliest option wins where it is the right one; length normalisation rescues the two
    # long right answers that raw log-likelihood loses.
    assert [records[i["id"]].scores["main"].grade.correct for i in ITEMS] == [True, False, False, True]
    assert all(records[i["id"]].scores["norm"].grade.correct for i in ITEMS)
    task_summary = summary["tasks"]["tiny_cloze"]
    assert task_summary["metrics"]["accuracy"]["value"] == pytest.approx(0.5)
    assert task_summary["scorers"]["norm"]["metrics"]["accuracy"]["value"] == pytest.approx(1.0)


def test_letter_form_scores_letters_and_acc_equals_acc_norm(tiny_model: Path, direct, tmp_path: Path) -> None:
    task = _task(tmp_path / "t", "tiny_letter", "letter", LETTER_PROMPT)
    records, _ = _run(task, tiny_model, tmp_path / "run")
    for item in ITEMS:
        rec = records[item["id"]]
        prompt = (
            item["q"]
            + "\n"
            + "".join(f"{ltr}. {o}\n" for ltr, o in zip("ABCD", item["opts"], strict=False))
            + "Answer:"
        )
        want = [direct(prompt, " " + ltr) for ltr in "ABCD"[: len(item["opts"])]]
        assert rec.completion.logprobs == pytest.approx(want, abs=1e-3)
        # one-character continuations: normalising by length cannot change the winner
        assert rec.scores["main"].extraction.answer == rec.scores["norm"].extraction.answer


def test_extractor_reads_logprobs_and_refuses_without_them() -> None:
    sample = Sample("x", "t", "q", "B", choices=("a", "bbbb"))
    ctx = ScoringContext(extract_options={"form": "cloze", "normalize": "chars"})
    got = extract_loglikelihood(Completion("", "stop", logprobs=(-2.0, -4.0)), sample, ctx)
    assert (got.answer, got.status) == ("B", "ok")  # -2/1 < -4/4
    raw = ScoringContext(extract_options={"form": "cloze", "normalize": "none"})
    assert extract_loglikelihood(Completion("", "stop", logprobs=(-2.0, -4.0)), sample, raw).answer == "A"
    missing = extract_loglikelihood(Completion("some text", "stop"), sample, raw)
    assert (missing.answer, missing.status) == (None, "no_answer")
    assert best_option([-1.0, -1.0]) == 0  # ties go to the first option, as numpy's argmax


def test_spec_refuses_a_likelihood_task_without_a_matching_extractor(tmp_path: Path) -> None:
    from evalkit.errors import TaskError
    from evalkit.tasks.loader import load_task_file

    path = _task(tmp_path, "bad", "cloze", CLOZE_PROMPT)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("form: cloze, normalize: none", "form: letter, normalize: none"))
    with pytest.raises(TaskError, match="loglikelihood"):
        load_task_file(path)
    path.write_text(text.replace("likelihood: {form: cloze, prefix: ' '}\n", ""))
    with pytest.raises(TaskError, match="likelihood"):
        load_task_file(path)


def test_mmlu_pro_mcf_plans_letter_continuations(shared_data: Path) -> None:
    from evalkit.run.plan import plan_task
    from evalkit.tasks.registry import discover
    from evalkit.tasks.samples import load_samples

    for name, first in (("mmlu_pro_mcf", "A"), ("mmlu_pro_cloze", None)):
        task = discover().get(name)
        samples, loaded = load_samples(task, shared_data)
        plan = plan_task(task, "m", shared_data, samples[:3], loaded, len(samples))
        req = plan.requests[0]
        assert req.kind == "loglikelihood" and req.prompt.endswith("Answer:")
        assert len(req.continuations) == len(samples[0].choices)
        if first:  # lighteval's mmlu_pro_mc: letters straight after "Answer:"
            assert req.continuations[:2] == ("A", "B")
            assert "\n\n" + samples[0].question + "\nA. " in req.prompt
        else:
            assert req.continuations[0] == " " + samples[0].choices[0]

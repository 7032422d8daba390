"""The lm-evaluation-harness bridge, both ways, with real lm-eval 0.4.13 and a real (tiny) model.

1. evalkit -> lm-eval: a task exported by `evalkit export lmeval` runs inside `lm_eval.simple_evaluate`
   and scores exactly what evalkit scores on the same answers (per item and overall), with the same
   prompts (few-shot exemplars and chat system turn included) and the same generation kwargs.
2. lm-eval -> evalkit: `lmeval:hf,pretrained=<tiny model>` runs through evalkit's runner and gives
   the same records and scores as evalkit's own `hf:` backend on items the model memorised, and the
   same log-likelihoods; the exported task run by lm-eval's own hf model agrees too.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

# datasets reads these when first imported: set them before anything imports it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

pytest.importorskip("lm_eval", reason="the lmeval extra is not installed (pip install 'evalkit[lmeval]')")

from lm_eval.api.model import LM  # noqa: E402
from lm_eval.api.registry import register_model  # noqa: E402
from runfolders import flat_record  # noqa: E402

from evalkit.export.lmeval import export_lmeval  # noqa: E402
from evalkit.run.runner import RunConfig, run_evaluation  # noqa: E402
from evalkit.store import RunFolder  # noqa: E402
from evalkit.tasks.loader import load_task_file  # noqa: E402
from evalkit.types import GenParams, Request  # noqa: E402
from tests.conftest import run_cli  # noqa: E402

SCRIPTED = "evalkit-test-scripted"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Offline even if another test imported datasets before the variables were set; lm-eval's
    JSON loading caches into the test's folder, not the user's ~/.cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets-cache")


# ---------------------------------------------------------------------------------------------
# A scripted lm-eval model: the same object answers for lm-eval and (through lmeval:) for evalkit
# ---------------------------------------------------------------------------------------------

# Answers by question text. Chosen so the score is neither 0 nor 1 and depends on evalkit's rules:
# the stop cut (a base model's invented follow-up question), "last explicit answer wins", the
# "Answer: X" and boxed forms, and no answer at all.
SCRIPT = {
    "Which gas do plants absorb?": " The answer is (B).",  # correct
    "Which planet is largest?": " The answer is (A).",  # wrong
    "How many legs has a spider?": " I am not sure.",  # no answer
    # correct only if cut at the stop:
    "What is frozen water called?": " The answer is (C).\nQuestion: What now? The answer is (D).",
    "Which metal is liquid at room temperature?": " Answer: D",  # correct
    "What do bees make?": " \\boxed{A}",  # wrong
}


@register_model(SCRIPTED)
class ScriptedLM(LM):
    """Answers from SCRIPT by the last question in the context; logs every request it gets.

    Its chat template is the JSON of the messages, so a test can read back exactly what a chat
    model would have been sent.
    """

    log: list[tuple[str, dict[str, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        out = []
        for req in requests:
            context, gen_kwargs = req.args
            type(self).log.append((context, dict(gen_kwargs)))
            question = re.findall(r'Question: ([^\n"\\]+)', context)[-1]  # plain text or JSON
            answer = SCRIPT[question]
            self.cache_hook.add_partial("generate_until", req.args, answer)  # lm-eval's cache, per answer
            out.append(answer)
        return out

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError

    def apply_chat_template(self, chat_history, add_generation_prompt: bool = True) -> str:
        return json.dumps(chat_history, ensure_ascii=False)

    @property
    def tokenizer_name(self) -> str:
        return "scripted-json"


ITEMS = [
    ("q1", "Which gas do plants absorb?", ["Oxygen", "Carbon dioxide", "Helium", "Neon"], "B", "science"),
    ("q2", "Which planet is largest?", ["Mars", "Venus", "Jupiter", "Earth"], "C", "science"),
    ("q3", "How many legs has a spider?", ["Six", "Eight", "Ten", "Four"], "B", "nature"),
    ("q4", "What is frozen water called?", ["Steam", "Fog", "Ice", "Dew"], "C", "science"),
    ("q5", "Which metal is liquid at room temperature?", ["Iron", "Gold", "Zinc", "Mercury"], "D", "science"),
    ("q6", "What do bees make?", ["Milk", "Honey", "Silk", "Wax"], "B", "nature"),
]
POOL = [
    ("p1", "What colour is grass?", ["Green", "Red", "Blue", "Black"], "A", "nature"),
    ("p2", "What is H2O?", ["Salt", "Water", "Sugar", "Air"], "B", "science"),
    ("p3", "Which animal barks?", ["Cat", "Cow", "Dog", "Owl"], "C", "nature"),
    ("p4", "What pulls objects to the ground?", ["Magnetism", "Light", "Sound", "Gravity"], "D", "science"),
    ("p5", "Which bird cannot fly?", ["Crow", "Penguin", "Eagle", "Sparrow"], "B", "nature"),
]

MC_TEMPLATE = """\
{% for e in fewshot %}Question: {{ e.question }}
{% for o in e.options %}({{ o.letter }}) {{ o.text }}
{% endfor %}Answer: The answer is ({{ e.answer }}).

{% endfor %}Question: {{ question }}
{% for o in options %}({{ o.letter }}) {{ o.text }}
{% endfor %}Answer:"""


def _write_items(path: Path, items: list[tuple]) -> None:
    # Source column names differ from evalkit's Sample fields: the export must map them.
    rows = [{"qid": i, "problem": q, "opts": o, "label": a, "topic": c} for i, q, o, a, c in items]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _mc_tasks(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _write_items(folder / "bridge_items.jsonl", ITEMS)
    _write_items(folder / "bridge_pool.jsonl", POOL)
    fields = "fields: {id: qid, question: problem, choices: opts, answer: label, meta: {category: topic}}"
    (folder / "bridge_mc.yaml").write_text(
        "name: bridge_mc\nversion: 3\ndataset: {files: [bridge_items.jsonl]}\n" + fields + "\n"
        "prompt:\n  format: completion\n  fewshot: {k: 2, files: [bridge_pool.jsonl], same: category}\n"
        "  template: |-\n" + textwrap.indent(MC_TEMPLATE, "    ") + "\n"
        "extract: choice\ngrade: choice\nmetrics: [accuracy]\n"
        'generation: {max_tokens: 64, temperature: 0.0, stop: ["\\nQuestion:"], repeats: 2}\n',
        encoding="utf-8",
    )
    (folder / "bridge_chat.yaml").write_text(
        "name: bridge_chat\nversion: 1\ndataset: {files: [bridge_items.jsonl]}\n" + fields + "\n"
        "prompt:\n  format: chat\n  system: You answer {{ category }} questions with one letter.\n"
        "  template: |-\n    Question: {{ question }}\n"
        "    {% for o in options %}({{ o.letter }}) {{ o.text }}\n    {% endfor %}\n"
        "extract: choice\ngrade: choice\nmetrics: [accuracy]\n"
        'generation: {max_tokens: 32, temperature: 0.0, stop: ["\\nQuestion:"]}\n',
        encoding="utf-8",
    )


def _evalkit_run(
    tmp: Path,
    tasks_dir: Path,
    tasks: list[str],
    model: str,
    model_args: dict | None = None,
    name: str = "run",
):
    cfg = RunConfig(
        tasks=tasks,
        model=model,
        model_args=model_args or {},
        tasks_dirs=[str(tasks_dir)],
        out=tmp / name,
        progress=False,
        cache_path=tmp / f"{name}-cache.sqlite",
    )
    result = run_evaluation(cfg)
    records = [flat_record(r) for r in RunFolder(result.run_dir).records()]
    return result, records


def _lmeval_run(folder: Path, task: str, lm: LM, apply_chat_template: bool = False) -> dict[str, Any]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(folder), include_defaults=False)  # not the 14k built-in tasks
    return lm_eval.simple_evaluate(
        model=lm, tasks=[task], task_manager=tm, apply_chat_template=apply_chat_template, log_samples=True
    )


def _per_item_lmeval(out: dict[str, Any], task: str) -> dict[str, float]:
    return {s["doc"]["id"]: s["accuracy"] for s in out["samples"][task]}


def _per_item_evalkit(records: list[dict], task: str) -> dict[str, float]:
    """Mean correctness over each item's repeats."""
    by_item: dict[str, list[float]] = {}
    for r in records:
        if r["task"] == task:
            by_item.setdefault(r["sample_id"], []).append(float(r["grade"]["correct"]))
    return {k: sum(v) / len(v) for k, v in by_item.items()}


@pytest.mark.slow  # seconds each (sandbox time limits, real data, full charts): the full tier
def test_exported_task_scores_in_lmeval_exactly_as_in_evalkit(tmp_path: Path) -> None:
    tasks_dir = tmp_path / "tasks"
    _mc_tasks(tasks_dir)
    out_dir = tmp_path / "export"

    # The CLI writes the task (real console entry point).
    proc = run_cli(
        "export", "lmeval", "--task", "bridge_mc", "--out", str(out_dir), "--tasks-dir", str(tasks_dir)
    )
    assert proc.returncode == 0, proc.stderr
    assert "evalkit_bridge_mc" in proc.stdout and "--include_path" in proc.stdout
    chat = export_lmeval(load_task_file(tasks_dir / "bridge_chat.yaml"), out_dir)
    assert chat.chat and chat.lmeval_task == "evalkit_bridge_chat"
    text = (out_dir / "evalkit_bridge_mc.yaml").read_text()
    assert f"test: {out_dir.resolve() / 'bridge_mc.jsonl'}" in text  # absolute data path
    assert "doc_to_target: answer" in text and "num_fewshot: 0" in text and "fewshot_split: fewshot" in text
    first = json.loads((out_dir / "bridge_mc.jsonl").read_text().splitlines()[0])
    assert first == {
        "id": "q1",
        "task": "bridge_mc",
        "question": ITEMS[0][1],
        "answer": "B",
        "choices": ITEMS[0][2],
        "date": None,
        "meta": {"category": "science"},
    }

    for task, chat_template in (("bridge_mc", False), ("bridge_chat", True)):
        ScriptedLM.log.clear()
        lm_out = _lmeval_run(out_dir, f"evalkit_{task}", ScriptedLM(), apply_chat_template=chat_template)
        from_lmeval = sorted(ScriptedLM.log)
        ScriptedLM.log.clear()
        result, records = _evalkit_run(tmp_path, tasks_dir, [task], f"lmeval:{SCRIPTED}", name=f"ek-{task}")
        from_evalkit = sorted(ScriptedLM.log)

        # Same requests: identical prompts (exemplars, system turn) and generation kwargs, and
        # every repeat (bridge_mc has 2; lm-eval keeps only the first unless told otherwise).
        repeats = 2 if task == "bridge_mc" else 1
        assert len(from_lmeval) == repeats * len(ITEMS) and from_lmeval == from_evalkit
        if task == "bridge_mc":
            for context, kwargs in from_lmeval:
                assert context.count("Question: ") == 3 and context.endswith("Answer:")  # 2 exemplars + item
                assert kwargs == {
                    "until": ["\nQuestion:"],
                    "max_gen_toks": 64,
                    "temperature": 0.0,
                    "do_sample": False,
                }
        else:
            messages = json.loads(from_lmeval[0][0])
            assert [m["role"] for m in messages] == ["system", "user"]
            assert messages[0]["content"].startswith("You answer ") and messages[1]["content"].startswith(
                "Question: "
            )

        # Same scores, item by item and overall: q1, q4 (cut at the stop), q5 are right.
        lm_acc = lm_out["results"][f"evalkit_{task}"]["accuracy,none"]
        ek_acc = result.summary["tasks"][task]["metrics"]["accuracy"]["value"]
        assert _per_item_lmeval(lm_out, f"evalkit_{task}") == _per_item_evalkit(records, task)
        assert lm_acc == ek_acc == 0.5
        assert result.n_errors == 0


def test_lmeval_backend_failures_options_and_secrets() -> None:
    """A failing lm-eval call costs only the failing requests' answers, recorded as errors; an
    unimplemented kind says so; credentials never reach the identity."""
    from evalkit.backends import make_backend
    from evalkit.errors import BackendError, NotSupported
    from evalkit.types import Message

    spec = f"lmeval:{SCRIPTED},api_key=sk-not-for-files,base_url=http://127.0.0.1:9/v1,num_concurrent=8"
    backend = make_backend(spec, {"chunk_size": "2"})
    assert backend.batch_size == 2 and backend.max_concurrency == 1
    assert backend.info.model == f"{SCRIPTED},base_url=http://127.0.0.1:9/v1"  # no secret, no throughput knob
    assert backend.info.variant is None  # not an in-process torch model: no dtype to key on
    assert make_backend(spec, {}, concurrency=4).batch_size == 4  # --concurrency is the chunk size
    with pytest.raises(BackendError, match="--concurrency 4 and --model-arg chunk_size=2 disagree"):
        make_backend(spec, {"chunk_size": "2"}, concurrency=4)
    assert "sk-not-for-files" not in json.dumps(backend.info.to_dict())

    params = GenParams(max_tokens=8, stop=("\nQuestion:",))
    reqs = [
        Request(
            key="a", task="t", sample_id="a", repeat=0, params=params, prompt="Question: What do bees make?"
        ),
        Request(
            key="b", task="t", sample_id="b", repeat=0, params=params, prompt="Question: Not in the script?"
        ),
        Request(
            key="c",
            task="t",
            sample_id="c",
            repeat=0,
            params=params,
            messages=(Message("system", "Be brief."), Message("user", "Question: Which planet is largest?")),
        ),
    ]
    out = asyncio.run(backend.generate(reqs))
    assert [c.finish_reason for c in out] == ["stop", "error", "stop"]
    assert out[0].text == SCRIPT["What do bees make?"] and out[2].text == SCRIPT["Which planet is largest?"]
    assert "KeyError" in (out[1].error or "") and out[1].error_kind == "fatal"
    ll = Request(
        key="d",
        task="t",
        sample_id="d",
        repeat=0,
        params=params,
        kind="loglikelihood",
        prompt="Question: x",
        continuations=(" A",),
    )
    with pytest.raises(NotSupported):
        asyncio.run(backend.loglikelihood([ll]))
    with pytest.raises(BackendError, match="unknown --model-arg"):
        make_backend(f"lmeval:{SCRIPTED}", {"temperature": "1"})
    with pytest.raises(BackendError, match="unknown lm-eval model type"):
        make_backend("lmeval:no-such-model,pretrained=x")


# ---------------------------------------------------------------------------------------------
# A real model: the tiny Llama from tests/tinymodel.py
# ---------------------------------------------------------------------------------------------


def _facts_tasks(folder: Path) -> dict[str, set[str]]:
    """A completion task on the memorised sentences and a chat task on the memorised exchanges,
    each with one item the model never saw. Returns the ids of memorised items per task."""
    from tests.tinymodel import DEFAULT_CHATS, DEFAULT_FACTS

    folder.mkdir(parents=True, exist_ok=True)
    facts = [(f"f{i}", *fact.rstrip(".").rsplit(" ", 1)) for i, fact in enumerate(DEFAULT_FACTS)]
    facts.append(("unseen", "The capital of Spain is", "Madrid"))
    chats = [(f"c{i}", q, a.rstrip(".")) for i, (q, a) in enumerate(DEFAULT_CHATS)]
    chats.append(("unseen", "What is the capital of Spain?", "Madrid"))
    for name, rows, fmt in (("tiny_facts", facts, "completion"), ("tiny_chat", chats, "chat")):
        with (folder / f"{name}.jsonl").open("w") as f:
            for i, q, a in rows:
                f.write(json.dumps({"id": i, "question": q, "answer": a}) + "\n")
        (folder / f"{name}.yaml").write_text(
            f"name: {name}\nversion: 1\ndataset: {{files: [{name}.jsonl]}}\n"
            "fields: {id: id, question: question, answer: answer}\n"
            f"prompt: {{format: {fmt}, template: '{{{{ question }}}}'}}\n"
            "extract: exact\ngrade: exact\nmetrics: [accuracy]\n"
            "generation: {max_tokens: 16, temperature: 0.0, stop: ['.']}\n",
            encoding="utf-8",
        )
    return {"tiny_facts": {r[0] for r in facts[:-1]}, "tiny_chat": {r[0] for r in chats[:-1]}}


def test_lmeval_hf_model_through_evalkit_matches_hf_backend(tmp_path: Path, tiny_model: Path) -> None:
    tasks_dir = tmp_path / "tasks"
    memorised = _facts_tasks(tasks_dir)
    tasks = ["tiny_facts", "tiny_chat"]
    spec = f"lmeval:hf,pretrained={tiny_model},dtype=float32"
    lm_result, lm_records = _evalkit_run(tmp_path, tasks_dir, tasks, spec, name="via-lmeval")
    hf_result, hf_records = _evalkit_run(
        tmp_path, tasks_dir, tasks, f"hf:{tiny_model}", {"dtype": "float32"}, name="via-hf"
    )

    # The identity names lm-eval's model type and args, and the weights' fingerprint.
    model = lm_result.summary["model"]
    assert model["backend"] == "lmeval" and model["model"] == f"hf,pretrained={tiny_model},dtype=float32"
    assert model["revision"] == hf_result.summary["model"]["revision"]  # same content fingerprint

    # lm-eval's hf model decodes with skip_special_tokens=True, evalkit's keeps them (a reasoning
    # model's <think> may be one): outputs that contain special tokens differ by those tokens only.
    from transformers import AutoTokenizer

    specials = AutoTokenizer.from_pretrained(tiny_model).all_special_tokens + [
        "<|user|>",
        "<|assistant|>",
        "<|system|>",
    ]

    def plain(text: str) -> str:
        for tok in specials:
            text = text.replace(tok, "")
        return text

    by_key = {(r["task"], r["sample_id"]): r for r in hf_records}
    assert len(lm_records) == len(hf_records) == sum(len(m) + 1 for m in memorised.values())
    for r in lm_records:
        h = by_key[(r["task"], r["sample_id"])]
        assert r["status"] == h["status"] == "ok"
        assert r["completion"]["text"] == plain(h["completion"]["text"]), r["sample_id"]
        assert r["grade"] == h["grade"]
        ex_lm, ex_hf = r["extraction"], h["extraction"]
        assert ex_lm == {**ex_hf, "answer": plain(ex_hf["answer"]) if ex_hf["answer"] is not None else None}
        # Real behaviour: the memorised facts come back by greedy decoding.
        if r["sample_id"] in memorised[r["task"]]:
            assert r["grade"]["correct"], (r["task"], r["sample_id"], r["completion"]["text"])
    for task in tasks:
        lm_acc = lm_result.summary["tasks"][task]["metrics"]["accuracy"]["value"]
        assert lm_acc == hf_result.summary["tasks"][task]["metrics"]["accuracy"]["value"]
        assert lm_acc >= len(memorised[task]) / (len(memorised[task]) + 1)

    # Log-likelihoods: same sums and greedy flags as evalkit's hf backend; the fact beats a wrong ending.
    from evalkit.backends import make_backend

    lm_backend = make_backend(spec)
    hf_backend = make_backend(f"hf:{tiny_model}", {"dtype": "float32"})
    reqs = [
        Request(
            key=f"ll{i}",
            task="t",
            sample_id=str(i),
            repeat=0,
            params=GenParams(),
            kind="loglikelihood",
            prompt=prompt,
            continuations=conts,
        )
        for i, (prompt, conts) in enumerate(
            [("The capital of France is", (" Paris.", " Rome.")), ("Bees make", (" honey.", " milk."))]
        )
    ]
    got_lm = asyncio.run(lm_backend.loglikelihood(reqs))
    got_hf = asyncio.run(hf_backend.loglikelihood(reqs))
    for a, b in zip(got_lm, got_hf, strict=True):
        assert a.ok and b.ok
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
        assert a.greedy == b.greedy == (True, False)
        assert a.logprobs[0] > a.logprobs[1]

    # The exported completion task run by lm-eval's own hf model scores what evalkit scored.
    out_dir = tmp_path / "export"
    export_lmeval(load_task_file(tasks_dir / "tiny_facts.yaml"), out_dir)
    lm_out = _lmeval_run(out_dir, "evalkit_tiny_facts", lm_backend.lm)
    assert _per_item_lmeval(lm_out, "evalkit_tiny_facts") == _per_item_evalkit(hf_records, "tiny_facts")
    assert (
        lm_out["results"]["evalkit_tiny_facts"]["accuracy,none"]
        == hf_result.summary["tasks"]["tiny_facts"]["metrics"]["accuracy"]["value"]
    )
    asyncio.run(lm_backend.aclose())
    asyncio.run(hf_backend.aclose())


def test_lmeval_identity_covers_dtype_not_throughput(tiny_model: Path) -> None:
    """The precision lm-eval's model runs in is part of the identity (identity_variant, as for hf
    and vllm), so float16 and bfloat16 never share cache entries; chunk size and concurrency are not."""
    from evalkit.backends import make_backend

    def ident(args: str = "", concurrency: int | None = None, **options: str) -> str:
        b = make_backend(f"lmeval:hf,pretrained={tiny_model}{args}", options, concurrency=concurrency)
        try:
            return b.info.identity
        finally:
            asyncio.run(b.aclose())

    default = ident()
    assert default.endswith("#float32")  # lm-eval's "auto": the dtype the weights were saved in
    half, brain = ident(",dtype=float16"), ident(",dtype=bfloat16")
    assert ",dtype=float16@" in half and half.endswith("#float16")
    assert brain.endswith("#bfloat16") and len({default, half, brain}) == 3
    assert ident(concurrency=3) == default

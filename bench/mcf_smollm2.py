"""SmolLM2-135M on MMLU-Pro scored by option likelihood (mmlu_pro_mcf, mmlu_pro_cloze), with its time.

Usage:
  EVALKIT_SHARED_DATA=../shared/data python bench/mcf_smollm2.py [--limit 100] [--gguf PATH]

The model is the SmolLM2-135M-Instruct GGUF from evalkit's catalog pull (the tests' copy,
~/.cache/evalkit-test), loaded by the hf backend (``hf:<gguf>``, dequantised by transformers),
which computes log-likelihoods itself. llama.cpp's echo logprobs are avoided: NOTES.md records that
they are shifted for models without BOS. Prints one line per task: acc, acc_norm (95% Wilson
intervals), items, requests and wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def _gguf(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    from conftest import smollm2_gguf  # the tests' pull through evalkit's own catalog code

    return smollm2_gguf()


def _fmt(metric: dict) -> str:
    return f"{100 * metric['value']:.1f}% [{100 * metric['ci_low']:.1f}, {100 * metric['ci_high']:.1f}]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--gguf", default=os.environ.get("EVALKIT_SMOLLM2_GGUF"))
    ap.add_argument("--tasks", nargs="+", default=["mmlu_pro_mcf", "mmlu_pro_cloze"])
    ap.add_argument("--out", type=Path, default=Path("results/bench-mcf"))
    args = ap.parse_args()

    import torch

    from evalkit.run.runner import RunConfig, run_evaluation

    gguf = _gguf(args.gguf)
    data = os.environ.get("EVALKIT_SHARED_DATA", str(ROOT.parent / "shared" / "data"))
    print(
        f"model: hf:{gguf.name} (SmolLM2-135M-Instruct, Q4_1 dequantised), "
        f"torch threads {torch.get_num_threads()}"
    )
    for task in args.tasks:
        t0 = time.perf_counter()
        cfg = RunConfig(
            tasks=[task],
            model=f"hf:{gguf}",
            data_dir=data,
            limit=args.limit,
            out=args.out / task,
            progress=False,
            use_cache=False,
        )
        result = run_evaluation(cfg)
        wall = time.perf_counter() - t0
        s = result.summary["tasks"][task]
        acc, norm = s["metrics"]["accuracy"], s["scorers"]["norm"]["metrics"]["accuracy"]
        print(
            f"{task}: acc {_fmt(acc)}, acc_norm {_fmt(norm)}; {s['n_items']} items, "
            f"{result.n_requests} requests ({result.n_sent} sent), errors {result.n_errors}, "
            f"{wall:.0f} s wall"
        )


if __name__ == "__main__":
    main()

"""How fast the viewer opens a full MMLU-Pro run (12,032 items) in headless Chromium.

The run folder is written without a model: the real MMLU-Pro items from the data folder, planned
by evalkit's own planner (so prompts render and request keys match), with synthetic completions
and grades written as Records through evalkit.store, then a summary and manifest. ``evalkit view``'s
site writer turns it into a site, and Chromium opens it from file:// several times (a fresh
browser context each time, so nothing is cached):

  leaderboard   index.html until the leaderboard is drawn
  task          the item browser of the 12,032-item task until its first page is listed
  item          the item browser with one item open (its 200-item chunk loaded, math rendered)

Each is the median of --rounds, from navigation start to the page's data-ready mark.
Usage: python bench/viewer_load.py [--data-dir DIR] [--rounds N] [--out DIR] [--json]
(``--data-dir`` defaults to $EVALKIT_DATA_DIR, else ../shared/data next to the repository.)
Needs Debian's chromium and Playwright for Python (pip install -e '.[test]').
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MODEL_ALIAS = "qwen2.5-0.5b-instruct"  # a catalog model: the leaderboard and frontier place it


def build_run(data_dir: Path, out: Path) -> Path:
    """A complete MMLU-Pro run folder with synthetic answers (about 45% right, some truncated)."""
    from evalkit.run.plan import plan_task
    from evalkit.run.summary import build_summary, summarize_task
    from evalkit.store import Record, RunFolder, Score
    from evalkit.tasks.registry import discover
    from evalkit.tasks.samples import load_samples
    from evalkit.types import BackendInfo, Completion, Extraction, Grade, Usage

    task = discover().get("mmlu_pro")
    samples, loaded = load_samples(task, data_dir)
    info = BackendInfo("openai", "Qwen/Qwen2.5-0.5B-Instruct")
    plan = plan_task(task, info.identity, data_dir, samples, loaded, len(samples))
    by_id = {s.id: s for s in samples}
    rng = random.Random(0)
    folder = RunFolder(out)
    records = []
    for req in plan.requests:
        s = by_id[req.sample_id]
        letters = s.letters
        pick = s.answer if rng.random() < 0.45 else rng.choice(letters)
        truncated = rng.random() < 0.03
        text = (
            f"Let's think step by step. The question is about {s.meta.get('category')}. "
            + "We weigh each option against the facts given in the question. " * rng.randint(3, 12)
            + ("" if truncated else f"The answer is ({pick}).")
        )
        ex = Extraction(None, "none", "truncated") if truncated else Extraction(pick, "answer_is")
        grade = Grade(not truncated and pick == s.answer, "match" if pick == s.answer else "mismatch")
        records.append(
            Record(
                key=req.key,
                task=req.task,
                sample_id=req.sample_id,
                repeat=req.repeat,
                status="ok",
                completion=Completion(
                    text, "length" if truncated else "stop", Usage(1500 + rng.randint(0, 900), len(text) // 4)
                ),
                model=info.identity,
                sample=s,
                scores={"main": Score(ex, grade, "choice.1+choice.1")},
                max_tokens=req.params.max_tokens,
            )
        )
    folder.rewrite(records)
    manifest = {
        "run_id": out.name,
        "status": "complete",
        "backend": info.to_dict(),
        "model_spec": f"openai:{info.model}",
        "tasks": {
            "mmlu_pro": {
                "path": str(task.path),
                "sha256": task.sha256,
                "version": task.spec.version,
                "spec": task.spec.model_dump(mode="json"),
                "generation": plan.requests[0].params.to_dict(),
                "n_requests": len(plan.requests),
            }
        },
    }
    folder.write_manifest(manifest)
    model = {**info.to_dict(), "alias": MODEL_ALIAS, "spec": manifest["model_spec"]}
    folder.write_summary(build_summary(out.name, model, {"mmlu_pro": summarize_task(task.spec, records)}))
    return out


def time_open(site: Path, route: str, rounds: int, wait_for: str) -> list[float]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Debian's chromium is not installed (apt-get install chromium)")
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=BROWSER_ARGS)
        for _ in range(rounds):
            ctx = browser.new_context(viewport={"width": 1400, "height": 900})
            page = ctx.new_page()
            page.goto(f"{(site / 'index.html').as_uri()}#{route}")
            page.wait_for_selector("html[data-ready]", timeout=60_000)
            if wait_for:
                page.wait_for_selector(wait_for, timeout=60_000)
            times.append(page.evaluate("performance.now()") / 1000.0)
            ctx.close()
        browser.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get("EVALKIT_DATA_DIR") or str(REPO.parent / "shared" / "data")
    ap.add_argument("--data-dir", default=default_data)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=None, help="Keep the run folder and site here (default: a temp folder).")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    data_dir = Path(args.data_dir)
    if not (data_dir / "hf" / "TIGER-Lab" / "MMLU-Pro").is_dir():
        raise SystemExit(f"{data_dir}: no hf/TIGER-Lab/MMLU-Pro mirror here; pass --data-dir")
    from evalkit.report.viewer.site import write_site

    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="viewer-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    run = build_run(data_dir, root / "runs" / "mmlu-pro-synthetic")
    t1 = time.perf_counter()
    site = write_site([run], root / "site", data_dir=data_dir).out
    t2 = time.perf_counter()
    data_mb = sum(f.stat().st_size for f in (site / "data").rglob("*.js")) / 1e6
    index_mb = (site / "data" / "mmlu-pro-synthetic" / "mmlu_pro" / "index.js").stat().st_size / 1e6
    records_mb = (run / "records.jsonl").stat().st_size / 1e6
    base = "/task/mmlu-pro-synthetic/mmlu_pro"
    result = {
        "items": 12032,
        "build_run_s": round(t1 - t0, 2),
        "write_site_s": round(t2 - t1, 2),
        "records_mb": round(records_mb, 1),
        "site_data_mb": round(data_mb, 1),
        "index_mb": round(index_mb, 2),
        "rounds": args.rounds,
    }
    for name, route, sel in (
        ("leaderboard", "/", "#leaderboard"),
        ("task", base, "#items tbody tr[data-i]"),
        ("item", f"{base}?item=6000", "#detail .item-head"),
    ):
        times = time_open(site, route, args.rounds, sel)
        result[f"{name}_open_s_median"] = round(statistics.median(times), 3)
        result[f"{name}_open_s_max"] = round(max(times), 3)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>28}: {v}")
        print(f"{'site':>28}: {site / 'index.html'}")


if __name__ == "__main__":
    main()

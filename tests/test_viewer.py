"""The results viewer's site writer (evalkit view): data files, prompt re-rendering, shared prefixes,
rescore diffs, licences, and the CLI. The browser tests (test_viewer_browser.py) open the result.

The demo runs are real run folders: stored answers replayed through the real runner (which renders
the prompts, grades and writes the summary and manifest), one rescored, one given judge replies,
censoring and a second scorer through the store.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from runfolders import record, write_records

from evalkit.report.viewer.items import FLAGS
from evalkit.report.viewer.licences import UNKNOWN, licence_for
from evalkit.report.viewer.prompts import MIN_SHARED, common_prefix, share_prefixes
from evalkit.report.viewer.site import link_svg, write_site
from evalkit.run.rescore import rescore_run
from evalkit.run.runner import RunConfig, run_evaluation
from evalkit.store import RunFolder, Score
from evalkit.types import Extraction, Grade, Sample
from tests.conftest import REPO, run_cli

LETTERS = "ABCD"
EXEMPLAR = "Worked example. " + "We expand, collect the terms and simplify each side carefully. " * 6

MATH_TASK = r"""
name: mini_math
description: six small algebra items with LaTeX, for the viewer tests
version: 1
dataset:
  files: [mini_math.jsonl]
fields:
  id: id
  question: problem
  answer: answer
  date: date
  meta: {category: category, cot: cot}
prompt:
  format: completion
  template: |-
    Solve the problem. Put the final answer in \boxed{}.
    {% for ex in fewshot %}Problem: {{ ex.question }}
    Solution: {{ ex.cot }}

    {% endfor %}Problem: {{ question }}
    Solution:
  fewshot: {k: 2, files: [mini_math_shots.jsonl], same: category}
extract: boxed
grade: math
metrics: [accuracy]
generation:
  max_tokens: 64
report:
  breakdown: [category]
"""

MATH_ITEMS = [
    ("mm-1", r"What is $\frac{1}{2} + \frac{1}{4}$?", r"\frac{3}{4}", "2023-05-01", "algebra"),
    ("mm-2", r"Solve $x^2 = 9$ for $x > 0$.", "3", "2023-06-01", "algebra"),
    ("mm-3", r"Compute \(\sqrt{16}\).", "4", "2025-01-10", "algebra"),
    ("mm-4", r"How many primes are below $10$?", "4", "2025-02-01", "number theory"),
    ("mm-5", r"What is $2^{10}$?", "1024", "2024-01-01", "number theory"),
    ("mm-6", r"Find the remainder of $17$ divided by $5$.", "2", "2025-03-01", "number theory"),
]


def _write_math_task(root: Path) -> Path:
    tasks = root / "tasks"
    tasks.mkdir(parents=True, exist_ok=True)
    (tasks / "mini_math.yaml").write_text(MATH_TASK.lstrip())
    rows = [
        {"id": i, "problem": q, "answer": a, "date": d, "category": c, "cot": ""}
        for i, q, a, d, c in MATH_ITEMS
    ]
    (tasks / "mini_math.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    shots = [
        {"id": f"s{k}-{c}", "problem": f"Shot {k} about {c}: $1+{k}$?", "answer": str(k + 1),
         "date": "2020-01-01", "category": c, "cot": f"{EXEMPLAR} So $1+{k} = \\boxed{{{k + 1}}}$."}
        for c in ("algebra", "number theory") for k in (1, 2)
    ]  # fmt: skip
    (tasks / "mini_math_shots.jsonl").write_text("".join(json.dumps(r) + "\n" for r in shots))
    return tasks


def _sources(root: Path, name: str, right_every: int) -> Path:
    """Stored answers to basic_facts and mini_math: every ``right_every``-th item right."""
    items = [json.loads(x) for x in (REPO / "tasks" / "basic_facts.jsonl").read_text().splitlines()]
    recs = []
    for i, it in enumerate(items):
        letter = it["answer"] if i % right_every == 0 else LETTERS[(LETTERS.index(it["answer"]) + 1) % 4]
        sample = Sample(it["id"], "basic_facts", it["question"], it["answer"], tuple(it["options"]))
        text = f"The capital question is easy. The answer is ({letter})." if i != 3 else "I am not sure."
        recs.append(record("basic_facts", it["id"], correct=True, text=text, sample=sample))
    for k, (sid, q, a, _d, _c) in enumerate(MATH_ITEMS):
        ans = a if k % right_every == 0 else "7"
        text = f"We compute step by step: $x = {ans}$, so the answer is $\\boxed{{{ans}}}$."
        recs.append(record("mini_math", sid, correct=True, text=text, sample=Sample(sid, "mini_math", q, a)))
    return write_records(root / f"source-{name}", recs)


def _run(root: Path, tasks: Path, name: str, right_every: int) -> Path:
    cfg = RunConfig(
        tasks=["basic_facts", "mini_math"],
        model=f"replay:{_sources(root, name, right_every)}",
        tasks_dirs=[str(tasks)],
        out=root / "runs" / name,
        progress=False,
        use_cache=False,
    )
    out = run_evaluation(cfg).run_dir
    folder = RunFolder(out)
    summary = folder.require_summary()
    summary["model"]["alias"] = "smollm2-135m"  # a catalog model: a cutoff and a parameter count
    folder.write_summary(summary)
    return out


def make_demo_runs(root: Path) -> tuple[Path, Path]:
    """Two real runs of basic_facts and mini_math; A rescored (its old grades were stale), B with judge
    replies, censoring classes and a second scorer on its records."""
    tasks = _write_math_task(root)
    a, b = _run(root, tasks, "run-a", 2), _run(root, tasks, "run-b", 3)
    fa = RunFolder(a)
    stale = Score(Extraction("A", "old_code"), Grade(False, "graded by old code"), "choice.0")
    fa.rewrite([r.replace(scores={"main": stale}) if r.task == "basic_facts" else r for r in fa.records()])
    rescore_run(a, workers=1)
    fb = RunFolder(b)
    changed = []
    records = sorted(fb.records(), key=lambda r: (r.task != "basic_facts", r.sample_id, r.repeat))
    for i, r in enumerate(records):  # basic_facts first, in item order (the file's order can vary)
        if r.task == "basic_facts" and r.primary is not None:
            lenient = Score(r.primary.extraction, Grade(True, "lenient: any letter"), "lenient.1")
            r = r.replace(scores={**r.scores, "lenient": lenient})
            if i < 4:
                r = r.replace(
                    judge={"model": "judge-model", "correct": i % 2 == 0, "reply": "The answer is fine."}
                )
            r = r.replace(censoring="censored" if i == 5 else "answered")
        changed.append(r)
    fb.rewrite(changed)
    return a, b


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("viewer")
    a, b = make_demo_runs(root)
    out = root / "site"
    write_site([root / "runs"], out, frontier=False)
    return out, a, b


def read_script(path: Path) -> list:
    """The arguments of an ``EVK.fn(...)`` data script."""
    text = path.read_text(encoding="utf-8")
    m = re.fullmatch(r"EVK\.\w+\((.*)\);\n", text, re.S)
    assert m, text[:200]
    return json.loads(f"[{m.group(1)}]")


def test_site_has_the_page_and_no_remote_reference(demo_site) -> None:
    out, _a, _b = demo_site
    for name in ("index.html", "app.js", "style.css", "katex/katex.min.js", "katex/auto-render.min.js"):
        assert (out / name).is_file(), name
    assert (out / "katex" / "LICENSE").is_file()
    assert list((out / "katex" / "fonts").glob("KaTeX_Main-Regular.woff2"))
    html = (out / "index.html").read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "http://" not in (out / "app.js").read_text() and "https://" not in (out / "app.js").read_text()


def test_leaderboard_rows_count_and_scorers(demo_site) -> None:
    out, _a, _b = demo_site
    (site,) = read_script(out / "data" / "site.js")
    rows = {(r["run_id"], r["task"]): r for r in site["leaderboard"]}
    assert set(rows) == {(run, task) for run in ("run-a", "run-b") for task in ("basic_facts", "mini_math")}
    bf_b = rows[("run-b", "basic_facts")]
    assert bf_b["name"] == "SmolLM2-135M-Instruct" and bf_b["n"] == 20 and bf_b["params"] == 0.135
    assert bf_b["censored"] == 1 and bf_b["judged"] == 4
    assert bf_b["scorers"]["lenient"]["score"] == pytest.approx(100.0)  # the lenient scorer takes all
    assert rows[("run-a", "basic_facts")]["censored"] == 0  # every run classifies its answers
    assert site["tasks"]["basic_facts"]["licence"].startswith("Apache-2.0")
    assert site["tasks"]["mini_math"]["licence"] == UNKNOWN


def test_index_and_chunks_hold_every_record(demo_site) -> None:
    out, a, _b = demo_site
    (site,) = read_script(out / "data" / "site.js")
    slug = next(r["slug"] for r in site["runs"] if r["run_id"] == "run-a")
    key, index = read_script(out / "data" / slug / "basic_facts" / "index.js")
    assert key == f"{slug}/basic_facts" and index["n"] == 20
    cols = index["columns"]
    rows = [dict(zip(cols, r, strict=True)) for r in index["rows"]]
    assert sum(r["verdict"] == "right" for r in rows) == 10  # every second item right, grades from today
    none = next(r for r in rows if r["id"] == "bf-04")
    assert none["verdict"] == "none" and none["flags"] & FLAGS["no_answer"] and none["flags"] & FLAGS["wrong"]
    assert index["facets"][0]["name"] == "category"
    _key, n, items = read_script(out / "data" / slug / "basic_facts" / "chunk-0000.js")
    assert n == 0 and len(items) == 20
    first = items[0]
    assert first["gold"] == "C" and first["scores"]["main"]["method"] and first["prompt_verified"] is True
    role, prefix, text = first["prompt"][0]
    assert role == "user" and "What is the capital of France?" in text


def test_few_shot_prompt_re_rendered_and_its_prefix_stored_once(demo_site) -> None:
    out, _a, _b = demo_site
    (site,) = read_script(out / "data" / "site.js")
    slug = site["runs"][0]["slug"]
    _key, index = read_script(out / "data" / slug / "mini_math" / "index.js")
    assert len(index["prefixes"]) == 2  # one per category: the 2-shot block differs by category
    assert all(p.startswith("Solve the problem.") and len(p) >= MIN_SHARED for p in index["prefixes"])
    _k, _n, items = read_script(out / "data" / slug / "mini_math" / "chunk-0000.js")
    for it in items:
        (role, prefix, rest) = it["prompt"][0]
        assert role == "prompt" and prefix in (0, 1) and it["prompt_verified"] is True
        assert rest.startswith("Problem: ") and it["question"] in rest
        assert EXEMPLAR not in rest  # the exemplars live in the shared prefix only
    # post-cutoff: smollm2-135m's cutoff (its release, 2024-11-01) is before mm-3, mm-4 and mm-6
    post = {r[0] for r in index["rows"] if r[3] & FLAGS["post_cutoff"]}
    assert post == {"mm-3", "mm-4", "mm-6"} and index["cutoff"] == "2024-11-01"


def test_missing_few_shot_data_says_the_prompt_could_not_be_rendered(tmp_path: Path, demo_site) -> None:
    _out, a, _b = demo_site
    moved = tmp_path / "run"
    import shutil

    shutil.copytree(a, moved)
    folder = RunFolder(moved)
    manifest = folder.require_manifest()
    manifest["tasks"]["mini_math"]["path"] = str(tmp_path / "gone" / "mini_math.yaml")
    folder.write_manifest(manifest)
    site = write_site([moved], tmp_path / "site", frontier=False)
    slug = "run"  # the folder's name
    _key, index = read_script(site.out / "data" / slug / "mini_math" / "index.js")
    assert "few-shot exemplars need the task's data" in index["prompt_problem"]
    _k, _n, items = read_script(site.out / "data" / slug / "mini_math" / "chunk-0000.js")
    assert items[0]["prompt"] is None and "could not be rendered" in items[0]["prompt_note"]
    assert items[0]["question"] == MATH_ITEMS[0][1]


def test_rescore_changes_compare_the_backup_with_the_current_grades(demo_site) -> None:
    out, a, _b = demo_site
    slug, changes = read_script(out / "data" / "run-a" / "rescore.js")
    assert changes["backup"].startswith("records.pre-rescore-")
    assert changes["n_compared"] == 26
    by_id = {c["id"]: c for c in changes["changes"]}
    assert set(by_id) == {f"bf-{i:02d}" for i in range(1, 21)}  # every stale grade changed answer
    c = by_id["bf-01"]
    assert c["old"]["answer"] == "A" and c["old"]["reason"] == "graded by old code"
    assert c["new"]["answer"] == "C" and c["new"]["correct"] is True


def test_comparisons_pair_the_two_runs(demo_site) -> None:
    out, _a, _b = demo_site
    (site,) = read_script(out / "data" / "site.js")
    comps = {c["task"]: c for c in site["comparisons"]}
    assert set(comps) == {"basic_facts", "mini_math"}
    bf = comps["basic_facts"]
    assert bf["n_shared"] == 20 and bf["test"] == "mcnemar_exact"
    assert bf["a_only_correct"] + bf["b_only_correct"] > 0


def test_cutoff_rows_from_gap_rows(demo_site) -> None:
    out, _a, _b = demo_site
    (site,) = read_script(out / "data" / "site.js")
    rows = {(r["run_id"], r["task"]): r for r in site["cutoff"]}
    mm = rows[("run-a", "mini_math")]
    assert (mm["pre_n"], mm["post_n"]) == (3, 3) and mm["cutoff"] == "2024-11-01"


def test_common_prefix_cuts_at_a_line() -> None:
    assert common_prefix(["ab\ncd1", "ab\ncd2"]) == "ab\n"
    assert common_prefix(["abc", "abd"]) == "ab"
    long = "x" * MIN_SHARED + "\n"
    prefixes, which = share_prefixes([long + "1", long + "2", "other", None], ["g", "g", "g", "g"])
    assert prefixes == [] and which == [-1, -1, -1, -1]  # the third text shares nothing
    prefixes, which = share_prefixes([long + "1", long + "2", "other"], ["g", "g", "h"])
    assert prefixes == [long] and which == [0, 0, -1]


def test_licence_table() -> None:
    assert licence_for("mmlu_pro", {"dataset": {"hf": {"path": "TIGER-Lab/MMLU-Pro"}}}).startswith("MIT")
    assert licence_for("aime_2025", {"dataset": {"hf": {"path": "MathArena/aime_2025"}}}).startswith(
        "CC BY-NC-SA"
    )
    assert licence_for("amc_aimo", {"dataset": {"hf": {"path": "AI-MO/aimo-validation-amc"}}}).startswith(
        "Apache"
    )
    assert "MAA" in licence_for("amc_2024", {"dataset": {"files": ["amc_2024_mc.jsonl"]}})
    assert licence_for("my_task", None) == UNKNOWN


def test_frontier_svg_links_own_runs() -> None:
    published = '<text style="font-size: 7px; fill: #666666" x="1">SmolLM2</text>'
    own = '<text style="font-size: 7px; font-weight: 700" x="2">SmolLM2</text>'
    svg = f'<?xml version="1.0"?>\n<svg><g>{published}{own}</g></svg>'
    linked = link_svg(svg, "mmlu_pro", [{"label": "SmolLM2", "run": "run-a"}])
    assert linked.startswith("<svg")
    assert f'{published}<a href="#/task/run-a/mmlu_pro" class="run-link">{own}</a>' in linked


def test_view_command_writes_the_site(tmp_path: Path, demo_site) -> None:
    _out, a, b = demo_site
    r = run_cli("view", str(a), str(b), "--out", str(tmp_path / "v"), "--no-frontier")
    assert r.returncode == 0, r.stderr
    assert "file://" in r.stdout and (tmp_path / "v" / "data" / "site.js").is_file()
    bad = run_cli("view", str(tmp_path / "nothing"), "--out", str(tmp_path / "w"))
    assert bad.returncode == 2 and "not a run folder" in bad.stderr

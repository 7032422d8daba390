"""n-gram overlap: planted passages are found through case, punctuation and Unicode changes; a
paraphrase stays below the threshold; the corpus is streamed over several files and formats (JSONL,
gzip, plain text, parquet) in bounded chunks; worker processes agree with the in-process path; the
flagged ids feed `run --exclude`; and the CLI end to end."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest
from conftest import contamination_cli
from typer.testing import CliRunner

from evalkit.contamination.corpus import iter_chunks
from evalkit.contamination.ngram import (
    NgramIndex,
    check_overlap,
    normalize_tokens,
    write_flagged_ids,
)
from evalkit.contamination.split import read_exclude_file

ITEMS = [
    ("bench/p1", "Let $f(x) = 3x^2 + 2x - 7$. Find the sum of all real numbers $x$ such that $f(f(x)) = 0$, "
                 "and express your answer as a common fraction in lowest terms."),
    ("bench/p2", "A bag contains five red marbles and seven blue marbles. Two marbles are drawn at random "
                 "without replacement. What is the probability that both marbles drawn are red?"),
    ("bench/p3", "How many positive divisors does the number 2024 have, counting 1 and the number itself, "
                 "when we list all of them in increasing order?"),
    ("bench/p4", "What is 2+2?"),  # shorter than n tokens: cannot be checked at n=8
]  # fmt: skip
PARAPHRASE_P2 = (
    "An urn holds 5 red and 7 blue balls. We pick two balls at random without replacement; find the chance "
    "that both are red."
)

WORDS = [f"w{i}" for i in range(3000)]


def filler(rng: random.Random, k: int) -> str:
    return " ".join(rng.choices(WORDS, k=k))


def write_corpus(folder: Path) -> list[Path]:
    """Three files: JSONL with p1 planted (upper-cased), gzip JSONL with p3 in Unicode disguise and
    the paraphrase of p2, plain text with p2 cut across lines."""
    rng = random.Random(0)
    a = folder / "a.jsonl"
    with a.open("w", encoding="utf-8") as f:
        for i in range(400):
            text = filler(rng, 120)
            if i == 250:
                text += " Problem: " + ITEMS[0][1].upper() + " Solution follows."
            f.write(json.dumps({"id": i, "meta": {"text": "nested"}, "text": text}) + "\n")
        f.write("not json at all\n")
        f.write(json.dumps({"content": "no text field"}) + "\n")
    b = folder / "b.jsonl.gz"
    with gzip.open(b, "wt", encoding="utf-8") as f:
        for i in range(200):
            text = filler(rng, 80)
            if i == 20:
                # Full-width letters and digits, curly quotes, extra punctuation: NFKC + case-folding
                # undo them.
                text += " \uff28\uff4f\uff57 many positive divisors does the number "
                text += "\uff12\uff10\uff12\uff14 have; counting 1 "
                text += "and the number itself — when we list ALL of them, in increasing order!!"
            if i == 30:
                text = PARAPHRASE_P2
            f.write(json.dumps({"text": text}) + "\n")
    c = folder / "c.txt"
    words = ITEMS[1][1].split()
    c.write_text(
        filler(rng, 2000)
        + "\n"
        + " ".join(words[:10])
        + "\n"
        + " ".join(words[10:])
        + "\n"
        + filler(rng, 500)
        + "\n"
    )
    return [a, b, c]


def test_normalisation() -> None:
    assert normalize_tokens("Hello, World! It's 3:00 p.m.") == [
        "hello",
        "world",
        "it",
        "s",
        "3",
        "00",
        "p",
        "m",
    ]
    assert normalize_tokens("\uff28\uff45\uff4c\uff4c\uff4f \u2162 under_score Stra\u00dfe") == [
        "hello",
        "iii",
        "under",
        "score",
        "strasse",
    ]


def test_planted_overlaps_found_and_paraphrase_not(tmp_path: Path) -> None:
    files = write_corpus(tmp_path)
    rep = check_overlap(ITEMS, files, n=8, threshold=0.5, workers=1, chunk_bytes=16_384)
    by = {i.key: i for i in rep.items}
    assert by["bench/p1"].ratio == 1.0 and by["bench/p1"].flagged
    assert by["bench/p1"].example == f"{files[0]}:251"  # line 251 holds document 250
    assert by["bench/p3"].ratio == 1.0 and by["bench/p3"].flagged  # found through the Unicode disguise
    assert by["bench/p2"].ratio == 1.0  # the plain-text copy, split across lines and chunks
    # Under n tokens: checked by its whole text, which this corpus does not hold.
    assert by["bench/p4"].method == "whole_text" and by["bench/p4"].ratio == 0.0 and not by["bench/p4"].flagged
    assert rep.summary()["corpus_bad_lines"] == 2 and rep.scan.n_docs == 400 + 200 + 1
    # Without the plain-text copy only the paraphrase remains for p2: below the threshold.
    rep2 = check_overlap(ITEMS, files[:2], n=8, threshold=0.5, workers=1)
    p2 = next(i for i in rep2.items if i.key == "bench/p2")
    assert p2.ratio is not None and p2.ratio < 0.5 and not p2.flagged
    assert [i.key for i in rep2.flagged] == ["bench/p1", "bench/p3"]


def test_ngrams_do_not_cross_documents(tmp_path: Path) -> None:
    words = ITEMS[0][1].split()
    half = len(words) // 2
    p = tmp_path / "split.jsonl"
    p.write_text(
        json.dumps({"text": " ".join(words[:half])})
        + "\n"
        + json.dumps({"text": " ".join(words[half:])})
        + "\n"
    )
    rep = check_overlap(ITEMS[:1], [p], n=8, threshold=0.5, workers=1)
    item = rep.items[0]
    # Every n-gram that straddles the two documents is missing; the rest are found.
    assert 0 < item.n_matched < item.n_ngrams
    index = NgramIndex([ITEMS[0][1]], 8)
    n_tokens = len(normalize_tokens(ITEMS[0][1]))
    assert item.n_ngrams == len(index.item_canon(0)) <= n_tokens - 7


def test_workers_agree_with_in_process(tmp_path: Path) -> None:
    files = write_corpus(tmp_path)
    one = check_overlap(ITEMS, files, n=8, workers=1, chunk_bytes=8_192)
    two = check_overlap(ITEMS, files, n=8, workers=2, chunk_bytes=8_192)
    assert [(i.key, i.n_matched, i.ratio) for i in one.items] == [
        (i.key, i.n_matched, i.ratio) for i in two.items
    ]
    assert (one.scan.n_docs, one.scan.n_windows) == (two.scan.n_docs, two.scan.n_windows)


def test_corpus_is_streamed_in_bounded_chunks(tmp_path: Path) -> None:
    rng = random.Random(1)
    p = tmp_path / "big.jsonl.gz"
    with gzip.open(p, "wt") as f:
        for _ in range(3000):
            f.write(json.dumps({"text": filler(rng, 60)}) + "\n")
    raw = gzip.decompress(p.read_bytes())
    chunk = 32_768
    chunks = list(iter_chunks([p], chunk_bytes=chunk))
    assert len(chunks) > 10
    assert max(len(c.payload) for c in chunks) <= chunk + max(len(line) for line in raw.splitlines()) + 1
    assert b"".join(c.payload for c in chunks) == raw  # nothing lost or repeated
    assert chunks[1].first == chunks[0].payload.count(b"\n") + 1


def test_parquet_corpus(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    texts = ["nothing here"] * 50 + ["intro " + ITEMS[2][1] + " outro"] + [None]
    p = tmp_path / "c.parquet"
    pq.write_table(pa.table({"body": texts}), p, row_group_size=16)
    rep = check_overlap(ITEMS, [p], n=8, text_field="body", workers=1, chunk_bytes=200)
    by = {i.key: i for i in rep.items}
    assert by["bench/p3"].flagged and by["bench/p3"].example == f"{p} row 50"
    assert not by["bench/p1"].flagged and rep.scan.n_bad == 1


def test_flagged_ids_feed_run_exclude(tmp_path: Path) -> None:
    rep = check_overlap(ITEMS, write_corpus(tmp_path), n=8, threshold=0.9, workers=1)
    out = tmp_path / "flagged.txt"
    assert write_flagged_ids(out, rep) == 3
    ex = read_exclude_file(out)
    assert ex.ids == {"bench/p1", "bench/p2", "bench/p3"}
    assert ex.excludes("bench", "p1") and not ex.excludes("bench", "p4")


def test_cli_end_to_end(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "bench.jsonl").write_text(
        "".join(json.dumps({"id": k.split("/")[1], "q": t, "a": "1"}) + "\n" for k, t in ITEMS)
    )
    (tasks / "bench.yaml").write_text(
        "name: bench\nversion: 1\ndataset: {files: [bench.jsonl]}\nfields: {id: id, question: q, answer: a}\n"
        "prompt: {template: '{{ question }}'}\nextract: exact\ngrade: exact\n"
    )
    corpus = write_corpus(tmp_path)
    app = contamination_cli()
    out = tmp_path / "ids.txt"
    args = ["contamination", "ngram", "--task", "bench", "--tasks-dir", str(tasks), "--n", "8"]
    args += ["--out", str(out), "--report", str(tmp_path / "rep.jsonl"), "--corpus", *map(str, corpus)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "3 flagged" in r.output and "bench/p1  100%" in r.output
    assert read_exclude_file(out).ids == {"bench/p1", "bench/p2", "bench/p3"}
    lines = (tmp_path / "rep.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["summary"]["items"] == 4 and len(lines) == 5

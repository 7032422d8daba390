"""n-gram overlap: planted passages are found through case, punctuation and Unicode changes; a
paraphrase stays below the threshold; the corpus is streamed over several files and formats (JSONL,
gzip, plain text, parquet) in bounded chunks; worker processes agree with the in-process path; the
flagged ids feed `run --exclude`; and the CLI end to end.

Also: the vectorised hashing against an exact reference without hashes (token tuples); items shorter
than n found by their whole text and not by scattered or reordered tokens; hashes the same in every
process; sharded scans merged to exactly the single-process report, through the API and the CLI."""

from __future__ import annotations

import gzip
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from evalkit.contamination.corpus import iter_chunks
from evalkit.contamination.ngram import (
    NgramIndex,
    OverlapReport,
    _fold_tables,
    _join_docs,
    _normalize_doc,
    check_overlap,
    merge_shards,
    normalize_tokens,
    read_counts,
    scan_shard,
    token_hashes,
    write_counts,
    write_flagged_ids,
)
from evalkit.contamination.split import read_exclude_file
from evalkit.errors import EvalkitError
from tests.conftest import contamination_cli

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
    assert (
        by["bench/p4"].method == "whole_text" and by["bench/p4"].ratio == 0.0 and not by["bench/p4"].flagged
    )
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


# --------------------------------------------------------------------------------------------------
# Hashing against an exact reference


def test_token_hashes_depend_on_the_token_only() -> None:
    toks = [b"a", b"abcdefg", b"abcdefgh", b"abcdefghi", b"abcdefghabcdefgh", b"abcdefghabcdefghi"]
    toks += [b"x" * 64, b"x" * 65, b"y" * 300, "stra\u00dfe\u00e9".encode(), b"\x1e"]
    # Each token twice, with different neighbours and runs of spaces, the last at the buffer's end.
    text = b"  ".join(toks) + b" zz " + b" ".join(reversed(toks))
    h = token_hashes(text).tolist()
    assert len(h) == 2 * len(toks) + 1
    first, second = h[: len(toks)], h[len(toks) + 1 :][::-1]
    assert first == second and len(set(first)) == len(toks)
    assert token_hashes(b"").tolist() == [] and token_hashes(b"   ").tolist() == []


def test_hashes_are_the_same_in_every_process() -> None:
    """No salt: a shard on another machine hashes the benchmark exactly as this process does."""
    code = "from evalkit.contamination.ngram import token_hashes as h; print(h(b'hello world 2024').tolist())"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        ).stdout.strip()
        for seed in ("1", "2")
    }  # fmt: skip
    assert runs == {str(token_hashes(b"hello world 2024").tolist())}


def test_chunk_normaliser_matches_the_per_document_one() -> None:
    """Chunks with non-ASCII text are normalised at once over code points; tokens must be those of
    NFKC, casefold and re's [\\W_] per document, whatever sits at the documents' edges."""
    rng = random.Random(2)
    pool = [chr(c) for c in [*range(0x250), *range(0x2000, 0x2070), *range(0xFF00, 0xFF60)]]
    pool += [chr(c) for c in (0x1E, 0xD800, 0x130, 0xDF, 0xFB01, 0x2162, 0x1D400, 0x301, 0x345, 0x3000)]
    pool += [chr(c) for c in (0x4E00, 0x660, 0x1100, 0x1161, 0x11A8, 0xAC00, 0x1E9E, 0x149, 0x3A3)]
    for _ in range(2000):
        texts = ["".join(rng.choices(pool, k=rng.randint(0, 40))) for _ in range(rng.randint(1, 6))]
        per_doc = b" \x1e ".join(_normalize_doc(t) for t in texts)
        assert _join_docs(texts).split() == per_doc.split(), texts
    # Every code point is a letter or digit exactly when re's \w (less "_") says so.
    _, self_or_space = _fold_tables()
    chars = "".join(map(chr, range(0x110000)))
    expect = np.frombuffer(re.sub(r"[\W_]", " ", chars).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    differ = np.flatnonzero(self_or_space != expect).tolist()
    assert differ == [0x1E]  # our document separator, kept on purpose


def reference_overlap(items: list[tuple[str, str]], docs: list[str], n: int) -> dict[str, tuple[int, int]]:
    """(matched, distinct) per item from token tuples, no hashing: n-grams for items of n tokens or
    more, else the whole token sequence as one contiguous run inside one document."""
    seen: set[tuple[str, ...]] = set()
    doc_tokens = [normalize_tokens(d) for d in docs]
    lengths = {len(normalize_tokens(t)) for _, t in items} | {n}
    for toks in doc_tokens:
        for k in lengths:
            seen.update(tuple(toks[i : i + k]) for i in range(len(toks) - k + 1))
    out = {}
    for key, text in items:
        toks = normalize_tokens(text)
        grams = (
            {tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)} if len(toks) >= n else {tuple(toks)}
        )
        grams.discard(())
        out[key] = (len(grams & seen), len(grams))
    return out


def test_vectorised_scan_matches_the_exact_reference(tmp_path: Path) -> None:
    """A small vocabulary makes many partial overlaps by chance; every item's count must be exact."""
    rng = random.Random(7)
    vocab = ["x", "y", "2", "the", "of", "Sum", "PRIME", "caf\u00e9", "abcdefghij", "a" * 70, "n9"]
    vocab += [f"w{i}" for i in range(12)]
    items = [(f"b/{i}", " ".join(rng.choices(vocab, k=rng.randint(1, 30)))) for i in range(120)]
    docs = [" ".join(rng.choices(vocab, k=rng.randint(5, 200))) for _ in range(300)]
    docs += [f"intro, {items[i][1]}!" for i in range(0, 120, 9)]  # some whole items planted
    rng.shuffle(docs)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.txt"
    a.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs[:200]))
    b.write_text(docs[200])  # plain text is one document per file
    ref = reference_overlap(items, docs[:201], n=4)
    for chunk in (600, 1 << 20):
        rep = check_overlap(items, [a, b], n=4, threshold=0.5, workers=1, chunk_bytes=chunk)
        got = {i.key: (i.n_matched, i.n_ngrams) for i in rep.items}
        assert got == ref
        assert {i.key for i in rep.flagged} == {k for k, (m, d) in ref.items() if m / d >= 0.5}
    assert any(0 < m < d for m, d in ref.values())  # the check has partial overlaps to get right


# --------------------------------------------------------------------------------------------------
# Items shorter than n: their whole text


SHORT = [
    ("s/x2", "x = 2"),
    ("s/what", "What is 2+2?"),
    ("s/binom", "Compute $\\dbinom{8}{4}$."),
    ("s/empty", "$$ ... $$"),  # no letters or digits: cannot be checked at all
]


def short_corpus(folder: Path, with_copies: bool) -> list[Path]:
    rng = random.Random(3)
    docs = [
        # every token of every short item, often, but never in the item's order or contiguously
        "x y 2 z x, 1 2 x 3 2 x x 22 2",
        "2 2 is what; what is the 2 and the other 2",
        "2 + 2 what is",
        "compute 8 choose 4 with dbinom 4 8 or dbinom of 8 4",
        "we know what is",  # ends a document ...
        "2 + 2, a new document",  # ... and the next starts with the rest: runs never cross documents
    ]
    docs += [filler(rng, 50) for _ in range(30)]
    if with_copies:
        docs[10] += " so X=2, and then "  # punctuation and case changed
        docs[20] += " Question: what is 2 + 2 ? Answer 4"
        docs[25] = "Compute \\dbinom{8}{4}"
    p = folder / "short.jsonl"
    p.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    return [p]


@pytest.mark.parametrize("workers", [1, 2])
def test_short_items_are_found_by_their_whole_text(tmp_path: Path, workers: int) -> None:
    files = short_corpus(tmp_path, with_copies=True)
    rep = check_overlap(SHORT, files, n=8, threshold=0.5, workers=workers, chunk_bytes=512)
    by = {i.key: i for i in rep.items}
    for key in ("s/x2", "s/what", "s/binom"):
        assert by[key].method == "whole_text" and by[key].flagged and by[key].ratio == 1.0
        assert (by[key].n_ngrams, by[key].n_matched) == (1, 1)
    assert by["s/x2"].example == f"{files[0]}:11" and by["s/binom"].example == f"{files[0]}:26"
    assert by["s/empty"].method == "none" and by["s/empty"].ratio is None and not by["s/empty"].flagged
    s = rep.summary()
    assert (s["whole_text_items"], s["whole_text_flagged"], s["no_tokens"]) == (3, 3, 1)


def test_short_items_are_not_found_by_chance(tmp_path: Path) -> None:
    """Their tokens occur everywhere, apart, reordered, inside longer tokens, across documents."""
    rep = check_overlap(SHORT, short_corpus(tmp_path, with_copies=False), n=8, workers=1)
    assert rep.flagged == [] and all(i.n_matched == 0 for i in rep.items)
    assert rep.summary()["items_with_any_overlap"] == 0


def test_short_item_split_across_chunks_of_plain_text(tmp_path: Path) -> None:
    rng = random.Random(5)
    p = tmp_path / "book.txt"
    p.write_text(filler(rng, 3000) + "\nWhat is\n2 + 2\n" + filler(rng, 300) + "\n")
    for chunk in (4096, 1 << 20):
        rep = check_overlap(SHORT, [p], n=8, workers=1, chunk_bytes=chunk)
        assert [i.key for i in rep.flagged] == ["s/what"]


# --------------------------------------------------------------------------------------------------
# Shards


def shard_corpus(folder: Path) -> list[Path]:
    """Six files; p1 planted in two of them (the example must come from the first in sorted order),
    p2's first 75% in one and last 75% in the next (two shards see part each, the middle both)."""
    rng = random.Random(11)
    words = ITEMS[1][1].split()
    cut_a, cut_b = int(len(words) * 0.75), int(len(words) * 0.25)
    plants = {
        1: [ITEMS[0][1]],
        2: [" ".join(words[:cut_a])],
        3: [" ".join(words[cut_b:]), ITEMS[0][1].lower() + " " + SHORT[1][1]],
        5: [SHORT[0][1]],
    }
    files = []
    for i in range(6):
        p = folder / f"part{i}.jsonl"
        docs = [filler(rng, 60) for _ in range(40)]
        for j, text in enumerate(plants.get(i, [])):
            docs[7 + i + 10 * j] += " " + text
        p.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
        files.append(p)
    return files


def comparable(rep: OverlapReport) -> tuple:
    s = rep.summary()
    stats = tuple(s[k] for k in ("corpus_mb", "corpus_documents", "corpus_ngrams", "corpus_bad_lines"))
    return [i.to_dict() for i in rep.items], [i.key for i in rep.flagged], stats


def test_sharded_runs_merge_to_the_single_process_result(tmp_path: Path) -> None:
    files = shard_corpus(tmp_path)
    items = ITEMS + SHORT
    corpus = [str(f) for f in reversed(files)]  # given out of order: examples still come from part1
    single = check_overlap(items, corpus, n=8, threshold=0.5, workers=1)
    by = {i.key: i for i in single.items}
    assert by["bench/p1"].example == f"{files[1]}:9" and by["bench/p2"].ratio == 1.0
    # bench/p4 and s/what are one text: one canonical id, found for both
    assert {i.key for i in single.flagged} == {"bench/p1", "bench/p2", "bench/p4", "s/x2", "s/what"}
    for n_shards in (1, 2, 3, 4, 8):  # 8 > files: some shards are empty
        parts = []
        for i in range(n_shards):
            write_counts(tmp_path / f"c{i}.json", scan_shard(items, corpus, i, n_shards, n=8, workers=1))
            parts.append(read_counts(tmp_path / f"c{i}.json"))
        random.Random(n_shards).shuffle(parts)
        merged = merge_shards(parts)
        assert comparable(merged) == comparable(single)
        assert merged.summary()["shards"] == n_shards
    # The merge unites positions: adding shard counts would overcount p2's shared middle n-grams.
    two = [scan_shard(items, corpus, i, 2, n=8) for i in range(2)]
    p2 = [next(d for d in t["items"] if d["key"] == "bench/p2") for t in two]
    assert len(p2[0]["matched"]) + len(p2[1]["matched"]) > p2[0]["n_ngrams"] == by["bench/p2"].n_matched
    assert merge_shards(two, threshold=1.0).flagged == [i for i in single.items if i.ratio == 1.0]


def test_merge_refuses_incomplete_or_foreign_shards(tmp_path: Path) -> None:
    corpus = [str(f) for f in shard_corpus(tmp_path)]
    parts = [scan_shard(ITEMS, corpus, i, 3, n=8) for i in range(3)]
    with pytest.raises(EvalkitError, match=r"missing: \[1\]"):
        merge_shards([parts[0], parts[2]])
    with pytest.raises(EvalkitError, match=r"repeated: \[2\]"):
        merge_shards([parts[0], parts[2], parts[2]])
    with pytest.raises(EvalkitError, match="differ in their items"):
        merge_shards([parts[0], parts[1], scan_shard(ITEMS[:2], corpus, 2, 3, n=8)])
    with pytest.raises(EvalkitError, match="differ in their n"):
        merge_shards([parts[0], parts[1], scan_shard(ITEMS, corpus, 2, 3, n=7)])
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(EvalkitError, match="not an n-gram counts file"):
        read_counts(bad)


def test_cli_shards_and_merge(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "bench.jsonl").write_text(
        "".join(json.dumps({"id": k.split("/")[1], "q": t, "a": "1"}) + "\n" for k, t in ITEMS + SHORT)
    )
    (tasks / "bench.yaml").write_text(
        "name: bench\nversion: 1\ndataset: {files: [bench.jsonl]}\nfields: {id: id, question: q, answer: a}\n"
        "prompt: {template: '{{ question }}'}\nextract: exact\ngrade: exact\n"
    )
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shard_corpus(corpus)
    app = contamination_cli()
    base = [
        "contamination",
        "ngram",
        "-t",
        "bench",
        "--tasks-dir",
        str(tasks),
        "--n",
        "8",
        "--corpus",
        str(corpus),
    ]
    r = CliRunner().invoke(
        app, [*base, "--out", str(tmp_path / "one.txt"), "--report", str(tmp_path / "one.jsonl")]
    )
    assert r.exit_code == 0, r.output
    assert "whole text (2 tokens)" in r.output and "checked by their whole text" in r.output
    for i in range(3):
        r = CliRunner().invoke(app, [*base, "--shard", f"{i}/3", "--counts", str(tmp_path / f"c{i}.json")])
        assert r.exit_code == 0, r.output
        assert f"shard {i}/3: 2 of 6 files" in r.output
    merge = ["contamination", "ngram-merge", *(str(tmp_path / f"c{i}.json") for i in (2, 0, 1))]
    r = CliRunner().invoke(
        app, [*merge, "--out", str(tmp_path / "m.txt"), "--report", str(tmp_path / "m.jsonl")]
    )
    assert r.exit_code == 0, r.output
    assert "3 shards" in r.output
    assert read_exclude_file(tmp_path / "m.txt").ids == read_exclude_file(tmp_path / "one.txt").ids
    assert len(read_exclude_file(tmp_path / "one.txt").ids) == 5
    one, merged = ((tmp_path / f).read_text().splitlines() for f in ("one.jsonl", "m.jsonl"))
    assert one[1:] == merged[1:]  # every item's line; the summary differs in timing and shard count
    # --counts without --shard: the whole corpus as one shard, reported at once and mergeable alone
    r = CliRunner().invoke(
        app, [*base, "--counts", str(tmp_path / "all.json"), "--out", str(tmp_path / "a.txt")]
    )
    assert r.exit_code == 0, r.output
    assert read_exclude_file(tmp_path / "a.txt").ids == read_exclude_file(tmp_path / "one.txt").ids
    assert read_counts(tmp_path / "all.json")["shard"] == [0, 1]
    r = CliRunner().invoke(app, [*base, "--shard", "0/3"])
    assert isinstance(r.exception, EvalkitError) and "--counts" in str(r.exception)
    r = CliRunner().invoke(app, [*base, "--shard", "3/3", "--counts", str(tmp_path / "x.json")])
    assert isinstance(r.exception, EvalkitError) and "0 <= i < n" in str(r.exception)

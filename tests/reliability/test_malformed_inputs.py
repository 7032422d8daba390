"""Hostile and malformed inputs: broken task YAMLs and data files each end `evalkit tasks check` and
`evalkit run` with a one- or two-line error naming the file, the line and the field (exit 2, no
traceback, no request sent); template injection is refused; broken items are refused by `run`
or, with --skip-broken-items, skipped and counted."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest
from harness import CHOICE_TASK, choice_rows, cli, items_of, run_args

from evalkit.cli import main

GOOD = CHOICE_TASK.format(name="mal")
ROWS = choice_rows(6)
UNREACHABLE = "openai:http://127.0.0.1:9/v1@m"  # nothing is ever sent: every case fails before


def _jsonl(rows: list) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _yaml(**replace: str) -> str:
    text = GOOD
    for old, new in replace.items():
        old = old.replace("__", " ").replace("_colon_", ":")
        assert old in text, old
        text = text.replace(old, new)
    return text


def _row(i: int, **fields) -> dict:
    return {**ROWS[i], **fields}


# (case id, task YAML, data file bytes, what the error must name: [file, "file:line" or field, ...])
CASES = [
    (
        "missing field",
        GOOD.replace("grade: choice\n", "")
        .replace("extract: choice\n", "extract: choice\n")
        .replace(
            "fields: {id: id, question: question, choices: options, answer: answer}",
            "fields: {id: id, choices: options, answer: answer}",
        ),
        _jsonl(ROWS),
        ["mal.yaml:", "question"],
    ),
    ("wrong type", GOOD.replace("version: 1", "version: [1, 2]"), _jsonl(ROWS), ["mal.yaml:2", "version"]),
    (
        "unknown key",
        GOOD.replace("version: 1", "version: 1\nshuffle: true"),
        _jsonl(ROWS),
        ["mal.yaml:3", "shuffle"],
    ),
    ("not YAML", GOOD.replace("version: 1", "version: [1"), _jsonl(ROWS), ["mal.yaml:", "YAML"]),
    ("not a mapping", "- just\n- a list\n", _jsonl(ROWS), ["mal.yaml:1", "mapping"]),
    ("empty YAML", "", _jsonl(ROWS), ["mal.yaml:1"]),
    (
        "non-UTF-8 YAML",
        GOOD.replace("version: 1", "version: 1\ndescription: caf\udcff"),
        _jsonl(ROWS),
        ["mal.yaml:3", "UTF-8"],
    ),
    (
        "unknown grader",
        GOOD.replace("grade: choice", "grade: choise"),
        _jsonl(ROWS),
        ["mal.yaml:", "grade", "choise"],
    ),
    ("unknown metric", GOOD.replace("[accuracy]", "[acuracy]"), _jsonl(ROWS), ["mal.yaml:", "metrics"]),
    (
        "negative max_tokens",
        GOOD.replace("max_tokens: 32", "max_tokens: -5"),
        _jsonl(ROWS),
        ["mal.yaml:", "generation.max_tokens"],
    ),
    (
        "Jinja syntax",
        GOOD.replace("{{ question }}", "{{ question }"),
        _jsonl(ROWS),
        ["mal.yaml:9", "prompt.template"],
    ),
    (
        "unknown template field",
        GOOD.replace("{{ question }}", "{{ problem }}"),
        _jsonl(ROWS),
        ["mal.yaml:9", "prompt.template", "'problem'"],
    ),
    (
        "injection via cycler",
        GOOD.replace("{{ question }}", "{{ cycler.__init__.__globals__ }}"),
        _jsonl(ROWS),
        ["mal.yaml:9", "prompt.template", "__init__"],
    ),
    (
        "injection via a string's class",
        GOOD.replace("{{ question }}", "{{ ''.__class__.__mro__[1] }}"),
        _jsonl(ROWS),
        ["mal.yaml:9", "prompt.template", "__class__"],
    ),
    (
        "injection via attr filter",
        GOOD.replace("{{ question }}", "{{ question|attr('__class__') }}"),
        _jsonl(ROWS),
        ["mal.yaml", "prompt", "unsafe"],
    ),
    (
        "memory bomb in template",
        GOOD.replace("{{ question }}", "{{ question * 100000000 }}"),
        _jsonl(ROWS),
        ["mal.yaml", "prompt", "at most"],
    ),
    (
        "missing data file",
        GOOD.replace("[mal.jsonl]", "[nowhere.jsonl]"),
        _jsonl(ROWS),
        ["nowhere.jsonl", "not found"],
    ),
    ("empty dataset", GOOD, b"", ["mal.jsonl", "no items"]),
    (
        "non-UTF-8 data",
        GOOD,
        _jsonl(ROWS[:3]) + b'{"id": "q9", "question": "caf\xe9"}\n',
        ["mal.jsonl:4", "UTF-8"],
    ),
    ("invalid JSON line", GOOD, _jsonl(ROWS[:2]) + b'{"id": "q9", "question": \n', ["mal.jsonl:3", "JSON"]),
    ("line not an object", GOOD, _jsonl(ROWS[:2]) + b"[1, 2]\n", ["mal.jsonl:3", "object"]),
    (
        "10 MB line",
        GOOD,
        _jsonl(ROWS[:2]) + _jsonl([_row(2, question="x" * 10_000_000)]),
        ["mal.jsonl:3", "MB"],
    ),
    ("duplicate ids", GOOD, _jsonl([*ROWS[:3], _row(4, id="q001")]), ["mal.jsonl", "'q001'", "fields.id"]),
    (
        "missing column",
        GOOD,
        _jsonl([*ROWS[:2], {"id": "q7", "options": ["a"], "answer": "A"}]),
        ["mal.jsonl", "'question'", "fields.question"],
    ),
    ("options not a list", GOOD, _jsonl([*ROWS[:2], _row(2, options=7)]), ["mal.jsonl", "q002", "fields"]),
    (
        "answer letter outside the choices",
        GOOD,
        _jsonl([*ROWS[:2], _row(2, answer="E")]),
        ["mal.yaml", "q002", "'E'", "--skip-broken-items"],
    ),
    ("empty gold", GOOD, _jsonl([*ROWS[:2], _row(2, answer="")]), ["mal.yaml", "q002", "empty gold"]),
    (
        "empty question",
        GOOD,
        _jsonl([*ROWS[:2], _row(2, question="  ")]),
        ["mal.yaml", "q002", "empty question"],
    ),
    (
        "non-UTF-8 .json data",
        GOOD.replace("mal.jsonl", "mal.json"),
        b'[{"id": "caf\xe9"}]',
        ["mal.json:1", "UTF-8"],
    ),
]
RENDER = {"injection via attr filter", "memory bomb in template", "empty dataset"}  # check reports these
RUN_ONLY = {"answer letter outside the choices", "empty gold", "empty question"}  # check reports, run refuses


def _write_case(tmp_path: Path, yaml_text: str, data: bytes) -> Path:
    folder = tmp_path / "tasks"
    folder.mkdir()
    raw = yaml_text.encode("utf-8", "surrogateescape")
    (folder / "mal.yaml").write_bytes(raw)
    name = "mal.json" if "mal.json]" in yaml_text else "mal.jsonl"
    (folder / name).write_bytes(data)
    return folder / "mal.yaml"


def invoke(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """The real CLI entry point in this process (signal handlers put back afterwards)."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    argv, sys.argv = sys.argv, ["evalkit", *args]
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    finally:
        sys.argv = argv
        for s, h in saved.items():
            signal.signal(s, h)
    captured = capsys.readouterr()
    return code, captured.err, captured.out


@pytest.mark.parametrize("name,yaml_text,data,names", CASES, ids=[c[0] for c in CASES])
def test_malformed_input_gives_a_short_error_naming_file_line_field(
    tmp_path: Path, capsys: pytest.CaptureFixture, name: str, yaml_text: str, data: bytes, names: list[str]
) -> None:
    path = _write_case(tmp_path, yaml_text, data)
    commands = {
        "run": ["run", "-t", str(path), "-m", UNREACHABLE, "--out", str(tmp_path / "o"), "--no-progress"],
        "tasks check": ["tasks", "check", str(path)],
    }
    for what, args in commands.items():
        code, err, out = invoke(capsys, *args)
        if what == "tasks check" and name in RUN_ONLY | RENDER:
            assert code == 1 and names[1] in out, out  # reported among the item problems
            continue
        lines = err.strip().splitlines()
        assert code == 2, f"{what}: exit {code}\n{err}"
        assert "Traceback" not in err and 1 <= len(lines) <= 2, f"{what}:\n{err}"
        assert lines[0].startswith("error: "), err
        for part in names:
            assert part in err, f"{what}: {part!r} not in\n{err}"
        assert not (tmp_path / "o" / "records.jsonl").exists()


def test_skip_broken_items_skips_and_counts_them(fake_server, tmp_path: Path) -> None:
    rows = choice_rows(8)
    rows[2]["answer"], rows[5]["answer"] = "E", ""
    folder = tmp_path / "tasks"
    from harness import write_task

    write_task(folder, rows=rows)
    url, server = fake_server()
    out = tmp_path / "out"
    refused = cli(*run_args(url, folder, out))
    assert refused.returncode == 2 and "item q002: gold 'E'" in refused.stderr and server.n_calls == 0
    r = cli(*run_args(url, folder, out, "--skip-broken-items"))
    assert r.returncode == 0, r.stderr
    assert "skipped 2 broken item(s) (--skip-broken-items)" in r.stderr
    assert sorted(i for _, i, _ in items_of(out)) == ["q000", "q001", "q003", "q004", "q006", "q007"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tasks"]["rel_choice"]["data"]["excluded"]["skipped_broken"] == ["q002", "q005"]


MALFORMED_INPUTS = len(CASES)

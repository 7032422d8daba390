"""Regenerate the Math-Verify part of ``math.jsonl`` from a checkout of huggingface/Math-Verify.

    python tests/grading_corpus/build_math_verify_cases.py GIT_DIR [--commit SHA]

Reads the test files at the commit with ``git show`` (no work tree needed), takes every
``pytest.mark.parametrize`` case of (gold, pred, expected), labels it, and rewrites ``math.jsonl``:
the lines whose source starts with "Math-Verify" are replaced, every other line is kept as it is.

Labels say whether the pred's final answer is equivalent to the gold, as a careful reader judges;
that is Math-Verify's expected value except where ``RELABEL`` says otherwise (with the reason in the
line's ``note``). Cases that depend on a non-default tolerance or option are left out (``SKIP``).
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import json
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = (
    "tests/test_all.py",
    "tests/test_boxed.py",
    "tests/test_numina_cases.py",
    "tests/test_open_thoughts.py",
    "tests/test_strict.py",
    "tests/test_yujianll.py",
)
LICENCE = "Apache-2.0"

# (test name, case index) -> class. Index = position in the test's parametrize list.
_CLASS_BY_TEST = {
    "test_number_extraction": "number_basic",
    "test_simple_fraction_notation": "latex_notation",
    "test_sets_handling": "interval_set",
    "test_latex_notation": "math_delimiters",
    "test_percent_notation": "percent",
    "test_latex_notation_math": "boxed_solution",
    "test_relations_math": "equation_vs_value",
    "test_matrix_extraction": "matrix_env",
    "test_complex_math_expressions": "symbolic_expr",
    "test_math_extraction_edge_cases": "unboxed_final_answer",
    "test_math_extraction_additional_cases": "unboxed_final_answer",
    "test_set_rel_assymetry": "interval_vs_inequality",
    "test_float_precision": "decimal_vs_fraction",
    "test_sqrt_precision": "symbolic_expr",
    "test_boxed": "several_boxes_set",
    "test_numina_cases": "several_values",
    "test_open_thoughts": "several_values",
    "test_strict_variable_comparison": "symbolic_expr",
    "test_string_extraction": "several_values",
}


def _idx(test: str, spec: str) -> dict[tuple[str, int], str]:
    out = {}
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-")
            rng = range(int(lo), int(hi) + 1)
        else:
            rng = range(int(part), int(part) + 1)
        for i in rng:
            out[(test, i)] = ""
    return out


_CLASS_OVERRIDES_SPEC: dict[str, list[tuple[str, str]]] = {
    "digit_grouping": [
        ("test_number_extraction", "1,2,4,9,10"),
        ("test_latex_notation_math", "3"),
        ("test_math_extraction_edge_cases", "7"),
        ("test_math_extraction_additional_cases", "12,22,23,24"),
    ],
    "decimal_comma": [("test_number_extraction", "5,6,7,17")],
    "currency": [
        ("test_number_extraction", "11,12,13,14"),
        ("test_math_extraction_edge_cases", "12"),
        ("test_math_extraction_additional_cases", "14,17"),
        ("test_open_thoughts", "8"),
    ],
    "units": [
        ("test_number_extraction", "15,16"),
        ("test_latex_notation", "19,20,22"),
        ("test_latex_notation_math", "12,25"),
    ],
    "equation_vs_value": [
        ("test_latex_notation", "21"),
        ("test_math_extraction_additional_cases", "16"),
        ("test_numina_cases", "1,8,10,21"),
        ("test_open_thoughts", "1,20,21,22"),
        ("test_string_extraction", "2,3"),
    ],
    "percent": [
        ("test_latex_notation_math", "2"),
        ("test_math_extraction_edge_cases", "13"),
        ("test_math_extraction_additional_cases", "8,13,15"),
    ],
    "degrees": [("test_latex_notation_math", "8,15")],
    "text_answer": [
        ("test_latex_notation_math", "7"),
        ("test_math_extraction_additional_cases", "21,26"),
        ("test_numina_cases", "14,15,16,17,29"),
        ("test_open_thoughts", "3"),
    ],
    "several_values": [("test_latex_notation_math", "4,13")],
    "tuple": [
        ("test_latex_notation_math", "5,18"),
        ("test_math_extraction_additional_cases", "5,6,7"),
        ("test_numina_cases", "0,2,19,20"),
        ("test_open_thoughts", "5,9"),
    ],
    "base_number": [
        ("test_latex_notation_math", "17"),
        ("test_math_extraction_additional_cases", "20"),
    ],
    "plus_minus": [("test_latex_notation_math", "19,20"), ("test_string_extraction", "10,11")],
    "set_notation": [("test_latex_notation_math", "21"), ("test_numina_cases", "4")],
    "inequality_symbols": [
        ("test_latex_notation_math", "22"),
        ("test_relations_math", "0-9,17-19"),
        ("test_open_thoughts", "15"),
    ],
    "trig_identity": [("test_latex_notation_math", "23"), ("test_complex_math_expressions", "3")],
    "symbolic_expr": [
        ("test_latex_notation_math", "24,27,28"),
        ("test_math_extraction_edge_cases", "11"),
        ("test_string_extraction", "4,5,8,9"),
        ("test_complex_math_expressions", "8"),
    ],
    "interval_set": [
        ("test_latex_notation_math", "26,29"),
        ("test_math_extraction_additional_cases", "0,18,25"),
        ("test_open_thoughts", "6"),
    ],
    "decimal_vs_fraction": [("test_complex_math_expressions", "0,1")],
    "matrix_env": [("test_complex_math_expressions", "5")],
    "broken_latex": [("test_complex_math_expressions", "4")],
    "chat_template_token": [
        ("test_math_extraction_edge_cases", "0,1,2,3,4,8,9,10"),
        ("test_math_extraction_additional_cases", "1,2,3"),
    ],
    "repetition_loop": [("test_math_extraction_edge_cases", "5")],
    "unboxed_final_answer": [
        ("test_math_extraction_edge_cases", "6"),
        ("test_math_extraction_additional_cases", "4,19"),
    ],
    "boxed_solution": [
        ("test_matrix_extraction", "0"),
        ("test_math_extraction_additional_cases", "9,10,11"),
        ("test_open_thoughts", "10,17"),
        ("test_boxed", "1,2"),
    ],
    "interval_vs_inequality": [
        ("test_numina_cases", "3,27"),
        ("test_open_thoughts", "2"),
    ],
    "several_boxes_set": [
        ("test_math_extraction_additional_cases", "27,28"),
        ("test_numina_cases", "12,13"),
        ("test_open_thoughts", "0,12,13,14,16,18,19,23,24,25,26,27,28"),
    ],
    "clock_time": [("test_string_extraction", "12,13")],
    "ratio": [("test_numina_cases", "7,11")],
}
CLASS_OVERRIDES: dict[tuple[str, int], str] = {}
for _cls, _specs in _CLASS_OVERRIDES_SPEC.items():
    for _test, _spec in _specs:
        for _key in _idx(_test, _spec):
            CLASS_OVERRIDES[_key] = _cls

# (test, index) -> (label, why): Math-Verify's expected value is not the equivalence a reader sees.
RELABEL: dict[tuple[str, int], tuple[bool, str]] = {
    ("test_latex_notation", 5): (
        True,
        "Math-Verify expects 0 (its inline-math pattern may not span lines); the answer written is 9",
    ),
    ("test_latex_notation", 6): (
        True,
        "Math-Verify expects 0 (its inline-math pattern may not span lines); the answer written is 9",
    ),
    ("test_set_rel_assymetry", 3): (
        True,
        "Math-Verify expects 0 only with allow_set_relation_comp=False; x in [-2,7] is -2<=x<=7",
    ),
    ("test_string_extraction", 9): (False, "Math-Verify's test expects 1; 1-1/e and 1+1/e differ"),
}

# Cases left out: they only hold at a non-default tolerance/option, or the test string is garbled.
SKIP: dict[tuple[str, int], str] = {
    ("test_complex_math_expressions", 7): "holds only at float_rounding=2 (0.33 for 1/3)",
    ("test_complex_math_expressions", 13): "holds only at float_rounding=2 (2.6667 for 8/3)",
    ("test_strict_variable_comparison", 1): "strict=False variant of the previous case",
    ("test_symbols", 0): "the test's gold is '$<TAB>ext{13}$' (a '\\t' escape in a non-raw string)",
}


def _git_show(git_dir: str, commit: str, path: str) -> str:
    return subprocess.run(
        ["git", "-C", git_dir, "show", f"{commit}:{path}"], check=True, capture_output=True, text=True
    ).stdout


def _param_cases(fn: ast.FunctionDef) -> list[tuple[int, int, dict]]:
    """(index, line, {name: value}) of every literal parametrize case of one test function."""
    out = []
    for dec in fn.decorator_list:
        if not (isinstance(dec, ast.Call) and ast.unparse(dec.func).endswith("parametrize")):
            continue
        names = [n.strip() for n in ast.literal_eval(dec.args[0]).split(",")]
        for i, elt in enumerate(dec.args[1].elts):
            try:
                vals = ast.literal_eval(elt)
            except ValueError:
                continue  # f-strings (test_float_precision) are added by hand below
            out.append((i, elt.lineno, dict(zip(names, vals, strict=True))))
    return out


def _line(path: str, test: str, i: int, lineno: int, gold: str, pred: str, expected: int, short: str):
    key = (test, i)
    label, note = RELABEL.get(key, (bool(expected), None))
    row = {
        "pred": pred,
        "gold": gold,
        "equal": label,
        "class": CLASS_OVERRIDES.get(key, _CLASS_BY_TEST.get(test, "other")),
        "source": f"Math-Verify {path}::{test} case {i} (line {lineno}, {short}) ({LICENCE})",
    }
    if note:
        row["note"] = note
    return row


def build(git_dir: str, commit: str) -> list[dict]:
    """Every labelled Math-Verify case, first occurrence of each (gold, pred) pair only."""
    short = commit[:7]
    rows: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for path in FILES:
        tree = ast.parse(_git_show(git_dir, commit, path))
        for fn in tree.body:
            if not isinstance(fn, ast.FunctionDef):
                continue
            for i, lineno, case in _param_cases(fn):
                if (fn.name, i) in SKIP or "gold" not in case:
                    continue
                expected = case.get("expected", case.get("result"))
                pair = (case["gold"], case["pred"])
                if pair in seen:
                    continue
                seen.add(pair)
                rows.append(_line(path, fn.name, i, lineno, case["gold"], case["pred"], expected, short))
    # test_float_precision builds its gold with an f-string: f"{math.sqrt(17):.15f}".
    rows.append(
        _line(
            "tests/test_all.py", "test_float_precision", 0, 0, "4.123105625617661", "$\\sqrt{17}$", 1, short
        )
    )
    csv_text = _git_show(git_dir, commit, "examples/model_outputs.csv")
    for i, rec in enumerate(csv.DictReader(io.StringIO(csv_text))):
        rows.append(
            {
                "pred": rec["answer"],
                "gold": rec["gold"],
                "equal": True,
                "class": "math_delimiters",
                "source": f"Math-Verify examples/model_outputs.csv row {i + 1} ({short}) ({LICENCE})",
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("git_dir", help="a clone (or bare git dir) of huggingface/Math-Verify")
    ap.add_argument("--commit", default="HEAD")
    ap.add_argument("--out", type=Path, default=HERE / "math.jsonl")
    args = ap.parse_args()
    commit = subprocess.run(
        ["git", "-C", args.git_dir, "rev-parse", args.commit], check=True, capture_output=True, text=True
    ).stdout.strip()
    rows = build(args.git_dir, commit)
    kept = []
    if args.out.exists():
        for raw in args.out.read_text(encoding="utf-8").splitlines():
            if raw.strip() and not json.loads(raw)["source"].startswith("Math-Verify"):
                kept.append(raw)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "".join(k + "\n" for k in kept)
    args.out.write_text(text, encoding="utf-8")
    print(f"{len(rows)} Math-Verify cases at {commit[:12]}, {len(kept)} other lines kept -> {args.out}")


if __name__ == "__main__":
    main()

"""Build ``heldout.jsonl``: labelled math cases from other projects' grader test suites (not Math-Verify's).

    python tests/grading_corpus/build_heldout_cases.py [--mirror DIR]

DIR holds one git directory per source repository as ``OWNER+NAME/repo`` (the layout of evalkit's
repository mirror); files are read with ``git show COMMIT:PATH``, no work tree needed.

- lighteval's tests/unit/metrics/test_extractive_match.py: every ``pytest.mark.parametrize`` case of
  (gold, pred, expected) in its math tests, read from the source with ``ast``; cases whose
  (gold, pred) pair is already in ``math.jsonl`` (lighteval and Math-Verify share most tests) are
  left out, so the file holds only cases evalkit was not tuned on.
- the other suites' cases are few and written as calls, not parametrize lists; they are transcribed
  below (``TRANSCRIBED``), each with its file, test and position.

Labels are the source's expected value (equal = its grader must credit the pred) except where
``RELABEL`` says otherwise, with the reason in the line's ``note``; cases that hold only at a
non-default tolerance are left out (``SKIP``), as in ``build_math_verify_cases.py``.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

LIGHTEVAL = ("huggingface/lighteval", "3fd15266bc8448b797e61462d293aa3fd40b3580", "MIT")
LIGHTEVAL_FILE = "tests/unit/metrics/test_extractive_match.py"
_LIGHTEVAL_CLASS = {
    "test_multilingual_extraction_math": "unboxed_final_answer",
    "test_multilingual_extraction_math_latex_numbers": "math_delimiters",
    "test_number_extraction": "number_basic",
    "test_simple_fraction_notation": "latex_notation",
    "test_sets_handling": "interval_set",
    "test_latex_notation": "math_delimiters",
    "test_latex_notation_math": "boxed_solution",
    "test_relations_math": "equation_vs_value",
    "test_matrix_extraction": "matrix_env",
    "test_complex_math_expressions": "symbolic_expr",
    "test_math_extraction_edge_cases": "unboxed_final_answer",
    "test_math_extraction_additional_cases": "unboxed_final_answer",
    "test_math_numina_cases": "several_values",
}
# (test, case index) -> (label, reason)
RELABEL = {
    ("test_math_numina_cases", 35): (
        False,
        "the gold boxes 1, 2 and 3; the pred's {2,3} misses 1 (lighteval expects 1: its gold "
        "extraction keeps only the boxes joined by 'and')",
    ),
    ("test_math_numina_cases", 36): (
        True,
        "the gold boxes 1, 2 and 3, the pred {1,2,3} (lighteval expects 0, see case 35)",
    ),
}
# (test, case index) -> reason
SKIP = {
    ("test_complex_math_expressions", 7): "holds only at precision=2 (0.33 for 1/3)",
    ("test_complex_math_expressions", 13): "holds only at precision=2 (2.6667 for 8/3)",
}

NEMO = ("NVIDIA/NeMo-Skills", "0b012df8a09cd4730d31b16e90a0d8f13d145fb8", "Apache-2.0")
HENDRYCKS = ("hendrycks/math", "985bdc1696e88e8643f081a0ff4719da39f2ae2a", "MIT")
OPEN_INSTRUCT = ("allenai/open-instruct", "e6c3044aa6201c8bfa4573c1b03142af599e730d", "Apache-2.0")
TRL = ("huggingface/trl", "f2cd57710ae345ea6428ae95363267fcf38a3dc8", "Apache-2.0")
OPEN_R1 = ("huggingface/open-r1", "1416fa0cf21595d2083b399a2a0bbddd7f6e9563", "Apache-2.0")
OPENCOMPASS = ("open-compass/opencompass", "a5acc4bba3b658f151617a3b393602110fb7a740", "Apache-2.0")

# NeMo-Skills tests/test_math_equal.py: math_equal(a, b) and math_equal(b, a) are both asserted, so
# each pair gives two cases (gold=a, pred=b and the other way round) unless a == b.
# (a, b, class); numbers the test passes as Python numbers are written as their str().
_NEMO_CORRECT = [
    ("5", "5", "number_basic"),
    ("5", "5.0", "number_basic"),
    ("1/2", "0.5", "decimal_vs_fraction"),
    ("\\frac{1}{2}", "0.5", "decimal_vs_fraction"),
    ("918\\frac{1}{2}", "918.5", "mixed_number"),
    ("x^2+2x+1", "x^2 + 2*x + 1", "symbolic_expr"),
    ("x^2+2x+1", "x^2 + 2*x - (-1)", "symbolic_expr"),
    ("y = x^2+2x+1", "2x+ 1+x^2", "equation_vs_value"),
    ("E", "\\mathrm{E}", "text_answer"),
    ("A", "\\textbf{A}", "text_answer"),
    ("f'", "f'", "text_answer"),
    ("185", "185\\", "broken_latex"),
    ("185\\", "185\\", "broken_latex"),
    (".185", "0.185", "number_basic"),
    ("\\frac {1}{2}", "0.5", "decimal_vs_fraction"),
    ("17\\text{ any text}", "17", "units"),
    ("\\$10", "10", "currency"),
    ("10%", "10", "percent"),
    ("10\\%", "10", "percent"),
    ("2.5", "\\frac{5}{2}", "decimal_vs_fraction"),
    ("\\frac{1}{3}", "\\dfrac{1}{3}", "latex_notation"),
    ("(r+5)(r+5)", "(r+5)^2", "symbolic_expr"),
    ("\\frac{\\sqrt{3}}{3}", "\\frac{\\sqrt{3}}{3} \\approx 0.577", "symbolic_expr"),
    (
        "\\begin{pmatrix}0&0&0\\\\0&1&0\\\\0&0&1\\end{pmatrix}",
        "\\begin{bmatrix} 0 & 0 & 0 \\\\ 0 & 1 & 0 \\\\ 0 & 0 & 1 \\end{bmatrix}",
        "matrix_env",
    ),
]
_NEMO_INCORRECT = [
    ("5", "5.001", "number_basic"),
    ("x^2+2x+1", "x^3+2x+1", "symbolic_expr"),
    ("odd", "\\text{oddd}", "text_answer"),
    ("E", "\\mathrm{E}*2", "text_answer"),
    ("\\sqrt{67},-\\sqrt{85}", "\\sqrt{67}", "several_values"),
]

# hendrycks/math modeling/math_equivalence_test.py: is_equiv(test_in, test_out); test_in is read as
# the pred, test_out as the gold. (test name, pred, gold, expected, class)
_HENDRYCKS = [
    ("test_fractions", "\\tfrac{1}{2} + \\frac1{72}", "\\\\frac{1}{2} + 2/3", False, "latex_notation"),
    ("test_order", "10, 4, -2", "4, 10, -2", False, "several_values"),
    ("test_order2", "10, 4, 2", "4, 12, 2", False, "several_values"),
    (
        "test_dfrac",
        "\\tfrac{1}{2} +\\! \\frac1{72}",
        "\\\\dfrac{1}{2} +\\frac{1}{72}",
        True,
        "latex_notation",
    ),
    ("test_units", "10\\text{ units}", "10 ", True, "units"),
    ("test_units2", "10\\text{ units}", "100 ", False, "units"),
    ("test_dollars", "10", "\\$10", True, "currency"),
    ("test_parentheses", "\\left(x-2\\right)\\left(x+2\\right)", "(x-2)(x+2)", True, "latex_notation"),
    ("test_decimals", "0.1, 4, 2", "4, .1, 2", False, "several_values"),
    ("test_decimals2", "0.1", ".1", True, "number_basic"),
    ("test_percentage", "10\\%", "10", True, "percent"),
    ("test_sqrt", "10\\sqrt{3} + \\sqrt4", "10\\sqrt3 + \\sqrt{4}", True, "latex_notation"),
    ("test_frac", "\\frac34i", "\\frac{3}{4}i", True, "latex_notation"),
    ("test_tfrac", "\\tfrac83", "\\frac{8}{3}", True, "latex_notation"),
    ("test_expression", "5x - 7y + 11z + 4 = 0", "x + y - z + 2 = 0", False, "equation_vs_value"),
    ("test_half", "1/2", "\\frac{1}{2}", True, "latex_notation"),
]
_HENDRYCKS_NOTES = {
    "test_order": "the test's reading: a list answer is ordered (hendrycks' string check)",
    "test_decimals": "the test's reading: a list answer is ordered (hendrycks' string check)",
    "test_fractions": "the test's gold has a doubled backslash (``\\\\frac``), as written in the test",
    "test_dfrac": "the test's gold has a doubled backslash (``\\\\dfrac``), as written in the test",
}

# (source, file, test, pred, gold, expected, class, note)
TRANSCRIBED: list[tuple[tuple[str, str, str], str, str, str, str, bool, str, str | None]] = [
    # open-instruct: strip_string(input) == expected normal form, read as input = expected.
    *[
        (OPEN_INSTRUCT, "open_instruct/test_math_utils.py", f"TestStripString case {i}", p, g, True, c, None)
        for i, (p, g, c) in enumerate(
            [
                ("\\frac{1}{2}", "\\frac{1}{2}", "latex_notation"),
                ("\\frac 1 2", "\\frac{1}{2}", "latex_notation"),
                ("  \\frac{1}{2}  ", "\\frac{1}{2}", "latex_notation"),
                ("\\left(\\frac{1}{2}\\right)", "(\\frac{1}{2})", "latex_notation"),
                ("50\\%", "50", "percent"),
                ("0.5", "\\frac{1}{2}", "decimal_vs_fraction"),
                ("\\tfrac{3}{4}", "\\frac{3}{4}", "latex_notation"),
                ("\\sqrt2", "\\sqrt{2}", "latex_notation"),
                ("1 + 2", "1+2", "symbolic_expr"),
            ]
        )
    ],
    # open-instruct: GSM8KVerifier()(tokens, prediction, label).score
    *[
        (
            OPEN_INSTRUCT,
            "open_instruct/test_ground_truth_utils.py",
            f"TestGSM8KVerifier {n}",
            p,
            g,
            e,
            c,
            None,
        )
        for n, p, g, e, c in [
            ("negative_integer", "Therefore the answer is -3", "-3", True, "unboxed_final_answer"),
            ("positive_integer", "Therefore the answer is +7", "+7", True, "unboxed_final_answer"),
            ("negative_decimal", "Final answer: -3.5", "-3.5", True, "unboxed_final_answer"),
            ("boxed_negative_integer", "The result is \\\\boxed{-3}", "-3", True, "broken_latex"),
            ("wrong_sign", "Therefore the answer is 3", "-3", False, "unboxed_final_answer"),
        ]
    ],
    (
        TRL,
        "tests/test_rewards.py",
        "test_accuracy_reward_correct_answer 0",
        "\\boxed{\\frac{63}{400}}",
        "\\frac{63}{400}",
        True,
        "boxed_solution",
        None,
    ),
    (
        TRL,
        "tests/test_rewards.py",
        "test_accuracy_reward_correct_answer 1",
        "\\boxed{\\frac{63}{400}}",
        "63/400",
        True,
        "boxed_solution",
        None,
    ),
    (
        TRL,
        "tests/test_rewards.py",
        "test_accuracy_reward_wrong_answer",
        "\\boxed{\\frac{64}{400}}",
        "\\frac{63}{400}",
        False,
        "boxed_solution",
        None,
    ),
    (
        TRL,
        "tests/test_rewards.py",
        "test_accuracy_reward_wrong_answer_no_latex",
        "\\boxed{3}",
        "6",
        False,
        "boxed_solution",
        None,
    ),
    (
        TRL,
        "tests/test_rewards.py",
        "TestCosineScaledReward test_wrong_longer_penalized_less",
        "\\boxed{\\frac{1}{2}}",
        "\\frac{1}{3}",
        False,
        "boxed_solution",
        None,
    ),
    (
        TRL,
        "tests/test_rewards.py",
        "TestCosineScaledReward test_correct_shorter_rewarded_more",
        "\\boxed{\\frac{1}{3}}",
        "\\frac{1}{3}",
        True,
        "boxed_solution",
        None,
    ),
    (
        OPEN_R1,
        "tests/test_rewards.py",
        "test_accuracy_reward_correct_answer",
        "\\boxed{\\frac{63}{400}}",
        "\\frac{63}{400}",
        True,
        "boxed_solution",
        None,
    ),
    (
        OPEN_R1,
        "tests/test_rewards.py",
        "test_accuracy_reward_wrong_answer",
        "\\boxed{\\frac{64}{400}}",
        "\\frac{63}{400}",
        False,
        "boxed_solution",
        None,
    ),
    (
        OPEN_R1,
        "tests/test_rewards.py",
        "test_accuracy_reward_wrong_answer_no_latex",
        "\\boxed{3}",
        "6",
        False,
        "boxed_solution",
        None,
    ),
    # opencompass: predictions vs references, 4 of 5 rule-correct; the fifth is marked "Wrong answer".
    *[
        (OPENCOMPASS, "tests/datasets/test_aime2025_eval.py", f"setUp case {i}", p, g, e, c, n)
        for i, (p, g, e, c, n) in enumerate(
            [
                ("\\boxed{42}", "42", True, "boxed_solution", None),
                ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", True, "boxed_solution", None),
                ("\\boxed{x^2 + 2x + 1}", "(x+1)^2", True, "symbolic_expr", None),
                (
                    "\\boxed{3.14159}",
                    "3.14",
                    True,
                    "decimal_vs_fraction",
                    "the test counts 4 of 5 right and names only case 4 wrong, so 3.14159 is taken for "
                    "3.14 (question 'What is pi?'); kept, though evalkit's rule reads 3.14 as 2 places",
                ),
                ("\\boxed{0}", "1", False, "boxed_solution", None),
            ]
        )
    ],
]

# lighteval tests/unit/metrics/test_cases/g_pass_at_k*.json, avg_at_k_math.json, pass_at_k_math.json:
# each test case's distinct (gold, sample) pairs. The tests' expected values are aggregates over the
# samples (and follow lighteval's metric, which e.g. gives 0 to every sample of 'x^2/2'), so the
# labels here are a reader's: equal when the sample is the gold's value.
_LIGHTEVAL_SAMPLES_FILE = "tests/unit/metrics/test_cases/{}.json"
_LIGHTEVAL_SAMPLES = {
    "avg_at_k_math": None,
    "pass_at_k_math": None,
    "g_pass_at_k_math": None,
    "g_pass_at_k_latex": None,
}
_SAMPLE_EQUAL = {
    ("4", "4"),
    ("12", "12"),
    ("2x", "2x"),
    ("x^2/2", "x^2/2"),
    ("3.14", "3.14"),
    ("3/4", "3/4"),
    ("3/4", "0.75"),
    ("n(n+1)/2", "n(n+1)/2"),
    ("n(n+1)/2", "n*(n+1)/2"),
    ("-2", "-2"),
    ("20", "20"),
    ("0", "0"),
    ("$\\frac{1}{2}$", "$\\frac{1}{2}$"),
    ("$2x$", "$2x$"),
    ("$\\frac{x^2}{2}$", "$\\frac{x^2}{2}$"),
    ("$x = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}$", "$x = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}$"),
    ("$\\frac{n(n+1)}{2}$", "$\\frac{n(n+1)}{2}$"),
    ("$\\frac{n(n+1)}{2}$", "$n(n+1)/2$"),
}


def _git_show(mirror: Path, repo: str, commit: str, path: str) -> str:
    git_dir = mirror / repo.replace("/", "+") / "repo"
    return subprocess.run(
        ["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _literal(node: ast.AST) -> Any:
    if isinstance(node, ast.Attribute):  # Language.ENGLISH -> "ENGLISH"
        return node.attr
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(e) for e in node.elts]
    return ast.literal_eval(node)


def _parametrize_cases(src: str) -> list[dict[str, Any]]:
    out = []
    for fn in ast.parse(src).body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        for deco in fn.decorator_list:
            if not (isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "parametrize"):
                continue
            names = [s.strip() for s in deco.args[0].value.split(",")]  # type: ignore[attr-defined]
            for i, node in enumerate(deco.args[1].elts):  # type: ignore[attr-defined]
                out.append(
                    {
                        "test": fn.name,
                        "i": i,
                        "line": node.lineno,
                        **dict(zip(names, _literal(node), strict=True)),
                    }
                )
    return out


def _src(spec: tuple[str, str, str], path: str, test: str) -> str:
    repo, commit, licence = spec
    return f"{repo} {path}::{test} ({commit[:7]}) ({licence})"


def _line(pred: str, gold: str, equal: bool, cls: str, source: str, note: str | None) -> dict[str, Any]:
    line: dict[str, Any] = {"pred": pred, "gold": gold, "equal": equal, "class": cls, "source": source}
    if note:
        line["note"] = note
    return line


def lighteval_cases(mirror: Path, seen: set[tuple[str, str]]) -> list[dict[str, Any]]:
    repo, commit, _ = LIGHTEVAL
    out = []
    for c in _parametrize_cases(_git_show(mirror, repo, commit, LIGHTEVAL_FILE)):
        key = (c["test"], c["i"])
        if c["test"] not in _LIGHTEVAL_CLASS or key in SKIP or (c["gold"], c["pred"]) in seen:
            continue
        equal, note = RELABEL.get(key, (bool(c["expected"]), None))
        test = f"{c['test']} case {c['i']} (line {c['line']})"
        out.append(
            _line(
                c["pred"],
                c["gold"],
                equal,
                _LIGHTEVAL_CLASS[c["test"]],
                _src(LIGHTEVAL, LIGHTEVAL_FILE, test),
                note,
            )
        )
    for name in _LIGHTEVAL_SAMPLES:
        data = json.loads(_git_show(mirror, repo, commit, _LIGHTEVAL_SAMPLES_FILE.format(name)))
        for case in data["test_cases"]:
            gold = case["doc"]["choices"][case["doc"]["gold_index"]]
            for sample in dict.fromkeys(case["model_response"]["text"]):
                src = _src(
                    LIGHTEVAL, _LIGHTEVAL_SAMPLES_FILE.format(name), f"'{case['name']}' sample {sample!r}"
                )
                out.append(
                    _line(
                        sample,
                        gold,
                        (gold, sample) in _SAMPLE_EQUAL,
                        "number_basic" if "math" in name else "math_delimiters",
                        src,
                        "label by reading (the test's value is an aggregate)",
                    )
                )
    return out


def nemo_cases() -> list[dict[str, Any]]:
    path = "tests/test_math_equal.py"
    out = []
    for test, pairs, equal in (
        ("test_correct_examples", _NEMO_CORRECT, True),
        ("test_incorrect_examples", _NEMO_INCORRECT, False),
    ):
        for i, (a, b, cls) in enumerate(pairs):
            orders = [(a, b)] if a == b else [(a, b), (b, a)]
            for gold, pred in orders:
                direction = "" if a == b else (" (as given)" if gold == a else " (swapped)")
                out.append(
                    _line(pred, gold, equal, cls, _src(NEMO, path, f"{test} case {i}{direction}"), None)
                )
    return out


def hendrycks_cases() -> list[dict[str, Any]]:
    path = "modeling/math_equivalence_test.py"
    return [
        _line(pred, gold, exp, cls, _src(HENDRYCKS, path, f"TestIsEquiv.{test}"), _HENDRYCKS_NOTES.get(test))
        for test, pred, gold, exp, cls in _HENDRYCKS
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mirror", type=Path, default=Path("/work/.mirror"))
    args = ap.parse_args()
    dev = [json.loads(x) for x in (HERE / "math.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    seen = {(c["gold"], c["pred"]) for c in dev}
    lines = lighteval_cases(args.mirror, seen) + nemo_cases() + hendrycks_cases()
    lines += [_line(p, g, e, c, _src(spec, path, test), n) for spec, path, test, p, g, e, c, n in TRANSCRIBED]
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for line in lines:
        if (line["gold"], line["pred"]) not in seen:
            unique.setdefault((line["gold"], line["pred"]), line)
    text = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in unique.values())
    (HERE / "heldout.jsonl").write_text(text, encoding="utf-8")
    print(f"{len(unique)} cases ({sum(x['equal'] for x in unique.values())} equal)")


if __name__ == "__main__":
    main()

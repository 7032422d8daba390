"""Every rule of the math extraction cascade and every equivalence class, each with what it must
accept and what it must keep apart (evalkit issue 11). Unit tests call the rule's own function;
the end-to-end cases go through the runner's scoring path (``boxed`` extractor + ``math`` grader)."""

from __future__ import annotations

from fractions import Fraction

from evalkit.scoring.extractors.math import (
    extract_math_answer,
    final_answer_phrase,
    final_sentence_value,
    is_answer_statement,
    repair_braces,
    value_of_sentence,
)
from evalkit.scoring.latex import answer_shape, box_gap_kind, gold_answer, group_digits, read_boxes
from evalkit.scoring.mathequiv import (
    ascii_relations,
    clock_seconds,
    decimal_comma,
    function_rhs,
    math_equal,
    mixed_number,
    relation_to_interval,
    strip_number_decorations,
    trig_degrees,
    unicode_to_latex,
)
from evalkit.scoring.registry import score_completion
from evalkit.scoring.text import strip_chat_tokens
from evalkit.types import Completion, Sample, ScoringContext


def graded(pred: str, gold: str, finish: str = "stop") -> bool:
    sample = Sample(id="1", task="t", question="q", answer=gold)
    _e, g = score_completion(Completion(pred, finish), sample, "boxed", "math", ScoringContext())
    return g.correct


# ---------------------------------------------------------------------------------------------
# The cascade, rule by rule


def test_chat_tokens_end_the_answer() -> None:
    assert (
        strip_chat_tokens("The answer is 42.<|im_end|>\n<|im_start|>user\nIs it 11?") == "The answer is 42."
    )
    assert strip_chat_tokens("<|im_start|>assistant\nThe answer is 5") == "The answer is 5"
    assert strip_chat_tokens("x = 3</s><s>[INST] next [/INST] 9") == "x = 3"
    assert (
        strip_chat_tokens("a<|eot_id|>b") == "a"
        and strip_chat_tokens("a<\uff5cend\u2581of\u2581sentence\uff5c>b") == "a"
    )
    # negative: angle brackets of maths are not tokens
    assert strip_chat_tokens("so 1 < x and x > 0, |x| < 2") == "so 1 < x and x > 0, |x| < 2"


def test_final_answer_phrases() -> None:
    assert final_answer_phrase("Final Answer: The final answer is $8$. I hope it is correct.") == (
        "8",
        "minerva",
    )
    assert final_answer_phrase("so the answer is 12.")[0] == "12"
    assert final_answer_phrase("**Answer:** 7")[0] == "7"
    assert final_answer_phrase("Final Answer: The largest $n$ is 34.")[0] == "34"
    assert final_answer_phrase("We tried several approaches here.") is None  # negative


def test_is_the_answer_statement() -> None:
    assert is_answer_statement("Hence 16 is the answer.") == "16"
    assert is_answer_statement("Hence $x=2$ is the final answer.") == "x=2"
    assert is_answer_statement("This is the answer we wanted.") is None  # no value before the phrase


def test_value_of_a_stated_sentence() -> None:
    assert value_of_sentence("The volume of $ABCDEFGH$ is 120") == "120"
    assert value_of_sentence("Jane started growing Sphere 3 hours ago") == "3"
    assert value_of_sentence("x^2 + 1") == "x^2 + 1"  # not a sentence: unchanged
    matrix = "\\begin{pmatrix} -1/3 \\\\ 2/3 \\end{pmatrix}"  # LaTeX environment names are not prose
    assert value_of_sentence(matrix) == matrix
    assert (
        extract_math_answer(f"Final Answer: The final answer is ${matrix}$. I hope it is correct.")[0]
        == matrix
    )


def test_final_sentence_value_math_and_numbers() -> None:
    assert final_sentence_value("So the probability is $\\frac{3}{8}$.") == ("\\frac{3}{8}", "last_math")
    assert final_sentence_value("Step 1: 45 - 12 = 33.\nSo each friend gets 11 stickers.") == (
        "11",
        "last_number",
    )
    assert final_sentence_value("The meeting starts at 3:30 PM.")[0] == "3:30 PM"
    assert final_sentence_value("She finished at 10:05 a.m.")[0] == "10:05 am"
    assert final_sentence_value("So x \u2265 5.")[0] == "x \u2265 5"
    assert final_sentence_value("There are 12 ways. I hope it is correct.")[0] == "12"  # skips a closing line
    assert final_sentence_value("We tried and it did not work out.") is None  # negative: no value


def test_weak_rules_never_on_a_cut_off_output() -> None:
    assert extract_math_answer("First, 12 * 3 = 36. Then we add 8 to get", finish_reason="length") == (
        None,
        "none",
    )
    assert extract_math_answer("First, 12 * 3 = 36. Then we add 8 to get 44.")[0] == "44"
    # an explicit answer written before the cut still counts
    assert extract_math_answer("so \\boxed{15} and then", finish_reason="length")[0] == "15"
    assert not graded("Therefore the area is $24$ and the perimeter", "24", finish="length")


def test_bare_answers_and_sentences() -> None:
    assert extract_math_answer("3/4") == ("3/4", "bare")
    assert extract_math_answer("Evelyn") == ("Evelyn", "bare")
    assert extract_math_answer("The discount is 25%.") == ("25%", "last_number")  # a sentence, not bare


def test_several_boxes_take_the_golds_shape() -> None:
    assert read_boxes("\\boxed{1}, \\boxed{2}") == ("1, 2", "boxes", 20)
    assert read_boxes("Part (a): \\boxed{5}. Part (b): \\boxed{7}.", ("tuple", 2))[:2] == ("(5, 7)", "boxes")
    # loosely joined boxes against a one-value gold: earlier boxes are intermediate results
    assert read_boxes("first \\boxed{1}, then on reflection \\boxed{2}", ("single", 1))[:2] == ("2", "boxed")
    assert box_gap_kind(" and ") == "tight" and box_gap_kind(" no no no no no ") == "apart"
    assert answer_shape("(5, 7)") == ("tuple", 2) and answer_shape("\\{1,2\\}") == ("list", 2)
    assert answer_shape("(3, \\infty)") == ("single", 1)  # an interval
    assert graded("So $x = \\boxed{3}$ or $x = \\boxed{5}$.", "3,5")
    assert graded("The roots are \\boxed{2} and \\boxed{-3}.", "-3, 2")
    assert not graded("Part (a): \\boxed{7}. Part (b): \\boxed{5}.", "(5, 7)")  # order matters for a tuple
    assert not graded("\\boxed{3} or \\boxed{5}", "5")  # a hedge is not an answer
    assert graded("$\\boxed{1,2}$", "\\boxed{1} papers and \\boxed{2} bins")  # gold read by the same code
    assert not graded("$\\boxed{1,2}$", "\\boxed{1} no no no no no \\boxed{2}")


def test_final_answer_after_the_last_box_wins() -> None:
    text = (
        "so $\\boxed{255}$ interest. Total $10,455. "
        "Final Answer: The final answer is $10,455$. I hope it is correct."
    )
    assert extract_math_answer(text)[0] == "10,455"
    assert extract_math_answer("The answer is 3, so \\boxed{5}.")[0] == "5"  # an earlier phrase does not


def test_broken_latex_repaired_only_when_finished() -> None:
    assert repair_braces("\\sqrt{2") == "\\sqrt{2}"
    assert repair_braces("\\boxed{5") == "5"
    assert repair_braces("5\\") == "5" and repair_braces("5}}") == "5" and repair_braces("23)") == "23"
    assert repair_braces("(1,2]") == "(1,2]"  # negative: a half-open interval is balanced
    assert graded("Final answer: \\boxed{5", "5")
    assert not graded("almost \\boxed{5", "5", finish="length")


# ---------------------------------------------------------------------------------------------
# Equivalence classes


def test_digit_grouping() -> None:
    assert group_digits("10,455") == "10455" and group_digits("1 234 567") == "1234567"
    assert group_digits("1\\,000") == "1000" and group_digits("16,\\!386.20") == "16386.20"
    assert group_digits("32, 349") == "32, 349"  # a list
    assert group_digits("12,34") == "12,34" and group_digits("1,234,5678") == "1,234,5678"
    assert group_digits("(100,200)") == "(100,200)" and group_digits("0,111") == "0,111"
    assert graded("So the total is $10,455$ dollars.", "10455")
    assert not graded("is $\\boxed{32, 349}$", "32349")
    assert not graded("The three numbers are 3,5,7.", "357")


def test_decimal_comma_rule() -> None:
    # The rule: one or two digits after a single comma (or any after `0,`) against a non-integer
    # number is a decimal comma; three digits are a thousands group.
    assert decimal_comma("1,5") == Fraction(3, 2) and decimal_comma("0,111") == Fraction(111, 1000)
    assert decimal_comma("10,455") is None
    assert graded("La respuesta es 1,5.", "1.5") and graded("\\boxed{0,5}", "\\frac{1}{2}")
    assert graded("1000,99", "1000.99")
    assert not graded(
        "Final Answer: The final answer is 10,455. I hope it is correct.", "10.455"
    )  # ambiguous
    assert graded("Final Answer: The final answer is 10,455. I hope it is correct.", "10455")
    assert not graded("\\boxed{2,5}", "25")  # never 25
    assert not graded("So the answer is 1.5.", "\\{1,5\\}")


def test_currency_units_percent_degrees() -> None:
    assert strip_number_decorations("\\$1,250", bare_units=False) == ("1,250", False)
    assert strip_number_decorations("4.5\\text{ kg}", bare_units=False) == ("4.5", False)
    assert strip_number_decorations("25\\%", bare_units=False) == ("25", True)
    assert strip_number_decorations("5 m", bare_units=False) == ("5 m", False)  # `5m` may be 5 times m
    assert strip_number_decorations("5 m", bare_units=True) == ("5", False)
    assert graded("The ticket costs \u20ac45.", "45") and graded("She earns $\\$1,250$ per month.", "1250")
    assert graded("The mass is 4.5 kg.", "4.5\\text{ kg}") and graded("The discount is 25%.", "25")
    assert graded("The angle is 45\u00b0.", "45") and graded("each angle is 120 degrees.", "120")
    assert not graded("The trip takes \\boxed{2 \\text{ hours}}.", "120")  # units are never converted
    assert not graded("\\boxed{12\\%}", "21") and not graded("\\boxed{30^\\circ}", "60")
    assert not graded("\\boxed{5x}", "5")  # a variable is not a unit


def test_clock_times() -> None:
    assert clock_seconds("3:30 PM") == clock_seconds("15:30") == (15 * 60 + 30) * 60
    assert clock_seconds("12:00 AM") == 0 and clock_seconds("6:30:00 a.m.") == clock_seconds("6:30")
    assert clock_seconds("13:00 PM") is None and clock_seconds("3:2") is None
    assert graded("The train arrives at 14:05.", "2:05 \\text{ PM}")
    assert not graded("The clock shows 11:00 PM.", "11:00 \\text{ AM}")
    assert not graded("$1:00$", "$12:00$")


def test_unicode_math() -> None:
    assert unicode_to_latex("\u221a2/2") == "\\sqrt{2}/2" and unicode_to_latex("4\u03c0") == "4\\pi"
    assert (
        unicode_to_latex("\u00bd") == "\\frac{1}{2}"
        and unicode_to_latex("x \u2208 [0, 1]") == "x \\in  [0, 1]"
    )
    assert graded("So x \u2265 5.", "x \\geq 5") and graded(
        "The answer is \u221a2/2.", "\\frac{\\sqrt{2}}{2}"
    )
    assert graded("Therefore x \u2208 [0, 1].", "[0,1]")
    assert not graded("So x \u2264 3.", "x \\geq 3") and not graded("The area is 2\u03c0.", "4\\pi")


def test_relation_spellings() -> None:
    assert ascii_relations("x >= 5") == "x \\geq  5" and ascii_relations("x \\ne 4") == "x \\neq 4"
    assert ascii_relations("\\left(") == "\\left("  # `\le` only as a whole command
    assert graded("Therefore $x \\geq 5$ is the solution.", "$x >= 5$") and graded("$x != 3$", "x \\neq 3")
    assert not graded("Hence $x<3$.", "x>3") and not graded("Thus $x \\geq 5$.", "x > 5")


def test_inequalities_against_intervals() -> None:
    assert relation_to_interval("x<-2\\text{ or }x>3") == "(-\\infty,-2)\\cup(3,\\infty)"
    assert relation_to_interval("2\\leq x<5") == "[2,5)"
    assert relation_to_interval("x=5") is None
    assert graded("\\boxed{(-\\infty, -2) \\cup (3, \\infty)}", "x < -2 \\text{ or } x > 3")
    assert graded("The solution set is $x > 3$.", "(3, \\infty)")
    assert not graded("\\boxed{(2, 5)}", "2 \\le x \\le 5") and not graded(
        "\\boxed{x \\geq -1}", "(-1, \\infty)"
    )


def test_equation_against_value() -> None:
    assert function_rhs("f(x)=x^2-1") == "x^2-1" and function_rhs("y=2x+3") == "2x+3"
    assert function_rhs("x=5") is None and function_rhs("7=11a+c") is None
    assert graded("Final Answer: The final answer is $f(x) = x^2 - 1$. I hope it is correct.", "y = x^2 - 1")
    assert graded("we get $x = 5$.", "5")
    assert not graded("\\boxed{k = 3}", "k = 4") and not graded("$11a+c$", "$7 = 11a+c$")


def test_mixed_numbers() -> None:
    assert mixed_number("2\\frac{1}{2}") == "\\frac{5}{2}" and mixed_number("3 1/4") == "\\frac{13}{4}"
    assert mixed_number("2\\frac{3}{2}") == "2\\frac{3}{2}"  # not proper: a product
    assert graded("So she walks $4\\frac{3}{8}$ miles.", "4.375") and graded("The answer is 3 1/4.", "13/4")
    assert not graded("\\boxed{2\\frac{1}{2}}", "1") and not graded("\\boxed{5\\frac{1}{3}}", "\\frac{17}{3}")


def test_complex_numbers() -> None:
    assert graded("\\boxed{2(1+i)}", "2 + 2i") and graded("The answer is $5e^{i\\pi/2}$.", "5i")
    assert not graded("\\boxed{3 - 4i}", "3 + 4i") and not graded("\\boxed{1 + i}", "1")


def test_trig_degrees_and_identities() -> None:
    assert trig_degrees("\\sin 60^\\circ") == "\\sin(\\frac{60\\pi}{180})"
    assert trig_degrees("60^\\circ") == "60^\\circ"  # a bare angle stays an angle
    assert graded("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\sin 60^\\circ")
    assert graded("\\boxed{1 - 2\\sin^2 x}", "\\cos 2x")
    assert not graded("\\boxed{\\sin 2x}", "2\\sin x") and not graded("\\boxed{\\cos x}", "\\sin x")


def test_decimals_against_fractions_at_the_tolerance() -> None:
    assert graded("\\boxed{0.3333333}", "\\frac{1}{3}") and graded("\\boxed{1.5 \\times 10^{3}}", "1500")
    assert not graded("\\boxed{0.67}", "\\frac{2}{3}") and not graded("\\boxed{3.14}", "\\pi")


def test_text_answers() -> None:
    assert graded(
        "$$\\text{The midpoints form a regular hexagon}$$", "\\text{The midpoints form a regular hexagon}"
    )
    assert graded("\\boxed{\\text{Evelyn}}", "evelyn")
    assert not graded("\\boxed{\\text{odd}}", "\\text{even}")


def test_guards_kept() -> None:
    assert not math_equal("\\frac{1}{2^{98}}", "\\frac{1}{2^{99}}").equal
    assert not math_equal("1 - \\frac{1}{e}", "1 + \\frac{1}{e}").equal
    assert not graded("Using the distance formula, the diagonal is \\(4\\sqrt{2}\\) units long.", "4")
    assert not math_equal("1,2,3,\\ldots", "3,2,1,\\ldots").equal


# ---------------------------------------------------------------------------------------------
# Rules from the held-out corpus (tests/grading_corpus/heldout.jsonl: other projects' suites)


def test_prose_in_any_script_is_not_a_bare_answer() -> None:
    # a CJK or accented sentence is prose: its final value is read, not the whole line
    assert extract_math_answer("地块面积是4000千克")[1] == "last_number"
    assert graded("计划的比例为13/28", "13/28") and graded(
        "来计算时间：因此，水池中水将在300分钟内被放完。", "300"
    )
    # negative: a short answer in another script stays a bare answer; a Greek letter is not a word
    assert extract_math_answer("北京") == ("北京", "bare")
    assert extract_math_answer("2\u03c0") == ("2\u03c0", "bare")
    assert not graded("计划的比例为13/29", "13/28")


def test_cjk_sentence_ends() -> None:
    assert graded("首先有3只鸟。因此，一共有13只鸟", "13")
    assert graded("答案：每份应该是 (\\frac{2}{5}) 吨。", "2/5")
    # negative: the value is the final sentence's, not an earlier one's
    assert not graded("总共有13只鸟。因此，现在有10只", "13")


def test_cjk_measure_word_after_a_number_is_a_unit() -> None:
    assert strip_number_decorations("858颗", bare_units=False) == ("858", False)
    assert graded("因此，瑞秋的数学作业比阅读作业多 **3页**。", "3")
    # negative: the number still has to match; a CJK word before the number is not a unit
    assert not graded("因此多 **4页**。", "3")
    assert strip_number_decorations("第3", bare_units=False) == ("第3", False)


def test_a_bold_heading_is_not_the_answer() -> None:
    assert graded("1. **确定数量**：11 * 9 = 99 2. **结论**：Haley总共有99颗弹珠。", "99")
    assert graded("**Conclusion**: so she has 99 marbles.", "99")
    # negative: a bold value without a colon after it is still the answer
    assert extract_math_answer("so the total is **99** marbles, then 3 more") == ("99", "bold")


def test_a_trailing_backslash_in_the_gold_is_broken_latex() -> None:
    assert graded("185", "185\\") and graded("185\\", "185\\")
    # negative: a row break `\\` stays, and the number still has to match
    assert not graded("186", "185\\")
    assert gold_answer("\\begin{pmatrix}1\\\\2\\end{pmatrix}") == "\\begin{pmatrix}1\\\\2\\end{pmatrix}"

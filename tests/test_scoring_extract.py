"""Golden tests for the answer extractors: positives and negatives per extractor."""

from __future__ import annotations

import random
import re

import pytest

from evalkit.scoring.extractors.mmlu_pro_official import official_mmlu_pro_answer
from evalkit.scoring.latex import find_boxes, last_box, normalize_answer
from evalkit.scoring.registry import get_extractor, known_extractors
from evalkit.scoring.text import cut_at_stop, split_reasoning
from evalkit.types import Completion, Extraction, Sample, ScoringContext

OPTS4 = ("12", "42", "7", "9")
OPTS10 = tuple(str(i) for i in range(100, 110))


def ex(
    name: str,
    text: str,
    *,
    choices: tuple[str, ...] | None = None,
    stop: tuple[str, ...] = (),
    finish: str = "stop",
    reasoning: str | None = None,
    **options: object,
) -> Extraction:
    sample = Sample(id="1", task="t", question="q", answer="", choices=choices)
    comp = Completion(text=text, finish_reason=finish, reasoning=reasoning)  # type: ignore[arg-type]
    return get_extractor(name)(comp, sample, ScoringContext(stop=stop, extract_options=options))


def test_registered_names_and_options() -> None:
    known = known_extractors()
    for name in ("exact", "boxed", "answer_line", "choice", "integer", "mmlu_pro_official"):
        assert name in known
    assert {"fallback", "bare"} <= known["boxed"]
    assert "letters" in known["choice"]


# -- boxed --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, answer",
    [
        ("so the total is \\boxed{42}.", "42"),
        ("hence $\\boxed{\\frac{1}{2}}$", "\\frac{1}{2}"),  # nested braces
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),  # escaped braces are not groups
        ("first \\boxed{1}, then on reflection \\boxed{2}", "2"),  # several boxes: the last
        ("The answer is \\boxed 5.", "5"),  # \boxed without braces
        ("\\boxed{\\boxed{3}}", "3"),  # nested boxes unwrapped
        ("\\fbox{7}", "7"),
        ("\\boxed { x^{2} }", "x^{2}"),
        ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("<think>maybe \\boxed{1}</think>So the answer is \\boxed{2}", "2"),  # think ignored
        ("Final Answer: The final answer is $x=3$. I hope it is correct.", "x=3"),  # answer-line fallback
        ("3/4", "3/4"),  # a bare answer
    ],
)
def test_boxed_positive(text: str, answer: str) -> None:
    e = ex("boxed", text)
    assert (e.status, e.answer) == ("ok", answer)


def test_boxed_negative() -> None:
    long_text = "We tried many things and none of them worked out in the end, so I stop here. " * 3
    assert ex("boxed", long_text).status == "no_answer"
    assert ex("boxed", "\\boxed{}").status == "no_answer"  # an empty box is no answer
    assert ex("boxed", "almost \\boxed{5", finish="length").status == "truncated"  # cut-off box
    assert ex("boxed", "The answer is 7", fallback="none", bare=False).status == "no_answer"
    # `\boxedtext` is not a box (the weak last-number rule may still read the sentence's 5)
    text = "\\boxedtext{5} and more words that are not an answer at all in any way here ok"
    assert ex("boxed", text).method != "boxed"
    assert ex("boxed", text, fallback="none", bare=False).answer is None


def test_boxed_reasoning_is_never_searched() -> None:
    # A box only inside the reasoning with nothing after it: no answer, not the reasoning's box.
    e = ex("boxed", "<think>the answer is \\boxed{9}</think>")
    assert e.status == "no_answer" and e.answer is None
    # The opening tag in the prompt template: the closing tag alone splits.
    assert ex("boxed", "thinking \\boxed{1}</think>\\boxed{4}").answer == "4"
    # Output cut inside the reasoning.
    e = ex("boxed", "<think>let me see \\boxed{3} hmm", finish="length")
    assert (e.status, e.method) == ("truncated", "truncated_in_reasoning")
    # A backend that returns reasoning apart and ran out of tokens in it.
    assert ex("boxed", "", reasoning="long thoughts", finish="length").status == "truncated"


def test_boxed_blank_is_abstention() -> None:
    e = ex("boxed", "I am not sure, so \\boxed{\\text{blank}}")
    assert (e.status, e.answer) == ("abstain", None)


def test_boxed_stop_sequences_cut_first() -> None:
    text = "\\boxed{1}\n\nQuestion: what is 1+1?\nAnswer: \\boxed{2}"
    assert ex("boxed", text, stop=("Question:",)).answer == "1"
    assert ex("boxed", text).answer == "2"


def test_find_boxes_is_linear_on_unbalanced_input() -> None:
    text = "\\boxed{" * 100_000  # every box unclosed
    assert find_boxes(text) == []
    assert last_box("\\boxed{" + "{" * 5000 + "5" + "}" * 5000 + "}").content.endswith("}")


# -- answer_line --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, answer, method",
    [
        (
            "Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.",
            "\\frac{1}{2}",
            "minerva",
        ),
        ("Final Answer: The final answer is 3.5. I hope it is correct.", "3.5", "minerva"),
        (
            "Final Answer: The final answer is $\\$32,\\!348$. I hope it is correct.",
            "\\$32,\\!348",
            "minerva",
        ),
        ("Working...\nThe answer is 42.", "42", "answer_line"),
        ("So the answer is 3.5. Done.", "3.5", "answer_line"),
        ("Answer: $x^2+1$", "x^2+1", "answer_line"),
        ("**Answer:** 12", "12", "answer_line"),
        ("The final answer is:\n\n$$17$$", "17", "answer_line"),
        ("The answer is $5$. Wait, I made an error.\nThe answer is $6$.", "6", "answer_line"),  # last wins
        ("Many steps here.\nTherefore we get **-4**", "-4", "bold"),
    ],
)
def test_answer_line_positive(text: str, answer: str, method: str) -> None:
    e = ex("answer_line", text)
    assert (e.answer, e.method) == (answer, method)


def test_answer_line_negative() -> None:
    text = "We consider the problem.\nIt has several cases that we examine one by one.\nNothing more to say."
    assert ex("answer_line", text).status == "no_answer"
    assert ex("answer_line", "The answered question was hard\nand long", bare=False).status == "no_answer"


# -- choice -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, letter, method",
    [
        ("Let's think step by step. ... The answer is (B).", "B", "answer_is"),
        ("the answer is (c)", "C", "answer_is"),  # case-insensitive
        ("The correct answer is: **D**", "D", "answer_is"),
        ("Answer: C", "C", "answer_colon"),
        ("**Answer:** (A)", "A", "answer_colon"),
        ("Thus \\boxed{D}", "D", "boxed"),
        ("Thus $\\boxed{\\text{(B)}}$", "B", "boxed"),
        ("so the answer is 42.", "B", "option_text"),  # the option text itself counts
        ("Therefore \\boxed{7}", "C", "boxed"),  # an option's text in a box
        ("The answer is (A). Wait, I misread the question.\nAnswer: B", "B", "answer_colon"),  # last wins
        ("Going through the options, the best fit is **C**", "C", "closing_statement"),
        ("### Final Answer\n**C**", "C", "bold"),
        ("After all of that, my choice:\n(D)", "D", "answer_colon"),
        ("Long reasoning here.\n\nD", "D", "lone_letter"),
        ("Long reasoning here.\n\n(b)", "B", "lone_letter"),
        ("<think>The answer is (A)</think>The answer is (C)", "C", "answer_is"),
        ("B. 42\nThis is because six times seven is forty-two.", "B", "leading_letter"),
        (" (C)\nsince 7 is prime", "C", "leading_letter"),
        ("Option D is correct.", "D", "option_is"),
        ("After checking, option (B) is the right one.", "B", "option_is"),
        ("Six times seven is 42, which is (B).", "B", "option_is"),
    ],
)
def test_choice_positive(text: str, letter: str, method: str) -> None:
    e = ex("choice", text, choices=OPTS4)
    assert (e.status, e.answer, e.method) == ("ok", letter, method)


@pytest.mark.parametrize(
    "text, choices",
    [
        ("The answer is (F).", OPTS4),  # not one of this item's four options
        ("the answer is a bit unclear to me", OPTS4),  # English "a", not option A
        ("The answer is A or B, I cannot decide.", OPTS4),  # ambiguous
        ("I really cannot tell which one is right here.", OPTS4),
        ("The answer is not clear.", OPTS4),
        ("Answer: I think it depends.", OPTS10),  # the pronoun, not option I
        ("A good approach is to compute the product first.\nIt is large.", OPTS4),  # the article
        ("I think so.\nMaybe.", OPTS10),
        ("The answer is (A) or (B), most likely (B).", OPTS4),  # a hedge, even with parentheses
        ("A: Let's think step by step. The energy is 5 J.", OPTS10),  # a dialogue label, not option A
        # The latest answer hedges: no answer, not the older one it replaced.
        ("Earlier I thought the answer is (C). On reflection, the answer is (A) or (B).", OPTS4),
    ],
)
def test_choice_negative(text: str, choices: tuple[str, ...]) -> None:
    e = ex("choice", text, choices=choices)
    assert e.status == "no_answer" and e.answer is None


def test_choice_letters_follow_the_items_options() -> None:
    assert ex("choice", "The answer is (J).", choices=OPTS10).answer == "J"
    assert ex("choice", "The answer is (J).", choices=OPTS4).answer is None
    # Without options: the letters option, else A-J.
    assert ex("choice", "The answer is (E).", letters="ABCD").answer is None
    assert ex("choice", "The answer is (E).", letters=5).answer == "E"
    assert ex("choice", "The answer is (G).").answer == "G"


def test_choice_cuts_at_stop_sequences_before_searching() -> None:
    # A base model keeps writing an invented question with its own answer.
    text = (
        "The answer is (A).\n\nQuestion: Which is larger?\nOptions: ...\n"
        "Answer: Let's think. The answer is (C)."
    )
    assert ex("choice", text, choices=OPTS4, stop=("Question:",)).answer == "A"
    assert ex("choice", text, choices=OPTS4).answer == "C"


def test_choice_abstention_and_amc_box() -> None:
    e = ex("choice", "Too hard, \\boxed{blank}", choices=("1", "2", "3", "4", "5"))
    assert (e.status, e.answer) == ("abstain", None)
    e = ex("choice", "$\\boxed{\\textbf{(C) }42}$", choices=("1", "2", "42", "4", "5"))
    assert e.answer == "C"


# -- integer ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, answer",
    [
        ("\\boxed{033}", "33"),
        ("\\boxed{1,000}", "1000"),
        ("\\boxed{1\\,000}", "1000"),
        ("so we get \\boxed{\\text{ 204 }}", "204"),
        ("The answer is 42.", "42"),
        ("007", "7"),
        ("\\boxed{33.0}", "33"),
        ("\\boxed{-5}", "-5"),
        ("\\boxed{12^\\circ}", "12"),
    ],
)
def test_integer_positive(text: str, answer: str) -> None:
    e = ex("integer", text)
    assert (e.status, e.answer) == ("ok", answer)


def test_integer_negative() -> None:
    e = ex("integer", "\\boxed{\\frac{1}{2}}")
    assert (e.answer, e.method) == ("\\frac{1}{2}", "boxed_not_integer")  # kept as written, graded wrong
    assert ex("integer", "so we get 5 apples and 12 pears").status == "no_answer"
    assert ex("integer", "so we get 5 apples and 12 pears", last_number=True).answer == "12"


# -- official MMLU-Pro --------------------------------------------------------------------------


def _official(text: str) -> str | None:
    """The official script's three functions, verbatim."""
    m = re.search(r"answer is \(?([A-J])\)?", text)
    if m:
        return m.group(1)
    m = re.search(r".*[aA]nswer:\s*([A-J])", text)
    if m:
        return m.group(1)
    m = re.search(r"\b[A-J]\b(?!.*\b[A-J]\b)", text, re.DOTALL)
    return m.group(0) if m else None


@pytest.mark.parametrize(
    "text, letter",
    [
        ("the answer is (C). Later: the answer is (D).", "C"),  # first match, unlike the strict one
        ("Answer: B\nmore\nAnswer: D", "B"),  # the first line holding "Answer:"
        ("Answer: B and then Answer: D", "D"),  # that line's last one
        ("The Answer is (B)", "B"),  # case-sensitive first pattern; falls to the last letter
        ("I pick D. No, E", "E"),
        ("nothing here", None),
    ],
)
def test_official_mmlu_pro_cascade(text: str, letter: str | None) -> None:
    assert official_mmlu_pro_answer(text)[0] == letter == _official(text)


def test_official_mmlu_pro_matches_the_official_regexes() -> None:
    rng = random.Random(0)
    pieces = [
        "answer is ",
        "Answer:",
        "answer:",
        " ",
        "\n",
        "(",
        ")",
        "A",
        "B",
        "J",
        "K",
        "a",
        "x",
        ".",
        "Answer: ",
        "the answer is (",
        "answers:",
        "I",
    ]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        assert official_mmlu_pro_answer(text)[0] == _official(text), text
    e = ex("mmlu_pro_official", "The answer is (K)... so B", choices=OPTS10)
    assert e.answer == "B"


# -- text helpers -------------------------------------------------------------------------------


def test_split_reasoning_and_stop() -> None:
    assert split_reasoning("a<think>b</think>c") == ("ac", "b", False)
    assert split_reasoning("no tags") == ("no tags", None, False)
    rest, reasoning, truncated = split_reasoning("x<think>never closed")
    assert (rest, truncated) == ("x", True)
    assert cut_at_stop("abc Question: def", ("Question:", "zzz")) == "abc "
    assert cut_at_stop("abc", ("",)) == "abc"


def test_normalize_answer_keeps_values() -> None:
    assert normalize_answer("$\\dfrac{1}{2}$.") == "\\frac{1}{2}"
    assert normalize_answer("\\left( 3, \\frac{\\pi}{2} \\right)") == "(3,\\frac{\\pi}{2})"
    assert normalize_answer("1, 2, 3, \\ldots") == "1,2,3,\\ldots"
    assert normalize_answer("1,2,...") == "1,2,..."  # an ellipsis is not a full stop
    assert normalize_answer("1.5e3") == "1.5\\times10^{3}"


def test_aops_style_boxes() -> None:
    """AoPS solutions box AIME answers as ``\\textbf{(245) }``."""
    assert ex("integer", "so the answer is $\\boxed{\\textbf{(245) }}$").answer == "245"
    assert ex("integer", "$\\boxed{\\textbf{(023)}}$").answer == "23"


@pytest.mark.parametrize(
    "text, letter",
    [
        ("The answer is (B).\nTo verify: if option A is correct, then the sum is odd.", "B"),
        ("Answer: B\nNote that option C is correct only for Italy.", "B"),
        ("The answer is (B). Checking: assume option D is correct; that fails.", "B"),
        ("The answer is (A) and (B) is wrong.", "A"),  # "and (B) is ..." is no hedge
    ],
)
def test_choice_explicit_answer_beats_option_phrases_and_non_hedges(text: str, letter: str) -> None:
    e = ex("choice", text, choices=OPTS4)
    assert (e.status, e.answer) == ("ok", letter)


def test_choice_letter_label_with_the_options_text() -> None:
    opts = ("Paris", "Rome", "Berlin", "Madrid")
    e = ex("choice", "B: Rome is the capital of Italy.", choices=opts)
    assert (e.answer, e.method) == ("B", "leading_letter")


# -- choice: the tiers added for issue 11 (each with positives and negatives) --------------------

FRUIT = ("apple", "banana", "cherry", "date")


@pytest.mark.parametrize(
    "text, letter, method",
    [
        # a closing "... is (X)." without an answer phrase
        (
            "Only one value works.\nThe only option that satisfies this condition is (C).",
            "C",
            "closing_statement",
        ),
        ("The most likely explanation for these findings is (D).", "D", "closing_statement"),
        ("The incorrect statement is (B).", "B", "closing_statement"),
        ("The incorrect statement is B.", "B", "closing_statement"),  # bare, but about the options
        ("The only option that fits is (A), not (B).", "A", "closing_statement"),
        ("The best explanation is (D); (A) and (C) ignore the data.", "D", "closing_statement"),
        ("A is too small and C ignores friction. Therefore I think it's B.", "B", "closing_statement"),
        # a first-person choice, or a choice that the elimination leaves
        ("Weighing everything, I'd go with D.", "D", "chosen"),
        ("I would pick (B) since it is the only consistent one.", "B", "chosen"),
        ("So I'll choose option A.", "A", "chosen"),
        ("I'd go with D rather than A.", "D", "chosen"),
        ("Option A ignores drag. Option C too. That leaves B.", "B", "chosen"),
        ("A is wrong and C contradicts the data. So D.", "D", "chosen"),
        ("The result is 18, so it corresponds to choice C.", "C", "chosen"),
        # an answer phrase with an adverb, a quoted letter
        ("The answer is for sure D.", "D", "answer_is"),
        ("The answer is clearly (A).", "A", "answer_is"),
        ('Answer: "C"', "C", "answer_colon"),
        ("The answer is 'B'.", "B", "answer_is"),
        ("Final answer: \u201cD\u201d", "D", "answer_colon"),
        ("Answer: `A`", "A", "answer_colon"),
        ('Answer: "C" (B was a distractor)', "C", "answer_colon"),
        # the letter opens its clause and is called correct
        ("Therefore, (C) is the correct answer.", "C", "option_is"),
        ("After all that, B is correct.", "B", "option_is"),
        # a letter followed by its own option text
        ("B banana, since A is not yellow", "B", "leading_letter"),
        ("C cherry", "C", "lone_letter"),
    ],
)
def test_choice_conclusions(text: str, letter: str, method: str) -> None:
    e = ex("choice", text, choices=FRUIT)
    assert (e.status, e.answer, e.method) == ("ok", letter, method)


@pytest.mark.parametrize(
    "text",
    [
        # listings of the options
        "A. apple\nB. banana\nC. cherry\nD. date",
        "(A) apple (B) banana (C) cherry (D) date",
        "**A.** apple\n**B.** banana",
        "A) apple\nB) banana\nC) cherry\nD) date",
        "The options are (A) apple and (B) banana.",
        # hypotheticals and conditionals
        "Assuming the answer is A, we would expect the reaction to be exothermic.",
        "If we pick (B), the constraint fails; if we pick (A), it also fails.",
        "If it's B, then the sum is odd.",
        # hedges and two letters
        "The answer is A/B.",
        "Answer: B, D",
        "(B) and (D)",
        "I'd go with B or C.",
        "Maybe it's D? Or maybe C. I cannot decide.",
        "It could be (A), but the data are thin.",
        # a letter that names something else
        "We choose A to be the origin and compute the distances.",
        "We pick B as the reference point.",
        "The matrix is $B$.",
        "Point B is the midpoint, and the midpoint of segment AC is B.",
        "Point B is the best place to stand, since the torque is smallest there.",
        "B is correct only for small x, so let us check A.",
        "So, A is wrong.",
        "Hence A = 5 and B = 3.",
        "It's not B.",
        "Is it (C)? Let's check the units first.",
        "The first statement is (A) true and the second false.",
        "Thus, (i), (ii), and (iii) are true.",
        "B bananas are yellow",  # 'B' then a word that is not option B's own text
    ],
)
def test_choice_conclusion_negatives(text: str) -> None:
    e = ex("choice", text, choices=FRUIT)
    assert (e.status, e.answer) == ("no_answer", None), e


def test_choice_listing_without_option_texts_is_no_answer() -> None:
    assert ex("choice", "A. 12\nB. 15\nC. 18\nD. 21").answer is None
    assert ex("choice", "A. 12\nB. 15\nC. 18\nD. 21", choices=("12", "15", "18", "21")).answer is None
    # one option with its own text at the end is the answer, not a listing
    assert ex("choice", "Only one fits.\n\nD. 21", choices=("12", "15", "18", "21")).answer == "D"


def test_choice_conclusions_stay_linear_on_hostile_input() -> None:
    # Thousands of "is (A)" / "I pick" anchors: bounded candidates, no quadratic scan.
    text = "The only option is (A) or (B). " * 5000 + "I'd go with " * 5000
    e = ex("choice", text, choices=FRUIT)
    assert e.answer is None

"""Tests of final-answer extraction (scireflect.verifiers.extract)."""

from __future__ import annotations

import time

import pytest

from scireflect.verifiers import Extraction, extract_final_answer
from scireflect.verifiers.extract import NoFinalAnswer, find_final_answer, strip_answer_delimiters


@pytest.mark.parametrize(
    ("text", "expected", "method"),
    [
        ("So the total is $\\boxed{72}$.", "72", "boxed"),
        ("first \\boxed{3} then we fix a mistake: \\boxed{4}", "4", "boxed"),
        ("$\\boxed{\\frac{\\sqrt{3}}{2}}$", "\\frac{\\sqrt{3}}{2}", "boxed"),
        ("\\boxed{\\left( -\\frac{1}{4}, -2 \\right)}", "\\left( -\\frac{1}{4}, -2 \\right)", "boxed"),
        ("the set is \\boxed{\\{1, 2\\}}", "\\{1, 2\\}", "boxed"),
        ("answer: \\fbox{B}", "B", "boxed"),
        ("hence \\boxed 5.", "5", "boxed"),
        ("\\boxed {  $12$ }.", "12", "boxed"),
        ("We get 5 apples.\nAnswer: 17", "17", "answer_line"),
        ("work...\n**Final Answer:** $\\frac{1}{2}$.", "\\frac{1}{2}", "answer_line"),
        ("Thus the answer is $(B)$.", "(B)", "answer_line"),
        ("Answer:\n\n  42  \n", "42", "answer_line"),
        ("I computed 3 + 4 = 7, so she has 1,250 coins left", "1,250", "last_number"),
        ("the ratio is 3/4", "3/4", "last_number"),
        ("it cools to \u22125 degrees", "-5", "last_number"),
    ],
)
def test_extract_cases(text: str, expected: str, method: str) -> None:
    ex = extract_final_answer(text)
    assert ex == Extraction(expected, method)


@pytest.mark.parametrize("text", ["", "no digits and no box here", "\\boxed{", "\\boxed{}"])
def test_extract_nothing(text: str) -> None:
    assert extract_final_answer(text) is None


# --- no final answer: the last box empty or cut off, a truncated or looping response (item 12) -----

@pytest.mark.parametrize(("text", "kind"), [
    ("There are 3 cases to check, so the count is \\boxed{}", "empty_box"),
    ("There are 3 cases to check, so the count is \\boxed{ }.", "empty_box"),
    ("\\boxed{9} and an empty box at the end \\boxed{}", "empty_box"),   # the last box is the answer
    ("\\boxed{7} and then a truncated \\boxed{8", "unclosed_box"),
    ("There are 3 cases.\n\nCase 1 gives 2.\n\nLet me verify each case carefully.", "none"),
    ("Let's recheck the options:\n(A) 50 (B) 75 (C) 350 (D) 525", "none"),  # numbers of an option listing
    ("Let's recheck the options:\n(D) 525", "none"),
])
def test_no_final_answer(text: str, kind: str) -> None:
    found = find_final_answer(text)
    assert isinstance(found, NoFinalAnswer) and found.kind == kind, found
    assert extract_final_answer(text) is None


def test_a_truncated_response_has_no_final_answer() -> None:
    text = "We add 48 and 24 to get \\boxed{72}. Let me double-check this by another route: 48 + 2"
    assert extract_final_answer(text) == Extraction("72", "boxed")
    for reason in ("length", "max_tokens"):
        found = find_final_answer(text, finish_reason=reason)
        assert isinstance(found, NoFinalAnswer) and found.kind == "truncated"
        assert extract_final_answer(text, finish_reason=reason) is None
    assert find_final_answer(text, finish_reason="stop") == Extraction("72", "boxed")


JEE_LOOP = ("The work done is W = nR(T2 - T1) ... so the heat is about 525 J.\n"
            + "Let's recheck the options:\n(A) 50\n(B) 75\n(C) 350\n(D) 525\n" * 30
            + "Let's recheck the options:\n(A) 50\n(B) 7")


def test_a_looping_response_has_no_final_answer() -> None:
    found = find_final_answer(JEE_LOOP)
    assert isinstance(found, NoFinalAnswer) and found.kind == "degenerate", found
    assert "repeat" in found.explanation and "525" not in found.explanation


def test_the_last_number_comes_from_the_concluding_line() -> None:
    assert extract_final_answer("So 48 + 24 = 72.\n\nNatalia sold 72 clips.") == Extraction("72", "last_number")
    assert extract_final_answer("\\[ 50 - 15 = 35 \\]\n") == Extraction("35", "last_number")
    assert extract_final_answer("x = 525 (D)") == Extraction("525", "last_number")  # before the option label
    text = "The sum is 17.\n\nWe should double-check the arithmetic."
    assert extract_final_answer(text) is None


def test_extract_non_string_returns_none() -> None:
    assert extract_final_answer(None) is None  # type: ignore[arg-type]
    assert extract_final_answer(123) is None  # type: ignore[arg-type]


def test_box_wins_over_answer_line_and_numbers() -> None:
    text = "Answer: 3\nAfter checking, 5 is wrong; the result is \\boxed{4}. Then 99."
    assert extract_final_answer(text) == Extraction("4", "boxed")


def test_extraction_is_linear_on_adversarial_input() -> None:
    """Thousands of unclosed boxes, long digit runs and loops must not cause quadratic scans."""
    counting = " ".join(str(i) for i in range(30_000))  # long, and no loop
    for text, kind in [("\\boxed{" * 50_000 + "1" * 100_000 + "{" * 50_000, "degenerate"),
                       ("\\boxed{" * 50_000 + counting, "unclosed_box"),
                       ("\\boxed{1}" + "x" * 30_000 + "\\boxed{2}" * 20_000, "degenerate"),
                       ("x " + "1 " * 200_000, "degenerate"), ("12 3" * 100_000, "degenerate")]:
        t0 = time.perf_counter()
        found = find_final_answer(text)
        assert time.perf_counter() - t0 < 2.0
        assert isinstance(found, NoFinalAnswer) and found.kind == kind


def test_strip_delimiters() -> None:
    assert strip_answer_delimiters(" $$x+1$$. ") == "x+1"
    assert strip_answer_delimiters("\\(\\pi\\)") == "\\pi"
    assert strip_answer_delimiters("\\[ 0.5 \\]") == "0.5"
    assert strip_answer_delimiters("**12**") == "12"
    assert strip_answer_delimiters("0.5") == "0.5"

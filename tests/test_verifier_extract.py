"""Tests of final-answer extraction (scireflect.verifiers.extract)."""

from __future__ import annotations

import time

import pytest

from scireflect.verifiers import Extraction, extract_final_answer
from scireflect.verifiers.extract import strip_answer_delimiters


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
        ("\\boxed{7} and then a truncated \\boxed{8", "7", "boxed"),
        ("\\boxed{9} and an empty box \\boxed{}", "9", "boxed"),
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


def test_extract_non_string_returns_none() -> None:
    assert extract_final_answer(None) is None  # type: ignore[arg-type]
    assert extract_final_answer(123) is None  # type: ignore[arg-type]


def test_box_wins_over_answer_line_and_numbers() -> None:
    text = "Answer: 3\nAfter checking, 5 is wrong; the result is \\boxed{4}. Then 99."
    assert extract_final_answer(text) == Extraction("4", "boxed")


def test_extraction_is_linear_on_adversarial_input() -> None:
    """Thousands of unclosed boxes and long digit runs must not cause quadratic scans."""
    text = "\\boxed{" * 50_000 + "1" * 100_000 + "{" * 50_000
    t0 = time.perf_counter()
    ex = extract_final_answer(text)
    assert time.perf_counter() - t0 < 2.0
    assert ex is not None and ex.method == "last_number"


def test_strip_delimiters() -> None:
    assert strip_answer_delimiters(" $$x+1$$. ") == "x+1"
    assert strip_answer_delimiters("\\(\\pi\\)") == "\\pi"
    assert strip_answer_delimiters("\\[ 0.5 \\]") == "0.5"
    assert strip_answer_delimiters("**12**") == "12"
    assert strip_answer_delimiters("0.5") == "0.5"

"""Leakage check for answer-guided traces: does the solution merely restate the given answer?

An answer-guided revision is shown the reference answer (SciGLM's reflective prompt; STaR's
rationalization, Zelikman et al. 2022). A good one derives it; a bad one states it and pads. A trace
is flagged when any of these holds (reason codes in brackets):

* ``[answer_first]`` the reference answer (as a boxed value or its number) appears in the first
  ``first_sentences`` sentences of the solution, before any derivation; for a multiple-choice question,
  those sentences state the reference option letter(s) as the answer (``\\boxed{B}``, "the answer is
  (B)", "the correct options are A, B and D", "(B) is correct", or the solution opens with "(B)"):
  the whole set, for JEEBench ``MCQ(multiple)``;
* ``[too_short]``    the solution has fewer than ``min_words`` words;
* ``[given_phrase]`` it copies the prompt's wording about a given answer ("the correct answer is",
  "the correct final answer", "we are given that the answer", "as given", ...);
* ``[no_steps]``     it holds no equation and no number other than the answer's own.

A question is multiple-choice when the answer verifier checks it as one
(:func:`scireflect.verifiers.answer.select_check`: ``choices`` given, JEEBench ``question_type`` ``MCQ`` or
``MCQ(multiple)`` with the options written in the question text, TheoremQA ``answer_type`` ``option``).
Option letters are matched in capitals only, so "the answer is a ratio" does not state option A.

The same function runs on any trace; export applies its policy to answer-guided ones only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from scireflect.verifiers.answer import select_check

GIVEN_PHRASES = (
    "the correct answer is", "the correct final answer", "correct final answer is", "answer was given",
    "answer is given", "given answer", "given that the answer", "as given", "we are told the answer",
    "the answer provided", "provided answer", "we know the answer",
)

_NUM = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")
# one or more option letters: "B", "(B)", "ABD", "A, B and D", "(A), (C)"; capitals only
_LETTERS = r"[(\[]?[A-H][)\]]?(?:(?:\s*(?:,|;|&|\band\b|\bor\b)\s*|\s?)[(\[]?[A-H][)\]]?)*(?![A-Za-z0-9])"
# ... stated as the answer
_STATED_LETTERS = re.compile(rf"""
    (?: \\boxed\{{ \s* (?:\\text\{{\s*)?                                     # \boxed{{B}}, \boxed{{\text{{(B)}}}}
      | (?i: \b(?:answers?|correct\s+(?:options?|choices?|statements?))         # the answer is (B), Answer: ABD,
             (?: [\s*:] | \b(?:is|are|would\s+be|will\s+be)\b )*               #   the correct options are A, B and D
             (?: (?:options?|choices?) [\s*:]* )? )
    ) (?P<stated>{_LETTERS})
    | (?P<judged>{_LETTERS}) \s+ (?i: (?:is|are) \s+ (?:the\s+)? (?:correct|right|true) \b)   # (B) is correct
    | \A [\s*\#>]* (?P<opening>[(\[][A-H][)\]] (?:\s*(?:,|&|\band\b)?\s*[(\[][A-H][)\]])*)    # a solution that opens "(B) ..."
    """, re.VERBOSE)


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+", text.strip())
    return [p for p in parts if p.strip()]


def _numbers(text: str) -> list[float]:
    out = []
    for m in _NUM.findall(text):
        try:
            out.append(float(m.replace(",", "")))
        except ValueError:
            pass
    return out


def _option_letters(answer: str) -> set[str] | None:
    """The option letters of a reference answer (``B``, ``(b)``, ``ABD``, ``A, C``, ``\\text{(B)}``), or ``None``."""
    plain = re.sub(r"\\text\{([^{}]*)\}", r"\1", answer).strip().strip("$").strip()
    plain = re.sub(r"\b(?:and|or)\b", ",", plain, flags=re.I).upper()
    return set(re.findall(r"[A-H]", plain)) if re.fullmatch(_LETTERS, plain) else None


def _states_letters(head: str, letters: set[str]) -> bool:
    """Whether ``head`` states exactly the option set ``letters`` as the answer (see ``_STATED_LETTERS``)."""
    return any(set(re.findall(r"[A-H]", m.group("stated") or m.group("judged") or m.group("opening"))) == letters for m in _STATED_LETTERS.finditer(head))


def _answer_forms(answer: str) -> tuple[list[str], list[float]]:
    answer = answer.strip().strip("$").strip()
    forms = [f"\\boxed{{{answer}}}", answer]
    nums = _numbers(answer) if _NUM.fullmatch(answer.replace(" ", "")) else []
    return [f.lower() for f in forms if len(f) >= 2 or nums], nums


def leakage_flags(response: str, question: Mapping[str, Any], *, first_sentences: int = 2, min_words: int = 20) -> list[str]:
    """Reason codes (see the module docstring) for one solution; ``[]`` when it looks derived.

    Args:
        response: the solution text.
        question: the question record; ``answer`` is the reference answer; ``choices``, ``question_type``
            or ``answer_type`` mark a multiple-choice question (see the module docstring).
        first_sentences: how many leading sentences count as "before any derivation".
        min_words: fewer words than this is ``too_short``.
    """
    flags: list[str] = []
    text = response or ""
    low = text.lower()
    answer = str(question.get("answer") or "").strip()
    sentences = _sentences(text)
    head = " ".join(sentences[:first_sentences]).lower()
    letters = _option_letters(answer) if answer and select_check(question) == "choice" else None
    if letters:
        if _states_letters(" ".join(sentences[:first_sentences]), letters):
            flags.append("answer_first")
    elif answer:
        forms, nums = _answer_forms(answer)
        head_nums = _numbers(head)
        if any(f and f in head for f in forms) or (nums and any(abs(n - nums[0]) <= 1e-9 * max(1.0, abs(nums[0])) for n in head_nums)):
            # a number that only restates the problem's own data is not the answer leaking
            if not (nums and nums[0] in _numbers(str(question.get("question", ""))) and not any(f in head for f in forms[:1])):
                flags.append("answer_first")
    if len(text.split()) < min_words:
        flags.append("too_short")
    if any(p in low for p in GIVEN_PHRASES):
        flags.append("given_phrase")
    answer_nums = set(_numbers(answer)) if answer else set()
    other_nums = [n for n in _numbers(text) if n not in answer_nums]
    if "=" not in text and len(other_nums) < 2:
        flags.append("no_steps")
    return flags

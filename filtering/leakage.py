"""Leakage check for answer-guided traces: does the solution merely restate the given answer?

An answer-guided revision is shown the reference answer (SciGLM's reflective prompt; STaR's
rationalization, Zelikman et al. 2022). A good one derives it; a bad one states it and pads. A trace
is flagged when any of these holds (reason codes in brackets):

* ``[answer_first]`` the reference answer (as a boxed value, an option letter, or its number) appears in
  the first ``first_sentences`` sentences of the solution, before any derivation;
* ``[too_short]``    the solution has fewer than ``min_words`` words;
* ``[given_phrase]`` it copies the prompt's wording about a given answer ("the correct answer is",
  "the correct final answer", "we are given that the answer", "as given", ...);
* ``[no_steps]``     it holds no equation and no number other than the answer's own.

The same function runs on any trace; export applies its policy to answer-guided ones only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

GIVEN_PHRASES = (
    "the correct answer is", "the correct final answer", "correct final answer is", "answer was given",
    "answer is given", "given answer", "given that the answer", "as given", "we are told the answer",
    "the answer provided", "provided answer", "we know the answer",
)

_NUM = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


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


def _answer_forms(answer: str, is_choice: bool) -> tuple[list[str], list[float]]:
    answer = answer.strip().strip("$").strip()
    forms = [f"\\boxed{{{answer}}}"]
    if is_choice and re.fullmatch(r"[A-Za-z]", answer):
        forms += [f"({answer.upper()})", f"option {answer.upper()}", f"answer is {answer.upper()}"]
        return [f.lower() for f in forms], []
    forms.append(answer)
    nums = _numbers(answer) if _NUM.fullmatch(answer.replace(" ", "")) else []
    return [f.lower() for f in forms if len(f) >= 2 or nums], nums


def leakage_flags(response: str, question: Mapping[str, Any], *, first_sentences: int = 2, min_words: int = 20) -> list[str]:
    """Reason codes (see the module docstring) for one solution; ``[]`` when it looks derived.

    Args:
        response: the solution text.
        question: the question record; ``answer`` is the reference answer, ``choices`` marks a
            multiple-choice question.
        first_sentences: how many leading sentences count as "before any derivation".
        min_words: fewer words than this is ``too_short``.
    """
    flags: list[str] = []
    text = response or ""
    low = text.lower()
    answer = str(question.get("answer") or "").strip()
    sentences = _sentences(text)
    head = " ".join(sentences[:first_sentences]).lower()
    if answer:
        forms, nums = _answer_forms(answer, bool(question.get("choices")))
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

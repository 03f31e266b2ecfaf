"""Cheap answers checked in the runner's process; everything that parses LaTeX stays in the sandbox.

The sandboxed verifier (:class:`~scireflect.verifiers.SandboxedAnswerVerifier`) sends every check
to a worker process, because sympy's LaTeX parser can be made to run for hours or eat all memory
by a few characters. A plain decimal number compared with a plain decimal reference, or an option
letter with an option letter, never reaches that parser (:func:`~scireflect.verifiers.verify_answer`
compares them numerically or as letters in 0.07-0.17 ms), but the round trip to the worker costs the
runner about 1.8 ms of CPU per check (issue 17's profile). :class:`InlineCheapAnswers` runs exactly
those checks in-process, with the same function and the same settings, so the verdict is the one
the sandbox would give; anything else goes to the sandbox as before.

What counts as cheap (both the answer extracted from the response and the reference): a decimal
number of at most 30 characters (``-12``, ``3.50``; no exponent, no LaTeX, no unit), or one option
letter ``A``-``Z`` on a question with ``choices``. A question with a ``unit``, an ``answer_type``, a
``question_type`` or an ``mc_path`` (a multiple-choice question solved without its options) always goes
to the sandbox. So does every check while the step checker is on
(``[verifier] steps`` ``gate`` or ``flag``, the default): it parses the whole response, which only
the sandbox may do; the inline path is for runs with ``steps = "off"``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from time import perf_counter
from typing import Any

from ..verifiers import SandboxedAnswerVerifier, SubjectRouter, Verdict, extract_final_answer, verify_answer
from ..verifiers.base import AnswerVerifier, averify_response, verify_response

_NUMBER = re.compile(r"[+-]?\d{1,15}(?:\.\d{1,14})?")
_LETTER = re.compile(r"[A-Z]")
_SPECIAL_KEYS = ("unit", "answer_type", "question_type", "mc_path")
_QUESTION_KEYS = ("answer", "choices", "unit", "question_type", "answer_type", "question", "subject", "mc_path")  # what the sandbox is sent


def is_cheap(response: Any, question: Mapping[str, Any]) -> bool:
    """Whether checking ``response`` against ``question`` parses no LaTeX (see the module docstring)."""
    if not isinstance(response, str) or not hasattr(question, "get") or any(question.get(k) for k in _SPECIAL_KEYS):
        return False
    reference = question.get("answer")
    extraction = extract_final_answer(response)
    if not isinstance(reference, str) or extraction is None:
        return False
    answer, reference = extraction.text.strip(), reference.strip()
    if question.get("choices"):
        return bool(_LETTER.fullmatch(answer) and _LETTER.fullmatch(reference))
    return bool(_NUMBER.fullmatch(answer) and _NUMBER.fullmatch(reference))


class InlineCheapAnswers:
    """The run's verifier, with cheap checks (:func:`is_cheap`) of its built-in sandboxed answer
    verifier made in this process. ``name``, ``version`` and every other check are the wrapped
    verifier's; plugin verifiers (Lean, third-party) are never bypassed.

    Args:
        verifier: a :class:`SandboxedAnswerVerifier`, a :class:`SubjectRouter` over verifiers, or any
            verifier (then every check goes to it).
    """

    def __init__(self, verifier: AnswerVerifier):
        self.inner = verifier
        self.name = verifier.name
        self.version = verifier.version
        self.inline = 0
        """Checks made in this process (for benchmarks)."""

    def _sandbox_for(self, question: Mapping[str, Any]) -> SandboxedAnswerVerifier | None:
        target = self.inner.pick(question) if isinstance(self.inner, SubjectRouter) else self.inner
        return target if isinstance(target, SandboxedAnswerVerifier) else None

    def _inline(self, response: str, question: Mapping[str, Any], finish_reason: str | None) -> Verdict | None:
        sandbox = self._sandbox_for(question)
        if sandbox is None or sandbox.config.steps != "off" or not is_cheap(response, question):
            return None
        started = perf_counter()
        payload = {k: question.get(k) for k in _QUESTION_KEYS if question.get(k) is not None}
        verdict = verify_answer(response, payload, finish_reason=finish_reason, config=sandbox.config)
        self.inline += 1
        return replace(verdict, elapsed_s=perf_counter() - started)

    def verify(self, response: str, question: Mapping[str, Any], *, finish_reason: str | None = None) -> Verdict:
        """The inline verdict for a cheap answer, else the wrapped verifier's (``finish_reason`` passed on:
        ``length`` means the response was cut by the token limit)."""
        return (self._inline(response, question, finish_reason)
                or verify_response(self.inner, response, question, finish_reason=finish_reason))

    async def averify(self, response: str, question: Mapping[str, Any], *, finish_reason: str | None = None) -> Verdict:
        """The asynchronous :meth:`verify`."""
        verdict = self._inline(response, question, finish_reason)
        if verdict is not None:
            return verdict
        return await averify_response(self.inner, response, question, finish_reason=finish_reason)

    def warm(self) -> None:
        """Start the wrapped verifier's worker processes now, when it has any (``warm``)."""
        if hasattr(self.inner, "warm"):
            self.inner.warm()

    def close(self) -> None:
        if hasattr(self.inner, "close"):
            self.inner.close()


__all__ = ["InlineCheapAnswers", "is_cheap"]

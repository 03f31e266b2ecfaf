r"""The entry point: extract the final answer once, pre-check the cheap cases, run the selected check.

:func:`verify_answer` = :func:`precheck` (extraction, no reference, no answer, length cap; safe in
the parent process) + :func:`~.compare.verify_extraction` (the parsing checks; run it in the sandbox worker
for model text). The settings travel as one frozen :class:`VerifierConfig`. The whole policy
(extraction order, check selection, tolerance, units, ensemble): ``docs/verifiers.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from time import perf_counter
from typing import Any

from ..base import CHECK_ERROR, NO_REFERENCE, UNPARSEABLE, Verdict
from ..extract import Extraction, NoFinalAnswer, find_final_answer
from .common import MAX_ANSWER_CHARS, verdict
from .consistency import apply_consistency_check, no_final_answer_verdict
from .step_gate import apply_step_check
from .select import reference_text

from .compare import VerifierConfig, verify_extraction


def precheck(
    response: Any, question: Mapping[str, Any], *, finish_reason: str | None = None
) -> tuple[Extraction | None, Verdict | None]:
    """Extract the final answer and make the decisions that need no parser; safe in the parent process.

    Args:
        response: the full model output (anything; non-strings give ``no_answer``).
        question: the question mapping (``answer`` is read).
        finish_reason: why generation stopped (the model server's ``finish_reason``; ``None`` when
            unknown): ``length``/``max_tokens`` mean the response was cut off and has no final answer.

    Returns:
        ``(extraction, verdict)``: ``verdict`` is a final :class:`Verdict` when the answer can be
        decided without parsing (``no_reference``; ``invalid`` with ``details['invalid']``
        ``truncated`` or ``degenerate``; ``no_answer`` with ``details['no_answer']`` the kind from
        :func:`~scireflect.verifiers.extract.find_final_answer`: ``empty_box``, ``unclosed_box``,
        ``none``; or ``unparseable`` when the
        extracted answer is longer than ``MAX_ANSWER_CHARS`` = 20,000 characters), else ``None``
        and ``extraction`` is what :func:`verify_extraction` checks.
    """
    if question is None or not hasattr(question, "get") or reference_text(question) is None:
        return None, verdict(None, NO_REFERENCE, "the question has no reference answer to compare with", "precheck")
    found = find_final_answer(response, finish_reason=finish_reason)
    if isinstance(found, NoFinalAnswer):
        return None, no_final_answer_verdict(found)
    if len(found.text) > MAX_ANSWER_CHARS:
        return found, verdict(
            None,
            UNPARSEABLE,
            f"the extracted answer is {len(found.text)} characters long (limit {MAX_ANSWER_CHARS}); it was not parsed",
            "precheck",
            extracted=found.text[:200] + "...",
            extraction_method=found.method,
            details={"length": len(found.text), "limit": MAX_ANSWER_CHARS},
        )
    return found, None


def check_response(response: str, ex: Extraction, question: Mapping[str, Any], config: VerifierConfig | None = None) -> Verdict:
    """The whole check of a response whose final answer was extracted: :func:`verify_extraction`,
    then the checks that read the whole response: does its text conclude what its box says
    (:func:`~.consistency.apply_consistency_check`: else ``invalid``, ``self_contradiction``), and are
    its calculations right (the step checker, :func:`~.step_gate.apply_step_check`).

    Args:
        response: the text the verifier judges (the model's own text; tool output left out).
        ex: its extracted final answer (:func:`precheck`).
        question: the question mapping, with a reference answer.
        config: the settings (default :class:`VerifierConfig`: ``steps="gate"``).

    Returns:
        A :class:`Verdict`, ``elapsed_s`` the time spent here. Never raises: an exception in the
        whole-response checks keeps the answer verdict, with ``details["steps_error"]`` naming it
        (and, in ``gate`` mode, an accepted answer becomes ``check_error``: unchecked reasoning is
        never accepted).
    """
    t0 = perf_counter()
    config = config or VerifierConfig()
    v = apply_consistency_check(verify_extraction(ex, question, config), response, ex, question, config)
    try:
        v = apply_step_check(v, response, config.steps)
    except Exception as exc:  # noqa: BLE001 - the contract is "never raises"
        failed = {**dict(v.details), "steps_error": type(exc).__name__}
        if config.steps == "gate" and v.ok is True:
            v = verdict(None, CHECK_ERROR, f"the step checker failed ({type(exc).__name__})", "steps",
                        extracted=v.extracted, extraction_method=v.extraction_method, details=failed)
        else:
            v = replace(v, details=failed)
    return replace(v, elapsed_s=perf_counter() - t0)


def verify_answer(
    response: str,
    question: Mapping[str, Any],
    *,
    finish_reason: str | None = None,
    rel_tol: float | None = None,
    tolerance: str | None = None,
    ensemble: bool = True,
    steps: str = "gate",
    config: VerifierConfig | None = None,
) -> Verdict:
    r"""Check a model response against a question's reference answer, in this process.

    Args:
        response: the full model output (the final answer is taken by
            :func:`~scireflect.verifiers.extract.find_final_answer`).
        question: a mapping with ``answer`` (str/None) and optionally ``choices``, ``unit``,
            ``question_type``, ``answer_type``, ``question`` (the text, for options written in it),
            ``subject``, ``source``/``id`` (SciBench rows).
        finish_reason: the model server's ``finish_reason`` for this response (``length``: cut off
            by the token limit, so ``no_answer``); ``None`` when unknown.
        rel_tol: ``None`` for the default tolerance rules, or a relative tolerance (e.g.
            ``SCIBENCH_REL_TOL`` = 0.05, SciBench-style) for numeric answers.
        tolerance: the numeric tolerance policy: ``None``/``"default"``, ``"sig_figs"`` (derived
            from the reference's significant figures) or ``"scibench"`` (5 %).
        ensemble: consult math-verify when our symbolic check cannot decide.
        steps: the step checker's mode: ``gate`` (default), ``flag`` or ``off`` (:class:`VerifierConfig`).
        config: all the settings as one :class:`VerifierConfig` (the three above and ``steps``, the
            step checker's mode, default ``gate``: a false calculation claim rejects a matching
            answer as ``step_error``); when given, the keywords above are ignored.

    Returns:
        A :class:`Verdict`; ``elapsed_s`` is the time spent here. Never raises: any exception
        becomes ``ok=None``, reason ``check_error``. The explanation never contains the reference
        answer (it is in ``Verdict.reference`` only). Not protected against pathological input;
        use :class:`~scireflect.verifiers.workers.SandboxedAnswerVerifier` for untrusted text.

    Raises:
        ValueError: an unknown ``tolerance`` policy or a negative ``rel_tol`` (settings, not input).

    Examples:
        The final answer is taken from the last ``\boxed{}``; numbers are compared as numbers, with
        their units:

        >>> from scireflect.verifiers.answer import verify_answer
        >>> v = verify_answer(r"The speed is \boxed{2.0\ \mathrm{m/s}}.", {"answer": "2", "unit": "m/s"})
        >>> v.ok, v.status, v.extracted
        (True, 'accepted', '2.0\\ \\mathrm{m/s}')
        >>> verify_answer(r"\boxed{2000 m}", {"answer": "2 km"}).reason
        'unit_converted'

        A wrong answer is rejected with the reason; the tolerance can be widened (SciBench's 5 %):

        >>> v = verify_answer(r"\boxed{9.79}", {"answer": "9.8"})
        >>> v.ok, v.reason
        (False, 'numeric_mismatch')
        >>> verify_answer(r"\boxed{9.79}", {"answer": "9.8"}, tolerance="scibench").ok
        True

        Expressions are compared symbolically, options by letter or by text:

        >>> verify_answer(r"\boxed{x^2 - 1}", {"answer": "(x-1)(x+1)"}).ok
        True
        >>> verify_answer(r"\boxed{2 m}", {"answer": "B", "choices": ["1 m", "2 m"]}).ok
        True

        Without a final answer, or without a reference, there is no verdict (``ok`` is ``None``):

        >>> v = verify_answer("I give up.", {"answer": "7"})
        >>> v.ok, v.reason
        (None, 'no_answer')
        >>> verify_answer(r"\boxed{2}", {"answer": None}).reason
        'no_reference'
    """
    t0 = perf_counter()
    config = config or VerifierConfig.of(rel_tol, tolerance, ensemble, steps)
    try:
        ex, early = precheck(response, question, finish_reason=finish_reason)
    except Exception as exc:  # noqa: BLE001 - the contract is "never raises" (e.g. a question whose get() fails)
        early = verdict(None, CHECK_ERROR, f"the checker failed ({type(exc).__name__})", "error",
                        details={"error_type": type(exc).__name__})
    if early is not None:
        return replace(early, elapsed_s=perf_counter() - t0)
    assert ex is not None
    return replace(check_response(response, ex, question, config), elapsed_s=perf_counter() - t0)

r"""The step gate: an accepted final answer is training data only when its calculations are right.

A response whose final answer matches the reference can still reason through a false calculation
("48/2 = 42 clips", then the right total by luck or by a second slip); rejection-sampled data is
full of such traces (arXiv 2501.07301). :func:`apply_step_check` runs the step checker
(:func:`scireflect.verifiers.steps.check_steps`) on the whole response the verifier judged and
adds its report to the verdict's ``details["steps"]``; in ``gate`` mode a false claim turns an
accepted answer into ``ok=False`` with reason ``step_error``, its explanation naming the first
false claim (line, text, computed value). The report is recorded for rejected answers too: it is
the grounded evidence the Critic gets (``critic_evidence``).

Runs where the answer checks run: in the sandboxed worker for model text (the step checker parses
model text with sympy and pint).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from ..base import STEP_ERROR, Verdict

if TYPE_CHECKING:
    from ..steps import StepReport

__all__ = ["MAX_LISTED_ERRORS", "apply_step_check", "step_summary"]

MAX_LISTED_ERRORS = 5
"""At most this many false claims are kept in a verdict's ``details["steps"]["errors"]``."""


def step_summary(report: StepReport) -> dict[str, Any]:
    """The part of a :class:`~scireflect.verifiers.steps.StepReport` a verdict keeps (plain JSON).

    Returns:
        ``{"checked": int, "skipped": int, "errors": [claim dicts, at most MAX_LISTED_ERRORS],
        "n_errors": int}``; each claim dict has ``line`` (1-based), ``text``, ``expression``,
        ``written``, ``computed``, ``verdict`` (``false``) and ``why``.
    """
    errors = list(report.false)
    return {"checked": report.checked, "skipped": report.skipped, "n_errors": len(errors),
            "errors": [asdict(claim) for claim in errors[:MAX_LISTED_ERRORS]]}


def apply_step_check(verdict: Verdict, response: Any, mode: str) -> Verdict:
    """Check the calculation claims of ``response`` and fold the result into ``verdict``.

    Args:
        verdict: the answer check's verdict on ``response``.
        response: the text the verifier judged (tool output already left out by the caller).
        mode: ``gate`` (a false claim rejects an accepted answer: ``ok=False``, reason
            ``step_error``, ``details["answer_reason"]`` the answer check's reason), ``flag`` (the
            report is added, ``ok`` unchanged) or ``off`` (``verdict`` returned as is).

    Returns:
        ``verdict`` with ``details["steps"]`` (:func:`step_summary`) added, possibly turned into a
        ``step_error`` rejection. Never raises for ``str`` responses (the step checker does not).
    """
    if mode == "off" or not isinstance(response, str):
        return verdict
    from ..steps import check_steps  # imported on first use: the worker pays for it, not every importer

    report = check_steps(response)
    summary = step_summary(report)
    details = {**dict(verdict.details), "steps": summary}
    if mode == "gate" and verdict.ok is True and report.false:
        first = report.false[0]
        more = f" ({len(report.false)} false claims in all)" if len(report.false) > 1 else ""
        return replace(
            verdict, ok=False, reason=STEP_ERROR, checker=f"{verdict.checker}+steps",
            explanation=(f"the final answer matches the reference, but a calculation in the reasoning is false: "
                         f"line {first.line}: '{first.text}' (computed: {first.computed}){more}"),
            details={**details, "answer_reason": verdict.reason},
        )
    return replace(verdict, details=details)

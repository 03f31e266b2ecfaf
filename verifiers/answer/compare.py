r"""The comparison of one extracted final answer with the reference answer: :func:`verify_extraction`.

It selects the check for the question's kind (:mod:`.select`) and runs it under one
:class:`VerifierConfig`. It never reads the rest of the response: the checks that do (does the
text conclude what the box says, are its calculations right) are :mod:`.consistency` and
:mod:`.step_gate`, put together by :mod:`.verify`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from time import perf_counter
from typing import Any

from ..base import CHECK_ERROR, EQUAL, NUMERIC_MISMATCH, TEXT_MISMATCH, UNPARSEABLE, Verdict
from ..extract import Extraction
from .choice import check_choice
from .common import NotANumber, Unparseable, verdict
from .latex import sympy_number
from .numbers import fmt_fraction, parse_number
from .numeric import check_numeric
from .options import check_options_free
from .select import asks_for_order, is_science, is_scibench_row, reference_text, select_check
from .structured import check_boolean, check_list
from .symbolic import check_symbolic
from .tolerance import SYMBOLIC_REL_TOL, NumericTolerance, rel_error

STEP_MODES = ("gate", "flag", "off")
"""The step checker's modes (``[verifier] steps``): see :class:`VerifierConfig`."""


@dataclass(frozen=True)
class VerifierConfig:
    """The settings of the answer checks, built once per verifier and passed down (picklable).

    Attributes:
        numeric: the numeric tolerance (:class:`NumericTolerance`: a fixed ``rel_tol`` and/or a
            policy ``default``/``sig_figs``/``scibench``).
        ensemble: consult math-verify (:mod:`~scireflect.verifiers.mathverify_backend`) when the
            symbolic check cannot decide; it never overrides a decision, nor any numeric/unit one.
        steps: what the step checker (:mod:`~scireflect.verifiers.steps`) does with the calculation
            claims of a response: ``gate`` (a false claim turns an accepted answer into ``step_error``),
            ``flag`` (the claims are checked and recorded, acceptance unchanged) or ``off``.
    """

    numeric: NumericTolerance = field(default_factory=NumericTolerance)
    ensemble: bool = True
    steps: str = "gate"

    def __post_init__(self) -> None:
        if self.steps not in STEP_MODES:
            raise ValueError(f"steps must be one of {', '.join(STEP_MODES)}, not {self.steps!r}")

    @classmethod
    def of(cls, rel_tol: float | None = None, tolerance: str | None = None, ensemble: bool = True,
           steps: str = "gate") -> VerifierConfig:
        """The config for the loose keyword settings of the public API (``rel_tol``, ``tolerance``,
        ``ensemble``, ``steps``).

        Raises:
            ValueError: an unknown tolerance policy or step mode, or a negative ``rel_tol``.
        """
        return cls(NumericTolerance.of(rel_tol, tolerance), ensemble, steps)


def _symbolic(cand: str, ref: str, question: Mapping[str, Any], config: VerifierConfig) -> Verdict:
    """The symbolic check, then math-verify where it cannot decide, then a plain-number fallback."""
    ordered = asks_for_order(question)
    v = check_symbolic(cand, ref, tol=config.numeric, ordered_lists=ordered)
    undecided = v.ok is None or (v.reason == TEXT_MISMATCH and v.details.get("reference_parsed") is False)
    if config.ensemble and undecided and not ordered:
        from ..mathverify_backend import math_verify_equal

        mv = math_verify_equal(cand, ref)
        if mv is True:
            return replace(v, ok=True, reason=EQUAL, checker="symbolic+math-verify",
                           explanation="the extracted answer is equivalent to the reference (by the math-verify backend; "
                                       f"our parser: {v.reason})",
                           details={**dict(v.details), "backend": "math-verify", "ours": v.reason})
        v = replace(v, details={**dict(v.details), "math_verify": mv})
    pn = parse_number(cand)
    if v.ok is None and v.reason == UNPARSEABLE and pn is not None:
        # numeric fallback: a plain number with a unit against a constant reference
        try:
            ref_val = sympy_number(ref)
        except (Unparseable, NotANumber):
            return v
        err = rel_error(pn.value, ref_val)
        tol = SYMBOLIC_REL_TOL if config.numeric.rel_tol is None else config.numeric.rel_tol
        ok = err <= tol
        return verdict(ok, EQUAL if ok else NUMERIC_MISMATCH,
                       ("the extracted answer matches the reference numerically" if ok else
                        f"the extracted answer {fmt_fraction(pn.value)} differs numerically from the reference "
                        f"(relative error {err:.3g} > tolerance {tol:g})"),
                       "numeric", candidate=fmt_fraction(pn.value), reference=v.reference,
                       details={"rel_error": err, "rel_tol": tol, "unit_ignored": pn.unit})
    return v


def _check(ex: Extraction, question: Mapping[str, Any], config: VerifierConfig) -> Verdict:
    """Run the check :func:`select_check` picks on the extracted answer (may raise)."""
    ref = reference_text(question)
    assert ref is not None
    kind = select_check(question)
    cand = ex.text
    if kind == "options_free":  # solved without its options: the value is mapped to them
        return check_options_free(cand, question, tol=config.numeric)
    if kind == "choice":
        return check_choice(
            cand,
            ref,
            choices=question.get("choices") or None,
            question_text=question.get("question"),
            multiple=str(question.get("question_type") or "") == "MCQ(multiple)",
        )
    if kind == "boolean":
        return check_boolean(cand, ref)
    if kind == "list":
        return check_list(cand, ref, tol=config.numeric)
    if kind == "numeric":
        return check_numeric(cand, ref, tol=config.numeric, unit=question.get("unit"),
                             question_type=question.get("question_type"), science=is_science(question),
                             scibench=is_scibench_row(question))
    return _symbolic(cand, ref, question, config)


def verify_extraction(ex: Extraction, question: Mapping[str, Any], config: VerifierConfig | None = None) -> Verdict:
    """Check an already extracted final answer against the question's reference answer.

    Args:
        ex: the :class:`~scireflect.verifiers.extract.Extraction` :func:`precheck` returned (the
            sandbox sends it to its worker, so the response is scanned once, in the parent).
        question: the question mapping (as for :func:`verify_answer`); it must have a reference.
        config: the settings (default :class:`VerifierConfig`).

    Returns:
        A :class:`Verdict` with ``extracted``/``extraction_method`` from ``ex`` and ``elapsed_s``
        the time spent here. Never raises: an exception becomes ``ok=None``, reason ``check_error``.
    """
    t0 = perf_counter()
    ex_kw = {"extracted": ex.text, "extraction_method": ex.method}
    try:
        v = replace(_check(ex, question, config or VerifierConfig()), **ex_kw)
    except MemoryError:
        v = verdict(None, CHECK_ERROR, "the checker ran out of memory", "error", **ex_kw)
    except RecursionError:
        v = verdict(None, CHECK_ERROR, "the checker hit the recursion limit (the answer is too deeply nested)", "error",
                    **ex_kw)
    except Exception as exc:  # noqa: BLE001 - the contract is "never raises"
        v = verdict(None, CHECK_ERROR, f"the checker failed ({type(exc).__name__})", "error",
                    details={"error_type": type(exc).__name__}, **ex_kw)
    return replace(v, elapsed_s=perf_counter() - t0)


__all__ = ["STEP_MODES", "VerifierConfig", "verify_extraction"]

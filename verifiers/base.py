"""The verifier interface: a :class:`Verdict` record and the :class:`AnswerVerifier` protocol.

Every answer check in scireflect returns a :class:`Verdict`. The annotation graph stores it with the
attempt it judged, routes on ``ok`` and hands :meth:`Verdict.evidence_for_critic` to the Critic: the
kind of error and the candidate side only (the Critic never learns the reference answer, nor a
magnitude, bound or property of it). New checkers (the unit-aware verifier, the Lean proof
checker, user plugins) implement :class:`AnswerVerifier` and plug into the same place.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

# Reason codes. Kept as plain strings so that traces stay readable JSON.
EQUAL = "equal"
NUMERIC_MISMATCH = "numeric_mismatch"
CHOICE_MISMATCH = "choice_mismatch"
SYMBOLIC_MISMATCH = "symbolic_mismatch"
TEXT_MISMATCH = "text_mismatch"
NO_ANSWER = "no_answer"  # no final answer could be extracted from the response
UNPARSEABLE = "unparseable"  # an answer was extracted but could not be parsed
NO_REFERENCE = "no_reference"  # the question has no reference answer to compare with
TIMEOUT = "timeout"  # the check ran past its wall-clock limit and was killed
CHECK_ERROR = "check_error"  # the checker itself failed (e.g. out of memory); never "accepted"
UNDECIDED = "undecided"  # both sides parsed but equivalence could be neither shown nor refuted
UNIT_CONVERTED = "unit_converted"  # equal after converting the answer's unit to the reference unit (ok=True)
DIMENSION_MISMATCH = "dimension_mismatch"  # the answer's unit has another physical dimension (m vs m/s)
NO_OPTION = "no_option"  # multiple choice solved without its options: the value equals no option (ok=False)
SAMPLE_DISAGREEMENT = "sample_disagreement"  # multiple choice: k independent samples did not all pick the correct letter (ok=False)
STEP_ERROR = "step_error"  # the final answer matches, but a calculation claim of the reasoning is false (ok=False)
INVALID = "invalid"  # not a usable attempt (cut off, a loop, its text contradicts its box): ok=False, never accepted
UNVERIFIED = "unverified"  # a formal proof that could not be checked (no Lean installed): never accepted, never retried
JUDGE_REJECTED = "judge_rejected"  # the answer matched; the model reviewer ([judge] mode = "gate") found a wrong step or gave no verdict (ok=False)

REASONS = (
    EQUAL, UNIT_CONVERTED, NUMERIC_MISMATCH, DIMENSION_MISMATCH, CHOICE_MISMATCH, SYMBOLIC_MISMATCH, TEXT_MISMATCH,
    NO_ANSWER, UNPARSEABLE, NO_REFERENCE, TIMEOUT, CHECK_ERROR, UNDECIDED, STEP_ERROR, INVALID,
    NO_OPTION, SAMPLE_DISAGREEMENT, JUDGE_REJECTED,
)
"""Every reason code of the built-in verifiers (plugins may add their own strings)."""

TRUNCATED = "truncated"
DEGENERATE = "degenerate"
SELF_CONTRADICTION = "self_contradiction"
INVALID_KINDS = (TRUNCATED, DEGENERATE, SELF_CONTRADICTION)
"""Why a response is ``invalid`` (``details["invalid"]``): ``truncated`` (cut off by the token limit,
``finish_reason`` ``length``/``max_tokens``, or a call cut part-way), ``degenerate`` (it ends in a
loop, :mod:`.repetition`), ``self_contradiction`` (its text concludes another result than its last
box, :mod:`.answer.consistency`). An invalid response is never accepted and never read for a
fallback answer."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one model answer against one reference answer.

    Attributes:
        ok: ``True`` when the answer matches the reference, ``False`` when it does not, ``None``
            when it cannot be decided (nothing extracted, unparseable, timeout, checker error).
            Only ``ok is True`` ever turns an attempt into training data.
        reason: a reason code (module constants: ``equal``, ``numeric_mismatch``, ``no_answer``, ...).
        explanation: one human-readable sentence for traces and people; it never contains the
            reference answer but may hold a relative error or the rule applied. The Critic gets
            :meth:`evidence_for_critic` instead.
        extracted: the final-answer text taken from the response (e.g. the content of ``\\boxed{}``),
            or ``None`` when nothing was found.
        extraction_method: how ``extracted`` was found (``boxed``, ``answer_line``, ``last_number``).
        candidate: the parsed, normalised form of the model's answer (a string), if any.
        reference: the parsed, normalised form of the reference answer (a string), if any.
        checker: the name of the check that decided (``numeric``, ``choice``, ``symbolic``, ...).
        elapsed_s: wall-clock seconds the check took, in seconds.
        details: extra structured evidence (e.g. ``{"rel_error": 0.12, "rel_tol": 0.01}``).
    """

    ok: bool | None
    reason: str
    explanation: str
    extracted: str | None = None
    extraction_method: str | None = None
    candidate: str | None = None
    reference: str | None = None
    checker: str = ""
    elapsed_s: float = 0.0
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``accepted``, ``rejected`` or ``unparseable`` (``ok`` True / False / None); ``invalid`` for
        the reason ``invalid`` (``ok`` False: never accepted)."""
        if self.reason == INVALID:
            return "invalid"
        if self.ok is True:
            return "accepted"
        if self.ok is False:
            return "rejected"
        return "unparseable"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict with every field plus ``status``."""
        out = asdict(self)
        out["details"] = dict(self.details)
        out["status"] = self.status
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """Rebuild a verdict from :meth:`to_dict` output (unknown keys, e.g. ``status``, are ignored).

        Traces written before the ``invalid`` reason keep what they said: a truncated or looping
        response there is ``no_answer`` with ``details["no_answer"]`` its kind.
        """
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})

    def evidence_for_critic(self) -> str:
        """The verifier's evidence as one line for the Critic (see :func:`critic_evidence`)."""
        return critic_evidence(self.to_dict())


_WHY = {
    EQUAL: "The answer is correct.",
    UNIT_CONVERTED: "The answer is correct once its unit is converted.",
    NUMERIC_MISMATCH: "The value of the answer is wrong.",
    CHOICE_MISMATCH: "The chosen option is not the correct one.",
    SYMBOLIC_MISMATCH: "The answer is not equivalent to the correct answer.",
    TEXT_MISMATCH: "The answer is wrong.",
    DIMENSION_MISMATCH: "The unit of the answer has the wrong physical dimension.",
    STEP_ERROR: "A calculation in the reasoning is false.",
    INVALID: "The response is not a usable solution; write one complete solution that ends in one final answer.",
    NO_ANSWER: "The response states no final answer; end with the answer in \\boxed{...}.",
    UNPARSEABLE: "The final answer could not be read.",
    NO_REFERENCE: "The question has nothing to check the answer against, so it was not checked.",
    TIMEOUT: "Checking the answer took too long (a very large or deeply nested expression?).",
    CHECK_ERROR: "The checker failed on this answer.",
    UNDECIDED: "Whether the answer is equivalent to the correct one could not be decided.",
    NO_OPTION: "The value of the answer is wrong.",
    SAMPLE_DISAGREEMENT: "Independent solutions of this problem disagree on the answer, so the reasoning does not "
                         "establish it: check every fact and every step.",
    JUDGE_REJECTED: "A reviewer found a step of the reasoning wrong: check every fact and every step.",
}
_NO_ANSWER_WHY = {
    "truncated": "The response was cut off by the token limit before it finished, so it states no final answer; "
                 "be shorter and end with the answer in \\boxed{...}.",
    "degenerate": "The response ends in a loop, repeating the same passage, so it states no final answer.",
    "empty_box": "The last \\boxed{} of the response is empty, so it states no final answer.",
    "unclosed_box": "The last \\boxed{ of the response is not closed, so its final answer is cut off.",
}
_INVALID_WHY = {
    TRUNCATED: "The response was cut off by the token limit before it finished: be shorter, and end with the "
               "answer in \\boxed{...}.",
    DEGENERATE: "The response ends in a loop, repeating the same passage: stop repeating, and end with the answer "
                "in \\boxed{...}.",
    SELF_CONTRADICTION: "The text concludes another result than its box: state one final answer, in \\boxed{...}.",
}
_UNREADABLE_WHY = {
    "choice": "The final answer names no option; answer with the letter of one option.",
    "boolean": "The final answer is not true or false.",
    "list": "The final answer is not a list.",
    "numeric": "The final answer could not be read as a number.",
    "symbolic": "The final answer could not be parsed as a LaTeX expression.",
    "options_free": "The final answer could not be read as a value.",
    "precheck": "The final answer is too long to be read.",
}


def critic_evidence(verdict: Mapping[str, Any]) -> str:
    """A verdict, as stored in a trace step (:meth:`Verdict.to_dict`), as one line for the Critic:
    *that* the answer is wrong and *why in kind*, never anything about the reference answer.

    Built from the reason code and the candidate side only: the extracted answer, its unit and
    dimension, why no answer was found, and the unit the question asks for (SciBench's ``unit``
    field: part of the question). Never the reference, a relative error, a tolerance or a property
    of the reference ("an exact integer match is required" narrows it down); the ``explanation``
    (for traces and people) may hold those. For a reason code this module does not know (a
    plugin's own), the plugin's ``explanation``, which by the plugin contract never contains the reference.

    A rejected answer whose reasoning has a false calculation claim (the step checker's report in
    ``details["steps"]``) reads ``verifier: rejected (calculation_error). A calculation is false: line
    N: ...``, the same whether the final answer matched (``step_error``) or not: the claim is the
    evidence, and the Critic does not learn whether the final answer was right.
    """
    extracted = verdict.get("extracted")
    got = extracted if extracted is not None else "(no final answer found)"
    status = verdict.get("status") or {True: "accepted", False: "rejected"}.get(verdict.get("ok"), "unparseable")
    if verdict.get("reason") == SAMPLE_DISAGREEMENT:
        # the answer itself passed the check: neither it nor the reason code is repeated to the Critic
        return f"verifier: {status} (unconfirmed). {_WHY[SAMPLE_DISAGREEMENT]}"
    if verdict.get("reason") == JUDGE_REJECTED:
        # as for a false calculation, whether the final answer matched is left unsaid; the reviewer's
        # finding is a step number of the attempt (its non-blank lines), not its text: a step may hold the answer
        finding = (verdict.get("details") or {}).get("judge") or {}
        step = f" It points to step {finding['step']} (counting the solution's non-blank lines)." if finding.get("step") else ""
        return f"verifier: {status} (reviewed). {_WHY[JUDGE_REJECTED]}{step}"
    steps = step_evidence(verdict)
    if verdict.get("ok") is False and verdict.get("reason") != INVALID and _false_claims(verdict):
        # A false calculation is the grounded evidence; whether the final answer matched (step_error) or
        # not is left unsaid, so that the two read alike and the Critic learns nothing of the reference.
        return f"verifier: {status} (calculation_error). {steps}"
    line = f"verifier: {status} ({_shown_reason(verdict)}); extracted final answer: {got}. {_why_in_kind(verdict)}"
    return f"{line} {steps}" if steps and status != "accepted" else line


NOT_A_WRONG_ANSWER = (STEP_ERROR, SAMPLE_DISAGREEMENT, INVALID, JUDGE_REJECTED)
"""Reasons of a failed verdict whose final answer was not found wrong: ``step_error`` (it matched, a
claim is false), ``sample_disagreement`` (it matched, the samples disagreed), ``invalid`` (none read),
``judge_rejected`` (it matched, the model reviewer found a step wrong)."""


def wrong_answer(verdict: Mapping[str, Any] | None) -> str | None:
    """The final answer of a verdict (as stored in a step) when the check found *the answer itself*
    wrong (``ok`` False, a reason not in :data:`NOT_A_WRONG_ANSWER`), else ``None``.

    Only such answers may be named to a later role as "found wrong": a ``step_error`` attempt's answer
    matched the reference, so naming it would tell the reference.

    Example::

        >>> wrong_answer({"ok": False, "reason": "numeric_mismatch", "extracted": "5.2"})
        '5.2'
        >>> wrong_answer({"ok": False, "reason": "step_error", "extracted": "72"}) is None
        True
    """
    if not verdict or verdict.get("ok") is not False or verdict.get("reason") in NOT_A_WRONG_ANSWER:
        return None
    extracted = verdict.get("extracted")
    return str(extracted).strip() or None if extracted is not None else None


def failed_answers_evidence(answers: Sequence[str], lead: str = "Final answers already found wrong") -> str:
    """The final answers already found wrong (each a :func:`wrong_answer`, in the order given, repeats
    counted) as one sentence for a later role, e.g. ``Final answers already found wrong: 5.2 (twice), 7.``
    (``lead`` starts it); empty for none. Built from the model's own answers only, never from the reference.
    """
    counts: dict[str, int] = {}
    for answer in answers:
        counts[answer] = counts.get(answer, 0) + 1
    if not counts:
        return ""
    times = {1: "", 2: " (twice)"}
    listed = ", ".join(f"{a}{times.get(n, f' ({n} times)')}" for a, n in counts.items())
    return f"{lead}: {listed}."


def _false_claims(verdict: Mapping[str, Any]) -> bool:
    report = (verdict.get("details") or {}).get("steps")
    return isinstance(report, Mapping) and bool(report.get("errors"))


def step_evidence(verdict: Mapping[str, Any]) -> str:
    """The step checker's report in a verdict (``details["steps"]``, :mod:`.answer.step_gate`) as one
    sentence for the Critic: the first false calculation claim, its line and the value computed; or,
    when every claim that could be checked is right, that the error lies elsewhere. Empty when the
    step checker did not run or found nothing to check. Built from the response's own claims only,
    never from the reference answer.
    """
    report = (verdict.get("details") or {}).get("steps")
    if not isinstance(report, Mapping):
        return ""
    errors = report.get("errors") or []
    if errors and isinstance(errors[0], Mapping):
        first = errors[0]
        more = f" ({report.get('n_errors', len(errors))} false calculations in all)" if (report.get("n_errors") or 0) > 1 else ""
        return (f"A calculation is false: line {first.get('line')}: '{first.get('text')}': {first.get('expression')} is "
                f"{first.get('computed')}, not {first.get('written')}{more}.")
    checked = int(report.get("checked") or 0)
    if checked and verdict.get("ok") is False and verdict.get("reason") != INVALID:  # an invalid response has its own evidence
        return (f"All {checked} calculations that could be checked are right: the error is in the setup, a principle, "
                "or the reading of the problem.")
    return ""


def _shown_reason(verdict: Mapping[str, Any]) -> Any:
    """The reason code as the Critic reads it: a question solved without its options hears of a wrong
    value (``value_mismatch``), not of an option it never saw."""
    reason = verdict.get("reason")
    if (verdict.get("details") or {}).get("mc_path") == "options_free" and reason in (CHOICE_MISMATCH, NO_OPTION):
        return "value_mismatch"
    return reason


def _why_in_kind(verdict: Mapping[str, Any]) -> str:
    d, reason = verdict.get("details") or {}, verdict.get("reason")
    if d.get("mc_path") == "options_free" and reason in (CHOICE_MISMATCH, NO_OPTION):
        return _WHY[NO_OPTION]  # solved without its options: the Critic hears of a wrong value, never of options
    if reason not in _WHY:
        return str(verdict.get("explanation") or "")
    if reason == NO_ANSWER:
        return _NO_ANSWER_WHY.get(str(d.get("no_answer")), _WHY[NO_ANSWER])
    if reason == INVALID:
        if d.get("invalid") == SELF_CONTRADICTION and d.get("stated") and verdict.get("extracted") is not None:
            # both sides are the model's own words: nothing here is about the reference
            return (f"The text concludes {d['stated']} but the box says {verdict['extracted']}: state one final "
                    "answer, in \\boxed{...}.")
        return _INVALID_WHY.get(str(d.get("invalid")), _WHY[INVALID])
    if reason == DIMENSION_MISMATCH and d.get("candidate_unit"):
        asked = f"{d['requested_unit']} ({d.get('requested_dimension')})" if d.get("requested_unit") else None
        got = f"dimension mismatch: got {d['candidate_unit']} ({d.get('candidate_dimension')})"
        return f"{got}, expected {asked}." if asked else f"{got}, which is not the dimension the question asks for."
    if reason == UNPARSEABLE:
        if d.get("candidate_unit_text"):
            asked = f"; the question asks for {d['requested_unit']}" if d.get("requested_unit") else ""
            return f"The unit '{d['candidate_unit_text']}' of the answer could not be read{asked}."
        return _UNREADABLE_WHY.get(str(verdict.get("checker")), _WHY[UNPARSEABLE])
    if reason == NUMERIC_MISMATCH and d.get("not_a_number"):
        return f"The answer is not a real number: it {d['not_a_number']}."
    return _WHY[reason]


@runtime_checkable
class AnswerVerifier(Protocol):
    """Anything that checks a free-text model response against a question's reference answer.

    ``question`` is a mapping with at least ``answer`` (str or None) and optionally ``subject``,
    ``unit``, ``choices`` (list of option texts, A first), ``answer_type``, ``question_type``.
    Implementations must never evaluate model text as code, and must return a :class:`Verdict`
    (never raise) for any response text, however malformed.

    Optional: a keyword-only ``finish_reason`` (``verify(response, question, *, finish_reason=None)``),
    the model server's reason for ending the response (``length`` = cut off by the token limit). Call
    verifiers through :func:`verify_response` / :func:`averify_response`, which pass it only to
    verifiers that accept it, so plugins without it keep working.
    """

    name: str
    version: str

    def verify(self, response: str, question: Mapping[str, Any]) -> Verdict:  # pragma: no cover - protocol
        """Check ``response`` (the full model output) against ``question['answer']``."""
        ...


def accepts_finish_reason(method: Callable[..., Any]) -> bool:
    """Whether a ``verify``/``averify`` method takes a ``finish_reason`` keyword (or ``**kwargs``)."""
    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return "finish_reason" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def verify_response(verifier: Any, response: str, question: Mapping[str, Any], *,
                    finish_reason: str | None = None) -> Verdict:
    """``verifier.verify(response, question)``, with ``finish_reason`` when the verifier accepts it.

    Args:
        verifier: any :class:`AnswerVerifier` (built-in or plugin).
        response: the full model output.
        question: the question mapping.
        finish_reason: the model server's ``finish_reason`` of the response (``stop``, ``length``,
            ...), or ``None``. Verifiers without the keyword are called without it.
    """
    if finish_reason is not None and accepts_finish_reason(verifier.verify):
        return verifier.verify(response, question, finish_reason=finish_reason)
    return verifier.verify(response, question)


async def averify_response(verifier: Any, response: str, question: Mapping[str, Any], *,
                           finish_reason: str | None = None) -> Verdict:
    """The asynchronous :func:`verify_response`: the verifier's ``averify`` when it has one (checks run
    in its sandbox without blocking the event loop), else its ``verify`` in a worker thread."""
    averify = getattr(verifier, "averify", None)
    if averify is None:
        return await asyncio.to_thread(verify_response, verifier, response, question, finish_reason=finish_reason)
    if finish_reason is not None and accepts_finish_reason(averify):
        return await averify(response, question, finish_reason=finish_reason)
    return await averify(response, question)


Verifier = AnswerVerifier
"""Alias: the verifier interface (``name``, ``version``, ``verify(response, question) -> Verdict``;
optionally a ``finish_reason`` keyword, ``async averify(...)`` and ``close()``). Plugins register through the
``scireflect.verifiers`` entry point group; see :mod:`scireflect.verifiers.registry`."""

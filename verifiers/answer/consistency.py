r"""The ``invalid`` verdict: a response that is not a usable attempt, whatever its box says.

Three kinds (``details["invalid"]``, :data:`~scireflect.verifiers.base.INVALID_KINDS`):

- ``truncated``: cut off by the token limit (or the time budget) before it finished;
- ``degenerate``: it ends in a loop (:mod:`~scireflect.verifiers.repetition`);
- ``self_contradiction``: its text concludes another result than its last box ("... so
  :math:`\boxed{3}`. The correct final answer is: 6").

The first two are found by extraction, in the parent (:func:`no_final_answer_verdict`). The third
reads the whole response and parses its statements with the answer checks, so it runs where they
run, in the sandboxed worker (:func:`find_contradiction`, :func:`apply_consistency_check`), after
the answer check. An invalid verdict has ``ok=False``: it is never accepted, and nothing is read
out of the response instead (no fallback extraction). The rules: ``docs/verifiers.md``, "Invalid
responses".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..base import (
    CHOICE_MISMATCH,
    DEGENERATE,
    INVALID,
    NO_ANSWER,
    NUMERIC_MISMATCH,
    SELF_CONTRADICTION,
    SYMBOLIC_MISMATCH,
    TEXT_MISMATCH,
    TRUNCATED,
    Verdict,
)
from ..extract import Extraction, NoFinalAnswer, last_box_span, strip_answer_delimiters
from .common import verdict
from .compare import VerifierConfig, verify_extraction


__all__ = ["apply_consistency_check", "concluding_statement", "concluding_statements", "find_contradiction",
           "no_final_answer_verdict"]

_REFUTING = (NUMERIC_MISMATCH, CHOICE_MISMATCH, SYMBOLIC_MISMATCH)
"""Answer-check reasons that decide two answers differ. ``text_mismatch`` (a comparison of strings
only) and ``dimension_mismatch`` (a unit read one way in a sentence) are too weak to throw data away."""

# "the answer is", "the final answer is:", "the correct final answer is", "The correct answer is therefore"
_ANSWER_IS = re.compile(r"\bthe\s+(?:(?:correct|final|right|true)\s+){0,3}answer\s+(?:is|=)\s*(?:therefore\s*)?[:\uff1a]?",
                        re.IGNORECASE)
# "Answer: 6", "**Final answer:** 6", "> Answer: 6" at the start of a line
_ANSWER_LINE = re.compile(r"^[\s>*#_\-]*(?:\*\*)?\s*(?:final\s+answer|answer)\s*(?:\*\*)?\s*[:\uff1a]\s*(?:\*\*)?",
                          re.IGNORECASE | re.MULTILINE)
# where a stated answer ends in a sentence: a full stop (not a decimal point), a semicolon, a clause
_STATEMENT_END = re.compile(r"(?<!\d)\.(?=\s|$)|\.(?=\s+[A-Z])|;|,?\s+(?:because|since|which|where)\b|,\s+(?:so|i\.e\.|that\s+is)\b",
                            re.IGNORECASE)
_INLINE_MATH = re.compile(r"\$\$.*?\$\$|\$.*?\$|\\\(.*?\\\)")
_BOX_WORD = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_OPTION_WORD = re.compile(r"^(?:options?|choices?)\s+", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]{3,}")
_PART_LABEL = re.compile(r"\(\s*(?:[a-z]|[ivx]{1,4})\s*\)", re.IGNORECASE)  # "(a) 3 (b) 4": the parts of a question
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
MAX_STATEMENT_CHARS = 200
"""A stated answer longer than this is not read (it is a sentence, not an answer)."""


def no_final_answer_verdict(found: NoFinalAnswer) -> Verdict:
    """The verdict of a response without a final answer (:func:`~scireflect.verifiers.extract.find_final_answer`).

    ``truncated`` and ``degenerate`` responses are ``invalid`` (``ok=False``, ``details["invalid"]``
    the kind): not an attempt, whatever they boxed before the cut or the loop. An empty or unclosed
    last box, or nothing at all, is ``no_answer`` (``ok=None``, ``details["no_answer"]`` the kind).
    ``extracted`` is ``None`` for both: nothing is read out of such a response instead.
    """
    if found.kind in (TRUNCATED, DEGENERATE):
        return verdict(False, INVALID, found.explanation, "precheck", details={"invalid": found.kind})
    return verdict(None, NO_ANSWER, found.explanation, "precheck", details={"no_answer": found.kind})


def _clip_statement(rest: str) -> str | None:
    """The answer a statement gives, from the text after "the answer is": its first ``$...$`` when it
    starts with one, else up to the end of the clause; ``None`` when it holds a box (that box is the
    answer the check already read, or another part's) or is too long to be an answer."""
    rest = rest.strip().lstrip("*").strip()
    if _BOX_WORD.search(rest[:MAX_STATEMENT_CHARS + 20]):
        return None
    masked = _INLINE_MATH.sub(lambda m: "0" * len(m.group(0)), rest)  # a clause never ends inside math
    end = _STATEMENT_END.search(masked)
    rest = strip_answer_delimiters(rest[: end.start()] if end else rest)
    return rest if rest and len(rest) <= MAX_STATEMENT_CHARS else None


def _statements(text: str) -> list[tuple[int, str, str]]:
    """``(position, line excerpt, stated answer)`` of every answer statement of ``text``, in order."""
    found = []
    for rx in (_ANSWER_IS, _ANSWER_LINE):
        for m in rx.finditer(text):
            line_end = text.find("\n", m.end())
            line_end = len(text) if line_end < 0 else line_end
            rest = text[m.end(): line_end]
            if not rest.strip() and rx is _ANSWER_LINE:  # "Answer:" and the answer on the next line
                nxt = text[line_end + 1:].lstrip("\n")
                rest = nxt.split("\n", 1)[0]
            stated = _clip_statement(rest)
            if stated is not None:
                line_start = text.rfind("\n", 0, m.start()) + 1
                found.append((m.start(), text[line_start:line_end].strip()[:200], stated))
    return sorted(found)


def concluding_statement(response: str) -> tuple[str, str] | None:
    """The answer the response's text concludes, besides its last box: ``(stated answer, line)``.

    The last statement ("the (correct/final) answer is X", an "Answer: X" line) after the last box,
    else the last one before it in the box's own paragraph; a statement that holds a box is not one
    (it is the box, or an earlier part's). ``None`` when there is no last box or no such statement.
    """
    found = concluding_statements(response)
    return found[0] if found else None


def concluding_statements(response: str) -> list[tuple[str, str]]:
    """Every answer the response's text concludes around its last box, ``[(stated answer, line), ...]``:
    the last statement after the box (:func:`concluding_statement`'s first choice), then the last one
    before it in the box's own paragraph. Both count: a body that concludes ``144`` in the box's
    paragraph, then boxes ``72`` and restates "The correct final answer is: 72" below (what an
    answer-guided revision wrote, issue 24), states two answers. Empty when there is no last box.
    """
    span = last_box_span(response)
    if span is None:
        return []
    start, end = span
    after = _statements(response[end:])
    breaks = list(_PARAGRAPH_BREAK.finditer(response, 0, start))
    para_start = breaks[-1].end() if breaks else 0
    before = _statements(response[para_start:start])
    return [(found[2], found[1]) for found in (after[-1:] + before[-1:])]


def _readable(stated: str, kind: str) -> bool:
    """Whether a stated answer is an answer and not prose: no word of three letters or more outside
    LaTeX commands and no part label ``(a)`` (``6 meters``, ``not 6``, ``$6$ times larger``,
    ``(a) 3 (b) 4`` are not read; ``6 m/s``, ``\\frac{1}{2}``, ``(B)`` are)."""
    if kind == "boolean":
        return _LATEX_COMMAND.sub("", stated).strip("{} ").lower() in ("true", "false", "yes", "no")
    text = _OPTION_WORD.sub("", stated.strip()) if kind == "choice" else stated
    if kind != "choice" and _PART_LABEL.search(text):
        return False
    return not _WORD.search(_LATEX_COMMAND.sub(" ", text))


def _differs(a: str, b: str, question: Mapping[str, Any], kind: str, config: VerifierConfig) -> bool:
    """Whether the answer check decides that ``a`` is not ``b`` (``b`` taken as the reference)."""
    from .select import select_check

    as_reference = {**dict(question), "answer": b}
    if select_check(as_reference) != kind:
        return False  # the other side reads as another kind of answer: not comparable
    v = verify_extraction(Extraction(a, "statement"), as_reference, config)
    refuted = v.reason in _REFUTING or (v.reason == TEXT_MISMATCH and v.checker == "boolean")  # two truth values
    return v.ok is False and refuted and not v.details.get("not_a_number")


def find_contradiction(response: str, extraction: Extraction, question: Mapping[str, Any],
                       config: VerifierConfig | None = None) -> Verdict | None:
    r"""The ``self_contradiction`` verdict when the response's text concludes another result than its box.

    Args:
        response: the text the verifier judged (the model's own text; tool output left out).
        extraction: its final answer (:func:`~scireflect.verifiers.answer.verify.precheck`); only a
            ``boxed`` one is compared (an answer line has no box to contradict).
        question: the question mapping (its check kind, ``choices``, ``unit`` and tolerance apply).
        config: the verifier's settings (:class:`~scireflect.verifiers.answer.compare.VerifierConfig`).

    Returns:
        ``Verdict(ok=False, reason="invalid", details={"invalid": "self_contradiction", "stated":
        X, "statement": line})`` (``extracted`` the box), or ``None``. Conservative, since a false
        invalid throws good data away: a concluding statement (:func:`concluding_statements`: the
        last after the box, the last before it in its paragraph) and the box must both be read by the answer check of the question's kind, and each must be
        decidedly *not* equal to the other taken as the reference (numeric, choice or symbolic
        mismatch in both directions: ``1/3`` and ``0.333`` agree). Earlier boxes never count.
        Runs the answer checks (sympy, pint): call it in the sandboxed worker. May raise on
        pathological input; :func:`apply_consistency_check` never does.

    Examples:
        >>> r = "So $x = 3$, and $\\boxed{3}$.\n\nThe correct final answer is: 6"
        >>> find_contradiction(r, Extraction("3", "boxed"), {"answer": "3"}).details["stated"]
        '6'
        >>> find_contradiction("The answer is $3$: $\\boxed{3}$", Extraction("3", "boxed"), {"answer": "3"}) is None
        True
    """
    from .select import select_check

    if extraction.method != "boxed" or not isinstance(response, str):
        return None
    kind = select_check(question)
    if kind == "none":
        return None
    config = config or VerifierConfig()
    box = extraction.text
    contradicting = next(((stated, line) for stated, line in concluding_statements(response) if _readable(stated, kind)
                          and _differs(stated, box, question, kind, config) and _differs(box, stated, question, kind, config)), None)
    if contradicting is None:
        return None
    stated, line = contradicting
    return verdict(False, INVALID, f"the text concludes '{stated}' after its last box, which says '{box}': the response "
                                   "states two different final answers", "consistency",
                   extracted=box, extraction_method=extraction.method,
                   details={"invalid": SELF_CONTRADICTION, "stated": stated, "statement": line})


def apply_consistency_check(v: Verdict, response: Any, extraction: Extraction, question: Mapping[str, Any],
                            config: VerifierConfig | None = None) -> Verdict:
    """``v``, or the ``self_contradiction`` verdict (:func:`find_contradiction`) in its place.

    A post-check of the whole response, run after the answer check in the sandboxed worker. Only a
    decided verdict (``ok`` true or false: accepted, a mismatch, ``step_error``) is replaced (a
    timeout, a checker error or an unreadable answer keeps its own evidence); ``details["answer_check"]``
    then keeps the answer check's reason. Never raises: when the check itself fails, ``v`` is
    returned with ``details["consistency_error"]`` naming the exception (a contradiction that could
    not be checked does not throw the attempt away).
    """
    if v.ok is None or v.reason == INVALID or not isinstance(response, str):
        return v
    try:
        found = find_contradiction(response, extraction, question, config)
    except Exception as exc:  # noqa: BLE001 - the contract is "never raises"
        return replace(v, details={**dict(v.details), "consistency_error": type(exc).__name__})
    if found is None:
        return v
    return replace(found, details={**dict(found.details), "answer_check": v.reason})

"""TheoremQA's structured answers: truth values (``true``/``false``) and ordered numeric lists (``[4, 1]``).

Rules: ``docs/verifiers.md``, "Booleans and lists".
"""

from __future__ import annotations

from ..base import EQUAL, NUMERIC_MISMATCH, TEXT_MISMATCH, UNPARSEABLE, Verdict
from .common import verdict
from .normalize import closing_index, light_normalize, normalize_latex, split_top
from .numbers import parse_number
from .numeric import check_numeric
from .symbolic import check_symbolic
from .tolerance import NumericTolerance

_BOOL_WORDS = {"true": True, "yes": True, "false": False, "no": False}


def _bool_of(s: str) -> bool | None:
    t = normalize_latex(s).lower().strip("().")
    return _BOOL_WORDS.get(t)


def check_boolean(candidate: str, reference: str) -> Verdict:
    """Compare ``true``/``false`` answers (TheoremQA ``bool``); ``yes``/``no`` are accepted as synonyms.

    Returns a :class:`Verdict` with checker ``boolean``: ``equal``, ``text_mismatch`` or ``unparseable``.
    Raises ``ValueError`` if the reference is not a boolean word.
    """
    r = _bool_of(reference)
    if r is None:
        raise ValueError("reference is not a boolean")
    c = _bool_of(candidate)
    if c is None:
        return verdict(None, UNPARSEABLE, "the extracted answer is not true/false", "boolean", reference=str(r).lower())
    if c == r:
        return verdict(True, EQUAL, "the extracted truth value matches the reference", "boolean",
                       candidate=str(c).lower(), reference=str(r).lower())
    return verdict(False, TEXT_MISMATCH, f"the extracted truth value {str(c).lower()} is not the reference truth value",
                   "boolean", candidate=str(c).lower(), reference=str(r).lower())


def _strip_brackets(s: str) -> str:
    t = light_normalize(s)
    if len(t) >= 2 and t[0] in "([" and t[-1] in ")]" and closing_index(t, 0) == len(t) - 1:
        return t[1:-1].strip()
    if t.startswith("\\{") and t.endswith("\\}"):
        return t[2:-2].strip()
    return t


def check_list(candidate: str, reference: str, *, tol: NumericTolerance | None = None) -> Verdict:
    """Compare ordered numeric lists such as TheoremQA's ``[4, 1]`` element-wise.

    Args:
        candidate: ``[4, 1]``, ``(4, 1)``, ``4, 1`` or ``\\left[4, 1\\right]``.
        reference: a bracketed list of numbers.
        tol: the tolerance; only its fixed ``rel_tol`` applies to the elements (a policy does not).

    Returns:
        A :class:`Verdict` with checker ``list``: ``equal``, ``numeric_mismatch`` (with the first
        differing position and the lengths) or ``unparseable``.
    """
    elem_tol = NumericTolerance(rel_tol=tol.rel_tol if tol else None)
    r_items = [x for x in split_top(_strip_brackets(reference)) if x]
    c_items = [x for x in split_top(_strip_brackets(candidate)) if x]
    ref_s = "[" + ", ".join(r_items) + "]"
    cand_s = "[" + ", ".join(c_items) + "]"
    if not c_items:
        return verdict(None, UNPARSEABLE, "the extracted answer is not a list", "list", reference=ref_s)
    if len(c_items) != len(r_items):
        return verdict(False, NUMERIC_MISMATCH,
                       f"the extracted list has {len(c_items)} element(s), a different number than the reference",
                       "list", candidate=cand_s, reference=ref_s, details={"candidate_length": len(c_items)})
    for i, (c, r) in enumerate(zip(c_items, r_items, strict=True)):
        if parse_number(r) is None:
            v = check_symbolic(c, r, tol=elem_tol)
        else:
            v = check_numeric(c, r, tol=elem_tol)
        if v.ok is not True:
            return verdict(v.ok, v.reason if v.ok is None else NUMERIC_MISMATCH,
                           f"element {i + 1} of the extracted list: {v.explanation}", "list",
                           candidate=cand_s, reference=ref_s, details={"position": i + 1, **dict(v.details)})
    return verdict(True, EQUAL, f"all {len(r_items)} elements of the extracted list match the reference", "list",
                   candidate=cand_s, reference=ref_s)

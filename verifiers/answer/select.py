"""Check selection: which check (choice, boolean, list, numeric, symbolic) a question's reference calls for.

The order of the rules and their reasons: ``docs/verifiers.md``, "Which check".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .normalize import normalize_latex
from .numbers import parse_number

_LETTER_REF = re.compile(r"^\(?\s*([A-E])\s*\)?$")
_LETTER_LIST_REF = re.compile(r"^[A-Z](?:\s*,\s*[A-Z])+$")
_LOWER_OPTION_REF = re.compile(r"^\(\s*([a-e])\s*\)$")
_ORDER_WORDS = re.compile(r"\b(?:increasing|decreasing|ascending|descending)\s+order\b|\bin\s+(?:that|this|the\s+same)\s+order\b", re.I)


def reference_text(question: Mapping[str, Any]) -> str | None:
    """The question's reference answer as text (``True`` -> ``true``, ``[4, 1]`` -> ``"[4, 1]"``), or ``None``."""
    ref = question.get("answer")
    if ref is None:
        return None
    if isinstance(ref, bool):
        return "true" if ref else "false"
    if isinstance(ref, (int, float)):
        return str(ref)
    if isinstance(ref, (list, tuple)):
        return "[" + ", ".join(str(x) for x in ref) + "]"
    ref = str(ref).strip()
    return ref or None


def select_check(question: Mapping[str, Any]) -> str:
    """Choose the check for a question: ``choice``, ``options_free``, ``boolean``, ``list``, ``numeric`` or ``symbolic``.

    Args:
        question: a mapping with ``answer`` and optionally ``choices``, ``question_type``
            (JEEBench ``MCQ``/``MCQ(multiple)``/``Integer``/``Numeric``) and ``answer_type``
            (TheoremQA ``bool``/``option``/``list of integer``/``float``...); ``mc_path``
            ``options_free`` (a multiple-choice question solved without its options,
            :mod:`.options`) selects ``options_free``: the answer's value mapped to the options.

    Returns:
        The check name (``none`` when there is no reference). Rules in ``docs/verifiers.md``.
    """
    ref = reference_text(question)
    if ref is None:
        return "none"
    qtype = str(question.get("question_type") or "")
    atype = str(question.get("answer_type") or "").lower()
    plain = normalize_latex(ref)
    if atype == "bool" or plain.lower() in ("true", "false"):
        return "boolean"
    if question.get("choices") or qtype.startswith("MCQ") or atype == "option":
        # marked by the graph (.options.MC_PATH_KEY): solved without its options, so its value is mapped to them
        return "options_free" if question.get("mc_path") == "options_free" else "choice"
    if _LETTER_REF.match(plain) or _LETTER_LIST_REF.match(plain) or _LOWER_OPTION_REF.match(plain):
        return "choice"
    if atype.startswith("list"):
        return "list"
    if parse_number(ref) is not None:
        return "numeric"
    return "symbolic"


def asks_for_order(question: Mapping[str, Any]) -> bool:
    """Whether the question text asks for a list in order ("in increasing order", "in that order")."""
    text = question.get("question")
    return isinstance(text, str) and bool(_ORDER_WORDS.search(text))


def is_scibench_row(question: Mapping[str, Any]) -> bool:
    """Whether the question is a SciBench row (its ``source`` names the SciBench repository, or its id is ``scibench-...``).

    SciBench references are computed results written in the question's ``unit`` (Wang et al. 2024),
    so their decimals are measurements even when the unit field is empty.
    """
    source, qid = question.get("source"), question.get("id")
    return (isinstance(source, str) and "scibench" in source.lower()) or (isinstance(qid, str) and qid.startswith("scibench-"))


def is_science(question: Mapping[str, Any]) -> bool:
    """Whether the question's ``subject`` is a science (physics, chemistry, ...), not mathematics."""
    subject = question.get("subject")
    return isinstance(subject, str) and subject.strip().lower() not in ("", "math", "mathematics")


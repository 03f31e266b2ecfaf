r"""The multiple-choice check: option letters (``B``, ``(B)``, ``\text{(B)}``, ``A, C``) or the text or
value of exactly one option against the reference letter(s). Rules: ``docs/verifiers.md``, "Choices".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..base import CHOICE_MISMATCH, EQUAL, UNPARSEABLE, Verdict
from ..extract import strip_answer_delimiters
from .common import verdict
from .normalize import normalize_latex, unwrap_text
from .numbers import parse_number

_OPTION_IN_TEXT = re.compile(r"(?:^|\s)[(\[]([A-H])[)\]]\s*")


def split_options(text: Any) -> tuple[str, list[str]] | None:
    """A question whose options are written in its text (JEEBench: ``... is (A) $6.0$ (B) $6.4$ ...``)
    split into ``(stem, option texts)``: the stem is the text before ``(A)``, the options A first.

    The options are the last run ``(A)``, ``(B)``, ... (or ``[A]``) in letter order, at least two;
    ``None`` when the text has none (or is not a string).
    """
    if not isinstance(text, str):
        return None
    hits = list(_OPTION_IN_TEXT.finditer(text))
    # keep the last run A, B, C, ... in order
    for start in range(len(hits) - 1, -1, -1):
        if hits[start].group(1) != "A":
            continue
        run = [hits[start]]
        for h in hits[start + 1 :]:
            if ord(h.group(1)) == ord(run[-1].group(1)) + 1:
                run.append(h)
        if len(run) >= 2:
            opts = []
            for i, h in enumerate(run):
                end = run[i + 1].start() if i + 1 < len(run) else len(text)
                opts.append(text[h.end() : end].strip())
            return text[: run[0].start()].strip(), opts
    return None


def _options_from_text(text: Any) -> list[str] | None:
    """Option texts ``(A) ... (B) ...`` / ``[A] ...`` inside a question (JEEBench), or ``None``."""
    split = split_options(text)
    return split[1] if split else None


def _norm_option(s: str) -> str:
    s = normalize_latex(s).lower()
    return re.sub(r"[\s.]+$", "", s)


def _letters_from_text(s: str, n_options: int, multi: bool) -> set[str] | None:
    r"""Letters chosen by an answer: ``B``, ``(B)``, ``\text{(B)}``, ``B) text``, ``Option B``, ``ABD``, ``A, C``."""
    t = strip_answer_delimiters(unwrap_text(s)).strip().strip("*").strip()
    t = re.sub(r"^(?:the\s+)?(?:correct\s+)?(?:options?|choices?|answers?)\s*(?:is|are)?\s*[:\-]?\s*", "", t, flags=re.I)
    last = chr(ord("A") + max(n_options, 1) - 1)
    letter = f"[A-{last}]"
    # one or several letters: "B", "ABD", "A, B and D", "(A)(C)", "A & C"
    if re.fullmatch(rf"(?:[(\[]?\s*{letter}\s*[)\]]?\s*(?:,|and|&|;)?\s*)+", t):
        return set(re.findall(letter, t))
    # a single letter followed by its option text: "(B) 6.4", "B) x+11", "B. text", "B: text"
    m = re.match(rf"^[(\[]\s*({letter})\s*[)\]]", t) or re.match(rf"^({letter})\s*[).:](?:\s|$)", t)
    if m:
        return {m.group(1)}
    lower = re.match(r"^[(\[]?\s*([a-h])\s*[)\]]?$", t)
    if lower and ord(lower.group(1)) - ord("a") < max(n_options, 1):
        return {lower.group(1).upper()}
    return None


def reference_letters(reference: str) -> set[str] | None:
    r"""The option letters a reference answer names (``B``, ``ABD``, ``A, C``, ``(b)``, ``\text{(B)}``), or ``None``."""
    return _letters_from_text(reference, 26, True)


def check_choice(
    candidate: str,
    reference: str,
    *,
    choices: Sequence[str] | None = None,
    question_text: str | None = None,
    multiple: bool = False,
) -> Verdict:
    r"""Compare a multiple-choice answer with the reference letter(s).

    Args:
        candidate: the extracted answer: ``B``, ``(B)``, ``\text{(B)}``, ``B) text``, ``Option B``,
            ``ABD``/``A, B, D`` (several letters), or the text of exactly one option.
        reference: letters (``B``, ``ABD``, ``A, C``), ``(a)`` (TheoremQA) or ``\text{(B)}`` (MATH).
        choices: option texts, A first (MMLU); when absent, options ``(A) ...`` written in
            ``question_text`` (JEEBench) are used for option-text matching.
        question_text: the question, for options embedded in it.
        multiple: ``MCQ(multiple)``: the SET of letters must match exactly (JEEBench scoring gives
            no credit to partial sets here).

    Returns:
        A :class:`Verdict` with checker ``choice``: ``equal``, ``choice_mismatch`` or
        ``unparseable`` (the answer maps to no option). Letters are compared case-insensitively;
        option text matching uses :func:`normalize_latex` + lower case, then numeric equality.
    """
    options = list(choices) if choices else (_options_from_text(question_text) or [])
    ref_letters = reference_letters(reference)
    if not ref_letters:
        raise ValueError("reference is not a set of option letters")
    n = max(len(options), max(ord(x) - 64 for x in ref_letters), 4 if options else 8)
    how = "letter"
    cand_letters = _letters_from_text(candidate, n, multiple)
    if cand_letters is None and options:
        norm = _norm_option(candidate)
        hits = [i for i, o in enumerate(options) if _norm_option(str(o)) == norm]
        if len(hits) == 1:
            cand_letters, how = {chr(65 + hits[0])}, "option text"
    if cand_letters is None and options:
        cn = parse_number(candidate)
        if cn is not None:
            hits = []
            for i, o in enumerate(options):
                on = parse_number(str(o))
                if on is not None and on.value == cn.value:
                    hits.append(i)
            if len(hits) == 1:
                cand_letters, how = {chr(65 + hits[0])}, "option value"
    ref_str = "".join(sorted(ref_letters))
    multiple = multiple or len(ref_letters) > 1
    if cand_letters is None:
        return verdict(
            None, UNPARSEABLE, "the extracted answer could not be mapped to an option letter", "choice", reference=ref_str
        )
    cand_str = "".join(sorted(cand_letters))
    details = {"matched_by": how, "multiple": multiple}
    if cand_letters == ref_letters:
        return verdict(True, EQUAL, f"the chosen option(s) match the reference (read by {how})", "choice",
                        candidate=cand_str, reference=ref_str, details=details)
    if multiple and len(cand_letters) != len(ref_letters):
        expl = f"the chosen option set {cand_str} differs from the reference set (a different number of options)"
    elif multiple:
        expl = f"the chosen option set {cand_str} differs from the reference set"
    else:
        expl = f"the chosen option {cand_str} is not the reference option"
    return verdict(False, CHOICE_MISMATCH, expl, "choice", candidate=cand_str, reference=ref_str, details=details)

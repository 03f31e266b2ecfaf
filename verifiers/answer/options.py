r"""Multiple choice without the options: which path a question takes, and a value mapped to its options.

With the options in view, small models pick the right letter well above chance from the options
alone (Balepur et al. 2024, arXiv 2402.12483), and an accepted letter can come with wrong reasoning.
Reasoning before the options are shown removes much of this (arXiv 2507.15337). So a question whose
stem can be answered alone (a quantity or an expression) is solved without its options
(``options_free``): the model derives a value, and the value is mapped to an option by the
verifier's own equivalence (:func:`~.numeric.check_numeric` with units, :func:`~.symbolic.check_symbolic`);
only the correct option accepts it. Every other multiple-choice question (``k_sample``) needs k
independent samples that all pick the correct letter (the graph's ``confirm`` node).

:func:`mc_path` is the rule; :func:`check_options_free` the check of an options-free answer.
Rules: ``docs/verifiers.md``, "Multiple choice without the options".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..base import CHOICE_MISMATCH, EQUAL, NO_OPTION, UNDECIDED, UNIT_CONVERTED, UNPARSEABLE, Verdict
from ..symbols import canonical_symbols
from ..units import parse_unit
from .choice import reference_letters, split_options
from .common import Unparseable, verdict
from .latex import latex_to_sympy
from .numbers import parse_number
from .numeric import check_numeric
from .select import is_science, reference_text
from .symbolic import check_symbolic, structure
from .tolerance import NumericTolerance

MCPath = Literal["options_free", "k_sample"]
"""How a multiple-choice question is annotated: ``options_free`` (solved without its options, the
value mapped to an option) or ``k_sample`` (solved with its options; k samples must agree)."""

MC_PATHS: tuple[MCPath, ...] = ("options_free", "k_sample")

MC_PATH_KEY = "mc_path"
"""The key that marks a question mapping with its path (``{**question, "mc_path": "options_free"}``):
the prompts leave the options out and the verifier maps the value to them."""

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# A stem that refers to its options cannot be answered without them ("which of the following",
# "all of the above", "I and II", "except", "NOT"), nor can one that asks for the option nearest to
# a value ("closest to", "approximately"): its options are not values the answer can equal.
_REFERS_TO_OPTIONS = re.compile(
    r"\bwhich\s+(?:of|one|statements?|options?|choices?|answers?|pairs?|sets?|graphs?|expressions?|equations?|"
    r"values?|numbers?|functions?|is|are|best|could|must|would|can)\b"
    r"|\b(?:of|from|among|in)\s+the\s+following\b|\bthe\s+following\s+(?:is|are|options?|values?|choices?|answers?|statements?)\b|\b(?:all|none|both|neither|each|any)\s+of\s+(?:the\s+)?(?:above|these|them)\b|\bthe\s+(?:above|below)\b|\blisted\b"
    r"|\boptions?\b|\bchoices?\b|\bexcept\b|\bcorrect\b|\bincorrect\b|\btrue\b|\bfalse\b|\bstatements?\b"
    r"|\b(?:I|II|III|IV)\s*(?:,|and|only|or)\s*(?:II|III|IV)?\b"
    r"|\b(?:closest|nearest\s+to|approximate(?:ly)?|estimate[ds]?|roughly|order\s+of\s+magnitude)\b"
    r"|\b(?:best|most\s+likely|most\s+nearly)\b"
    r"|_{3,}|\(\s*\)",
    re.I,
)
_NOT = re.compile(r"\b(?:NOT|LEAST|EXCEPT|CANNOT)\b")  # capitalised for emphasis: pick the odd one out
_WORD = re.compile(r"[A-Za-z]{3,}")
_SHORT_WORD = re.compile(r"\b(?:or|and|of|to|if|is|no|on|at|by)\b", re.I)  # "0 or -1/3": words, not a product
_INVERSE_TRIG = re.compile(r"(?:sin|cos|tan|cot|sec|csc)\s*(?:\^\s*\{?\s*)?[-\u2013\u2212]\s*1")
_CHEMICAL = re.compile(r"[A-Z][a-z]|[A-Z]{2}|[A-Z]\d")  # Fe, CO2, H2S: a formula, not a product of symbols
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
_MATH_WORDS = re.compile(r"\b(?:sin|cos|tan|cot|sec|csc|log|ln|exp|sqrt|arcsin|arccos|arctan|sinh|cosh|tanh|min|max)\b")
_BARE_EXPONENT = re.compile(r"\^\s*([-+]?\d+(?:\.\d+)?)")
_PAREN_FRACTION = re.compile(r"\(\s*([-+]?\d+)\s*/\s*(\d+)\s*\)")
_MAX_OPTION_CHARS = 300


def as_value_text(text: Any) -> str:
    r"""An option (or answer) written the way the number reader reads it: Unicode symbols in one
    spelling (``×`` -> ``\times``), ``10^-11`` -> ``10^{-11}``, ``(1/5) AU`` -> ``\frac{1}{5} AU``,
    ``√`` -> ``\sqrt``, ``π`` -> ``\pi``. Plain string work; never raises for a string."""
    s = canonical_symbols(str(text)).strip()
    s = s.replace("\u221a", "\\sqrt").replace("\u03c0", "\\pi ").replace("mm Hg", "mmHg")
    s = _BARE_EXPONENT.sub(lambda m: "^{" + m.group(1) + "}", s)
    return _PAREN_FRACTION.sub(lambda m: "\\frac{" + m.group(1) + "}{" + m.group(2) + "}", s).strip()


def question_options(question: Mapping[str, Any]) -> list[str] | None:
    """The option texts of a multiple-choice question, A first: ``choices`` (MMLU), else the options
    written in the question text (JEEBench, :func:`~.choice.split_options`); ``None`` when it has none."""
    choices = question.get("choices")
    if isinstance(choices, (list, tuple)) and choices:
        return [str(c) for c in choices]
    split = split_options(question.get("question"))
    return split[1] if split else None


def options_free_stem(question: Mapping[str, Any]) -> str | None:
    """The question without its options, or ``None`` when they cannot be split off reliably.

    ``choices`` rows: the question text itself. Options written in the text (JEEBench): the text
    before ``(A)``, when the options are 4 or 5 consecutive letters, each one short (at most 300
    characters, no blank line in the last one: nothing follows the list) and the stem is at least
    20 characters long.
    """
    text = question.get("question")
    if not isinstance(text, str) or not text.strip():
        return None
    if question.get("choices"):
        return text.strip()
    split = split_options(text)
    if split is None:
        return None
    stem, options = split
    if len(options) not in (4, 5) or len(stem) < 20 or "\n\n" in options[-1].strip():
        return None
    if any(not o or len(o) > _MAX_OPTION_CHARS for o in options):
        return None
    return stem


def _is_expression(text: str) -> bool:
    """Whether a text is mathematics the symbolic check parses: every scalar of its structure (tuple,
    set, interval, list) parses, and it holds no word (three letters or more outside LaTeX commands
    and function names)."""
    if _INVERSE_TRIG.search(text):
        return False  # "sin-1 (1/g)" means arcsin, which the grammar would read as a difference
    bare = _MATH_WORDS.sub(" ", _LATEX_COMMAND.sub(" ", text))
    if _WORD.search(bare) or _CHEMICAL.search(bare) or _SHORT_WORD.search(bare):
        return False

    def scalars(node: Any) -> list[str]:  # an equation's items are its two sides, as strings
        if isinstance(node, str):
            return [node]
        return [node.text] if not node.items else [s for item in node.items for s in scalars(item)]

    try:
        leaves = scalars(structure(text))
        for leaf in leaves:
            latex_to_sympy(leaf)
    except (Unparseable, RecursionError, ValueError, TypeError):
        return False
    return bool(leaves)


def is_value_option(text: Any, *, expressions: bool = True) -> bool:
    r"""Whether an option is a value an answer can equal: a number with an optional unit the unit
    reader knows (``8.8 × 10^-11 M``, ``41°``, ``(1/5) AU``), or a mathematical expression or tuple
    the symbolic check parses (``\frac{\sqrt3}{2}``, ``(1, -2)``). Words (``increasing mass``, ``I and
    II``), chemical formulas (``CO2``) and a bare capital A-E (an option letter) are not values.
    ``expressions=False`` admits numbers only (chemistry: ``1s``, ``3d`` are orbitals, not products)."""
    s = as_value_text(text)
    if not s or len(s) > _MAX_OPTION_CHARS or re.fullmatch(r"\$?\s*\(?[A-E]\)?\s*\$?", s):
        return False  # an option letter, not a quantity
    parsed = parse_number(s)
    if parsed is not None:
        return parsed.unit is None or parse_unit(parsed.unit) is not None
    return expressions and _is_expression(s)


def refers_to_options(stem: str) -> bool:
    """Whether a stem needs its options to be answered: it points at them ("which of the following",
    "all of the above", "I and II", "except", "NOT") or picks the nearest one ("closest to",
    "approximately")."""
    return bool(_REFERS_TO_OPTIONS.search(stem) or _NOT.search(stem))


def _multiple(question: Mapping[str, Any]) -> bool:
    letters = reference_letters(reference_text(question) or "")
    return str(question.get("question_type") or "") == "MCQ(multiple)" or (letters is not None and len(letters) > 1)


def is_multiple_choice(question: Mapping[str, Any]) -> bool:
    """Whether a question is multiple choice: ``choices``, JEEBench ``MCQ``/``MCQ(multiple)``, or
    TheoremQA ``answer_type`` ``option``."""
    return bool(question.get("choices")) or str(question.get("question_type") or "").startswith("MCQ") \
        or str(question.get("answer_type") or "").lower() == "option"


def mc_path(question: Mapping[str, Any]) -> MCPath | None:
    """The path of a question: ``None`` (not multiple choice), ``options_free`` or ``k_sample``.

    ``options_free`` when all of: one correct letter; a stem without the options
    (:func:`options_free_stem`) that does not refer to them (:func:`refers_to_options`); every option
    a value (:func:`is_value_option`; numbers only in chemistry); no two options equal by the verifier's equivalence (else an
    answer could map to two). Everything else is ``k_sample``.

    Examples:
        >>> mc_path({"question": "What is 6 x 7?", "choices": ["40", "42", "44", "48"], "answer": "B"})
        'options_free'
        >>> mc_path({"question": "Which of the following is prime?", "choices": ["4", "6", "7", "9"], "answer": "C"})
        'k_sample'
        >>> mc_path({"question": "What is 6 x 7?", "answer": "42"}) is None
        True
    """
    if not is_multiple_choice(question):
        return None
    if _multiple(question):
        return "k_sample"
    stem, options = options_free_stem(question), question_options(question)
    if stem is None or not options or refers_to_options(stem):
        return "k_sample"
    letters = reference_letters(reference_text(question) or "")
    if not letters or ord(next(iter(letters))) - ord("A") >= len(options):
        return "k_sample"
    expressions = str(question.get("subject") or "").strip().lower() != "chemistry"
    if not all(is_value_option(o, expressions=expressions) for o in options):
        return "k_sample"
    for i, a in enumerate(options):
        for b in options[i + 1 :]:
            if compare_with_option(a, b, question).ok is not False or compare_with_option(b, a, question).ok is not False:
                return "k_sample"  # equal, or not decidably different: an answer might map to both
    return "options_free"


def with_mc_path(question: Mapping[str, Any], path: str | None) -> dict[str, Any]:
    """The question mapping marked with its path (``MC_PATH_KEY``); unmarked when ``path`` is ``None``."""
    marked = {k: v for k, v in question.items() if k != MC_PATH_KEY}
    if path:
        marked[MC_PATH_KEY] = path
    return marked


def is_options_free(question: Mapping[str, Any]) -> bool:
    """Whether a question mapping is marked ``options_free`` (:func:`with_mc_path`)."""
    return question.get(MC_PATH_KEY) == "options_free"


def reference_option_text(question: Mapping[str, Any]) -> str | None:
    """The text of the correct option (single-letter reference), or ``None``."""
    letters = reference_letters(reference_text(question) or "")
    options = question_options(question)
    if not letters or len(letters) != 1 or not options:
        return None
    index = ord(next(iter(letters))) - ord("A")
    return options[index].strip() if index < len(options) else None


def compare_with_option(candidate: str, option: str, question: Mapping[str, Any],
                        tol: NumericTolerance | None = None) -> Verdict:
    """One answer against one option taken as the reference: :func:`~.numeric.check_numeric` when the
    option is a number (units converted; in a science question an option with a unit is a measured
    quantity, rounded at its last digit), else :func:`~.symbolic.check_symbolic`.

    Returns the check's :class:`Verdict`; never raises (a failing check is ``ok=None``).
    """
    cand, ref = as_value_text(candidate), as_value_text(option)
    try:
        if parse_number(ref) is not None:
            return check_numeric(cand, ref, tol=tol, unit=question.get("unit"), science=is_science(question))
        return check_symbolic(cand, ref, tol=tol)
    except Exception as exc:  # noqa: BLE001 - one option that cannot be compared does not decide the rest
        return verdict(None, UNDECIDED, f"the comparison failed ({type(exc).__name__})", "options")


def check_options_free(candidate: str, question: Mapping[str, Any], tol: NumericTolerance | None = None) -> Verdict:
    """Map the value of an options-free answer to the question's options and check the option.

    Args:
        candidate: the extracted final answer (a value: ``42 kJ/mol``, ``8.8e-11 M``, ``\\frac{1}{5}``).
        question: the question (its options: ``choices`` or written in ``question``; ``answer`` the
            correct letter; ``subject``, ``unit``).
        tol: the numeric tolerance of the verifier.

    Returns:
        A :class:`Verdict` with checker ``options_free`` and ``details["mc_path"] = "options_free"``:
        ``equal`` (``ok`` true) when the value equals exactly one option and it is the correct one
        (``details["mapped_option"]``); ``choice_mismatch`` when it equals exactly one other option;
        ``no_option`` (``ok`` false) when it equals none, explained as "no option equals 42 kJ/mol";
        ``undecided`` when it equals several, or when some comparison could not be decided and
        none matched; ``unparseable`` when the value cannot be read against any option. The
        explanation never says which option is correct.

    Raises:
        ValueError: the question has no options or no single reference letter.
    """
    options = question_options(question)
    letters = reference_letters(reference_text(question) or "")
    if not options or not letters or len(letters) != 1:
        raise ValueError("an options-free question needs its options and one reference letter")
    correct = next(iter(letters))
    results = {LETTERS[i]: compare_with_option(candidate, option, question, tol) for i, option in enumerate(options)}
    hits = [letter for letter, v in results.items() if v.ok is True]
    details: dict[str, Any] = {"mc_path": "options_free", "options": {k: v.reason for k, v in results.items()}}
    shown = as_value_text(candidate)
    if len(hits) == 1:
        details["mapped_option"] = hits[0]
        how = results[hits[0]]
        if hits[0] == correct:
            reason = UNIT_CONVERTED if how.reason == UNIT_CONVERTED else EQUAL
            return verdict(True, reason, f"the value equals option {hits[0]}, the reference option ({how.explanation})",
                           "options_free", candidate=hits[0], reference=correct, details=details)
        return verdict(False, CHOICE_MISMATCH, f"the value equals option {hits[0]}, which is not the reference option",
                       "options_free", candidate=hits[0], reference=correct, details=details)
    if len(hits) > 1:
        details["mapped_options"] = hits
        return verdict(None, UNDECIDED, f"the value equals several options ({', '.join(hits)})", "options_free",
                       reference=correct, details=details)
    if all(v.reason == UNPARSEABLE for v in results.values()):
        return verdict(None, UNPARSEABLE, f"the value {shown} could not be read to compare it with the options",
                       "options_free", reference=correct, details=details)
    if any(v.ok is None for v in results.values()):
        return verdict(None, UNDECIDED, f"no option was shown to equal {shown}, and some comparisons could not be decided",
                       "options_free", reference=correct, details=details)
    return verdict(False, NO_OPTION, f"no option equals {shown}", "options_free", reference=correct, details=details)


def options_summary(questions: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many of ``questions`` take each path (``options_free``, ``k_sample``, ``none``)."""
    counts = {"options_free": 0, "k_sample": 0, "none": 0}
    for q in questions:
        counts[mc_path(q) or "none"] += 1
    return counts


__all__ = [
    "MC_PATHS",
    "MC_PATH_KEY",
    "NO_OPTION",
    "MCPath",
    "as_value_text",
    "check_options_free",
    "compare_with_option",
    "is_multiple_choice",
    "is_options_free",
    "is_value_option",
    "mc_path",
    "options_free_stem",
    "options_summary",
    "question_options",
    "reference_option_text",
    "refers_to_options",
    "with_mc_path",
]

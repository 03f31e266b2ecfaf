r"""Answer checks: compare an extracted final answer with a reference answer, in-process.

Pure functions on strings. Model text is never evaluated as code: plain numbers are read with
regular expressions into :class:`fractions.Fraction` (via :class:`decimal.Decimal`), LaTeX is parsed
by sympy's ANTLR LaTeX grammar (``sympy.parsing.latex.parse_latex``), and structure (tuples,
intervals, sets, lists, unions, equations) is split by a bracket-aware scanner before parsing.
Nothing here calls ``eval``/``exec``/``sympify``/``parse_expr`` on model text (units are read by a
tokenizer and dictionary lookups in pint's registry).

These functions do NOT protect against pathological input (``9^{9^{9^{9}}}`` can run for hours in
sympy): run them through :class:`scireflect.verifiers.sandbox.SandboxedAnswerVerifier`, which adds a
wall-clock limit, a memory limit and a length cap.

Rules (documented choices)
--------------------------
Which check: ``choices`` present, ``question_type`` ``MCQ``/``MCQ(multiple)``, ``answer_type``
``option`` or a letter reference (``B``, ``(b)``, ``\text{(B)}``, ``A, C``) -> *choice*;
``true``/``false`` -> *boolean*; ``answer_type`` ``list of ...`` (TheoremQA ``[4, 1]``) -> *list*;
a reference that reads as a plain number -> *numeric*; anything else -> *symbolic* (which also
compares numbers numerically when both sides are constants).

Numeric tolerance (``rel_tol``):
  * ``rel_tol=None`` (default): an exact reference, i.e. an integer written without a decimal
    point (GSM8K ``72``), a fraction or mixed number (``\frac{9}{7}``, ``3/4``) or a power of ten,
    must match exactly in value (``72``, ``72.0``, ``\$72``, ``72 clips`` pass; ``72.01`` fails;
    ``0.75`` passes for ``3/4`` but ``0.2857`` fails for ``\frac{2}{7}``). Decimal references
    use a relative tolerance of ``DEFAULT_REL_TOL`` = 1e-4; instead, a
    reference that is visibly rounded (a decimal with >= 3 significant digits, e.g. ``50.7``,
    ``1.414``, or any JEEBench ``Numeric`` answer, which the exam asks "correct up to the 2nd
    decimal") accepts exactly the candidates that round to it at its last written digit
    (|c - r| <= half a unit in the last place: ``50.68`` ~ ``50.7``, ``50.2`` is rejected;
    ``4600.2`` is rejected for ``4600.0`` although it is within 1e-4).
  * ``rel_tol=x`` (e.g. ``SCIBENCH_REL_TOL`` = 0.05, the 5 % rule of SciBench, Wang et al. 2024):
    |c - r| <= x * |r| for every reference, integers included.
Percent: ``12\%`` and ``0.12`` are both accepted for each other, and ``12\%`` is accepted for a
  reference ``12`` (a "what percent" question; SciBench references with unit ``%``): the candidate
  and the reference are each read "as written" and, when exactly one side carries ``%`` (or the
  question's ``unit`` is ``%``), that side is also read divided by 100; any matching pair accepts.
  ``details['reading']`` says which pair matched.
Units (pint, :mod:`scireflect.verifiers.units`): the reference unit is the question's ``unit``
  field (SciBench: the reference is a number in that unit), else the reference's own trailing unit
  (``5 km``). A candidate without a unit is read in the requested unit (``50.7`` for ``atm``). A
  candidate with a unit (``50.7 atm``, ``5.137\times10^{6}\ \mathrm{Pa}``, ``\text{ cm}^2``,
  ``^\circ``, ``0.5236 rad``) is converted to the reference unit and compared by the rules above
  (reason ``unit_converted`` when a conversion was needed; an exact reference then allows 1e-12 for
  the float conversion factor, or the candidate's own last-digit rounding when it has >= 4
  significant digits); units of another dimension are rejected with ``dimension_mismatch`` and an
  explanation such as "dimension mismatch: got m ([length]), expected m/s ([length] / [time])".
  Degrees and radians convert (both dimensionless in pint); ``°C`` and ``K`` convert as
  temperatures. When only the candidate has a unit, or it is not a unit pint knows (``42 pages``),
  it is ignored and reported in ``details['unit_ignored']``. A bare letter right after the number
  (``3x``) is NOT a unit. A SciBench ``unit`` of the form ``10^{k} ...`` is part of the unit (and a
  unit-less candidate may also be the reference times 10^k). ``%`` and ``$`` units: percent rule.
Tolerance policies (``tolerance``): ``default`` (above), ``sig_figs`` (every decimal reference,
  even ``9.8``, accepts what rounds to it at its last written digit) and ``scibench`` (5 %).
Ensemble: when the symbolic check cannot decide (candidate unparseable, undecided, reference not
  parseable by our grammar), math-verify (Hugging Face, timeouts disabled, ours apply) is asked;
  it can only turn "cannot decide" into "equal", never override a decision.
Mixed numbers: ``1\frac{2}{7}`` and ``1 2/7`` (an integer followed by a proper fraction of
  integer literals, as the whole answer or list element) are the mixed number 9/7, as in the MATH
  answers (``6\frac{3}{4}``); they therefore equal ``\dfrac{9}{7}`` and ``9/7``. An improper
  fraction after an integer (``2\frac{4}{3}``) is a product, as LaTeX reads it.
Symbolic answers: equal when the normalised strings agree (``\left``, ``\right``, ``\!``, spaces,
  ``\text{}`` wrappers, ``^\circ``, ``dfrac``->``frac`` removed), else when both parse and are
  structurally equal, or, for constants, agree numerically to ``SYMBOLIC_REL_TOL`` (1e-9 relative,
  i.e. an exact reference needs an exact answer; decimals such as ``0.866`` for
  ``\frac{\sqrt3}{2}`` are rejected unless a ``rel_tol`` is given), or, with free symbols, agree at
  every one of 8 random points (fixed seed; 5 positive, 3 negative) where both are defined, with at
  least 3 such points (as in math-verify and the Hendrycks MATH sampling idea), or
  ``simplify(a - b) == 0``; variables are never compared loosely, whatever ``rel_tol`` is. Ordered structures: tuples/intervals ``(1,2)``, ``(-\infty, 3]``
  compare element-wise and need the same brackets. Unordered: bare comma lists ``1, 2, 3`` (the
  MATH "enter all solutions separated by commas" form; ordered instead when the question text asks
  for "increasing/decreasing/ascending/descending order"), sets ``\{1,2\}`` and the parts of a
  union ``\cup`` compare as multisets. Matrices (``pmatrix``/``bmatrix``) compare entry-wise and need the
  same shape. Equations: ``y = 2x`` vs ``2x = y`` compare ``lhs - rhs`` up to a
  non-zero constant factor; ``x = 5`` matches ``5`` (a single-symbol left-hand side is dropped,
  as in Hendrycks' ``_strip_string``). Base-n numerals (``42_7``) and ``\text{...}`` answers compare
  as normalised text only.
Lists (TheoremQA ``[4, 1]``): ordered, same length, element-wise numeric with the rules above.
Booleans: ``true``/``yes`` and ``false``/``no`` (case-insensitive, ``\text{}`` stripped).
Multiple choice: letters are read from ``B``, ``(B)``, ``\text{(B)}``, ``B) text``, ``Option B``,
  ``ABD``, ``A, B and D``; letters win over option texts; otherwise the answer may be the exact
  (normalised) text or numeric value of exactly one option. Letter sets must match exactly.
Explanations never contain the reference answer (it goes to ``Verdict.reference`` only); they
  may contain the candidate, the relative error and the tolerance.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from time import perf_counter
from typing import Any
from collections.abc import Mapping, Sequence

import mpmath

from .base import (
    CHECK_ERROR,
    CHOICE_MISMATCH,
    DIMENSION_MISMATCH,
    EQUAL,
    NO_ANSWER,
    NO_REFERENCE,
    NUMERIC_MISMATCH,
    SYMBOLIC_MISMATCH,
    TEXT_MISMATCH,
    UNDECIDED,
    UNIT_CONVERTED,
    UNPARSEABLE,
    Verdict,
)
from .units import DimensionMismatch, conversion, parse_unit
from .extract import Extraction, extract_final_answer, strip_answer_delimiters

__all__ = [
    "DEFAULT_REL_TOL",
    "SCIBENCH_REL_TOL",
    "SYMBOLIC_REL_TOL",
    "MAX_ANSWER_CHARS",
    "ParsedNumber",
    "parse_number",
    "normalize_latex",
    "precheck",
    "select_check",
    "check_numeric",
    "check_choice",
    "check_boolean",
    "check_list",
    "check_symbolic",
    "verify_answer",
]

DEFAULT_REL_TOL = 1e-4
"""Default relative tolerance for non-integer numeric references."""
SCIBENCH_REL_TOL = 0.05
"""The 5 % relative tolerance used by SciBench (Wang et al. 2024); pass it as ``rel_tol``."""
SYMBOLIC_REL_TOL = 1e-9
"""Relative agreement needed between numeric evaluations of two exact (symbolic) answers."""
EXACT_REL_TOL = 1e-15
CONVERTED_EXACT_REL_TOL = 1e-12
"""What "exactly equal" means after a unit conversion (pint's factors are floats: 1e-12 relative)."""
"""What "exactly equal" means when one side is only known as a 30-digit float (e.g. ``\\sqrt{5184}``)."""
MAX_ANSWER_CHARS = 20_000
"""Extracted answers longer than this are rejected as ``unparseable`` before any parsing."""
MAX_DECIMAL_EXPONENT = 1000
"""Plain-number exponents beyond this (``1e5000``) are left to the sympy path (float evaluation)."""
_MAX_SIMPLIFY_OPS = 250
_SAMPLE_SEED = 20240531
_N_SAMPLES = 8
_MIN_VALID_SAMPLES = 3


class _Unparseable(Exception):
    """The text could not be parsed (internal)."""


# ---------------------------------------------------------------------------------------------
# String normalisation
# ---------------------------------------------------------------------------------------------

_WRAPPER_CMDS = ("text", "textbf", "textit", "textrm", "mathrm", "mathbf", "mathit", "mbox", "boldsymbol", "textnormal")


def _replace_command(s: str, names: Sequence[str], repl) -> str:
    r"""Replace every ``\name{arg}`` (nested braces matched) by ``repl(name, arg)``."""
    pat = re.compile(r"\\(" + "|".join(map(re.escape, names)) + r")\s*\{")
    out = []
    pos = 0
    while True:
        m = pat.search(s, pos)
        if not m:
            out.append(s[pos:])
            return "".join(out)
        depth, i = 1, m.end()
        while i < len(s) and depth:
            if s[i] == "\\":
                i += 2
                continue
            if s[i] == "{":
                depth += 1
            elif s[i] == "}":
                depth -= 1
            i += 1
        if depth:  # unbalanced: leave the rest alone
            out.append(s[pos:])
            return "".join(out)
        out.append(s[pos : m.start()])
        out.append(repl(m.group(1), s[m.end() : i - 1]))
        pos = i


def _unwrap_text(s: str) -> str:
    r"""``\text{(B)}`` -> ``(B)`` for every wrapper command (``\text``, ``\mathrm``, ``\textbf``, ...)."""
    for _ in range(3):  # nested wrappers
        new = _replace_command(s, _WRAPPER_CMDS, lambda _n, a: a)
        if new == s:
            break
        s = new
    return s


def _fix_shorthand(s: str) -> str:
    r"""``\frac34`` -> ``\frac{3}{4}``, ``\frac3{x}`` -> ``\frac{3}{x}``, ``\sqrt3`` -> ``\sqrt{3}``."""
    s = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\s*(\d)\s*\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\frac\s*\{([^{}]*)\}\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\s*([a-zA-Z])\s*([a-zA-Z\d])", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\sqrt\s*(\d|[a-zA-Z](?![a-zA-Z]))", r"\\sqrt{\1}", s)  # one token, as in TeX
    return s


def _light_normalize(s: str) -> str:
    r"""Normalisation that keeps single spaces (safe to feed to the LaTeX parser).

    Strips delimiters, ``\left``/``\right``, ``\!``/``\,``/``\;``/``~`` spacing, ``\displaystyle``,
    degree marks (``^\circ``, ``°``), ``\$``; maps ``\dfrac``/``\tfrac``/``\cfrac`` to ``\frac``,
    unicode minus to ``-``; fixes ``\frac34`` and ``\sqrt3`` shorthands.
    """
    s = strip_answer_delimiters(s)
    s = s.replace("\u2212", "-").replace("\u2013", "-").replace("\u00d7", "\\times ").replace("\u00b7", "\\cdot ")
    s = s.replace("\\right.", "").replace("\\left.", "")
    s = re.sub(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big)(?![a-zA-Z])", "", s)
    s = re.sub(r"\\(?:displaystyle|textstyle|quad|qquad)(?![a-zA-Z])", " ", s)
    s = s.replace("\\!", "").replace("{,}", ",")
    s = re.sub(r"\\[,;: ]|~", " ", s)
    s = re.sub(r"\\[dtc]frac(?![a-zA-Z])", r"\\frac", s)
    s = re.sub(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\u00b0|\\degree", "", s)
    s = s.replace("\\$", "").replace("$", "")
    s = _fix_shorthand(s)
    s = re.sub(r"\s+", " ", s).strip()
    while len(s) >= 2 and s[0] == "{" and _closing_brace(s) == len(s) - 1:  # {a, b}: invisible TeX grouping
        s = s[1:-1].strip()
    return strip_answer_delimiters(s)


def _closing_brace(s: str) -> int | None:
    depth = 0
    for i, ch in enumerate(s):
        if ch == "{" and (i == 0 or s[i - 1] != "\\"):
            depth += 1
        elif ch == "}" and (i == 0 or s[i - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return i
    return None


def normalize_latex(s: str) -> str:
    r"""Canonical string form of an answer for a cheap first equality test.

    Args:
        s: an answer in LaTeX or plain text, e.g. ``\left( \dfrac{1}{4}, -2 \right)``.

    Returns:
        The string with delimiters, ``\left``/``\right``, ``\!``, all whitespace, ``\text{}``-like
        wrappers, ``^\circ`` and ``\$`` removed and ``\dfrac``->``\frac``, e.g. ``(\frac{1}{4},-2)``.
        Two answers with equal normal forms are equal; unequal forms prove nothing.

    Source: the string normalisation of Hendrycks et al. (2021) MATH ``_strip_string``.
    """
    s = _light_normalize(_unwrap_text(s))
    return re.sub(r"\s+", "", s)


# ---------------------------------------------------------------------------------------------
# Plain numbers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedNumber:
    """A plain number read from text (no sympy involved).

    Attributes:
        value: the exact value as a :class:`~fractions.Fraction` (``12%`` has value 12; see ``percent``).
        percent: the text ended in ``%``/``\\%``/``percent``.
        unit: a trailing unit that was stripped (``"atm"``, ``"\\mathrm{~kJ}"``), or ``None``.
        integer_literal: written as an integer (no decimal point, exponent or fraction).
        exact: written as an exact value: an integer, a fraction, a mixed number or a power of ten
            (``72``, ``3/4``, ``\\frac{9}{7}``, ``10^{-3}``); decimals (``0.5``, ``6.02e23``) are not.
        sig_figs: significant digits of a written decimal (``50.70`` -> 4), ``None`` otherwise.
        ulp: one unit in the last written place of a decimal (``50.7`` -> 1/10), ``None`` otherwise.
    """

    value: Fraction
    percent: bool = False
    unit: str | None = None
    integer_literal: bool = False
    exact: bool = False
    sig_figs: int | None = None
    ulp: Fraction | None = None


_SINGLE_SYMBOL = re.compile(r"^(?:[A-Za-z]|\\text\{[A-Za-z ]+\})(?:_\{?[A-Za-z0-9]+\}?)?$|^\\(?:alpha|beta|gamma|theta|lambda|mu|phi|omega)$")
_SIGN = r"(?P<sign>[-+]?)\s*"
_EXP_TAIL = (
    r"(?:\s*[eE]\s*(?P<e1>[-+]?\d+)"
    r"|\s*(?:\\times|\\cdot|\*|x|X)\s*10\s*\^\s*(?:\{\s*(?P<e2>[-+]?\s*\d+)\s*\}|(?P<e3>[-+]?\d)))?"
)
_NUM_PATTERNS = [
    (
        "mixed",
        re.compile(_SIGN + r"(?P<whole>\d+)\s*\\frac\s*\{\s*(?P<num>\d+)\s*\}\s*\{\s*(?P<den>\d+)\s*\}"),
    ),
    ("mixed", re.compile(_SIGN + r"(?P<whole>\d+)\s+(?P<num>\d+)\s*/\s*(?P<den>\d+)(?![\d.])")),
    (
        "latex_frac",
        re.compile(
            _SIGN
            + r"\\frac\s*\{\s*(?P<num>[-+]?\s*\d+(?:\.\d+)?)\s*\}\s*\{\s*(?P<den>[-+]?\s*\d+(?:\.\d+)?)\s*\}"
        ),
    ),
    ("pow10", re.compile(_SIGN + r"10\s*\^\s*(?:\{\s*(?P<e2>[-+]?\s*\d+)\s*\}|(?P<e3>[-+]?\d))")),
    ("frac", re.compile(_SIGN + r"(?P<num>\d+(?:\.\d+)?)\s*/\s*(?P<den>\d+(?:\.\d+)?)(?![\d.])")),
    ("decimal", re.compile(_SIGN + r"(?P<mant>(?:\d{1,3}(?:,\d{3})+(?![\d,])|\d+)(?:\.\d*)?|\.\d+)" + _EXP_TAIL)),
]

_UNIT_TOKEN = re.compile(
    r"(?P<sep>\s+|\\[,;: ]|~|\\cdot|\\times|/|\*|\u00b7|-)"
    r"|(?P<deg>\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\u00b0|\\degree)"
    r"|(?P<cmd>\\(?:mu|Omega|AA|ohm|%)(?![a-zA-Z]))"
    r"|(?P<exp>\^\s*(?:\{\s*[-+]?\s*\d+(?:\.\d+)?\s*\}|[-+]?\d))"
    r"|(?P<word>[A-Za-z\u00b5\u03bc\u03a9\u00c5]+)"
    r"|(?P<paren>[()])"
)
_UNIT_BLOCKED_WORDS = {
    "pi", "e", "i", "sqrt", "ln", "log", "sin", "cos", "tan", "exp", "and", "or", "to", "plus",
    "minus", "times", "over", "more", "less", "than", "not", "no", "yes", "true", "false", "frac",
    "infty", "inf", "infinity", "cdot", "is", "equals", "approximately", "about",
}
_UNIT_SINGLE_LETTERS = set("mgsKNJWVACTFLhMlB")


def _parse_unit(rest: str) -> str | None:
    r"""Validate a trailing unit (``" atm"``, ``"\,\mathrm{kJ}\,\mathrm{mol}^{-1}"``); return it stripped or ``None``.

    A bare word must be separated from the number (space, ``~``, ``\,``); wrapped units
    (``\mathrm{...}``, ``\text{...}``) and degree marks may attach directly. Words that are maths
    (``pi``, ``sqrt``, ``and``, ``or``...) and single letters that are usually variables (``x``) are
    not units. At most 6 words, no digits outside exponents.
    """
    if not rest.strip():
        return None
    first = _UNIT_TOKEN.match(rest)
    attached_wrapper = re.match(r"\\(?:mathrm|text|textrm|mbox|operatorname|rm|mathit|textit)\s*\{", rest)
    if not attached_wrapper and (not first or first.lastgroup in ("word", "exp", "paren")):
        return None
    original = rest.strip()
    # \mathrm{kJ\,mol^{-1}} -> " kJ\,mol^{-1} " (balanced braces), then tokenise the flat text
    rest = _replace_command(rest, ("mathrm", "text", "textrm", "mbox", "operatorname", "rm", "mathit", "textit"),
                            lambda _n, a: " " + a + " ")
    pos, words, has_unit = 0, 0, False
    while pos < len(rest):
        m = _UNIT_TOKEN.match(rest, pos)
        if not m or m.end() == pos:
            return None
        kind = m.lastgroup
        tok = m.group(0)
        if kind == "word":
            words += 1
            if tok.lower() in _UNIT_BLOCKED_WORDS or (len(tok) == 1 and tok not in _UNIT_SINGLE_LETTERS):
                return None
            has_unit = True
        elif kind in ("deg", "cmd"):
            has_unit = True
        pos = m.end()
    if not has_unit or words > 6:
        return None
    return original


def _clean_number_text(text: str) -> str:
    s = strip_answer_delimiters(text)
    s = s.replace("\u2212", "-").replace("\u2013", "-").replace("\u00d7", "\\times ").replace("\u00b7", "\\cdot ")
    s = s.replace("\\$", "").replace("$", "").replace("\\!", "").replace("{,}", ",")
    s = re.sub(r"(?<=\d)\\,(?=\d{3}(?!\d))", "", s)
    s = re.sub(r"\\[dtc]frac(?![a-zA-Z])", r"\\frac", s)
    s = re.sub(r"\\(?:left|right)(?![a-zA-Z])", "", s)
    s = _fix_shorthand(s).strip()
    # "x = 5", "v_0 = 2\sqrt{2} \approx 2.83": keep the last member of a chain that starts with a
    # single symbol; "11x + 6y = 0" is an equation, not a number
    parts = re.split(r"\\approx|(?<![<>!\\])=(?!=)", s)
    if len(parts) > 1:
        if not _SINGLE_SYMBOL.match(normalize_latex(parts[0])):
            return ""
        s = parts[-1].strip()
    # a whole-answer wrapper: \text{12 apples} -> 12 apples
    m = re.fullmatch(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}", s)
    if m:
        s = m.group(1).strip()
    return s


def _decimal_fraction(mant: str) -> Fraction:
    try:
        return Fraction(Decimal(mant))
    except (InvalidOperation, ValueError) as exc:  # pragma: no cover - the regex guarantees digits
        raise _Unparseable(mant) from exc


def parse_number(text: str) -> ParsedNumber | None:
    r"""Read a plain number, with an optional trailing percent sign and unit, into an exact value.

    Args:
        text: e.g. ``"72"``, ``"-1,000"``, ``"+65.49"``, ``"\u22123/4"``, ``"\dfrac34"``,
            ``"1\frac{2}{7}"`` (mixed number), ``"6.02e23"``, ``"6.02 \times 10^{23}"``,
            ``"10^{-3}"``, ``"12\%"``, ``"\$15,\!000"``, ``"50.7 \mathrm{~atm}"``, ``"x = 5"``.

    Returns:
        A :class:`ParsedNumber`, or ``None`` when the text is not a plain number (``5\sqrt{2}``,
        ``3x``, ``10^{10^{10}}``, an exponent beyond ``MAX_DECIMAL_EXPONENT``). Never raises.
    """
    if not isinstance(text, str) or len(text) > MAX_ANSWER_CHARS:
        return None
    s = _clean_number_text(text)
    if not s:
        return None
    percent = False
    pm = re.search(r"\s*(?:\\%|%|\\text\{\s*\\?%\s*\}|\s+percent)\s*$", s)
    if pm:
        percent = True
        s = s[: pm.start()].rstrip()
    for kind, pat in _NUM_PATTERNS:
        m = pat.match(s)
        if not m:
            continue
        rest = s[m.end() :]
        unit = None
        if rest.strip():
            unit = _parse_unit(rest)
            if unit is None:
                continue
        neg = m.group("sign") == "-"
        integer_literal, sig, ulp, exact = False, None, None, kind in ("mixed", "latex_frac", "frac", "pow10")
        if kind == "mixed":
            whole, num, den = int(m.group("whole")), int(m.group("num")), int(m.group("den"))
            if den == 0 or num >= den:
                continue  # not a proper fraction: "2\frac{4}{3}" is left to the LaTeX parser (a product)
            value = whole + Fraction(num, den)
        elif kind in ("latex_frac", "frac"):
            num_f = _decimal_fraction(m.group("num").replace(" ", ""))
            den_f = _decimal_fraction(m.group("den").replace(" ", ""))
            if den_f == 0:
                return None
            value = num_f / den_f
        else:
            e = m.group("e2") or m.group("e3")
            if kind == "decimal" and m.group("e1"):
                e = m.group("e1")
            exp = int(e.replace(" ", "")) if e else 0
            if abs(exp) > MAX_DECIMAL_EXPONENT:
                return None
            if kind == "pow10":
                value = Fraction(10) ** exp
                sig, ulp = 1, Fraction(10) ** exp
            else:
                mant = m.group("mant").replace(",", "")
                value = _decimal_fraction(mant) * Fraction(10) ** exp
                decimals = len(mant.split(".", 1)[1]) if "." in mant else 0
                digits = mant.replace(".", "").lstrip("0")
                integer_literal = exact = "." not in mant and not e
                if not integer_literal:
                    sig = len(digits) if digits else max(decimals, 1)
                    ulp = Fraction(10) ** (exp - decimals)
        if kind in ("latex_frac", "frac") and "." in m.group("num") + m.group("den"):
            exact = False  # 3.5/2 is a measured value, not an exact fraction
        return ParsedNumber(-value if neg else value, percent, unit, integer_literal, exact, sig, ulp)
    return None


def _fmt_fraction(v: Fraction) -> str:
    """A readable decimal/integer/ratio string for an exact value."""
    if v.denominator == 1:
        return str(v.numerator)
    d = v.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d == 1 and v.denominator <= 10**12:
        return format(Decimal(v.numerator) / Decimal(v.denominator), "f")
    return f"{v.numerator}/{v.denominator}"


def _fmt_short(v: Any) -> str:
    """At most 10 significant digits (for unit conversions in explanations)."""
    if isinstance(v, Fraction):
        if v.denominator == 1 and abs(v.numerator) < 10**12:
            return str(v.numerator)
        return f"{float(v):.10g}"
    return mpmath.nstr(v, 10)


def _fmt_value(v: Any) -> str:
    if isinstance(v, Fraction):
        return _fmt_fraction(v)
    return mpmath.nstr(v, 15)


# ---------------------------------------------------------------------------------------------
# LaTeX -> sympy (the only place sympy sees answer text; a grammar parser, never eval)
# ---------------------------------------------------------------------------------------------

_sympy = None
_parse_latex = None


def _sp():
    """Import sympy and its ANTLR LaTeX parser lazily (``import sympy`` takes ~1 s)."""
    global _sympy, _parse_latex
    if _sympy is None:
        import sympy
        from sympy.parsing.latex import parse_latex

        _sympy, _parse_latex = sympy, parse_latex
    return _sympy


_TRAILING_WRAPPED_UNIT = re.compile(
    r"(?:\s|\\[,;: ]|~)*\\(?:mathrm|text|textrm|mbox)\s*\{[^{}\d]*[A-Za-z][^{}\d]*\}(?:\s*\^\s*\{?-?\d+\}?)?\s*$"
)


def _prep_latex(s: str) -> tuple[str, str | None]:
    """Prepare an answer for ``parse_latex``: light normalisation, strip a trailing wrapped unit."""
    s = _light_normalize(s)
    unit = None
    for _ in range(4):
        m = _TRAILING_WRAPPED_UNIT.search(s)
        if not m or m.start() == 0:
            break
        unit = (s[m.start() :].strip() + (" " + unit if unit else "")).strip()
        s = s[: m.start()].rstrip()
    s = _unwrap_text(s).strip()
    m = re.fullmatch(r"([-+]?)\s*(\d+)\s*\\frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}", s)
    if m and int(m.group(4)) != 0 and int(m.group(3)) < int(m.group(4)):  # mixed number
        s = f"{m.group(1)}({m.group(2)}+\\frac{{{m.group(3)}}}{{{m.group(4)}}})"
    s = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", s)  # 17,280 -> 17280
    return s, unit


def _latex_to_sympy(s: str):
    """Parse one scalar LaTeX answer with sympy's ANTLR grammar. Raises :class:`_Unparseable`."""
    sp = _sp()
    text, _unit = _prep_latex(s)
    if not text:
        raise _Unparseable("empty")
    if re.search(r"[_'\"`;]{2}|__|\\(?:begin|end|def|input|include)\b", text):
        raise _Unparseable("not an answer")
    try:
        expr = _parse_latex(text, strict=True)  # type: ignore[misc]
    except Exception as exc:  # LaTeXParsingError, antlr errors, TypeError on odd trees
        raise _Unparseable(type(exc).__name__) from exc
    if not isinstance(expr, sp.Basic) or isinstance(expr, (sp.Eq, sp.Ne)) or expr.is_Relational:
        raise _Unparseable("not an expression")
    pi_sym = sp.Symbol("pi")
    if pi_sym in expr.free_symbols:  # the ANTLR grammar returns \pi as a plain symbol
        expr = expr.subs(pi_sym, sp.pi)
    # the grammar reads "2x(x+1)" as a function x applied to x+1: in answers it is a product
    from sympy.core.function import AppliedUndef

    if expr.has(AppliedUndef):
        expr = expr.replace(
            lambda e: isinstance(e, AppliedUndef) and len(e.args) == 1,
            lambda e: sp.Symbol(e.func.__name__) * e.args[0],
        )
    return expr


def _is_large(expr) -> bool:
    """True when exact evaluation could explode (huge numeric powers, towers, big factorials)."""
    sp = _sp()
    for node in sp.preorder_traversal(expr):
        if node.is_Pow:
            exp = node.args[1]
            if exp.is_Number and abs(exp) > 10_000:
                return True
            if not exp.is_Number and not exp.free_symbols and exp.has(sp.Pow):
                return True  # a power tower such as 10^{10^{10}}: only float evaluation is safe
        elif isinstance(node, (sp.factorial, sp.gamma, sp.binomial)):
            if any(a.is_Number and abs(a) > 1000 for a in node.args):
                return True
    return False


def _evalf(expr, subs=None):
    """A 30-digit numeric value (sympy Float/complex) of ``expr``, or ``None`` if not a finite number."""
    sp = _sp()
    try:
        val = expr.evalf(30, subs=subs) if subs else expr.evalf(30)
    except (TypeError, ValueError, ArithmeticError, RecursionError, AttributeError):
        return None
    if not getattr(val, "is_number", False) or val.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        return None
    if val.free_symbols:
        return None
    return val


_ABS_NOISE = mpmath.mpf(10) ** -25


def _close_rel_error(a, b) -> float:
    """Relative difference of two mpmath numbers (0 vs. a value below 1e-25 counts as equal)."""
    diff = abs(a - b)
    scale = max(abs(a), abs(b))
    if scale == 0 or (min(abs(a), abs(b)) == 0 and scale <= _ABS_NOISE):
        return 0.0  # exactly equal, or 0 against round-off such as sin(pi) = 1e-31
    return float(diff / scale)


def _to_mpc(val) -> mpmath.mpc | mpmath.mpf:
    sp = _sp()
    re_, im_ = val.as_real_imag()
    re_v = mpmath.mpf(sp.Float(re_, 30)._mpf_) if re_ != 0 else mpmath.mpf(0)
    im_v = mpmath.mpf(sp.Float(im_, 30)._mpf_) if im_ != 0 else mpmath.mpf(0)
    return mpmath.mpc(re_v, im_v) if im_v != 0 else re_v


def _sympy_number(text: str):
    """The value of a constant LaTeX expression: ``Fraction`` if rational, else an mpmath number.

    Raises :class:`_Unparseable` when it does not parse, ``_NotANumber`` when it has free symbols.
    """
    expr = _latex_to_sympy(text)
    if expr.free_symbols:
        raise _NotANumber(", ".join(sorted(str(x) for x in expr.free_symbols)))
    if not _is_large(expr):
        try:
            exact = expr.doit()
        except Exception:  # noqa: BLE001 - evaluation errors of odd input
            exact = None
        if exact is not None and exact.is_Rational:
            return Fraction(int(exact.p), int(exact.q))
    val = _evalf(expr)
    if val is None:
        raise _NotANumber("no finite value")
    with mpmath.workdps(30):
        return _to_mpc(val)


class _NotANumber(Exception):
    """The expression has free symbols (internal)."""


# ---------------------------------------------------------------------------------------------
# Check selection and small helpers
# ---------------------------------------------------------------------------------------------

_LETTER_REF = re.compile(r"^\(?\s*([A-E])\s*\)?$")
_LETTER_LIST_REF = re.compile(r"^[A-Z](?:\s*,\s*[A-Z])+$")
_LOWER_OPTION_REF = re.compile(r"^\(\s*([a-e])\s*\)$")
_BOOL_WORDS = {"true": True, "yes": True, "false": False, "no": False}


def _ref_str(question: Mapping[str, Any]) -> str | None:
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
    """Choose the check for a question: ``choice``, ``boolean``, ``list``, ``numeric`` or ``symbolic``.

    Args:
        question: a mapping with ``answer`` and optionally ``choices``, ``question_type``
            (JEEBench ``MCQ``/``MCQ(multiple)``/``Integer``/``Numeric``) and ``answer_type``
            (TheoremQA ``bool``/``option``/``list of integer``/``float``...).

    Returns:
        The check name (``none`` when there is no reference). Rules in the module docstring.
    """
    ref = _ref_str(question)
    if ref is None:
        return "none"
    qtype = str(question.get("question_type") or "")
    atype = str(question.get("answer_type") or "").lower()
    plain = normalize_latex(ref)
    if atype == "bool" or plain.lower() in ("true", "false"):
        return "boolean"
    if question.get("choices") or qtype.startswith("MCQ") or atype == "option":
        return "choice"
    if _LETTER_REF.match(plain) or _LETTER_LIST_REF.match(plain) or _LOWER_OPTION_REF.match(plain):
        return "choice"
    if atype.startswith("list"):
        return "list"
    if parse_number(ref) is not None:
        return "numeric"
    return "symbolic"


def _verdict(ok, reason, explanation, checker, **kw) -> Verdict:
    return Verdict(ok=ok, reason=reason, explanation=explanation, checker=checker, **kw)


def precheck(response: Any, question: Mapping[str, Any]) -> tuple[Extraction | None, Verdict | None]:
    """Cheap checks that need no parser; safe to run in the parent process.

    Args:
        response: the full model output (anything; non-strings give ``no_answer``).
        question: the question mapping (``answer`` is read).

    Returns:
        ``(extraction, verdict)``: ``verdict`` is a final :class:`Verdict` when the answer can be
        decided without parsing (``no_reference``, ``no_answer``, or ``unparseable`` when the
        extracted answer is longer than ``MAX_ANSWER_CHARS`` = 20,000 characters), else ``None``.
    """
    if question is None or not hasattr(question, "get"):
        return None, _verdict(None, NO_REFERENCE, "the question has no reference answer to compare with", "precheck")
    if _ref_str(question) is None:
        return None, _verdict(None, NO_REFERENCE, "the question has no reference answer to compare with", "precheck")
    ex = extract_final_answer(response) if isinstance(response, str) else None
    if ex is None:
        return None, _verdict(
            None, NO_ANSWER, "no final answer (\\boxed{...}, 'Answer: ...' or a number) was found in the response", "precheck"
        )
    if len(ex.text) > MAX_ANSWER_CHARS:
        return ex, _verdict(
            None,
            UNPARSEABLE,
            f"the extracted answer is {len(ex.text)} characters long (limit {MAX_ANSWER_CHARS}); it was not parsed",
            "precheck",
            extracted=ex.text[:200] + "...",
            extraction_method=ex.method,
            details={"length": len(ex.text), "limit": MAX_ANSWER_CHARS},
        )
    return ex, None


# ---------------------------------------------------------------------------------------------
# Numeric check
# ---------------------------------------------------------------------------------------------


def _as_mp(v):
    if isinstance(v, Fraction):
        return mpmath.mpf(v.numerator) / v.denominator
    return v


def _abs_diff(c, r):
    if isinstance(c, Fraction) and isinstance(r, Fraction):
        return abs(c - r)
    with mpmath.workdps(30):
        return abs(_as_mp(c) - _as_mp(r))


def _rel_error(c, r) -> float:
    d = _abs_diff(c, r)
    if isinstance(d, Fraction):
        if r == 0:
            return 0.0 if d == 0 else math.inf
        return float(d / abs(r))
    with mpmath.workdps(30):
        rr = abs(_as_mp(r))
        if rr == 0:
            return 0.0 if d == 0 else math.inf
        try:
            return float(d / rr)
        except OverflowError:
            return math.inf


def _unit_scale(unit: Any) -> Fraction | None:
    r"""A SciBench unit like ``$10^{-16}$`` or ``$10^3 \mathrm{~N}$``: the power-of-ten prefix, else ``None``."""
    if not isinstance(unit, str):
        return None
    m = re.match(r"^\s*\$?\s*(?:\\times\s*)?10\s*\^\s*(?:\{\s*([-+]?\d+)\s*\}|([-+]?\d))", unit)
    if not m:
        return None
    exp = int(m.group(1) or m.group(2))
    return Fraction(10) ** exp if abs(exp) <= MAX_DECIMAL_EXPONENT else None


_TRAILING_PLAIN_UNIT = re.compile(r"^(?P<expr>.*?[}\d)])(?:\s+|\\[,;: ]|~)+(?P<unit>[A-Za-z][A-Za-z/^{}\-\d\s]{0,30})$")


def _as_fraction(v: Any) -> Fraction:
    """An exact Fraction of a Fraction or an mpmath real (30 significant digits)."""
    if isinstance(v, Fraction):
        return v
    return Fraction(mpmath.nstr(v, 30, strip_zeros=False, min_fixed=-1, max_fixed=1).replace(" ", ""))


def _candidate_value(candidate: str) -> tuple[Any, ParsedNumber | None, str | None]:
    """(value, parsed-plain-number or None, unit) of a candidate; raises _Unparseable/_NotANumber."""
    pn = parse_number(candidate)
    if pn is not None:
        return pn.value, pn, pn.unit
    text = _clean_number_text(candidate)
    if re.fullmatch(r"[A-Za-z][A-Za-z\s\-']*", _unwrap_text(text).strip()) and re.search(r"[A-Za-z]{3}", text):
        raise _Unparseable("a word, not a number")  # "seventy-two", "none": not a product of symbols
    _, unit = _prep_latex(text)
    if unit is None:
        m = _TRAILING_PLAIN_UNIT.match(text)
        if m and _parse_unit(" " + m.group("unit")) is not None:
            spec = parse_unit(m.group("unit"))
            if spec is not None and spec.physical:
                return _sympy_number(m.group("expr")), None, m.group("unit")
    return _sympy_number(text), None, unit


def check_numeric(
    candidate: str,
    reference: str,
    *,
    rel_tol: float | None = None,
    unit: Any = None,
    question_type: str | None = None,
    tolerance: str | None = None,
) -> Verdict:
    r"""Compare a candidate number with a numeric reference, converting units when both sides have one.

    Args:
        candidate: the extracted answer text (``"50.70 atm"``, ``"\frac{3}{4}"``, ``"2^{10}"``).
        reference: the reference answer text; must satisfy :func:`parse_number`.
        rel_tol: ``None`` for the default rules, or a relative tolerance applied to every reference
            (``SCIBENCH_REL_TOL`` = 0.05 as in SciBench, Wang et al. 2024).
        unit: the question's ``unit`` field (``%`` enables the percent reading; ``10^{k}`` a scale).
        question_type: JEEBench ``Numeric`` enables the rounding rule for any decimal reference.
        tolerance: the tolerance policy: ``None``/``"default"`` (module docstring), ``"sig_figs"``
            (every decimal reference accepts what rounds to it at its last written digit, e.g.
            ``9.81`` for ``9.8``) or ``"scibench"`` (= ``rel_tol`` 0.05 when ``rel_tol`` is None).

    Returns:
        A :class:`Verdict` (checker ``numeric``): ``equal`` / ``unit_converted`` (equal after a unit
        conversion) / ``numeric_mismatch`` (also for answers with free symbols) /
        ``dimension_mismatch`` (both sides have units of different dimensions, e.g. m vs m/s) /
        ``unparseable``. ``details`` has ``rel_error``, ``rel_tol`` (or ``rule``), ``reading``,
        ``unit_ignored`` (a unit that played no part), and with units ``candidate_unit``,
        ``reference_unit``, ``candidate_dimension``, ``reference_dimension``,
        ``converted_value``. Units: the reference unit is the question's ``unit`` field (SciBench),
        else the reference's own trailing unit (``5 km``); see :mod:`scireflect.verifiers.units`.
        The explanation never contains the reference value (it may name the expected unit).

    Raises:
        ValueError: if ``reference`` is not a plain number.
    """
    ref = parse_number(reference)
    if ref is None:
        raise ValueError("reference is not a plain number")
    if tolerance == "scibench" and rel_tol is None:
        rel_tol = SCIBENCH_REL_TOL
    try:
        c_val, c_pn, c_unit = _candidate_value(candidate)
    except _NotANumber as exc:
        what = "has no finite value" if str(exc) == "no finite value" else f"contains the symbol(s) {exc}"
        return _verdict(
            False,
            NUMERIC_MISMATCH,
            f"the extracted answer is not a number (it {what}) but a number is expected",
            "numeric",
            reference=_fmt_fraction(ref.value),
        )
    except _Unparseable:
        return _verdict(
            None,
            UNPARSEABLE,
            "the extracted answer could not be read as a number or a LaTeX expression",
            "numeric",
            reference=_fmt_fraction(ref.value),
        )
    if isinstance(c_val, mpmath.mpc):
        return _verdict(
            False,
            NUMERIC_MISMATCH,
            "the extracted answer is a complex number but a real number is expected",
            "numeric",
            candidate=_fmt_value(c_val),
            reference=_fmt_fraction(ref.value),
        )
    c_percent = bool(c_pn and c_pn.percent)
    # units: the question's unit field (SciBench), else the reference's own trailing unit ("5 km")
    r_unit_text = unit if isinstance(unit, str) and unit.strip() else ref.unit
    r_spec = parse_unit(r_unit_text) if r_unit_text else None
    c_spec = parse_unit(c_unit) if c_unit else None
    unit_details: dict[str, Any] = {}
    converted = None
    if c_spec is not None and c_spec.physical and r_spec is not None and r_spec.physical:
        unit_details = {"candidate_unit": c_spec.pretty, "reference_unit": r_spec.pretty,
                        "candidate_dimension": c_spec.dimensionality, "reference_dimension": r_spec.dimensionality}
        try:
            converted = conversion(_as_fraction(c_val), c_spec, r_spec)
        except DimensionMismatch as exc:
            return _verdict(False, DIMENSION_MISMATCH,
                            f"{exc}: the extracted answer {_fmt_short(c_val)} {c_spec.pretty} cannot be expressed in the requested unit",
                            "numeric", candidate=f"{_fmt_short(c_val)} {c_spec.pretty}", reference=_fmt_fraction(ref.value),
                            details=unit_details)
        unit_details["converted_value"] = _fmt_short(converted)
    if c_unit and c_spec is None and r_spec is not None and r_spec.physical and c_pn is not None and c_pn.percent is False:
        return _verdict(None, UNPARSEABLE,
                        f"the unit '{c_unit}' of the extracted answer could not be read, so it cannot be compared with "
                        f"the requested unit {r_spec.pretty} ({r_spec.dimensionality})",
                        "numeric", candidate=_fmt_value(c_val), reference=_fmt_fraction(ref.value),
                        details={"candidate_unit_text": c_unit, "reference_unit": r_spec.pretty})
    if converted is not None:
        same = converted == _as_fraction(c_val)
        readings: list[tuple[Any, Fraction, str]] = [
            (converted, ref.value, "as written" if same else "converted to the reference unit")]
    else:
        r_percent = ref.percent or (isinstance(unit, str) and unit.strip().strip("$").strip() in ("%", "\\%"))
        readings = [(c_val, ref.value, "as written")]
        if r_percent and not c_percent:
            readings.append((c_val, ref.value / 100, "reference percent as a fraction"))
        if c_percent and not r_percent:
            readings.append(
                ((c_val / 100) if isinstance(c_val, Fraction) else c_val / 100, ref.value, "candidate percent as a fraction")
            )
        scale = _unit_scale(unit)
        if scale is not None:
            readings.append((c_val, ref.value * scale, "reference times the unit's power of ten"))

    details: dict[str, Any] = dict(unit_details)
    if c_unit and converted is None:
        details["unit_ignored"] = c_unit
    best = None
    for c, r, label in readings:
        err = _rel_error(c, r)
        factor = r / ref.value if ref.value != 0 else Fraction(1)
        if rel_tol is not None:
            ok = _abs_diff(c, r) <= (Fraction(rel_tol) * abs(r) if isinstance(_abs_diff(c, r), Fraction) else rel_tol * abs(_as_mp(r)))
            if r == 0:
                ok = _abs_diff(c, r) <= Fraction(rel_tol) * Fraction(1, 10**12)
            rule, tol = f"rel_tol {rel_tol:g}", rel_tol
        elif ref.exact and not ref.percent and label in ("as written", "converted to the reference unit"):
            if isinstance(c, Fraction) and label == "as written":
                ok = c == r
            else:  # a converted value carries the float error of pint's conversion factor
                rule = "exact integer" if ref.integer_literal else "exact value"
                ok = err <= (EXACT_REL_TOL if label == "as written" else CONVERTED_EXACT_REL_TOL)
                if not ok and label != "as written" and c_pn is not None and c_pn.ulp is not None and (c_pn.sig_figs or 0) >= 4:
                    # a rounded decimal in another unit (0.5236 rad for 30 degrees): the reference must
                    # lie within half a unit of the candidate's last written digit, converted
                    half_c = abs(c_pn.ulp / 2 * (converted / c_pn.value)) if c_pn.value else Fraction(0)
                    ok = _abs_diff(c, r) <= half_c
                    if ok:
                        rule = "the reference rounds to the converted answer's last written digit"
            if isinstance(c, Fraction) and label == "as written":
                rule = "exact integer" if ref.integer_literal else "exact value"
            tol = 0.0
        else:
            tol = DEFAULT_REL_TOL
            allowed = Fraction(DEFAULT_REL_TOL) * abs(r)
            rule = f"rel_tol {DEFAULT_REL_TOL:g}"
            if ref.ulp is not None and ((ref.sig_figs or 0) >= 3 or question_type == "Numeric" or tolerance == "sig_figs"):
                # a visibly rounded reference: what rounds to it at its last written digit, no more
                allowed = ref.ulp / 2 * abs(factor)
                rule = "rounds to the reference's last written digit"
            d = _abs_diff(c, r)
            ok = d <= allowed if isinstance(d, Fraction) else d <= _as_mp(allowed)
        cand = (bool(ok), -err if not ok else 0, label, err, rule, tol)
        if best is None or (cand[0] and not best[0]) or (cand[0] == best[0] and err < best[3]):
            best = cand
        if ok:
            break
    assert best is not None
    ok, _, label, err, rule, tol = best
    details.update({"rel_error": err, "rule": rule, "reading": label})
    if rule.startswith("rel_tol"):
        details["rel_tol"] = tol
    if converted is not None and label != "as written":
        unit_note = f"; {_fmt_short(c_val)} {c_spec.pretty} was converted to {_fmt_short(converted)} {r_spec.pretty}"
    elif converted is not None:
        unit_note = f"; units agree ({r_spec.pretty})"
    elif c_unit:
        why = "no reference unit to convert to" if c_spec is not None and c_spec.physical else "not a unit that can be converted"
        unit_note = f"; the unit '{c_unit}' was ignored ({why})"
    else:
        unit_note = ""
    cand_str = _fmt_value(c_val) + ("%" if c_percent else "")
    if c_spec is not None and c_spec.physical and converted is not None:
        cand_str = f"{_fmt_short(c_val)} {c_spec.pretty}"
    if ok:
        how = "exactly" if err == 0 else f"(relative error {err:.3g}, rule: {rule})"
        expl = f"the extracted answer matches the reference numerically {how}{unit_note}"
        reason = UNIT_CONVERTED if label == "converted to the reference unit" else EQUAL
        return _verdict(True, reason, expl, "numeric", candidate=cand_str, reference=_fmt_fraction(ref.value), details=details)
    if rule.startswith("exact"):
        what = "an exact integer match" if rule == "exact integer" else "an exact value (the reference is a fraction)"
        expl = f"the extracted answer {cand_str} differs from the reference ({what} is required; relative error {err:.3g}){unit_note}"
    else:
        tol_txt = f"tolerance {tol:g}" if rule.startswith("rel_tol") else "the rounding allowance"
        expl = f"the extracted answer {cand_str} differs numerically from the reference (relative error {err:.3g} > {tol_txt}){unit_note}"
    return _verdict(False, NUMERIC_MISMATCH, expl, "numeric", candidate=cand_str, reference=_fmt_fraction(ref.value), details=details)


# ---------------------------------------------------------------------------------------------
# Multiple choice
# ---------------------------------------------------------------------------------------------

_OPTION_IN_TEXT = re.compile(r"(?:^|\s)[(\[]([A-H])[)\]]\s*")


def _options_from_text(text: Any) -> list[str] | None:
    """Option texts ``(A) ... (B) ...`` / ``[A] ...`` inside a question (JEEBench), or ``None``."""
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
            return opts
    return None


def _norm_option(s: str) -> str:
    s = normalize_latex(s).lower()
    return re.sub(r"[\s.]+$", "", s)


def _letters_from_text(s: str, n_options: int, multi: bool) -> set[str] | None:
    r"""Letters chosen by an answer: ``B``, ``(B)``, ``\text{(B)}``, ``B) text``, ``Option B``, ``ABD``, ``A, C``."""
    t = strip_answer_delimiters(_unwrap_text(s)).strip().strip("*").strip()
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
    ref_letters = _letters_from_text(reference, 26, True)
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
        return _verdict(
            None, UNPARSEABLE, "the extracted answer could not be mapped to an option letter", "choice", reference=ref_str
        )
    cand_str = "".join(sorted(cand_letters))
    details = {"matched_by": how, "multiple": multiple}
    if cand_letters == ref_letters:
        return _verdict(True, EQUAL, f"the chosen option(s) match the reference (read by {how})", "choice",
                        candidate=cand_str, reference=ref_str, details=details)
    if multiple and len(cand_letters) != len(ref_letters):
        expl = f"the chosen option set {cand_str} differs from the reference set (a different number of options)"
    elif multiple:
        expl = f"the chosen option set {cand_str} differs from the reference set"
    else:
        expl = f"the chosen option {cand_str} is not the reference option"
    return _verdict(False, CHOICE_MISMATCH, expl, "choice", candidate=cand_str, reference=ref_str, details=details)


# ---------------------------------------------------------------------------------------------
# Booleans and lists (TheoremQA)
# ---------------------------------------------------------------------------------------------


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
        return _verdict(None, UNPARSEABLE, "the extracted answer is not true/false", "boolean", reference=str(r).lower())
    if c == r:
        return _verdict(True, EQUAL, "the extracted truth value matches the reference", "boolean",
                        candidate=str(c).lower(), reference=str(r).lower())
    return _verdict(False, TEXT_MISMATCH, f"the extracted truth value {str(c).lower()} is not the reference truth value",
                    "boolean", candidate=str(c).lower(), reference=str(r).lower())


def _split_top(s: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside brackets/braces (``[0,7)``-style half-open intervals are fine)."""
    out, depth, cur, i = [], 0, [], 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            cur.append(s[i : i + 2])
            if s[i + 1] in "{}":
                depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return [x.strip() for x in out]


def _strip_brackets(s: str) -> str:
    t = _light_normalize(s)
    if len(t) >= 2 and t[0] in "([" and t[-1] in ")]" and _closing_index(t, 0) == len(t) - 1:
        return t[1:-1].strip()
    if t.startswith("\\{") and t.endswith("\\}"):
        return t[2:-2].strip()
    return t


def check_list(candidate: str, reference: str, *, rel_tol: float | None = None) -> Verdict:
    """Compare ordered numeric lists such as TheoremQA's ``[4, 1]`` element-wise.

    Args:
        candidate: ``[4, 1]``, ``(4, 1)``, ``4, 1`` or ``\\left[4, 1\\right]``.
        reference: a bracketed list of numbers.
        rel_tol: as in :func:`check_numeric`, applied to each element.

    Returns:
        A :class:`Verdict` with checker ``list``: ``equal``, ``numeric_mismatch`` (with the first
        differing position and the lengths) or ``unparseable``.
    """
    r_items = [x for x in _split_top(_strip_brackets(reference)) if x]
    c_items = [x for x in _split_top(_strip_brackets(candidate)) if x]
    ref_s = "[" + ", ".join(r_items) + "]"
    cand_s = "[" + ", ".join(c_items) + "]"
    if not c_items:
        return _verdict(None, UNPARSEABLE, "the extracted answer is not a list", "list", reference=ref_s)
    if len(c_items) != len(r_items):
        return _verdict(False, NUMERIC_MISMATCH,
                        f"the extracted list has {len(c_items)} element(s), a different number than the reference",
                        "list", candidate=cand_s, reference=ref_s, details={"candidate_length": len(c_items)})
    for i, (c, r) in enumerate(zip(c_items, r_items, strict=True)):
        if parse_number(r) is None:
            v = check_symbolic(c, r, rel_tol=rel_tol)
        else:
            v = check_numeric(c, r, rel_tol=rel_tol)
        if v.ok is not True:
            return _verdict(v.ok, v.reason if v.ok is None else NUMERIC_MISMATCH,
                            f"element {i + 1} of the extracted list: {v.explanation}", "list",
                            candidate=cand_s, reference=ref_s, details={"position": i + 1, **dict(v.details)})
    return _verdict(True, EQUAL, f"all {len(r_items)} elements of the extracted list match the reference", "list",
                    candidate=cand_s, reference=ref_s)


# ---------------------------------------------------------------------------------------------
# Symbolic check
# ---------------------------------------------------------------------------------------------


def _closing_index(s: str, open_idx: int) -> int | None:
    depth = 0
    i = open_idx
    while i < len(s):
        ch = s[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


@dataclass(frozen=True)
class _Node:
    kind: str  # union, set, list, seq, eq, expr
    items: tuple = ()
    brackets: str = ""
    text: str = ""


_MATRIX = re.compile(r"^\s*\\begin\{([pbvB]?matrix)\}(?P<body>.*)\\end\{\1\}\s*$", re.S)


def _matrix(s: str) -> _Node | None:
    r"""``\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}`` -> an ordered node tagged with its shape."""
    m = _MATRIX.match(strip_answer_delimiters(s))
    if not m:
        return None
    rows = [r for r in re.split(r"\\\\|\\(?=\s)", m.group("body")) if r.strip()]
    cells = [[c.strip() for c in r.split("&")] for r in rows]
    if not cells or any(not c for row in cells for c in row):
        return None
    shape = f"matrix {len(cells)}x{len(cells[0])}"
    if any(len(row) != len(cells[0]) for row in cells):
        return None
    return _Node("seq", tuple(_structure(c) for row in cells for c in row), brackets=shape)


def _structure(s: str) -> _Node:
    mat = _matrix(s)
    if mat is not None:
        return mat
    t = _light_normalize(s)
    t = re.sub(r"\\text\s*\{\s*(?:and|or)\s*\}|\s+(?:and)\s+", ",", t)
    if "\\cup" in t:
        pieces = [p.strip() for p in re.split(r"\\cup", t)]
        if len(pieces) > 1 and all(pieces):
            # only split when \cup is at top level
            if all(_balanced(p) for p in pieces):
                return _Node("union", tuple(_structure(p) for p in pieces))
    if t.startswith("\\{") and t.endswith("\\}") and _balanced(t[2:-2]):
        return _Node("set", tuple(_structure(x) for x in _split_top(t[2:-2]) if x))
    if len(t) >= 2 and t[0] in "([" and t[-1] in ")]":
        # closing bracket of the first opener must be the last char (type may differ: [0, 7))
        if _closing_index(t, 0) == len(t) - 1:
            inner = _split_top(t[1:-1])
            if len(inner) >= 2:
                return _Node("seq", tuple(_structure(x) for x in inner), brackets=t[0] + t[-1])
    top = _split_top(t)
    if len(top) >= 2 and not re.fullmatch(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", t):
        return _Node("list", tuple(_structure(x) for x in top if x))
    eq = [p for p in re.split(r"(?<![<>!\\])=", t)]
    if len(eq) == 2 and eq[0].strip() and eq[1].strip():
        return _Node("eq", (eq[0].strip(), eq[1].strip()))
    return _Node("expr", text=t)


def _balanced(s: str) -> bool:
    depth = 0
    i = 0
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        if s[i] in "([{":
            depth += 1
        elif s[i] in ")]}":
            depth -= 1
            if depth < 0:
                return False
        i += 1
    return depth == 0


def _describe(node: _Node) -> str:
    return {
        "union": "a union of sets",
        "set": "a set",
        "list": "a comma-separated list",
        "seq": "a tuple, interval or matrix",
        "eq": "an equation",
        "expr": "a single expression",
    }[node.kind]


class _Cmp:
    """Result of comparing two nodes: ok True/False/None, method, and a note."""

    __slots__ = ("ok", "method", "note", "cand_unparsed", "ref_unparsed")

    def __init__(self, ok, method, note="", cand_unparsed=False, ref_unparsed=False):
        self.ok, self.method, self.note = ok, method, note
        self.cand_unparsed, self.ref_unparsed = cand_unparsed, ref_unparsed




def _scalar_equiv(c: str, r: str, tol: float) -> _Cmp:
    """Compare two scalar answers (strings) as described in the module docstring."""
    nc, nr = normalize_latex(c), normalize_latex(r)
    if nc == nr:
        return _Cmp(True, "string")
    if nc.lower() == nr.lower() and not re.search(r"\d", nr):
        return _Cmp(True, "string (case-insensitive)")
    # base-n numerals and text answers: string comparison only
    if re.fullmatch(r"\d+_\{?\d+\}?", nr) or re.fullmatch(r"\\(?:text|textbf|mathrm)\{[^{}]*[A-Za-z]{2}[^{}]*\}", _light_normalize(r)):
        nn = lambda x: re.sub(r"[{}\s]", "", x).lower()  # noqa: E731
        return _Cmp(nn(nc) == nn(nr), "text")
    pc, pr = parse_number(c), parse_number(r)
    if pc is not None and pr is not None and not pc.percent and not pr.percent:
        if pc.value == pr.value:
            return _Cmp(True, "exact number")
        err = _rel_error(pc.value, pr.value)
        return _Cmp(err <= tol, "number", f"relative error {err:.3g}")
    sp = _sp()
    try:
        er = _latex_to_sympy(r)
    except _Unparseable:
        return _Cmp(False, "text", ref_unparsed=True)
    try:
        ec = _latex_to_sympy(c)
    except _Unparseable:
        return _Cmp(None, "parse", cand_unparsed=True)
    if ec == er:
        return _Cmp(True, "structural")
    large = _is_large(ec) or _is_large(er)
    syms = sorted(ec.free_symbols | er.free_symbols, key=lambda x: x.name)
    if not syms:
        vc, vr = _evalf(ec), _evalf(er)
        if vc is not None and vr is not None:
            with mpmath.workdps(30):
                err = _close_rel_error(_to_mpc(vc), _to_mpc(vr))
            return _Cmp(err <= tol, "numeric evaluation", f"relative error {err:.3g}")
        if vr is not None and vc is None:
            return _Cmp(False, "numeric evaluation", "the answer has no finite value")
        if not large and _simplify_zero(ec, er):
            return _Cmp(True, "simplify")
        return _Cmp(None, "undecided", "the values could not be evaluated")
    # free symbols: sample random points, then try simplify
    rng = random.Random(_SAMPLE_SEED)
    valid, agree = 0, 0
    for k in range(_N_SAMPLES):
        sign = 1 if k < _N_SAMPLES - 3 else -1
        subs = {x: sp.Float(sign * rng.uniform(0.3, 2.9), 30) for x in syms}
        vc, vr = _evalf(ec, subs), _evalf(er, subs)
        if vc is None or vr is None:
            continue
        with mpmath.workdps(30):
            err = _close_rel_error(_to_mpc(vc), _to_mpc(vr))
        valid += 1
        if err <= SYMBOLIC_REL_TOL:  # expressions in variables are never compared loosely
            agree += 1
        else:
            return _Cmp(False, "sampling", f"differs at a random point (relative error {err:.3g})")
    if valid >= _MIN_VALID_SAMPLES and agree == valid:
        return _Cmp(True, "sampling", f"agrees at {valid} random points")
    if not large and _simplify_zero(ec, er):
        return _Cmp(True, "simplify")
    return _Cmp(None, "undecided", "equivalence could not be established")


def _simplify_zero(a, b) -> bool:
    sp = _sp()
    try:
        if sp.count_ops(a) + sp.count_ops(b) > _MAX_SIMPLIFY_OPS:
            return False
        return sp.simplify(a - b) == 0
    except Exception:  # noqa: BLE001 - simplify can fail on odd trees
        return False


def _eq_expr(node: _Node):
    """``lhs - rhs`` of an equation node, parsed."""
    lhs, rhs = node.items
    return _latex_to_sympy(lhs) - _latex_to_sympy(rhs)


def _compare(cn: _Node, rn: _Node, tol: float, ordered: bool = False) -> _Cmp:
    # "x = 5" vs "5": drop a single-symbol left-hand side
    if cn.kind == "eq" and rn.kind != "eq" and _SINGLE_SYMBOL.match(normalize_latex(cn.items[0])):
        return _compare(_structure(cn.items[1]), rn, tol, ordered)
    if rn.kind == "eq" and cn.kind != "eq" and _SINGLE_SYMBOL.match(normalize_latex(rn.items[0])):
        return _compare(cn, _structure(rn.items[1]), tol, ordered)
    if cn.kind == "expr" and rn.kind == "expr":
        return _scalar_equiv(cn.text, rn.text, tol)
    if ordered and rn.kind == "list" and cn.kind == "list":
        cn, rn = replace(cn, kind="seq", brackets="()"), replace(rn, kind="seq", brackets="()")
    unordered = {"set", "list", "union"}
    if rn.kind in unordered and cn.kind in unordered and (rn.kind == "union") == (cn.kind == "union"):
        if len(cn.items) != len(rn.items):
            return _Cmp(False, "multiset", f"{len(cn.items)} element(s), a different number than the reference")
        remaining = list(cn.items)
        for r_item in rn.items:
            found = None
            for j, c_item in enumerate(remaining):
                res = _compare(c_item, r_item, tol)
                if res.ok:
                    found = j
                    break
                if res.cand_unparsed:
                    return res
            if found is None:
                return _Cmp(False, "multiset", "an element of the reference has no equal element in the answer")
            remaining.pop(found)
        return _Cmp(True, "multiset")
    if rn.kind == "seq" and cn.kind == "seq":
        if len(cn.items) != len(rn.items):
            return _Cmp(False, "ordered", f"{len(cn.items)} element(s), a different number than the reference")
        if cn.brackets != rn.brackets:
            if "matrix" in cn.brackets + rn.brackets:
                return _Cmp(False, "ordered", "the matrix shape or brackets differ from the reference's")
            return _Cmp(False, "ordered", f"the brackets {cn.brackets[0]} {cn.brackets[1]} differ from the reference's")
        for i, (c_item, r_item) in enumerate(zip(cn.items, rn.items, strict=True)):
            res = _compare(c_item, r_item, tol)
            if not res.ok:
                res.note = f"element {i + 1} differs" + (f" ({res.note})" if res.note else "")
                return res
        return _Cmp(True, "ordered")
    if rn.kind == "eq" and cn.kind == "eq":
        if normalize_latex("=".join(cn.items)) == normalize_latex("=".join(rn.items)):
            return _Cmp(True, "string")
        try:
            dr = _eq_expr(rn)
        except _Unparseable:
            return _Cmp(False, "text", ref_unparsed=True)
        try:
            dc = _eq_expr(cn)
        except _Unparseable:
            return _Cmp(None, "parse", cand_unparsed=True)
        return _equation_equiv(dc, dr, tol)
    return _Cmp(False, "structure", f"the answer is {_describe(cn)}, which does not have the reference's form")


def _equation_equiv(dc, dr, tol: float) -> _Cmp:
    """Equations ``dc = 0`` and ``dr = 0`` are equivalent if ``dc / dr`` is a non-zero constant."""
    sp = _sp()
    syms = sorted(dc.free_symbols | dr.free_symbols, key=lambda x: x.name)
    if not syms:
        return _Cmp(None, "undecided", "an equation without variables")
    rng = random.Random(_SAMPLE_SEED)
    ratios = []
    for k in range(_N_SAMPLES):
        subs = {x: sp.Float(rng.uniform(0.3, 2.9) * (1 if k % 2 else -1), 30) for x in syms}
        vc, vr = _evalf(dc, subs), _evalf(dr, subs)
        if vc is None or vr is None:
            continue
        with mpmath.workdps(30):
            a, b = _to_mpc(vc), _to_mpc(vr)
            if abs(b) < mpmath.mpf(10) ** -20:
                if abs(a) < mpmath.mpf(10) ** -20:
                    continue
                return _Cmp(False, "equation sampling", "the equations differ at a random point")
            ratios.append(a / b)
    if len(ratios) < _MIN_VALID_SAMPLES:
        return _Cmp(None, "undecided", "equivalence of the equations could not be established")
    with mpmath.workdps(30):
        r0 = ratios[0]
        if abs(r0) < mpmath.mpf(10) ** -20:
            return _Cmp(False, "equation sampling", "the equations are not equivalent")
        same = all(_close_rel_error(q, r0) <= SYMBOLIC_REL_TOL for q in ratios)
    return _Cmp(same, "equation sampling", "" if same else "the equations are not equivalent")


def check_symbolic(
    candidate: str, reference: str, *, rel_tol: float | None = None, ordered_lists: bool = False
) -> Verdict:
    r"""Compare LaTeX answers by meaning (MATH-style): expressions, tuples, intervals, sets, equations.

    Args:
        candidate: e.g. ``\dfrac{9}{7}``, ``(x+1)^2``, ``\left( -\frac14, -2 \right)``, ``y=2x``.
        reference: the reference answer in LaTeX.
        rel_tol: relative tolerance for numeric agreement of constants (default
            ``SYMBOLIC_REL_TOL`` = 1e-9, i.e. exact answers must be exact). Expressions with
            variables are always compared at ``SYMBOLIC_REL_TOL``, whatever ``rel_tol`` is.
        ordered_lists: compare bare comma lists in order (set by :func:`verify_answer` when the
            question asks for an order: "in increasing order", "in decreasing order", ...).

    Returns:
        A :class:`Verdict` with checker ``symbolic``: ``equal``, ``symbolic_mismatch``,
        ``text_mismatch`` (reference not parseable and strings differ), ``unparseable`` (the
        candidate does not parse) or ``undecided``. ``details['method']`` names what decided
        (``string``, ``structural``, ``numeric evaluation``, ``sampling``, ``simplify``,
        ``multiset``, ``ordered``, ``equation sampling``). Rules in the module docstring.

    Sources: Hendrycks et al. (2021) MATH string normalisation; equivalence by sympy
    ``simplify(a - b) == 0`` and random-point evaluation as in math-verify (Hugging Face).
    """
    tol = SYMBOLIC_REL_TOL if rel_tol is None else max(rel_tol, SYMBOLIC_REL_TOL)
    if normalize_latex(candidate) == normalize_latex(reference):
        return _verdict(True, EQUAL, "the extracted answer is the reference up to formatting", "symbolic",
                        candidate=normalize_latex(candidate), reference=normalize_latex(reference),
                        details={"method": "string"})
    cn, rn = _structure(candidate), _structure(reference)
    res = _compare(cn, rn, tol, ordered_lists)
    cand_s, ref_s = normalize_latex(candidate), normalize_latex(reference)
    details = {"method": res.method}
    if res.note:
        details["note"] = res.note
    if res.ok is True:
        return _verdict(True, EQUAL, f"the extracted answer is equivalent to the reference (by {res.method})",
                        "symbolic", candidate=cand_s, reference=ref_s, details=details)
    if res.cand_unparsed:
        return _verdict(None, UNPARSEABLE, "the extracted answer could not be parsed as a LaTeX expression",
                        "symbolic", candidate=cand_s, reference=ref_s, details=details)
    if res.ok is None:
        return _verdict(None, UNDECIDED, f"equivalence to the reference could not be decided ({res.note or res.method})",
                        "symbolic", candidate=cand_s, reference=ref_s, details=details)
    if res.ref_unparsed or res.method == "text":
        details["reference_parsed"] = False
        return _verdict(False, TEXT_MISMATCH, "the extracted answer differs from the reference as text", "symbolic",
                        candidate=cand_s, reference=ref_s, details=details)
    note = f" ({res.note})" if res.note else ""
    return _verdict(False, SYMBOLIC_MISMATCH,
                    f"the extracted answer is not equivalent to the reference (checked by {res.method}){note}",
                    "symbolic", candidate=cand_s, reference=ref_s, details=details)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


_ORDER_WORDS = re.compile(r"\b(?:increasing|decreasing|ascending|descending)\s+order\b|\bin\s+(?:that|this|the\s+same)\s+order\b", re.I)


def _check(ex: Extraction, question: Mapping[str, Any], rel_tol: float | None, tolerance: str | None = None,
           ensemble: bool = True) -> Verdict:
    ref = _ref_str(question)
    assert ref is not None
    kind = select_check(question)
    cand = ex.text
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
        return check_list(cand, ref, rel_tol=rel_tol)
    if kind == "numeric":
        return check_numeric(
            cand, ref, rel_tol=rel_tol, unit=question.get("unit"), question_type=question.get("question_type"),
            tolerance=tolerance,
        )
    qtext = question.get("question")
    ordered = isinstance(qtext, str) and bool(_ORDER_WORDS.search(qtext))
    v = check_symbolic(cand, ref, rel_tol=rel_tol, ordered_lists=ordered)
    undecided = v.ok is None or (v.reason == TEXT_MISMATCH and v.details.get("reference_parsed") is False)
    if ensemble and undecided and not ordered:
        from .mathverify_backend import math_verify_equal

        mv = math_verify_equal(cand, ref)
        if mv is True:
            return replace(v, ok=True, reason=EQUAL, checker="symbolic+math-verify",
                           explanation="the extracted answer is equivalent to the reference (by the math-verify backend; "
                                       f"our parser: {v.reason})",
                           details={**dict(v.details), "backend": "math-verify", "ours": v.reason})
        v = replace(v, details={**dict(v.details), "math_verify": mv})
    if v.ok is None and v.reason == UNPARSEABLE and parse_number(cand) is not None:
        # numeric fallback: a plain number with a unit against a constant reference
        try:
            ref_val = _sympy_number(ref)
        except (_Unparseable, _NotANumber):
            return v
        pn = parse_number(cand)
        assert pn is not None
        err = _rel_error(pn.value, ref_val)
        tol = SYMBOLIC_REL_TOL if rel_tol is None else rel_tol
        ok = err <= tol
        return _verdict(ok, EQUAL if ok else NUMERIC_MISMATCH,
                        ("the extracted answer matches the reference numerically" if ok else
                         f"the extracted answer {_fmt_fraction(pn.value)} differs numerically from the reference "
                         f"(relative error {err:.3g} > tolerance {tol:g})"),
                        "numeric", candidate=_fmt_fraction(pn.value), reference=v.reference,
                        details={"rel_error": err, "rel_tol": tol, "unit_ignored": pn.unit})
    return v


def verify_answer(
    response: str,
    question: Mapping[str, Any],
    *,
    rel_tol: float | None = None,
    tolerance: str | None = None,
    ensemble: bool = True,
) -> Verdict:
    r"""Check a model response against a question's reference answer, in this process.

    Args:
        response: the full model output (the final answer is taken by :func:`extract_final_answer`).
        question: a mapping with ``answer`` (str/None) and optionally ``choices``, ``unit``,
            ``question_type``, ``answer_type``, ``question`` (the text, for options written in it).
        rel_tol: ``None`` for the default tolerance rules, or a relative tolerance (e.g.
            ``SCIBENCH_REL_TOL`` = 0.05, SciBench-style) for numeric answers.
        tolerance: the numeric tolerance policy: ``None``/``"default"``, ``"sig_figs"`` (derived
            from the reference's significant figures) or ``"scibench"`` (5 %); see :func:`check_numeric`.
        ensemble: consult math-verify (:mod:`~scireflect.verifiers.mathverify_backend`) when our
            symbolic check cannot decide; it never overrides a decision, nor any numeric/unit one.

    Returns:
        A :class:`Verdict`; ``elapsed_s`` is the time spent here. Never raises: any exception
        becomes ``ok=None``, reason ``check_error``. The explanation never contains the reference
        answer (it is in ``Verdict.reference`` only). Not protected against pathological input;
        use :class:`~scireflect.verifiers.sandbox.SandboxedAnswerVerifier` for untrusted text.
    """
    t0 = perf_counter()
    ex: Extraction | None = None
    try:
        ex, early = precheck(response, question)
        if early is not None:
            v = early
        else:
            assert ex is not None
            v = _check(ex, question, rel_tol, tolerance, ensemble)
            v = replace(v, extracted=ex.text, extraction_method=ex.method)
    except MemoryError:
        v = _verdict(None, CHECK_ERROR, "the checker ran out of memory", "error",
                     extracted=ex.text if ex else None, extraction_method=ex.method if ex else None)
    except RecursionError:
        v = _verdict(None, CHECK_ERROR, "the checker hit the recursion limit (the answer is too deeply nested)", "error",
                     extracted=ex.text if ex else None, extraction_method=ex.method if ex else None)
    except Exception as exc:  # noqa: BLE001 - the contract is "never raises"
        v = _verdict(None, CHECK_ERROR, f"the checker failed ({type(exc).__name__})", "error",
                     extracted=ex.text if ex else None, extraction_method=ex.method if ex else None,
                     details={"error_type": type(exc).__name__})
    return replace(v, elapsed_s=perf_counter() - t0)

r"""Plain numbers: read ``72``, ``-1,000``, ``\frac{3}{4}``, ``1\frac{2}{7}``, ``6.02\times10^{23}``,
``12\%``, ``50.7 \mathrm{~atm}`` into an exact :class:`~fractions.Fraction`, with regular expressions
only (via :class:`decimal.Decimal`; no sympy, no evaluation), and format exact values for verdicts.

What a number is (mixed numbers, exact vs measured values, significant figures, trailing units) is
described in ``docs/verifiers.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

import mpmath

from ..extract import strip_answer_delimiters
from ..symbols import canonical_symbols
from .common import MAX_ANSWER_CHARS, Unparseable
from .normalize import fix_shorthand, normalize_latex, replace_command

MAX_DECIMAL_EXPONENT = 1000
"""Plain-number exponents beyond this (``1e5000``) are left to the sympy path (float evaluation)."""


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


SINGLE_SYMBOL = re.compile(r"^(?:[A-Za-z]|\\text\{[A-Za-z ]+\})(?:_\{?[A-Za-z0-9]+\}?)?$|^\\(?:alpha|beta|gamma|theta|lambda|mu|phi|omega)$")
"""A left-hand side that only names the answer (``x``, ``v_0``, ``\\theta``): ``x = 5`` states 5."""
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
_UNIT_SINGLE_LETTERS = set("mgsKNJWVACTFLhMlB\u00c5")


def trailing_unit(rest: str) -> str | None:
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
    rest = replace_command(rest, ("mathrm", "text", "textrm", "mbox", "operatorname", "rm", "mathit", "textit"),
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


def clean_number_text(text: str) -> str:
    r"""An answer cut down to the number it states: delimiters, ``\$``, ``\!``, ``\left`` removed,
    ``x = 5`` and ``\approx 5`` -> ``5`` (a chain that starts with a single symbol, or with nothing,
    keeps its last member), Unicode symbols in one spelling (``10⁻⁴`` -> ``10^{-4}``), and
    ``\text{12 apples}`` unwrapped; ``""`` for an equation such as ``11x + 6y = 0``."""
    s = canonical_symbols(strip_answer_delimiters(text))
    s = s.replace("\\$", "").replace("$", "").replace("\\!", "").replace("{,}", ",")
    s = re.sub(r"(?<=\d)\\,(?=\d{3}(?!\d))", "", s)
    s = re.sub(r"\\[dtc]frac(?![a-zA-Z])", r"\\frac", s)
    s = re.sub(r"\\(?:left|right)(?![a-zA-Z])", "", s)
    s = fix_shorthand(s).strip()
    # "x = 5", "v_0 = 2\sqrt{2} \approx 2.83": keep the last member of a chain that starts with a
    # single symbol; "11x + 6y = 0" is an equation, not a number
    parts = re.split(r"\\approx|(?<![<>!\\])=(?!=)", s)
    if len(parts) > 1:
        head = normalize_latex(parts[0])
        if head and not SINGLE_SYMBOL.match(head):  # "\approx 100.1": nothing before the sign is fine
            return ""
        s = parts[-1].strip()
    # a whole-answer wrapper: \text{12 apples} -> 12 apples
    m = re.fullmatch(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}", s)
    if m:
        s = m.group(1).strip()
    return s


def decimal_fraction(mant: str) -> Fraction:
    """The exact value of a decimal literal (``"0.1"`` -> 1/10). Raises :class:`Unparseable`."""
    try:
        return Fraction(Decimal(mant))
    except (InvalidOperation, ValueError) as exc:  # pragma: no cover - the regex guarantees digits
        raise Unparseable(mant) from exc


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
    s = clean_number_text(text)
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
            unit = trailing_unit(rest)
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
            num_f = decimal_fraction(m.group("num").replace(" ", ""))
            den_f = decimal_fraction(m.group("den").replace(" ", ""))
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
                value = decimal_fraction(mant) * Fraction(10) ** exp
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


def fmt_fraction(v: Fraction) -> str:
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


def fmt_short(v: Any) -> str:
    """At most 10 significant digits (for unit conversions in explanations)."""
    if isinstance(v, Fraction):
        if v.denominator == 1 and abs(v.numerator) < 10**12:
            return str(v.numerator)
        return f"{float(v):.10g}"
    return mpmath.nstr(v, 10)


def fmt_value(v: Any) -> str:
    """An exact value as :func:`fmt_fraction` writes it, an mpmath number to 15 significant digits."""
    if isinstance(v, Fraction):
        return fmt_fraction(v)
    return mpmath.nstr(v, 15)


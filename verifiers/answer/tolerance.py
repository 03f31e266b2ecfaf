r"""Numeric tolerance: how close a candidate value must be to the reference value to count as equal.

:class:`NumericTolerance` is the frozen setting (a fixed relative tolerance and/or a policy name),
built once per verifier and passed down to every check; :func:`judge` applies it to one reading of
a candidate/reference pair. The policies (``default``, ``sig_figs``, ``scibench``) and why they are
what they are: ``docs/verifiers.md``, "Tolerance".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import mpmath

from .numbers import ParsedNumber

DEFAULT_REL_TOL = 1e-4
"""Relative tolerance of a decimal reference that is not visibly rounded (fewer than 3 significant digits)."""
SCIBENCH_REL_TOL = 0.05
"""The 5 % relative tolerance used by SciBench (Wang et al. 2024); pass it as ``rel_tol``."""
SYMBOLIC_REL_TOL = 1e-9
"""Relative agreement needed between numeric evaluations of two exact (symbolic) answers."""
EXACT_REL_TOL = 1e-15
"""What "exactly equal" means when one side is only known as a 30-digit float (e.g. ``\\sqrt{5184}``)."""
CONVERTED_EXACT_REL_TOL = 1e-12
"""What "exactly equal" means after a unit conversion (pint's factors are floats: 1e-12 relative)."""
JEE_NUMERIC_ALLOWANCE = Fraction(1, 200)
"""Half a unit in the 2nd decimal: JEE Advanced asks numeric answers "correct up to the 2nd decimal digit"."""
MEASURED_MIN_SIG_FIGS = 3
"""A measured answer judged at its own last digit needs at least this many significant figures."""

POLICIES = ("default", "sig_figs", "scibench")
"""Tolerance policy names (``docs/verifiers.md``)."""

AS_WRITTEN = "as written"
CONVERTED = "converted to the reference unit"


@dataclass(frozen=True)
class NumericTolerance:
    """How numeric answers are compared (as Math-Verify's frozen configs: built once, passed down).

    Attributes:
        rel_tol: a fixed relative tolerance for every numeric reference, integers included
            (``SCIBENCH_REL_TOL`` = 0.05), or ``None`` for the policy's rules.
        policy: ``default`` (exact references match exactly; visibly rounded decimals accept what
            rounds to them; other decimals 1e-4 relative), ``sig_figs`` (every decimal reference
            accepts what rounds to it at its last written digit) or ``scibench`` (5 % relative when
            ``rel_tol`` is ``None``).

    Raises:
        ValueError: an unknown policy, or a negative ``rel_tol``.
    """

    rel_tol: float | None = None
    policy: str = "default"

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"tolerance must be one of {', '.join(POLICIES)}")
        if self.rel_tol is not None and self.rel_tol < 0:
            raise ValueError("rel_tol must be >= 0")

    @classmethod
    def of(cls, rel_tol: float | None = None, policy: str | None = None) -> NumericTolerance:
        """The tolerance for the loose settings of the public API (``policy=None`` means ``default``)."""
        return cls(rel_tol, policy or "default")

    @property
    def fixed_rel_tol(self) -> float | None:
        """The relative tolerance applied to every reference: ``rel_tol``, else 0.05 under ``scibench``."""
        if self.rel_tol is None and self.policy == "scibench":
            return SCIBENCH_REL_TOL
        return self.rel_tol


# ---------------------------------------------------------------------------------------------
# error measures on Fractions (exact) and mpmath numbers (30 digits)
# ---------------------------------------------------------------------------------------------


def as_mp(v: Any) -> Any:
    """A Fraction as an mpmath real; mpmath numbers unchanged."""
    if isinstance(v, Fraction):
        return mpmath.mpf(v.numerator) / v.denominator
    return v


def abs_diff(c: Any, r: Any) -> Any:
    """``|c - r|``: exact (a Fraction) when both are Fractions, else an mpmath number at 30 digits."""
    if isinstance(c, Fraction) and isinstance(r, Fraction):
        return abs(c - r)
    with mpmath.workdps(30):
        return abs(as_mp(c) - as_mp(r))


def rel_error(c: Any, r: Any) -> float:
    """``|c - r| / |r|`` as a float (0 when equal, ``inf`` against a zero reference)."""
    d = abs_diff(c, r)
    if isinstance(d, Fraction):
        if r == 0:
            return 0.0 if d == 0 else math.inf
        return float(d / abs(r))
    with mpmath.workdps(30):
        rr = abs(as_mp(r))
        if rr == 0:
            return 0.0 if d == 0 else math.inf
        try:
            return float(d / rr)
        except OverflowError:
            return math.inf


def _within(d: Any, allowed: Fraction) -> bool:
    return d <= allowed if isinstance(d, Fraction) else d <= as_mp(allowed)


# ---------------------------------------------------------------------------------------------
# judging one reading
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """One way of reading a candidate/reference pair (percent as a fraction, a unit's power of ten...).

    Attributes:
        candidate: the candidate value (Fraction or mpmath real), in the reference's unit.
        reference: the reference value under this reading (the written value times ``factor``).
        label: ``as written``, ``converted to the reference unit``, ``reference percent as a
            fraction``, ``candidate percent as a fraction``, ``reference times the unit's power of ten``.
    """

    candidate: Any
    reference: Fraction
    label: str


@dataclass(frozen=True)
class CandidatePrecision:
    """How a candidate written as a plain number was rounded (for the measured-quantity rules).

    Attributes:
        value: the candidate's value as written (before any conversion or percent reading).
        sig_figs: its significant figures (``15.43`` -> 4; an integer's trailing zeros do not count).
        half_ulp: half a unit in its last written digit, as written (``15.43`` -> 0.005).
        decimal: written with a decimal point or exponent (not an integer literal).
    """

    value: Fraction
    sig_figs: int
    half_ulp: Fraction
    decimal: bool

    def half_ulp_in(self, reading: Reading) -> Fraction:
        """Half a unit in the candidate's last digit, in the units of ``reading`` (converted, or /100 for a percent)."""
        if not self.value or not isinstance(reading.candidate, Fraction):
            return Fraction(0)
        return abs(self.half_ulp * (reading.candidate / self.value))


@dataclass(frozen=True)
class Judgement:
    """The outcome of :func:`judge`: ``ok``, the relative error, the rule that applied, its tolerance."""

    ok: bool
    rel_error: float
    rule: str
    tol: float
    reading: str


def judge(
    reading: Reading,
    ref: ParsedNumber,
    tol: NumericTolerance,
    *,
    question_type: str | None = None,
    measured: bool = False,
    candidate: CandidatePrecision | None = None,
) -> Judgement:
    """Decide whether one reading of a candidate equals the reference under ``tol``.

    Args:
        reading: the pair of values to compare.
        ref: the reference as parsed (its exactness, percent sign, last written digit).
        tol: the tolerance setting.
        question_type: JEEBench ``Numeric``: the answer must be correct to the 2nd decimal
            (``JEE_NUMERIC_ALLOWANCE`` = 0.005), however many digits the reference stores.
        measured: the reference is a measured quantity (a physical unit in a science question,
            or a SciBench decimal): an integer reference is rounded at its last digit like a
            decimal, and a candidate with at least ``MEASURED_MIN_SIG_FIGS`` significant figures
            may also be the reference rounded at the candidate's own last digit (15.43 for 15.425).
        candidate: the candidate's rounding when it is a written number. For an exact reference
            a converted decimal with >= 4 significant figures may differ by half its last digit
            (0.5236 rad for 30 degrees).

    Returns:
        A :class:`Judgement`; ``rule`` names what decided: ``rel_tol X``, ``correct to the 2nd
        decimal (JEE Numeric)``, ``exact zero`` (a reference of 0: only 0 matches, whatever its
        unit or policy), ``exact integer``, ``exact value``, ``rounds to the reference's
        last written digit`` (with `` (a measured quantity)`` for measurements), ``the reference
        rounds to the answer's last written digit (a measured quantity)`` or ``the reference rounds
        to the converted answer's last written digit``; ``tol`` is the relative tolerance (0 for
        the rules that are not relative).
    """
    c, r, label = reading.candidate, reading.reference, reading.label
    err = rel_error(c, r)
    fixed = tol.fixed_rel_tol
    if fixed is not None:
        d = abs_diff(c, r)
        ok = _within(d, Fraction(fixed) * (abs(r) if r != 0 else Fraction(1, 10**12)))
        return Judgement(ok, err, f"rel_tol {fixed:g}", fixed, label)
    factor = r / ref.value if ref.value != 0 else Fraction(1)  # 1/100 for a percent read as a fraction
    if question_type == "Numeric":
        # the exam's stated precision, not the digits the data happens to store ("0.5" is 0.50)
        allowed = JEE_NUMERIC_ALLOWANCE * abs(factor)
        return Judgement(_within(abs_diff(c, r), allowed), err, "correct to the 2nd decimal (JEE Numeric)", 0.0, label)
    if r == 0:
        # zero is exact: no measurement rounds to it, and no last digit of "0" or "0.0" allows 3e-4
        return _judge_zero(reading, candidate, err)
    if measured and (ref.integer_literal or not ref.exact):
        return _judge_measured(reading, ref, err, factor, candidate)
    if ref.exact and not ref.percent and label in (AS_WRITTEN, CONVERTED):
        return _judge_exact(reading, ref, err, candidate)
    allowed = Fraction(DEFAULT_REL_TOL) * abs(r)
    rule = f"rel_tol {DEFAULT_REL_TOL:g}"
    if ref.ulp is not None and ((ref.sig_figs or 0) >= 3 or tol.policy == "sig_figs"):
        # a visibly rounded reference: what rounds to it at its last written digit, no more
        allowed = ref.ulp / 2 * abs(factor)
        rule = "rounds to the reference's last written digit"
    return Judgement(_within(abs_diff(c, r), allowed), err, rule, DEFAULT_REL_TOL, label)


def _judge_zero(reading: Reading, candidate: CandidatePrecision | None, err: float) -> Judgement:
    """A reference of exactly zero, with or without a unit: only zero matches (after a unit
    conversion, zero up to pint's float factors, 1e-12 of the candidate as written)."""
    c = reading.candidate
    if reading.label == CONVERTED and candidate is not None:
        ok = _within(abs_diff(c, Fraction(0)), Fraction(CONVERTED_EXACT_REL_TOL) * abs(candidate.value))
    else:
        ok = bool(c == 0)
    return Judgement(ok, err, "exact zero", 0.0, reading.label)


def _judge_measured(reading: Reading, ref: ParsedNumber, err: float, factor: Fraction,
                    candidate: CandidatePrecision | None) -> Judgement:
    """A measured reference: it rounds to the answer, or the answer rounds to it, at the coarser last digit."""
    d = abs_diff(reading.candidate, reading.reference)
    ulp = ref.ulp if ref.ulp is not None else Fraction(1)  # an integer with a unit: its last digit
    if _within(d, ulp / 2 * abs(factor)):
        return Judgement(True, err, "rounds to the reference's last written digit (a measured quantity)", 0.0, reading.label)
    if candidate is not None and candidate.sig_figs >= MEASURED_MIN_SIG_FIGS and _within(d, candidate.half_ulp_in(reading)):
        return Judgement(True, err, "the reference rounds to the answer's last written digit (a measured quantity)", 0.0,
                         reading.label)
    return Judgement(False, err, "rounds to the reference's last written digit (a measured quantity)", 0.0, reading.label)


def _judge_exact(reading: Reading, ref: ParsedNumber, err: float, candidate: CandidatePrecision | None) -> Judgement:
    """An exact reference (integer, fraction, power of ten) against one reading."""
    c, r, label = reading.candidate, reading.reference, reading.label
    rule = "exact integer" if ref.integer_literal else "exact value"
    if isinstance(c, Fraction) and label == AS_WRITTEN:
        return Judgement(c == r, err, rule, 0.0, label)
    # a float: the 30-digit value of a constant, or a conversion with pint's float factors
    ok = err <= (EXACT_REL_TOL if label == AS_WRITTEN else CONVERTED_EXACT_REL_TOL)
    if not ok and label != AS_WRITTEN and candidate is not None and candidate.decimal and candidate.sig_figs >= 4:
        # a rounded decimal in another unit: the reference must lie within half a unit of the
        # candidate's last written digit, converted
        ok = bool(_within(abs_diff(c, r), candidate.half_ulp_in(reading)))
        if ok:
            rule = "the reference rounds to the converted answer's last written digit"
    return Judgement(ok, err, rule, 0.0, label)

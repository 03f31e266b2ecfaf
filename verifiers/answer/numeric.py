r"""The numeric check: a candidate number (possibly with a unit) against a numeric reference answer.

Steps, one function each: read the candidate's value and unit; match units (convert with pint, or
reject a unit of another dimension); list the readings of the pair (as written, percent as a
fraction, the unit field's power of ten); judge each reading with the tolerance
(:mod:`.tolerance`); explain the best one. Rules: ``docs/verifiers.md``, "Numbers" and "Units".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import mpmath

from ..base import DIMENSION_MISMATCH, EQUAL, NUMERIC_MISMATCH, UNIT_CONVERTED, UNPARSEABLE, Verdict
from ..units import DimensionMismatch, UnitSpec, conversion, parse_unit
from .common import NotANumber, Unparseable, verdict
from .latex import prep_latex, sympy_number
from .normalize import unwrap_text
from .numbers import (
    MAX_DECIMAL_EXPONENT,
    ParsedNumber,
    clean_number_text,
    fmt_fraction,
    fmt_short,
    fmt_value,
    parse_number,
    trailing_unit,
)
from .tolerance import AS_WRITTEN, CONVERTED, CandidatePrecision, Judgement, NumericTolerance, Reading, judge

_TRAILING_PLAIN_UNIT = re.compile(r"^(?P<expr>.*?[}\d)])(?:\s+|\\[,;: ]|~)+(?P<unit>[A-Za-z][A-Za-z/^{}\-\d\s]{0,30})$")


def unit_scale(unit: Any) -> Fraction | None:
    r"""A SciBench unit like ``$10^{-16}$`` or ``$10^3 \mathrm{~N}$``: the power-of-ten prefix, else ``None``."""
    if not isinstance(unit, str):
        return None
    m = re.match(r"^\s*\$?\s*(?:\\times\s*)?10\s*\^\s*(?:\{\s*([-+]?\d+)\s*\}|([-+]?\d))", unit)
    if not m:
        return None
    exp = int(m.group(1) or m.group(2))
    return Fraction(10) ** exp if abs(exp) <= MAX_DECIMAL_EXPONENT else None


def as_fraction(v: Any) -> Fraction:
    """An exact Fraction of a Fraction or an mpmath real (30 significant digits)."""
    if isinstance(v, Fraction):
        return v
    return Fraction(mpmath.nstr(v, 30, strip_zeros=False, min_fixed=-1, max_fixed=1).replace(" ", ""))


def candidate_value(candidate: str) -> tuple[Any, ParsedNumber | None, str | None]:
    """``(value, parsed plain number or None, unit text or None)`` of a candidate answer.

    A plain number is read by :func:`parse_number`; anything else by the LaTeX parser, with a
    trailing ``\\mathrm{...}`` unit or a plain physical unit (``2\\sqrt{2} m``) split off; a free
    ``e`` is Euler's number (the reference is a number).

    Raises:
        Unparseable: neither reads (or the answer is a word such as ``none``).
        NotANumber: the expression has free symbols or no finite value.
    """
    pn = parse_number(candidate)
    if pn is not None:
        return pn.value, pn, pn.unit
    text = clean_number_text(candidate)
    if re.fullmatch(r"[A-Za-z][A-Za-z\s\-']*", unwrap_text(text).strip()) and re.search(r"[A-Za-z]{3}", text):
        raise Unparseable("a word, not a number")  # "seventy-two", "none": not a product of symbols
    _, unit = prep_latex(text)
    if unit is None:
        m = _TRAILING_PLAIN_UNIT.match(text)
        if m and trailing_unit(" " + m.group("unit")) is not None:
            spec = parse_unit(m.group("unit"))
            if spec is not None and spec.physical:
                return sympy_number(m.group("expr"), euler=True), None, m.group("unit")
    return sympy_number(text, euler=True), None, unit


@dataclass(frozen=True)
class _Candidate:
    value: Any  # Fraction, or an mpmath real when only a 30-digit value is known
    parsed: ParsedNumber | None  # set when the candidate is a plain number
    unit: str | None  # the unit text written after the number

    @property
    def percent(self) -> bool:
        return bool(self.parsed and self.parsed.percent)


@dataclass(frozen=True)
class _Units:
    candidate: UnitSpec | None
    reference: UnitSpec | None
    converted: Fraction | None  # the candidate in the reference unit, when both have physical units
    details: dict[str, Any] = field(default_factory=dict)


def _read_candidate(candidate: str, ref: ParsedNumber) -> _Candidate | Verdict:
    """The candidate's value and unit, or the verdict when it is not a real number."""
    ref_s = fmt_fraction(ref.value)
    try:
        value, parsed, unit = candidate_value(candidate)
    except NotANumber as exc:
        what = "has no finite value" if str(exc) == "no finite value" else f"contains the symbol(s) {exc}"
        return verdict(False, NUMERIC_MISMATCH, f"the extracted answer is not a number (it {what}) but a number is expected",
                       "numeric", reference=ref_s, details={"not_a_number": what})
    except Unparseable:
        return verdict(None, UNPARSEABLE, "the extracted answer could not be read as a number or a LaTeX expression",
                       "numeric", reference=ref_s)
    if isinstance(value, mpmath.mpc):
        return verdict(False, NUMERIC_MISMATCH, "the extracted answer is a complex number but a real number is expected",
                       "numeric", candidate=fmt_value(value), reference=ref_s, details={"not_a_number": "is a complex number"})
    return _Candidate(value, parsed, unit)


def _match_units(cand: _Candidate, ref: ParsedNumber, unit: Any) -> _Units | Verdict:
    """Convert the candidate to the reference unit (the question's ``unit``, else the reference's own).

    Returns the verdict instead when the units have different dimensions, or when the candidate's
    unit cannot be read although a physical unit is requested.
    """
    asked = isinstance(unit, str) and bool(unit.strip())  # the question's unit field: part of the question
    r_spec = parse_unit(unit if asked else ref.unit) if (asked or ref.unit) else None
    c_spec = parse_unit(cand.unit) if cand.unit else None
    # what the Critic may be told: the unit the question asks for, never one read off the reference
    requested = {"requested_unit": r_spec.pretty, "requested_dimension": r_spec.dimensionality} \
        if asked and r_spec is not None and r_spec.physical else {}
    details: dict[str, Any] = {}
    converted = None
    if c_spec is not None and c_spec.physical and r_spec is not None and r_spec.physical:
        details = {"candidate_unit": c_spec.pretty, "reference_unit": r_spec.pretty,
                   "candidate_dimension": c_spec.dimensionality, "reference_dimension": r_spec.dimensionality,
                   **requested}
        try:
            converted = conversion(as_fraction(cand.value), c_spec, r_spec)
        except DimensionMismatch as exc:
            shown = f"{fmt_short(cand.value)} {c_spec.pretty}"
            return verdict(False, DIMENSION_MISMATCH,
                           f"{exc}: the extracted answer {shown} cannot be expressed in the requested unit",
                           "numeric", candidate=shown, reference=fmt_fraction(ref.value), details=details)
        details["converted_value"] = fmt_short(converted)
    if cand.unit and c_spec is None and r_spec is not None and r_spec.physical and cand.parsed is not None \
            and cand.parsed.percent is False:
        return verdict(None, UNPARSEABLE,
                       f"the unit '{cand.unit}' of the extracted answer could not be read, so it cannot be compared with "
                       f"the requested unit {r_spec.pretty} ({r_spec.dimensionality})",
                       "numeric", candidate=fmt_value(cand.value), reference=fmt_fraction(ref.value),
                       details={"candidate_unit_text": cand.unit, "reference_unit": r_spec.pretty, **requested})
    return _Units(c_spec, r_spec, converted, details)


def _readings(cand: _Candidate, ref: ParsedNumber, unit: Any, units: _Units) -> list[Reading]:
    """Every reading of the pair to try, in order: converted or as written, then percent and scale readings."""
    if units.converted is not None:
        same = units.converted == as_fraction(cand.value)
        return [Reading(units.converted, ref.value, AS_WRITTEN if same else CONVERTED)]
    r_percent = ref.percent or (isinstance(unit, str) and unit.strip().strip("$").strip() in ("%", "\\%"))
    out = [Reading(cand.value, ref.value, AS_WRITTEN)]
    if r_percent and not cand.percent:
        out.append(Reading(cand.value, ref.value / 100, "reference percent as a fraction"))
    if cand.percent and not r_percent:
        out.append(Reading(cand.value / 100, ref.value, "candidate percent as a fraction"))
    scale = unit_scale(unit)
    if scale is not None:
        out.append(Reading(cand.value, ref.value * scale, "reference times the unit's power of ten"))
    return out


def _precision(cand: _Candidate) -> CandidatePrecision | None:
    """The candidate's significant figures and last digit when it is a written number, else ``None``."""
    pn = cand.parsed
    if pn is None:
        return None
    if pn.ulp is not None and pn.sig_figs is not None:
        return CandidatePrecision(pn.value, pn.sig_figs, pn.ulp / 2, True)
    if not pn.integer_literal:
        return None  # a fraction or a power of ten: exact, not rounded
    digits = str(abs(pn.value.numerator))
    significant = digits.rstrip("0") or "0"  # 400: 1 significant figure (its trailing zeros may be placeholders)
    return CandidatePrecision(pn.value, len(significant), Fraction(10) ** (len(digits) - len(significant)) / 2, False)


def _is_measured(ref: ParsedNumber, units: _Units, unit: Any, science: bool, scibench: bool) -> bool:
    """A measured quantity: a physical reference unit given by the question's unit field or, in a
    science question, by the reference itself; or a decimal reference of a SciBench row."""
    if units.reference is not None and units.reference.physical and (science or scibench or (isinstance(unit, str) and unit.strip())):
        return True
    return scibench and not ref.exact


def _best(readings: list[Reading], ref: ParsedNumber, tol: NumericTolerance, question_type: str | None,
          measured: bool, precision: CandidatePrecision | None) -> Judgement:
    """The first reading that matches, else the one with the smallest relative error."""
    best: Judgement | None = None
    for reading in readings:
        j = judge(reading, ref, tol, question_type=question_type, measured=measured, candidate=precision)
        if j.ok:
            return j
        if best is None or j.rel_error < best.rel_error:
            best = j
    assert best is not None
    return best


def _unit_note(cand: _Candidate, units: _Units, reading: str) -> str:
    """What happened to the units, for the explanation (``; units agree (atm)``)."""
    if units.converted is not None:
        assert units.candidate is not None and units.reference is not None
        if reading != AS_WRITTEN:
            return (f"; {fmt_short(cand.value)} {units.candidate.pretty} was converted to "
                    f"{fmt_short(units.converted)} {units.reference.pretty}")
        return f"; units agree ({units.reference.pretty})"
    if cand.unit:
        physical = units.candidate is not None and units.candidate.physical
        why = "no reference unit to convert to" if physical else "not a unit that can be converted"
        return f"; the unit '{cand.unit}' was ignored ({why})"
    return ""


def _numeric_verdict(cand: _Candidate, ref: ParsedNumber, units: _Units, j: Judgement) -> Verdict:
    """The verdict for the chosen judgement: details, candidate string and explanation."""
    details: dict[str, Any] = dict(units.details)
    if cand.unit and units.converted is None:
        details["unit_ignored"] = cand.unit
    details.update({"rel_error": j.rel_error, "rule": j.rule, "reading": j.reading})
    if j.rule.startswith("rel_tol"):
        details["rel_tol"] = j.tol
    unit_note = _unit_note(cand, units, j.reading)
    cand_str = fmt_value(cand.value) + ("%" if cand.percent else "")
    if units.candidate is not None and units.candidate.physical and units.converted is not None:
        cand_str = f"{fmt_short(cand.value)} {units.candidate.pretty}"
    ref_s = fmt_fraction(ref.value)
    if j.ok:
        how = "exactly" if j.rel_error == 0 else f"(relative error {j.rel_error:.3g}, rule: {j.rule})"
        reason = UNIT_CONVERTED if j.reading == CONVERTED else EQUAL
        return verdict(True, reason, f"the extracted answer matches the reference numerically {how}{unit_note}",
                       "numeric", candidate=cand_str, reference=ref_s, details=details)
    if j.rule.startswith("exact"):
        what = {"exact integer": "an exact integer match", "exact zero": "an exact value"}.get(
            j.rule, "an exact value (the reference is a fraction)")
        expl = (f"the extracted answer {cand_str} differs from the reference ({what} is required; "
                f"relative error {j.rel_error:.3g}){unit_note}")
    else:
        tol_txt = f"tolerance {j.tol:g}" if j.rule.startswith("rel_tol") else "the rounding allowance"
        expl = (f"the extracted answer {cand_str} differs numerically from the reference "
                f"(relative error {j.rel_error:.3g} > {tol_txt}){unit_note}")
    return verdict(False, NUMERIC_MISMATCH, expl, "numeric", candidate=cand_str, reference=ref_s, details=details)


def check_numeric(
    candidate: str,
    reference: str,
    *,
    tol: NumericTolerance | None = None,
    unit: Any = None,
    question_type: str | None = None,
    science: bool = False,
    scibench: bool = False,
) -> Verdict:
    r"""Compare a candidate number with a numeric reference, converting units when both sides have one.

    Args:
        candidate: the extracted answer text (``"50.70 atm"``, ``"\frac{3}{4}"``, ``"2^{10}"``).
        reference: the reference answer text; must satisfy :func:`parse_number`.
        tol: the tolerance (:class:`NumericTolerance`; default: policy ``default``, no fixed rel_tol).
        unit: the question's ``unit`` field (``%`` enables the percent reading; ``10^{k}`` a scale).
        question_type: JEEBench ``Numeric``: correct to the 2nd decimal (0.005), the exam's precision.
        science: a science question (not mathematics): a unit written with the reference makes it a
            measured quantity (:func:`~.select.is_science`).
        scibench: a SciBench row: its decimal references are measured quantities even without a
            unit (:func:`~.select.is_scibench_row`).

    Returns:
        A :class:`Verdict` (checker ``numeric``): ``equal`` / ``unit_converted`` (equal after a unit
        conversion) / ``numeric_mismatch`` (also for answers with free symbols) /
        ``dimension_mismatch`` (both sides have units of different dimensions, e.g. m vs m/s) /
        ``unparseable``. ``details`` has ``rel_error``, ``rel_tol`` (or ``rule``), ``reading``,
        ``unit_ignored`` (a unit that played no part), and with units ``candidate_unit``,
        ``reference_unit``, ``candidate_dimension``, ``reference_dimension``,
        ``converted_value``. The explanation never contains the reference value (it may name the
        expected unit). Rules: ``docs/verifiers.md``.

    Raises:
        ValueError: if ``reference`` is not a plain number.
    """
    ref = parse_number(reference)
    if ref is None:
        raise ValueError("reference is not a plain number")
    tol = tol or NumericTolerance()
    cand = _read_candidate(candidate, ref)
    if isinstance(cand, Verdict):
        return cand
    units = _match_units(cand, ref, unit)
    if isinstance(units, Verdict):
        return units
    measured = _is_measured(ref, units, unit, science, scibench)
    best = _best(_readings(cand, ref, unit, units), ref, tol, question_type, measured, _precision(cand))
    return _numeric_verdict(cand, ref, units, best)

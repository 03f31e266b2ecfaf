"""Unit-aware checks (pint), tolerance policies, the math-verify ensemble and the known hard cases."""

from __future__ import annotations

import time

import pytest

from scireflect.verifiers import SandboxedAnswerVerifier, parse_unit, verify_answer
from scireflect.verifiers.answer import NumericTolerance, check_numeric
from scireflect.verifiers.base import DIMENSION_MISMATCH, EQUAL, NUMERIC_MISMATCH, UNIT_CONVERTED, Verdict


def v(candidate: str, answer: str, unit: str | None = None, **kw) -> Verdict:
    q = {"answer": answer}
    if unit is not None:
        q["unit"] = unit
    return verify_answer(f"\\boxed{{{candidate}}}", q, **kw)


# --- the hard cases of the issue: math-verify gets each of them wrong ----------------------------

def test_5_km_vs_5_m_is_a_numeric_mismatch_after_conversion() -> None:
    r = v("5 m", "5 km")
    assert r.ok is False and r.reason == NUMERIC_MISMATCH
    assert "converted to 0.005 km" in r.explanation


def test_5000_m_vs_5_km_is_accepted_as_converted() -> None:
    r = v("5000 m", "5 km")
    assert r.ok is True and r.reason == UNIT_CONVERTED and r.details["converted_value"] == "5"


def test_9_8_vs_9_81_depends_on_the_tolerance_policy() -> None:
    assert v("9.8 m/s^2", "9.81", "m/s^2").ok is False  # default: rounding allowance of 9.81 is 0.005
    assert v("9.8 m/s^2", "9.81", "m/s^2", tolerance="scibench").ok is True
    assert v("9.8 m/s^2", "9.81", "m/s^2", rel_tol=0.05).ok is True
    # sig-fig policy: a reference of 9.8 accepts what rounds to it
    assert v("9.81", "9.8").ok is False and v("9.81", "9.8", tolerance="sig_figs").ok is True
    assert v("9.86", "9.8", tolerance="sig_figs").ok is False


def test_one_over_2004_factorial_is_not_one_over_2006_factorial() -> None:
    r = v("\\frac{1}{2006!}", "\\frac{1}{2004!}")
    assert r.ok is False
    assert v("\\frac{1}{2004!}", "\\frac{1}{2004!}").ok is True


# --- SciBench units --------------------------------------------------------------------------------

ATM = "$\\mathrm{atm}$"


@pytest.mark.parametrize(("cand", "ok", "reason"), [
    ("50.7", True, EQUAL),                                   # number in the requested unit
    ("50.7\\ \\mathrm{atm}", True, EQUAL),
    ("5.137\\times10^{6}\\ \\mathrm{Pa}", True, UNIT_CONVERTED),
    ("5137 \\mathrm{kPa}", True, UNIT_CONVERTED),
    ("50.7\\ \\mathrm{m}", False, DIMENSION_MISMATCH),
    ("5.0\\times10^{6}\\ \\mathrm{Pa}", False, NUMERIC_MISMATCH),
])
def test_scibench_pressure(cand: str, ok: bool, reason: str) -> None:
    r = v(cand, "50.7", ATM)
    assert (r.ok, r.reason) == (ok, reason)


def test_dimension_mismatch_explanation_names_both_dimensions_and_reaches_the_critic() -> None:
    r = v("12 \\mathrm{m}", "12", "m/s")
    assert r.reason == DIMENSION_MISMATCH
    assert "dimension mismatch: got m ([length]), expected m/s ([length] / [time])" in r.explanation
    assert "dimension mismatch: got m" in r.evidence_for_critic()
    assert r.details["candidate_dimension"] == "[length]"


@pytest.mark.parametrize(("cand", "answer", "unit", "ok"), [
    ("65490 \\mathrm{~J} \\mathrm{~mol}^{-1}", "+65.49", "$\\mathrm{kJ} \\mathrm{mol}^{-1}$", True),   # kJ/mol vs J/mol
    ("65.49 \\mathrm{J/mol}", "+65.49", "$\\mathrm{~kJ} \\mathrm{~mol}^{-1}$", False),
    ("65.49 \\mathrm{kJ}", "+65.49", "$\\mathrm{~kJ} \\mathrm{~mol}^{-1}$", False),                      # per mole missing
    ("-87.8 \\mathrm{J\\,K^{-1}\\,mol^{-1}}", "-87.8", "$\\mathrm{J} \\mathrm{K}^{-1} \\mathrm{~mol}^{-1}$", True),
    ("1.6\\times 10^{-19} \\mathrm{J}", "1.6", "$10^{-19}$ J", True),
    ("1.6", "1.6", "$10^{-19}$ J", True),
    ("1.0 \\mathrm{eV}", "1.6", "$10^{-19} \\mathrm{~J}$", True),   # 1 eV = 1.602e-19 J rounds to the measured 1.6e-19 J
    ("1.1 \\mathrm{eV}", "1.6", "$10^{-19} \\mathrm{~J}$", False),  # 1.76e-19 J
    ("3 \\mathrm{m/s}", "3", "$\\mathrm{m} / \\mathrm{s}$", True),
    ("300 \\mathrm{cm/s}", "3", "$\\mathrm{m} / \\mathrm{s}$", True),
    ("3 \\mathrm{m}", "3", "$\\mathrm{m} / \\mathrm{s}$", False),
    ("2.0\\times10^{4} \\mathrm{N/C}", "2.0", "$10^4 \\mathrm{~N} / \\mathrm{C}$", True),
    ("2.0\\times10^{4} \\mathrm{V/m}", "2.0", "$10^4 \\mathrm{~N} / \\mathrm{C}$", True),                 # N/C = V/m
    ("30^\\circ", "0.5236", "$\\mathrm{rad}$", True),                                                    # degrees vs radians
    ("\\frac{\\pi}{6} \\mathrm{rad}", "30", "$^{\\circ}$", True),
    ("30 \\mathrm{m}", "30", "$^{\\circ}$", False),
    ("269.65 \\mathrm{K}", "-3.5", "$^{\\circ} \\mathrm{C}$", True),
    ("32\\%", "32", "%", True),
    ("\\$15", "15", "$", True),
])
def test_scibench_units(cand: str, answer: str, unit: str, ok: bool) -> None:
    assert v(cand, answer, unit).ok is ok


def test_converted_answer_with_sig_fig_policy() -> None:
    assert v("1.0 \\mathrm{eV}", "1.6", "$10^{-19} \\mathrm{~J}$", tolerance="sig_figs").ok is True
    assert v("1.0 \\mathrm{eV}", "1.6", "$10^{-19} \\mathrm{~J}$", tolerance="sig_figs").reason == UNIT_CONVERTED


def test_unit_parsing_of_scibench_fields() -> None:
    cases = {
        "$\\mathrm{~kJ} \\mathrm{~mol}^{-1}$": "kJ/mol",
        "$\\mathrm{J} \\mathrm{K}^{-1} \\mathrm{~mol}^{-1}$": "J/K/mol",
        "$\\mathrm{JK}^{-1} \\mathrm{~mol}^{-1}$": "J/K/mol",
        "$\\mathrm{m} / \\mathrm{s}$": "m/s",
        "$\\mathrm{~N} / \\mathrm{C}$": "N/C",
        "$\\mu \\mathrm{C}$": "µC",
    }
    for text, pretty in cases.items():
        spec = parse_unit(text)
        assert spec is not None and spec.physical and spec.pretty == pretty, text
    assert parse_unit("$10^{-19}$ J").scale == parse_unit("$10^{-19} \\mathrm{~J}$").scale
    assert parse_unit("%").kind == "percent" and parse_unit("$").kind == "currency"
    assert parse_unit("$10^{16}$ photons").kind == "count" and parse_unit("$10^3$").kind == "scale"
    assert parse_unit("apples") is None and parse_unit("x") is None and parse_unit("__import__('os')") is None


def test_units_without_a_reference_unit_are_ignored_as_before() -> None:
    r = v("42 \\text{ pages}", "42")
    assert r.ok is True and r.details["unit_ignored"]
    assert v("72 clips", "72").ok is True


def test_check_numeric_tolerance_argument() -> None:
    assert check_numeric("52", "50.7", tol=NumericTolerance(policy="scibench")).ok is True
    assert check_numeric("52", "50.7").ok is False


# --- math-verify as a fallback backend -----------------------------------------------------------

def test_math_verify_only_decides_what_we_cannot() -> None:
    # a decided mismatch stays a mismatch (math-verify would say equal)
    assert v("\\frac{1}{2006!}", "\\frac{1}{2004!}", ensemble=True).ok is False
    assert v("5 m", "5 km", ensemble=True).ok is False
    r = v("\\{1,2\\} \\cup \\{3\\}", "\\{1,2,3\\}")
    assert r.ok in (True, False, None)  # whichever backend decides, it is a verdict, never an exception


# --- adversarial answers in the sandbox ------------------------------------------------------------

def test_adversarial_unit_text_is_rejected_quickly_without_side_effects(tmp_path) -> None:
    marker = tmp_path / "pwned"
    with SandboxedAnswerVerifier(timeout_s=5, memory_mb=1024) as sv:
        t0 = time.perf_counter()
        r = sv.verify(f"\\boxed{{5 __import__('os').system('touch {marker}')}}", {"answer": "5", "unit": "m"})
        assert r.ok is not True and not marker.exists()
        r = sv.verify("\\boxed{5 \\mathrm{" + "m^{2}" * 20_000 + "}}", {"answer": "5", "unit": "m"})
        assert r.ok is not True
        r = sv.verify("\\boxed{10^{10^{10}} \\mathrm{m}}", {"answer": "5", "unit": "m"})
        assert r.ok is not True
        assert time.perf_counter() - t0 < 40


# --- notation that used to be rejected although the value is right (issue 14, item 13) -----------

@pytest.mark.parametrize(("cand", "answer", "ok"), [
    ("2.16 × 10⁻⁴", "0.000216", True),                 # Unicode times and superscript exponent
    ("2.16\\times10⁻⁴", "2.16e-4", True),
    ("6.02 × 10²³", "6.02e23", True),
    ("2.16 × 10⁻³", "0.000216", False),
    ("\\approx 100.1", "100.1", True),                  # an approximation sign inside the box
    ("≈ 100.1", "100.1", True),
    ("\\approx 100.7", "100.1", False),
    ("e^{-1}", "0.368", True),                         # Euler's number against a decimal reference
    ("\\mathrm{e}^{-1}", "0.3679", True),
    ("e^{-1}", "0.5", False),
    ("2e^{-1}", "0.736", True),
])
def test_notation_of_numbers(cand: str, answer: str, ok: bool) -> None:
    r = v(cand, answer)
    assert r.ok is ok, r


ANGSTROM = "$\\AA$"


@pytest.mark.parametrize("cand", ["1.54 Å", "1.54\\text{Å}", "1.54\\ \\text{Å}", "1.54\\,\\mathring{A}", "1.54 \u212b",
                                  "1.54\\,\\mathrm{\\AA}", "154 pm", "0.154\\ \\mathrm{nm}"])
def test_angstrom_spellings(cand: str) -> None:
    for unit in (ANGSTROM, "Å", "$\\mathring{A}$", "\u212b"):
        r = v(cand, "1.54", unit)
        assert r.ok is True, (unit, r)


def test_angstrom_is_not_the_ampere() -> None:
    assert parse_unit("\\mathring{A}").pretty == parse_unit("Å").pretty
    assert v("1.54\\,\\mathring{A}", "1.54", "$\\mathrm{A}$").reason == DIMENSION_MISMATCH  # A is the ampere
    assert v("1.60 Å", "1.54", ANGSTROM).ok is False


# --- measured quantities follow significant figures; counts and pure math stay exact (item 16) -----

KJ_MOL = "$\\mathrm{~kJ} \\mathrm{~mol}^{-1}$"
SCIBENCH_SOURCE = "github:mandyyyyii/scibench@e14e0ca3d3db:dataset/original/atkins.json[3]"


@pytest.mark.parametrize(("cand", "answer", "unit", "ok"), [
    ("398.8\\ \\mathrm{kJ/mol}", "399", KJ_MOL, True),   # an integer with a unit is a measurement (3 s.f.)
    ("398.8", "399", KJ_MOL, True),
    ("398800\\ \\mathrm{J\\,mol^{-1}}", "399", KJ_MOL, True),
    ("398.5", "399", KJ_MOL, True),
    ("398.4", "399", KJ_MOL, False),
    ("400", "399", KJ_MOL, False),
    ("15.43\\ \\mathrm{kJ/mol}", "15.425", KJ_MOL, True),  # the reference rounded to the answer's 4 s.f.
    ("15.4", "15.425", KJ_MOL, True),
    ("15.44", "15.425", KJ_MOL, False),
    ("15", "15.425", KJ_MOL, False),                      # fewer than 3 significant figures
    ("9.81\\ \\mathrm{m/s^2}", "9.8", "m/s^2", True),       # 9.8 m/s^2 is 9.8 to its last digit
    ("9.9", "9.8", "m/s^2", False),
    ("50.2", "50.7", "$\\mathrm{atm}$", False),
])
def test_measured_quantities_follow_significant_figures(cand: str, answer: str, unit: str, ok: bool) -> None:
    r = v(cand, answer, unit)
    assert r.ok is ok, r


def test_counts_and_pure_math_stay_exact() -> None:
    assert v("398.8", "399").ok is False                                   # a count (GSM8K-style)
    assert v("15.43", "15.425").ok is False                                # a pure number: its own last digit
    assert verify_answer("\\boxed{30.4^\\circ}", {"answer": "30^\\circ", "subject": "math"}).ok is False
    assert verify_answer("\\boxed{4.6\\ \\mathrm{km}}", {"answer": "5 km"}).ok is False
    # the reference's own unit makes a measurement in a science question
    assert verify_answer("\\boxed{4.6\\ \\mathrm{km}}", {"answer": "5 km", "subject": "physics"}).ok is True
    assert verify_answer("\\boxed{4.4\\ \\mathrm{km}}", {"answer": "5 km", "subject": "physics"}).ok is False


def test_scibench_rows_are_measured_even_without_a_unit() -> None:
    row = {"answer": "0.6826", "unit": "", "subject": "math", "source": SCIBENCH_SOURCE}
    assert verify_answer("\\boxed{0.683}", row).ok is True
    assert verify_answer("\\boxed{0.68}", row).ok is False             # 2 significant figures
    assert verify_answer("\\boxed{0.683}", {"answer": "0.6826"}).ok is False
    assert verify_answer("\\boxed{7.4}", {**row, "answer": "7"}).ok is False  # an integer without a unit: exact
    assert verify_answer("\\boxed{0.683}", {"answer": "0.6826", "id": "scibench-stat-1.2"}).ok is True

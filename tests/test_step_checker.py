"""The step checker (verifiers/steps.py): calculation claims found, re-computed and judged.

Real reference solutions come from tests/fixtures/steps/ (GSM8K train and MATH rows, MIT, licenses
beside them); the benchmark (benchmarks/bench_step_checker.py) measures the whole data sets.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from scireflect.verifiers.steps import StepReport, check_steps

FIXTURES = Path(__file__).parent / "fixtures" / "steps"


def _rows() -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, (FIXTURES / "reference_solutions.jsonl").read_text().splitlines())}


def _one(text: str):
    report = check_steps(text)
    assert len(report.claims) == 1, report.claims
    return report.claims[0]


@pytest.mark.parametrize(
    "text",
    [
        "Natalia sold 48/2 = 24 clips in May.",
        "Weng earns 12/60 = $0.2 per minute.",
        "she earned 0.2 x 50 = $10.",
        "So 5*2=10 cookies",
        "The total is $1,200 + $300 = $1,500.",
        r"$\frac{1}{2}+\frac{1}{3} = \frac{5}{6}$",
        r"$2^{10} = 1024$",
        r"$\sqrt{16} \cdot 3 = 12$",
        r"$\dfrac{6}{8} \times 4 = 3$",
        r"$\left(3 + 4\right)^2 = 49$",
        r"$5! = 120$",
        r"$\binom{5}{2} = 10$",
        r"$\sin 30^\circ = 0.5$",
        r"$\ln e^{2} = 2$",
        "20% * 50 = 10",
    ],
)
def test_true_claims(text):
    c = _one(text)
    assert c.verdict == "true", c


@pytest.mark.parametrize(
    ("text", "written", "computed"),
    [
        ("Natalia sold 48/2 = 42 clips in May.", "42 clips", "24"),
        ("she earned 0.2 x 50 = $100.", "100", "10"),
        (r"$\frac{1}{2}+\frac{1}{3} = \frac{2}{5}$", r"\frac{2}{5}", "0.833333333333"),
        (r"$2^{10} = 1000$", "1000", "1024"),
        ("There are 120 - 36 = -84 pages left", "-84 pages", "84"),
    ],
)
def test_false_claims_carry_their_evidence(text, written, computed):
    c = _one(text)
    assert (c.verdict, c.written, c.computed) == ("false", written, computed)
    assert c.why


def test_precision_of_the_written_value():
    assert _one(r"$\pi \approx 3.14$").verdict == "true"
    assert _one(r"$\pi = 3.15$").verdict == "false"
    assert _one("1/3 = 0.33").verdict == "true"
    assert _one("1/3 = 0.3").verdict == "true"  # half a unit in the last place: 0.25..0.35
    assert _one("12/7 = 1.71").verdict == "true"
    assert _one("2/3 = 0.66").verdict == "true"  # cut, not rounded
    assert _one("2/3 = 0.65").verdict == "false"
    assert _one("1/3 = 33.3%").verdict == "true"
    assert _one("10/3 = 4 trips").verdict == "true"  # a whole number rounded up
    assert _one("10/3 = 5 trips").verdict == "false"
    assert _one(r"$2.5 \times 10^{3} + 100 = 2.6 \times 10^{3}$").verdict == "true"
    assert _one(r"$2.5 \times 10^{3} + 300 = 2.6 \times 10^{3}$").verdict == "false"


def test_units_are_converted_when_both_sides_have_them():
    assert _one("So 12 miles / 4 mph = 3 hours").verdict == "true"
    c = _one("So 12 miles / 4 mph = 4 hours")
    assert c.verdict == "false" and c.computed.startswith("3.00")
    assert _one(r"$3.0 \times 10^{8} \text{ m/s} \times 2 \text{ s} = 6.0 \times 10^{8} \text{ m}$").verdict == "true"
    c = _one(r"$3.0 \times 10^{8} \text{ m/s} \times 2 \text{ s} = 6.0 \times 10^{7} \text{ m}$")
    assert (c.verdict, c.why) == ("false", "off by 1/10")
    assert _one(r"$1.5 \mathrm{~km} + 300 \mathrm{~m} = 1800 \mathrm{~m}$").verdict == "true"
    assert _one("1 / 2 = 50 cents").verdict == "true"


def test_unknown_symbols_and_definitions():
    report = check_steps("Let x = 5.\n2x + 3 = 13\nf(2) = 4\n$x^2 - 1 = 24$")
    assert report.checked == 0
    assert report.skipped == 3  # x = 5 is a definition, not a claim
    assert {c.why for c in report.claims} == {"unknown symbol x", "unknown function f"}


def test_chains_and_display_math():
    report = check_steps("$4 * 3 = 2(4)+3(3) = 8+9 = \\boxed{17}$")
    assert [(c.expression, c.written, c.verdict) for c in report.claims] == [("8+9", "17", "true")]
    text = "We get\n\\begin{align*}\nE &= 2 \\cdot 3 + 4 \\\\\n&= 10 \\\\\n&= 5 \\cdot 2\n\\end{align*}\nDone."
    report = check_steps(text)
    assert [(c.line, c.verdict) for c in report.claims] == [(4, "true")]
    report = check_steps("$$\n\\frac{3}{4} \\times 8\n= 6 = 6.0\n$$")
    assert [(c.line, c.written, c.verdict) for c in report.claims] == [(3, "6", "true"), (3, "6.0", "true")]
    report = check_steps("He has 20 + 5 = 25 x 2 = 51 apples")
    assert [(c.written, c.verdict) for c in report.claims] == [("25", "true"), ("51 apples", "false")]


def test_backslash_paren_and_bracket_math_delimiters_bound_a_calculation():
    # \\( \\) and \\[ \\] are what chat models write most (seen in the 1.5B's traces): each claim in them
    # is judged, not skipped as "may begin before the words in front of it"
    text = ("1. Serena's time is \\( \\frac{20}{5} = 4 \\) days per book.\n"
            "2. The total is \\(20 + 4 = 25\\) days.\n"
            "\\[\n54 + 45 + 0 = 99\n\\]\n"
            "and then \\[ 2 \\times 3 = 6 \\] so \\\\[2pt] 3+4=7")
    report = check_steps(text)
    assert [(c.line, c.expression, c.written, c.verdict) for c in report.claims] == [
        (1, "\\frac{20}{5}", "4", "true"), (2, "20 + 4", "25", "false"), (4, "54 + 45 + 0", "99", "true"),
        (6, "2 \\times 3", "6", "true"), (6, "3+4", "7", "true")]


def test_text_that_only_looks_like_a_calculation():
    for text in ("Step 2 - 3 = 5 is next", "We meet at 3:45 = quarter to four", "in base 7, 44 x 55 = 3506",
                 "1. 2+2=4", "Day 4:2(50+100+120)=540", "24 crayons total - 8 red - 6 blue - 4 green = 6 pink",
                 "$7 \\cdot 3 = 1 \\pmod{10}$", "$12_3 + 21_3 = 110_3$", "$a \\star b = 3$"):
        assert not check_steps(text).false, text


def test_real_gsm8k_reference_solution_and_a_planted_slip():
    row = _rows()["gsm8k-train-0003"]
    report = check_steps(row["solution"])
    assert report.checked == 4 and report.skipped == 0 and not report.false
    assert [c.line for c in report.claims] == [1, 2, 3, 4]
    # change the intermediate 36 (line 2) to 63, leave its later use (120 - 36) alone
    slipped = row["solution"].replace("12 + 24 = 36", "12 + 24 = 63")
    false = check_steps(slipped).false
    assert [(c.line, c.written, c.computed) for c in false] == [(2, "63 pages", "36")]
    assert "<<12+24=36>>" in row["solution_raw"]  # the calculator note that is the ground truth


def test_real_gsm8k_percentages_and_math_solutions():
    rows = _rows()
    report = check_steps(rows["gsm8k-train-0005"]["solution"])
    assert report.checked == 5 and not report.false
    report = check_steps(rows["math-test-0001"]["solution"])
    assert report.checked == 2 and not report.false
    slipped = rows["math-test-0001"]["solution"].replace("=36$", "=-36$")
    assert [(c.written, c.why) for c in check_steps(slipped).false] == [("-36", "wrong sign")]
    assert not check_steps(rows["math-test-4048"]["solution"]).false  # 0.\overline{7} is not read as 0


def test_report_to_dict_is_plain_json():
    d = check_steps("48/2 = 24. Then 3 + 4 = 8. So 2x = 4").to_dict()
    assert json.loads(json.dumps(d)) == d
    assert (d["checked"], d["skipped"], len(d["errors"])) == (2, 1, 1)
    assert d["errors"][0]["written"] == "8" and d["errors"][0]["line"] == 1


@pytest.mark.parametrize(
    "text",
    [
        "$9^{9^{9^9}} = 5$",
        "2^(10^(10^10)) = 7",
        "1" + "+1" * 50_000 + " = 3",
        "(" * 5000 + "1" + ")" * 5000 + " = 1",
        "\\frac{" * 3000 + "1" + "}{2}" * 3000 + " = 1",
        "x" * 100_000 + " = 5",
        "1000! = 5 and 100000! = 3 and \\binom{100000}{50000} = 2",
        "= = = 1 = $ $ \\\\ & & \\left( \\right) }{ 3 = \x00\ud800",
        "",
    ],
)
def test_hostile_input_returns_quickly(text):
    t0 = time.perf_counter()
    report = check_steps(text)
    assert isinstance(report, StepReport)
    assert time.perf_counter() - t0 < 2.0
    assert not report.false or text.startswith("1000!")


def test_many_claims_are_capped():
    text = "\n".join(f"{i} + 1 = {i + 1}" for i in range(500))
    report = check_steps(text, max_claims=50)
    assert len(report.claims) == 50 and report.checked == 50


def test_a_typical_solution_is_fast():
    text = "\n".join(["Maila read 12 x 2 = 24 pages today.", r"$\frac{3}{4} \cdot 8 = 6$ and $\sqrt{2} \approx 1.414$"] * 40)
    check_steps(text)
    t0 = time.perf_counter()
    report = check_steps(text)
    assert report.checked == 120 and not report.false
    assert time.perf_counter() - t0 < 0.1


def test_units_overrule_agreeing_numbers_only_when_every_quantity_has_its_unit():
    """Seen in a real accepted trace of the embedded 1.5B (JEEBench 2016 P1 Q20): the work of 3.0 atm
    over 1.0 L written as 3.0 J (it is 304 J). A bare number that stands for a conversion factor is
    sloppy writing, not a false claim."""
    (claim,) = check_steps(r"W = 3.0 \, \text{atm} \times 1.0 \, \text{L} = 3.0 \, \text{J}").claims
    assert claim.verdict == "false" and claim.computed.startswith("303.97")
    assert [c.verdict for c in check_steps("it takes 2 hours * 60 = 120 minutes").claims] == ["true"]
    assert [c.verdict for c in check_steps(r"W = 3.0 \, \text{atm} \times 1.0 \, \text{L} = 304 \, \text{J}").claims] == ["true"]

"""The Critic's evidence never leaks the reference answer (issue 14, item 17).

The Critic may learn *that* an answer is wrong and *why in kind* (wrong dimension, no option letter,
no final answer, unreadable), never magnitudes, bounds or properties of the reference. Each case
below is a verdict whose explanation or details carry something that would narrow the reference
down (its digits, a relative error, a tolerance, "an exact integer match is required").
"""

from __future__ import annotations

import re

import pytest

import scireflect.verifiers.answer.compare as compare_mod
from scireflect.verifiers import Verdict, verify_answer
from scireflect.verifiers.answer.consistency import find_contradiction
from scireflect.verifiers.base import (
    CHECK_ERROR,
    CHOICE_MISMATCH,
    DIMENSION_MISMATCH,
    EQUAL,
    INVALID,
    NO_ANSWER,
    NO_REFERENCE,
    NUMERIC_MISMATCH,
    NO_OPTION,
    REASONS,
    JUDGE_REJECTED,
    SAMPLE_DISAGREEMENT,
    STEP_ERROR,
    SYMBOLIC_MISMATCH,
    TEXT_MISMATCH,
    TIMEOUT,
    UNDECIDED,
    UNIT_CONVERTED,
    UNPARSEABLE,
)
from scireflect.verifiers.extract import Extraction

ATM = "$\\mathrm{atm}$"
# (reason, response, question): references written with the digits 3 and 9 only; candidates avoid them
CASES = [
    (NUMERIC_MISMATCH, "\\boxed{15.6}", {"answer": "399"}),                                   # "exact integer"
    (NUMERIC_MISMATCH, "\\boxed{15.6}", {"answer": "39.9"}),                                  # rounding allowance
    (NUMERIC_MISMATCH, "\\boxed{15.6}", {"answer": "3.9"}, {"rel_tol": 0.05}),                # "tolerance 0.05"
    (NUMERIC_MISMATCH, "\\boxed{\\frac{1}{7}}", {"answer": "\\frac{3}{9}"}),                   # "the reference is a fraction"
    (NUMERIC_MISMATCH, "\\boxed{x+1}", {"answer": "399"}),
    (NUMERIC_MISMATCH, "\\boxed{[1, 4]}", {"answer": "[3, 9, 33]", "answer_type": "list of integer"}),  # its length
    (NUMERIC_MISMATCH, "\\boxed{15.6 \\mathrm{kPa}}", {"answer": "39.3", "unit": ATM}),
    (DIMENSION_MISMATCH, "\\boxed{15.6\\ \\mathrm{m}}", {"answer": "39.3", "unit": ATM}),
    (DIMENSION_MISMATCH, "\\boxed{15.6\\ \\mathrm{s}}", {"answer": "39 km", "subject": "physics"}),
    (CHOICE_MISMATCH, "\\boxed{A, C}", {"answer": "ABD", "question_type": "MCQ(multiple)"}),  # the set's size
    (CHOICE_MISMATCH, "\\boxed{A}", {"answer": "D", "choices": ["1", "2", "3", "39"]}),
    (SYMBOLIC_MISMATCH, "\\boxed{x^{2}+1}", {"answer": "x^{3}+9"}),                           # a relative error
    (SYMBOLIC_MISMATCH, "\\boxed{\\{1, 4\\}}", {"answer": "(3, 9)"}),                          # the reference's form
    (TEXT_MISMATCH, "\\boxed{false}", {"answer": "true"}),
    (TEXT_MISMATCH, "\\boxed{\\text{Monday}}", {"answer": "\\text{Thursday}"}),
    (NO_ANSWER, "The pressure is large.", {"answer": "39.3", "unit": ATM}),
    (NO_ANSWER, "There are 5 cases, so \\boxed{}", {"answer": "3"}),
    (INVALID, "\\boxed{15}. Checking: 1", {"answer": "399"}, {"finish_reason": "length"}),
    (INVALID, "So \\boxed{15}.\n" + "Let me check that again: 15 + 0 = 15, fine.\n" * 20, {"answer": "399"}),
    (UNPARSEABLE, "\\boxed{banana}", {"answer": "D", "question_type": "MCQ"}),
    (UNPARSEABLE, "\\boxed{15.6\\ \\mathrm{zorks}}", {"answer": "39.3", "unit": ATM}),
    (UNPARSEABLE, "\\boxed{\\frac{1}{}}", {"answer": "x^{3}+9"}),
    (NO_REFERENCE, "\\boxed{15}", {"answer": None}),
    (STEP_ERROR, "So 4 * 6 = 25 and the total is \\boxed{39}", {"answer": "39"}),            # the answer matched
    (NUMERIC_MISMATCH, "So 4 * 6 = 25 and the total is \\boxed{41}", {"answer": "39"}),     # both read alike
    (EQUAL, "\\boxed{50.68}", {"answer": "50.7"}),                                            # relative error in the explanation
    (UNIT_CONVERTED, "\\boxed{5137 \\mathrm{kPa}}", {"answer": "50.7", "unit": ATM}),
    # multiple choice solved without its options (verifiers/answer/options.py): the value equals no option
    (NO_OPTION, "\\boxed{42 kJ/mol}", {"answer": "A", "choices": ["8.8 × 10^-11 M", "2.0 × 10^-10 M", "7.4 × 10^-14 mol/L",
                                                                "9.4 × 10^-6 mol/L"], "mc_path": "options_free"}),
]
# reasons only a sandbox or a checker failure produce: verdicts as they would come, with leaky text
DIRECT = [
    Verdict(ok=None, reason=TIMEOUT, explanation="the check ran past its 9 s wall-clock limit", extracted="15^{15^{15}}",
            checker="sandbox", details={"timeout_s": 9.0}),
    Verdict(ok=None, reason=CHECK_ERROR, explanation="the checker failed comparing with 399 (exact integer)", extracted="15",
            checker="error", details={"error_type": "RuntimeError"}),
    Verdict(ok=None, reason=UNDECIDED, explanation="equivalence could not be decided (relative error 0.393)",
            extracted="\\sin(x)^{2}", checker="symbolic", reference="\\cos(3x)", details={"method": "undecided", "note": "0.393"}),
    # the worker's post-check of the whole response (verifiers/answer/consistency.py)
    find_contradiction("So $\\boxed{15}$.\n\nThe correct final answer is: 16", Extraction("15", "boxed"), {"answer": "399"}),
    # the graph's confirm node: the checked letter was right, a sample picked another
    Verdict(ok=False, reason=SAMPLE_DISAGREEMENT, explanation="not confirmed: 2 of 3 independent samples agree (letters: C, C, A)",
            extracted="C", candidate="C", reference="C", checker="choice", details={"letters": ["C", "C", "A"]}),
    # the graph's verify node with [judge] mode = "gate": the answer matched, the model reviewer named a step
    Verdict(ok=False, reason=JUDGE_REJECTED, explanation="The answer matches, but the model reviewer found step 2 wrong.",
            extracted="35", candidate="35", reference="35", checker="numeric",
            details={"judge": {"step": 2, "text": "Step 2: so 7 * 5 = 35 apples.", "why": "step 2 is the earliest wrong step"}}),
]
FORBIDDEN = ("relative error", "tolerance", "integer", "exact", "round", "allowance", "significant", "fraction",
             "different number", "reference", "element", "form")


def _verdicts() -> list[tuple[Verdict, str | None]]:
    out = []
    for reason, response, question, *kw in CASES:
        v = verify_answer(response, question, **(kw[0] if kw else {}))
        assert v.reason == reason, (response, question, v)
        out.append((v, question.get("answer")))
    return out + [(v, v.reference) for v in DIRECT]


def test_every_reason_code_is_covered() -> None:
    assert {v.reason for v, _ in _verdicts()} == set(REASONS)


@pytest.mark.parametrize("index", range(len(CASES) + len(DIRECT)))
def test_the_critic_learns_only_the_kind_of_error(index: int) -> None:
    v, reference = _verdicts()[index]
    evidence = v.evidence_for_critic()
    evidence_from_trace = Verdict.from_dict(v.to_dict()).evidence_for_critic()  # the graph rebuilds it from the trace
    assert evidence == evidence_from_trace
    lowered = evidence.replace(f"({v.reason})", "").lower()  # the reason code itself is a fixed word (no_reference)
    for word in FORBIDDEN:
        assert word not in lowered, (word, evidence)
    if "rel_error" in v.details:
        assert f"{v.details['rel_error']:.3g}" not in evidence
    if v.ok is not True and reference:
        ref_digits = set(re.findall(r"\d", str(reference)))
        assert not ref_digits & set(re.findall(r"\d", evidence)), (reference, evidence)
        assert not re.search(r"(?<![A-Za-z])" + re.escape(str(reference)) + r"(?![A-Za-z])", evidence), evidence


def test_the_kind_of_error_is_still_said() -> None:
    by_reason = {}
    for v, _ in _verdicts():
        by_reason.setdefault(v.reason, []).append(v.evidence_for_critic())
    assert any("dimension mismatch: got m ([length]), expected atm" in e for e in by_reason[DIMENSION_MISMATCH])
    assert any("not the dimension the question asks for" in e for e in by_reason[DIMENSION_MISMATCH])  # unit of the reference itself
    assert any("letter of one option" in e for e in by_reason[UNPARSEABLE])
    assert any("could not be read; the question asks for atm" in e for e in by_reason[UNPARSEABLE])
    assert any("cut off by the token limit before it finished: be shorter" in e for e in by_reason[INVALID])
    assert any("ends in a loop" in e for e in by_reason[INVALID])
    assert any("The text concludes 16 but the box says 15: state one final answer" in e for e in by_reason[INVALID])
    assert all(e.startswith("verifier: invalid (invalid)") for e in by_reason[INVALID])
    assert any("\\boxed{} of the response is empty" in e for e in by_reason[NO_ANSWER])
    assert any("contains the symbol(s) x" in e for e in by_reason[NUMERIC_MISMATCH])
    assert all(("(numeric_mismatch)" in e and "extracted final answer: " in e) or "(calculation_error)" in e
               for e in by_reason[NUMERIC_MISMATCH])
    false_calculation = "verifier: rejected (calculation_error). A calculation is false: line 1: '4 * 6 = 25'"
    assert by_reason[STEP_ERROR] == [by_reason[STEP_ERROR][0]] and by_reason[STEP_ERROR][0].startswith(false_calculation)
    assert any(e == by_reason[STEP_ERROR][0] for e in by_reason[NUMERIC_MISMATCH])  # a matching answer is not given away


def test_a_plugins_own_reason_keeps_its_explanation() -> None:
    v = Verdict(ok=False, reason="proof_failed", explanation="line 3: unsolved goals", extracted="by simp")
    assert v.evidence_for_critic().endswith("line 3: unsolved goals")


def test_checker_errors_do_not_leak_through_the_critic(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a, **_k):
        raise RuntimeError("the reference 399 must not leak")

    monkeypatch.setattr(compare_mod, "_check", boom)  # the selected check, in compare.py since the split
    v = verify_answer("\\boxed{15}", {"answer": "399"})
    assert v.reason == CHECK_ERROR and "399" not in v.evidence_for_critic()

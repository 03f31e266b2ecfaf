"""The Lean checker against a real Lean 4 + Mathlib toolchain (skipped when there is none).

Run with ``SCIREFLECT_LEAN_PROJECT=/path/to/project`` (a Lean project with Mathlib built, see
docs/lean.md) and ``lake`` on PATH (or in ~/.elan/bin). ``SCIREFLECT_LEAN_BACKEND`` picks ``repl``
(default when a REPL binary is found) or ``lake``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from scireflect.verifiers.lean import LeanProofChecker, LeanSettings, probe

FIXTURES = Path(__file__).parent / "fixtures" / "lean"
ROWS = {json.loads(line)["name"]: json.loads(line) for line in (FIXTURES / "minif2f_valid_sample.jsonl").read_text().splitlines()}
PROJECT = os.environ.get("SCIREFLECT_LEAN_PROJECT")
SETTINGS = LeanSettings(backend=os.environ.get("SCIREFLECT_LEAN_BACKEND", "auto"), project_dir=PROJECT, timeout_s=300,
                        header_timeout_s=900, allow_native_decide=True)
AVAILABLE = probe(SETTINGS)

pytestmark = pytest.mark.skipif(
    not PROJECT or not AVAILABLE.ok,
    reason=f"{AVAILABLE.message} (set SCIREFLECT_LEAN_PROJECT to a Lean project with Mathlib built, and put lake on PATH)",
)


@pytest.fixture(scope="module")
def checker():
    with LeanProofChecker(SETTINGS) as chk:
        yield chk


def lean(code: str) -> str:
    return f"```lean\n{code}\n```"


Q81 = ROWS["mathd_numbertheory_81"]


def test_real_accepts_and_audits(checker):
    verdict = checker.verify(lean("theorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  norm_num"), Q81)
    assert verdict.ok is True, verdict.explanation
    assert set(verdict.details["axioms"]) <= {"propext", "Classical.choice", "Quot.sound"}


def test_real_error_has_line_and_goal(checker):
    verdict = checker.verify(lean("theorem imo_1964_p1_2 (n : ℕ) : ¬7 ∣ 2 ^ n + 1 := by\n  intro h\n  exact absurd h (by simp)"),
                             ROWS["imo_1964_p1_2"])
    assert verdict.ok is False and verdict.reason == "lean_error" and verdict.details["errors"][0]["line"] >= 2


def test_real_sorry_through_stop(checker):
    verdict = checker.verify(lean("theorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  stop\n  norm_num"), Q81)
    assert verdict.ok is False and verdict.reason == "sorry"


def test_real_native_decide_is_caught_by_the_axiom_audit(checker):
    # allow_native_decide=True turns the text rule off: the axiom whitelist must still reject it.
    verdict = checker.verify(lean("theorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  native_decide"), Q81)
    assert verdict.ok is False and verdict.reason == "disallowed_axiom" and "ofReduceBool" in verdict.explanation


def test_real_same_text_in_a_namespace_is_not_the_asked_theorem(checker):
    code = "namespace Shadow\ntheorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  norm_num\nend Shadow"
    verdict = checker.verify(lean(code), Q81)
    assert verdict.ok is False and verdict.reason == "statement_changed"

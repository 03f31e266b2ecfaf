"""Integrity checks on Lean REPL answers (tests/fixtures/lean/repl_answers.json, reconstructed from the
REPL's documented protocol; see the fixture README) and the text-only checks of submissions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scireflect.verifiers.lean import LeanSettings, build_submission, extract_lean_block, judge, lean_evidence, static_issues
from scireflect.verifiers.lean import repl as repl_mod
from scireflect.verifiers.lean.judge import LeanMessage, LeanRun, parse_axioms
from scireflect.verifiers.lean.source import heads_match, statement_head, strip_comments, submitted_head

FIXTURES = Path(__file__).parent / "fixtures" / "lean"
ROWS = {json.loads(line)["name"]: json.loads(line) for line in (FIXTURES / "minif2f_valid_sample.jsonl").read_text().splitlines()}
CASES = json.loads((FIXTURES / "repl_answers.json").read_text())["cases"]
AXIOMS = ("propext", "Classical.choice", "Quot.sound")


class ReplayProcess:
    """Stands in for a REPL process: answers each request with the next recorded answer."""

    queue: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []

    def __init__(self, *args: Any, **kwargs: Any):
        self.alive = True

    async def start(self) -> None:
        return None

    async def kill(self) -> None:
        self.alive = False

    async def request(self, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        ReplayProcess.sent.append(dict(payload))
        return ReplayProcess.queue.pop(0)


@pytest.mark.parametrize("case_name", sorted(CASES))
async def test_repl_backend_and_judge_on_recorded_answers(case_name, monkeypatch):
    case = CASES[case_name]
    row = ROWS[case["name"]]
    ReplayProcess.queue, ReplayProcess.sent = [dict(a) for a in case["answers"]], []
    monkeypatch.setattr(repl_mod, "ReplProcess", ReplayProcess)
    backend = repl_mod.ReplBackend(LeanSettings(timeout_s=30), ["lake", "env", "repl"], None)
    submission = build_submission(case["proof"], row)
    run = await backend.run(submission, row)
    assert not ReplayProcess.queue  # every recorded answer was asked for, in order
    sent = ReplayProcess.sent
    assert sent[0] == {"cmd": row["header"]} and sent[1] == {"cmd": row["statement"], "env": 0}
    assert sent[3] == {"cmd": submission.code, "env": 0}  # the proof runs in the header's env, not the statement's
    verdict = judge(run, submission, allowed_axioms=AXIOMS, checker="lean-repl")
    assert verdict.ok is case["expect"]["ok"] and verdict.reason == case["expect"]["reason"], verdict.explanation
    if "line" in case["expect"]:
        assert verdict.details["errors"][0]["line"] == case["expect"]["line"]
        assert "⊢ False" in lean_evidence(verdict.to_dict())


def test_disallowed_axiom_names_native_decide():
    case = CASES["native_decide_axiom"]
    run = LeanRun(backend="repl", elaborated="T", reference="T", axioms=parse_axioms([case["answers"][-1]["messages"][0]["data"]]))
    verdict = judge(run, build_submission(case["proof"], ROWS[case["name"]]), allowed_axioms=AXIOMS)
    assert verdict.reason == "disallowed_axiom" and "Lean.ofReduceBool" in verdict.explanation and "native_decide" in verdict.explanation
    relaxed = judge(run, build_submission(case["proof"], ROWS[case["name"]]), allowed_axioms=AXIOMS + ("Lean.ofReduceBool",))
    assert relaxed.ok is True


def test_judge_order_timeout_crash_error_sorry_statement_axioms():
    sub = build_submission("theorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  norm_num", ROWS["mathd_numbertheory_81"])
    assert judge(LeanRun("repl", timed_out=True, note="3 s"), sub, allowed_axioms=AXIOMS).reason == "timeout"
    assert judge(LeanRun("repl", crashed=True, note="killed by SIGSEGV"), sub, allowed_axioms=AXIOMS).ok is None
    err = LeanRun("repl", messages=[LeanMessage("error", 2, 2, "unsolved goals\n⊢ 71 % 3 = 2")], axioms=["sorryAx"])
    assert judge(err, sub, allowed_axioms=AXIOMS).reason == "lean_error"
    assert judge(LeanRun("repl", elaborated="T", reference="T", axioms=["propext", "sorryAx"]), sub, allowed_axioms=AXIOMS).reason == "sorry"
    missing = judge(LeanRun("repl", reference="T", axioms=[]), sub, allowed_axioms=AXIOMS)
    assert missing.reason == "statement_changed" and "not a declared theorem" in missing.explanation
    no_axioms = judge(LeanRun("repl", elaborated="T", reference="T"), sub, allowed_axioms=AXIOMS)
    assert no_axioms.ok is None  # never accepted without the axiom audit


def test_parse_axioms_formats():
    assert parse_axioms(["'f' depends on axioms: [propext,\n Classical.choice,\n Quot.sound]"]) == ["propext", "Classical.choice", "Quot.sound"]
    assert parse_axioms(["'f' does not depend on any axioms"]) == []
    assert parse_axioms(["something else"]) is None


# -- text-only checks ------------------------------------------------------------------------------

Q81 = ROWS["mathd_numbertheory_81"]
QA = ROWS["aimeII_2001_p3"]


def test_extracts_the_last_complete_lean_block():
    text = "```lean\ntheorem a : True := trivial\n```\nbetter:\n```lean4\ntheorem b : True := by trivial\n```\n```lean\ntruncated"
    assert extract_lean_block(text) == "theorem b : True := by trivial"
    assert extract_lean_block("no code here") is None and extract_lean_block("```python\nx = 1\n```") is None


def test_comment_and_string_stripping_keeps_positions():
    code = 'theorem x : True := by\n  -- sorry here\n  /- nested /- sorry -/ -/ trivial\n  have : "sorry" = "sorry" := rfl'
    stripped = strip_comments(code)
    assert "sorry" not in stripped and len(stripped) == len(code) and stripped.count("\n") == code.count("\n")
    assert "trivial" in stripped


def test_submission_strips_imports_and_completes_a_bare_tactic_proof():
    sub = build_submission("import Mathlib\nimport Aesop\n\ntheorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  norm_num", Q81)
    assert sub.imports == ("Mathlib", "Aesop") and sub.code.startswith("theorem") and sub.method == "lean_block"
    bare = build_submission("norm_num", Q81)
    assert bare.code == "theorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  norm_num" and bare.method == "lean_block+statement"
    assert static_issues(bare, Q81) == []
    issues = static_issues(sub, Q81)
    assert [i.reason for i in issues] == ["bad_import"] and "Aesop" in issues[0].message


def test_multiline_statement_header_compares_modulo_whitespace():
    head = statement_head(QA["statement"])
    reflowed = " ".join(head.split()) + " := by\n  sorry"
    assert heads_match(reflowed.replace(" := by\n  sorry", " := by\n  omega"), QA["statement"], "aimeII_2001_p3")
    assert submitted_head("lemma aimeII_2001_p3 (x : ℕ → ℤ) : x 1 = 1 := by simp", "aimeII_2001_p3").startswith("theorem")
    changed = head.replace("= 898", "= 899") + " := by\n  omega"
    assert not heads_match(changed, QA["statement"], "aimeII_2001_p3")


@pytest.mark.parametrize(("proof", "reason"), [
    ("theorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  sorry", "sorry"),
    ("theorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  admit", "sorry"),
    ("theorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  native_decide", "native_decide"),
    ("theorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  decide +native", "native_decide"),
    ("axiom cheat : 71 % 3 = 2\ntheorem mathd_numbertheory_81 : 71 % 3 = 2 := cheat", "unsafe_construct"),
    ("@[implemented_by f] def g : Nat := 0\ntheorem mathd_numbertheory_81 : 71 % 3 = 2 := by decide", "unsafe_construct"),
    ("set_option debug.skipKernelTC true in\ntheorem mathd_numbertheory_81 : 71 % 3 = 2 := by decide", "unsafe_construct"),
    ("local notation \"π\" => (3 : ℕ)\ntheorem mathd_numbertheory_81 : 71 % 3 = 2 := by decide", "unsafe_construct"),
    ("#eval 1\ntheorem mathd_numbertheory_81 : 71 % 3 = 2 := by decide", "unsafe_construct"),
    ("theorem mathd_numbertheory_81 : 71 % 3 = 2 ∨ False := by decide", "statement_changed"),
    ("theorem other_name : 71 % 3 = 2 := by decide", "statement_changed"),
])
def test_static_integrity_rules(proof, reason):
    issues = static_issues(build_submission(proof, Q81), Q81)
    assert issues and issues[0].reason == reason, issues


def test_static_rules_ignore_comments_strings_and_identifiers():
    proof = ("-- no sorry here, native_decide is banned\n"
             "theorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  /- admit -/\n  have h' : \"sorry\".length = 5 := rfl\n  norm_num [Nat.sorry_free]")
    assert static_issues(build_submission(proof, Q81), Q81) == []
    allowed = static_issues(build_submission("theorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  native_decide", Q81), Q81,
                            allow_native_decide=True)
    assert allowed == []

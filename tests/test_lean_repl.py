"""The Lean checker's REPL and `lake env lean` backends against a fake `lake` on PATH.

The fake (tests/fixtures/lean/fake_lake.py) speaks the REPL's JSON protocol and `lean --json`'s
message lines; it hangs, crashes, reports `sorry` or an extra axiom on request. These tests run the
real process handling: `lake env <repl>` started by the checker from PATH, warm processes reused,
per-proof wall-clock limits that kill and restart, crashes that restart, RLIMIT_AS on the child.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import stat
import sys
from pathlib import Path

import pytest

from scireflect.verifiers.lean import LeanProofChecker, LeanSettings, probe

FIXTURES = Path(__file__).parent / "fixtures" / "lean"
ROWS = {json.loads(line)["name"]: json.loads(line) for line in (FIXTURES / "minif2f_valid_sample.jsonl").read_text().splitlines()}
Q81 = ROWS["mathd_numbertheory_81"]
Q_IMO = ROWS["imo_1964_p1_2"]


def fence(code: str) -> str:
    return f"The remainder is 2.\n\n```lean\n{code}\n```\n"


GOOD_81 = fence("theorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  norm_num")
GOOD_IMO = fence("theorem imo_1964_p1_2 (n : ℕ) : ¬7 ∣ 2 ^ n + 1 := by\n  intro h\n  omega")
ERROR_IMO = fence("theorem imo_1964_p1_2 (n : ℕ) : ¬7 ∣ 2 ^ n + 1 := by\n  intro h\n  linarith -- FAKE:ERROR")
HANG_81 = fence("theorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  -- FAKE:HANG\n  decide")
CRASH_81 = fence("theorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  -- FAKE:CRASH\n  decide")
STOP_81 = fence("theorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  stop\n  norm_num")
CHANGED_81 = fence("theorem mathd_numbertheory_81 : 71 % 3 = 2 ∨ True := by\n  right\n  trivial")
SHADOWED_81 = fence("open Shadow in\ntheorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  norm_num")
AXIOM_81 = fence("theorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  exact FakeAxioms.cheat _")


def install_fake_lean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Put a fake `lake` first on PATH, make a Lean project dir and a REPL binary path; return paths."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    lake = bin_dir / "lake"
    lake.write_text(f"#!{sys.executable}\n" + (FIXTURES / "fake_lake.py").read_text(encoding="utf-8"), encoding="utf-8")
    lake.chmod(lake.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    project = tmp_path / "minif2f"
    project.mkdir()
    (project / "lakefile.lean").write_text("import Lake\nopen Lake DSL\npackage minif2f\nrequire mathlib from git \"https://github.com/leanprover-community/mathlib4\"\n")
    (project / "lean-toolchain").write_text("leanprover/lean4:v4.24.0\n")
    repl = project / ".lake" / "packages" / "REPL" / ".lake" / "build" / "bin" / "repl"
    repl.parent.mkdir(parents=True)
    repl.write_text("placeholder: `lake env` of the fake lake plays the REPL\n")
    log = tmp_path / "fake-lean.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_LEAN_LOG", str(log))
    return {"bin": bin_dir, "project": project, "repl": repl, "log": log}


def log_events(paths: dict[str, Path], event: str) -> list[dict]:
    if not paths["log"].exists():
        return []
    return [e for e in map(json.loads, paths["log"].read_text().splitlines()) if e["event"] == event]


@pytest.fixture
def fake_lean(tmp_path, monkeypatch):
    return install_fake_lean(tmp_path, monkeypatch)


@pytest.fixture(params=["repl", "lake"])
def checker(request, fake_lean):
    settings = LeanSettings(backend=request.param, project_dir=str(fake_lean["project"]), timeout_s=3.0, memory_mb=2048)
    with LeanProofChecker(settings) as chk:
        yield chk


def test_probe_finds_the_fake_toolchain_and_prefers_the_repl(fake_lean):
    avail = probe(LeanSettings(project_dir=str(fake_lean["project"])))
    assert avail.ok and avail.backend == "repl"
    assert avail.command == (str(fake_lean["bin"] / "lake"), "env", str(fake_lean["repl"]))
    assert avail.toolchain == "leanprover/lean4:v4.24.0"
    fake_lean["repl"].unlink()
    avail = probe(LeanSettings(project_dir=str(fake_lean["project"])))
    assert avail.ok and avail.backend == "lake" and "no REPL found" in avail.message


async def test_accepts_a_correct_proof_with_every_integrity_check(checker, fake_lean):
    verdict = await checker.averify(GOOD_81, Q81)
    assert verdict.ok is True and verdict.reason == "proof_checked", verdict.explanation
    assert set(verdict.details["axioms"]) == {"propext", "Classical.choice", "Quot.sound"}
    assert verdict.details["elaborated_statement"] == verdict.details["reference_statement"]
    assert verdict.extracted.startswith("theorem mathd_numbertheory_81") and verdict.checker == f"lean-{checker.settings.backend}"


async def test_rejects_a_lean_error_with_line_and_goal_state(checker):
    verdict = await checker.averify(ERROR_IMO, Q_IMO)
    assert verdict.ok is False and verdict.reason == "lean_error"
    [error] = verdict.details["errors"]
    assert error["line"] == 3 and error["column"] == 2
    assert "⊢ False" in error["message"] and error["source"].strip().startswith("linarith")
    assert "line 3" in verdict.explanation


async def test_a_stuck_proof_times_out_and_the_next_proof_gets_a_fresh_process(checker, fake_lean):
    assert (await checker.averify(GOOD_81, Q81)).ok is True
    verdict = await checker.averify(HANG_81, Q81)
    assert verdict.ok is None and verdict.reason == "timeout"
    assert 2.5 < verdict.elapsed_s < 8
    after = await checker.averify(GOOD_IMO, Q_IMO)
    assert after.ok is True
    if checker.settings.backend == "repl":
        starts = log_events(fake_lean, "start")
        assert len(starts) == 2  # the hung REPL was killed, one new process
        hung_pid = starts[0]["pid"]
        with pytest.raises(ProcessLookupError):
            os.kill(hung_pid, 0)


async def test_a_crash_is_reported_and_the_repl_restarts(checker, fake_lean):
    verdict = await checker.averify(CRASH_81, Q81)
    assert verdict.ok is None and verdict.reason == "check_error"
    assert "SIGABRT" in verdict.explanation or "abort" in verdict.explanation.lower()
    assert "fake crash" in verdict.explanation  # the stderr tail is kept
    assert (await checker.averify(GOOD_81, Q81)).ok is True


async def test_sorry_without_the_word_sorry_is_caught_by_lean(checker):
    verdict = await checker.averify(STOP_81, Q81)
    assert verdict.ok is False and verdict.reason == "sorry"


async def test_a_changed_statement_is_rejected_before_lean_runs(checker, fake_lean):
    verdict = await checker.averify(CHANGED_81, Q81)
    assert verdict.ok is False and verdict.reason == "statement_changed" and verdict.checker == "lean-static"
    assert not log_events(fake_lean, "cmd") and not log_events(fake_lean, "lean")


async def test_same_text_but_another_elaborated_statement_is_rejected(checker):
    verdict = await checker.averify(SHADOWED_81, Q81)
    assert verdict.ok is False and verdict.reason == "statement_changed"
    assert verdict.details["elaborated_statement"] != verdict.details["reference_statement"]


async def test_a_disallowed_axiom_is_rejected(checker):
    verdict = await checker.averify(AXIOM_81, Q81)
    assert verdict.ok is False and verdict.reason == "disallowed_axiom"
    assert "FakeAxioms.cheat" in verdict.explanation


async def test_the_lean_child_runs_under_the_memory_limit(checker, fake_lean):
    await checker.averify(GOOD_81, Q81)
    events = log_events(fake_lean, "start") + log_events(fake_lean, "lean")
    assert events and all(e["rlimit_as"] == 2048 * 1024 * 1024 for e in events)
    assert resource.getrlimit(resource.RLIMIT_AS)[0] != 2048 * 1024 * 1024  # the parent is not limited


async def test_warm_repl_is_reused_and_the_header_runs_once_per_process(fake_lean):
    settings = LeanSettings(backend="repl", project_dir=str(fake_lean["project"]), timeout_s=5.0, workers=2)
    with LeanProofChecker(settings) as checker:
        verdicts = await asyncio.gather(*[checker.averify(GOOD_81 if i % 2 else GOOD_IMO, Q81 if i % 2 else Q_IMO) for i in range(6)])
        assert all(v.ok is True for v in verdicts)
    starts = log_events(fake_lean, "start")
    assert 1 <= len(starts) <= 2
    headers = [e for e in log_events(fake_lean, "cmd") if "env" not in e["cmd"]]
    assert len(headers) == len(starts) and headers[0]["cmd"]["cmd"] == Q81["header"]
    proofs = [e for e in log_events(fake_lean, "cmd") if e["cmd"]["cmd"].startswith("theorem") and "sorry" not in e["cmd"]["cmd"]]
    assert len(proofs) == 6 and {e["cmd"]["env"] for e in proofs} == {0}


def test_sync_verify_works_outside_any_event_loop(fake_lean):
    settings = LeanSettings(backend="repl", project_dir=str(fake_lean["project"]), timeout_s=5.0)
    with LeanProofChecker(settings) as checker:
        assert checker.verify(GOOD_81, Q81).ok is True
        assert checker.verify(ERROR_IMO, Q_IMO).reason == "lean_error"


async def test_a_header_that_does_not_elaborate_makes_every_answer_unverified(fake_lean):
    row = dict(Q81, header="import NoSuchLib\n")
    settings = LeanSettings(backend="repl", project_dir=str(fake_lean["project"]), timeout_s=5.0)
    with LeanProofChecker(settings) as checker:
        verdict = await checker.averify(GOOD_81, row)
        assert verdict.ok is None and verdict.reason == "unverified"
        assert "NoSuchLib" in verdict.explanation and "lake build" in verdict.explanation
        assert not checker.availability().ok and "NoSuchLib" in checker.startup_message()

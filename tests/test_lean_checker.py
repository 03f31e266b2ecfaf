"""Backend selection, settings and the no-toolchain behaviour of the Lean checker; the LeanDojo adapter."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from scireflect.verifiers.base import AnswerVerifier
from scireflect.verifiers.lean import LeanProofChecker, LeanSettings, LeanUnavailable, build_lean_checker, probe
from scireflect.verifiers.lean.leandojo import LeanDojoBackend, locate, tactic_block
from scireflect.verifiers.lean.source import build_submission

FIXTURES = Path(__file__).parent / "fixtures" / "lean"
ROWS = [json.loads(line) for line in (FIXTURES / "minif2f_valid_sample.jsonl").read_text().splitlines()]
Q81 = next(r for r in ROWS if r["name"] == "mathd_numbertheory_81")
GOOD = "```lean\ntheorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  norm_num\n```"


@pytest.fixture
def no_lean(tmp_path, monkeypatch):
    """An environment without any Lean: empty PATH entry, a HOME without ~/.elan."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_without_a_toolchain_every_answer_is_unverified_never_correct(no_lean):
    checker = LeanProofChecker()
    assert isinstance(checker, AnswerVerifier)
    avail = checker.availability()
    assert not avail.ok and "lake" in avail.missing and "project_dir" in avail.missing
    assert "not found" in avail.message and "docs/lean.md" in avail.message
    kind, data = checker.startup_event()
    assert kind == "warning" and "will NOT be checked" in data["message"] and "unverified" in data["message"]
    for response in (GOOD, "no code at all", "```lean\ntheorem mathd_numbertheory_81 : 71 % 3 = 2 := by sorry\n```"):
        verdict = checker.verify(response, Q81)
        assert verdict.ok is None and verdict.reason == "unverified" and verdict.checker == "lean"
        assert "not checked by Lean" in verdict.explanation
    flagged = checker.verify("```lean\ntheorem mathd_numbertheory_81 : 71 % 3 = 2 := by sorry\n```", Q81)
    assert "sorry" in flagged.explanation and flagged.details["issues"][0]["reason"] == "sorry"
    assert checker._loop is None  # no thread, no process without a backend
    checker.close()


async def test_async_unverified(no_lean):
    verdict = await LeanProofChecker().averify(GOOD, Q81)
    assert verdict.ok is None and verdict.reason == "unverified"


@pytest.mark.parametrize(("backend", "missing"), [("repl", {"lake", "project_dir", "repl"}), ("lake", {"lake", "project_dir"}),
                                                  ("leandojo", {"lean-dojo", "lake"})])
def test_a_named_backend_that_cannot_run_raises_naming_what_is_missing(no_lean, backend, missing, monkeypatch):
    monkeypatch.setattr("scireflect.verifiers.lean.checker.leandojo_installed", lambda: False)
    with pytest.raises(LeanUnavailable) as info:
        build_lean_checker({"backend": backend})
    assert set(info.value.missing) == missing
    for name in missing:
        assert name in str(info.value) or name == "project_dir" and "project_dir" in str(info.value)


def test_auto_does_not_raise_and_none_is_off(no_lean):
    assert not build_lean_checker({}).availability().ok
    off = probe(LeanSettings(backend="none"))
    assert not off.ok and "off" in off.message


def test_project_without_lakefile_is_named(no_lean, tmp_path):
    (tmp_path / "proj").mkdir()
    avail = probe(LeanSettings(backend="lake", project_dir=str(tmp_path / "proj")))
    assert "no lakefile" in avail.message


def test_settings_from_toml_table():
    settings = LeanSettings.from_mapping({"backend": "repl", "project_dir": "~/lean/p", "timeout_s": 30,
                                          "allowed_axioms": ["propext"], "workers": 2})
    assert settings.project_dir.endswith("lean/p") and "~" not in settings.project_dir
    assert settings.allowed_axioms == ("propext",) and settings.workers == 2
    with pytest.raises(ValueError, match="unknown key"):
        LeanSettings.from_mapping({"timeout": 3})
    with pytest.raises(ValueError, match="unknown backend"):
        LeanSettings.from_mapping({"backend": "coq"})
    with pytest.raises(ValueError, match="list of strings"):
        LeanSettings.from_mapping({"allowed_axioms": "propext"})


def test_a_row_without_statement_is_a_check_error(no_lean):
    verdict = LeanProofChecker().verify(GOOD, {"id": "x", "question": "q", "answer": "1"})
    assert verdict.ok is None and verdict.reason == "check_error"


# -- LeanDojo adapter (a fake lean_dojo module: the real one needs GitHub and a traced repo) ----------

def fake_lean_dojo(monkeypatch, tmp_path, *, traced=True, result="ProofFinished", axioms="propext, Quot.sound"):
    calls: dict[str, list] = {"tac": [], "cmd": [], "dojo": []}
    module = types.ModuleType("lean_dojo")
    trace = types.ModuleType("lean_dojo.data_extraction.trace")
    traced_dir = tmp_path / "traced"
    (traced_dir / "MiniF2F" / "Valid").mkdir(parents=True)
    (traced_dir / "MiniF2F" / "Valid" / "mathd_numbertheory_81.lean").write_text(Q81["header"] + "\n" + Q81["statement"] + "\n")

    class LeanGitRepo:
        def __init__(self, url, commit):
            self.url, self.commit = url, commit

    class Theorem:
        def __init__(self, repo, path, name):
            self.repo, self.path, self.name = repo, path, name

    results = {name: type(name, (), {}) for name in ("ProofFinished", "ProofGivenUp", "LeanError", "TacticState")}

    class Dojo:
        def __init__(self, entry, timeout=600):
            calls["dojo"].append(entry)
            self.entry = entry

        def __enter__(self):
            return self, "init-state"

        def __exit__(self, *exc):
            return False

        def run_tac(self, state, tactic):
            calls["tac"].append(tactic)
            out = results[result]()
            out.error = "linarith failed\n⊢ False"
            return out

        def run_cmd(self, state, command):
            calls["cmd"].append(command)
            return types.SimpleNamespace(message=f"'x' depends on axioms: [{axioms}]")

    module.LeanGitRepo, module.Theorem, module.Dojo = LeanGitRepo, Theorem, Dojo
    trace.is_available_in_cache = lambda repo: traced
    trace.get_traced_repo_path = lambda repo: traced_dir
    for name, mod in (("lean_dojo", module), ("lean_dojo.data_extraction", types.ModuleType("x")),
                      ("lean_dojo.data_extraction.trace", trace)):
        monkeypatch.setitem(sys.modules, name, mod)
    return calls


def test_locate_reads_the_row_source():
    url, commit, path, name = locate(Q81, LeanSettings())
    assert url == "https://github.com/yangky11/miniF2F-lean4" and commit == "5746b7d6c478"
    assert path == "MiniF2F/Valid/mathd_numbertheory_81.lean" and name == "mathd_numbertheory_81"
    with pytest.raises(LeanUnavailable, match="does not say where"):
        locate({"name": "x"}, LeanSettings())


def test_tactic_block_of_a_submission():
    sub = build_submission("theorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n    norm_num\n    rfl", Q81)
    assert tactic_block(sub) == "norm_num\nrfl"
    with pytest.raises(ValueError, match="tactic proofs"):
        tactic_block(build_submission("theorem mathd_numbertheory_81 : 71 % 3 = 2 := rfl", Q81))


async def test_leandojo_accepts_after_the_axiom_audit(monkeypatch, tmp_path):
    calls = fake_lean_dojo(monkeypatch, tmp_path)
    checker = LeanProofChecker(LeanSettings(backend="leandojo"), backend=LeanDojoBackend(LeanSettings()))
    try:
        verdict = await checker.averify(GOOD, Q81)
    finally:
        checker.close()
    assert verdict.ok is True and verdict.checker == "lean-leandojo"
    assert calls["tac"] == ["norm_num"]
    assert calls["dojo"][1][2] == 7  # command mode at the theorem's line in the traced file
    assert "#print axioms scireflect_audit_mathd_numbertheory_81" in calls["cmd"][0]


@pytest.mark.parametrize(("result", "axioms", "reason"), [("LeanError", "propext", "lean_error"), ("ProofGivenUp", "propext", "sorry"),
                                                          ("ProofFinished", "propext, FakeAxioms.cheat", "disallowed_axiom")])
async def test_leandojo_rejections(monkeypatch, tmp_path, result, axioms, reason):
    fake_lean_dojo(monkeypatch, tmp_path, result=result, axioms=axioms)
    checker = LeanProofChecker(LeanSettings(backend="leandojo"), backend=LeanDojoBackend(LeanSettings()))
    try:
        verdict = await checker.averify(GOOD, Q81)
    finally:
        checker.close()
    assert verdict.ok is False and verdict.reason == reason


async def test_leandojo_untraced_repo_is_named_and_unverified(monkeypatch, tmp_path):
    fake_lean_dojo(monkeypatch, tmp_path, traced=False)
    checker = LeanProofChecker(LeanSettings(backend="leandojo"), backend=LeanDojoBackend(LeanSettings()))
    try:
        verdict = await checker.averify(GOOD, Q81)
    finally:
        checker.close()
    assert verdict.ok is None and verdict.reason == "unverified" and "is not traced" in verdict.explanation
    assert "traced_repo" in checker.availability().missing


async def test_leandojo_missing_package_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "lean_dojo", None)  # import fails
    checker = LeanProofChecker(LeanSettings(backend="leandojo"), backend=LeanDojoBackend(LeanSettings()))
    try:
        verdict = await checker.averify(GOOD, Q81)
    finally:
        checker.close()
    assert verdict.reason == "unverified" and "lean-dojo package is not installed" in verdict.explanation


def test_registry_factory_ignores_generic_verifier_settings(no_lean):
    from scireflect.verifiers.lean.checker import lean_verifier
    from scireflect.verifiers.registry import get_verifier, register_verifier

    register_verifier("lean-test", lean_verifier, replace=True)
    checker = get_verifier("lean-test", timeout_s=10, memory_mb=512, rel_tol=0.05, project_dir="/nonexistent")
    assert checker.settings.timeout_s == 120.0 and checker.settings.project_dir == "/nonexistent"
    assert checker.verify(GOOD, Q81).reason == "unverified"

"""The formal-proof graph on miniF2F rows with a scripted model: no Lean (unverified), and the fake REPL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from scireflect.agents.prompts_formal import render_formal_problem
from scireflect.graphs.budget import Budget, decide
from scireflect.graphs.context import verify_with
from scireflect.graphs.formal import build_formal_graph, formal_context
from scireflect.graphs.state import initial_state
from scireflect.rundata.questions import is_formal_question
from scireflect.verifiers.lean import LeanProofChecker, LeanSettings
from tests.test_graph import team
from tests.test_lean_repl import ERROR_IMO, GOOD_IMO, STOP_81, install_fake_lean

FIXTURES = Path(__file__).parent / "fixtures" / "lean"
ROWS = [json.loads(line) for line in (FIXTURES / "minif2f_valid_sample.jsonl").read_text().splitlines()]
BY_NAME = {r["name"]: r for r in ROWS}


def proof_for(row: dict) -> str:
    body = row["statement"].rsplit(":= by sorry", 1)[0]
    return f"Sketch: compute.\n\n```lean\n{body}:= by\n  norm_num\n```"


async def test_without_lean_every_minif2f_row_ends_unverified_after_one_call(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path))
    checker = LeanProofChecker()
    agents, models = team([proof_for(r) for r in ROWS])
    graph = build_formal_graph(InMemorySaver())
    for row in ROWS:
        assert is_formal_question(row)
        state = await graph.ainvoke(initial_state(row, "math"), {"configurable": {"thread_id": row["id"]}},
                                    context=formal_context(agents, verify_with(checker)))
        assert state["status"] == "unverified" and state["stop_reason"].startswith("unverified: the proof was not checked")
        [step] = state["steps"]
        assert step["verdict"]["ok"] is None and step["verdict"]["reason"] == "unverified"
        assert step["parsed_answer"].startswith(f"theorem {row['name']}")
        assert row["statement"] in step["messages"][1]["content"] and "import Mathlib" in step["messages"][1]["content"]
    assert not models["critic"].calls and not models["reviser"].calls


async def test_lean_error_goes_to_the_critic_and_the_revision_is_accepted(tmp_path, monkeypatch):
    paths = install_fake_lean(tmp_path, monkeypatch)
    row = BY_NAME["imo_1964_p1_2"]
    critique = "Line 3: `linarith` cannot use divisibility; the goal is False with h : 7 ∣ 2 ^ n + 1. Use `omega`."
    agents, models = team([ERROR_IMO], [critique], [GOOD_IMO])
    with LeanProofChecker(LeanSettings(backend="repl", project_dir=str(paths["project"]), timeout_s=5)) as checker:
        state = await build_formal_graph().ainvoke(initial_state(row, "math"), context=formal_context(agents, verify_with(checker)))
    assert state["status"] == "accepted" and state["accepted_stage"] == "reflection"
    roles = [(s["role"], s["stage"]) for s in state["steps"]]
    assert roles == [("solver", "cot"), ("critic", "reflection"), ("reviser", "reflection")]
    first, crit, second = state["steps"]
    assert first["verdict"]["reason"] == "lean_error" and second["verdict"]["reason"] == "proof_checked"
    critic_prompt = crit["messages"][1]["content"]
    assert "error at line 3, column 2" in critic_prompt and "⊢ False" in critic_prompt and "source line: `linarith" in critic_prompt
    reviser_prompt = models["reviser"].calls[0][1].content
    assert critique in reviser_prompt and "intro h\n  linarith" in reviser_prompt


async def test_no_answer_guided_stage_and_budget_ends_rejected(tmp_path, monkeypatch):
    paths = install_fake_lean(tmp_path, monkeypatch)
    row = BY_NAME["mathd_numbertheory_81"]
    agents, models = team([STOP_81], ["`stop` leaves the goal open; use norm_num."], [STOP_81])
    with LeanProofChecker(LeanSettings(backend="repl", project_dir=str(paths["project"]), timeout_s=5)) as checker:
        context = formal_context(agents, verify_with(checker), Budget(max_reflections=1, answer_guided=True))
        state = await build_formal_graph().ainvoke(initial_state(row, "math"), context=context)
    assert state["status"] == "rejected" and state["stop_reason"] == "reflection failed (1 rounds)"
    assert [s["verdict"]["reason"] for s in state["steps"] if s["kind"] == "solution"] == ["sorry", "sorry"]
    assert not any(s["stage"] == "answer_guided" for s in state["steps"])
    assert "sorry at line 2" in state["steps"][1]["messages"][1]["content"]


async def test_no_lean_block_is_evidence_for_the_critic_when_lean_exists(tmp_path, monkeypatch):
    paths = install_fake_lean(tmp_path, monkeypatch)
    row = BY_NAME["mathd_numbertheory_81"]
    good = "```lean\ntheorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n  norm_num\n```"
    agents, _ = team(["The answer is 2."], ["No Lean code was given."], [good])
    with LeanProofChecker(LeanSettings(backend="lake", project_dir=str(paths["project"]), timeout_s=5)) as checker:
        state = await build_formal_graph().ainvoke(initial_state(row, "math"), context=formal_context(agents, verify_with(checker)))
    assert state["steps"][0]["verdict"]["reason"] == "no_proof" and state["status"] == "accepted"
    assert "no complete ```lean code block" in state["steps"][1]["messages"][1]["content"]


def test_formal_prompt_keeps_braces_and_the_decision_prefers_unverified():
    row = next(r for r in ROWS if "{0}" in r["statement"])
    assert "{0}" in render_formal_problem(row)
    steps = [{"kind": "solution", "stage": "cot", "verdict": {"ok": None, "reason": "unverified", "explanation": "no toolchain"},
              "input_tokens": 0, "output_tokens": 0, "latency_s": 0.0}]
    assert decide(steps, Budget(max_attempts=1))[:3] == ("end", "unverified", "unverified: no toolchain")
    steps[0]["verdict"] = {"ok": None, "reason": "timeout", "explanation": "slow"}
    assert decide(steps, Budget(max_reflections=2)).route == "critique"


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_every_sample_row_has_a_parseable_statement(name):
    from scireflect.verifiers.lean.source import statement_head, theorem_name

    row = BY_NAME[name]
    assert theorem_name(row["statement"]) == name and statement_head(row["statement"]).startswith(f"theorem {name}")

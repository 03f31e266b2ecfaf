"""The run directory: append-only traces, partial-line repair, SFT pairs, summaries, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scireflect.agents.roles import AgentTeam
from scireflect.run.config import RunSettings
from scireflect.rundata.questions import load_questions
from scireflect.rundata.records import sft_pair
from scireflect.run.runner import annotate
from scireflect.rundata.store import TraceFileError, TraceStore
from scireflect.rundata.summary import summarize
from tests.fakes import REFLECTION_LOOP, ScriptedChatModel
from tests.test_graph import CRITIQUE, RIGHT, WRONG, ExactBoxedVerifier

ROW = {"subject": "math", "question": "Natalia sold 48 clips in April and half as many in May. Total?", "answer": "72"}


def questions_file(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", **ROW}) + "\n" for i in range(n)))
    return path


def scripted_team(solver, critic=(), reviser=()):
    models = {"solver": ScriptedChatModel(replies=list(solver)), "critic": ScriptedChatModel(replies=list(critic)),
              "reviser": ScriptedChatModel(replies=list(reviser))}
    return AgentTeam.from_models({r: (m, "scripted") for r, m in models.items()}), models


async def test_annotate_resumes_and_repairs_a_partial_trace_line(tmp_path):
    qs = load_questions(questions_file(tmp_path, 3))
    run_dir = tmp_path / "run"
    team, models = scripted_team([RIGHT, WRONG, RIGHT], [CRITIQUE], [RIGHT])
    result = await annotate(qs, run_dir, RunSettings(budget=REFLECTION_LOOP, concurrency=1), team=team, verifier=ExactBoxedVerifier())
    assert result.finished_now == 3 and result.summary["all"].accepted == 3
    assert result.summary["all"].accepted_reflection == 1 and result.sft_count == 3

    # Simulate a kill in the middle of writing the last line, and a lost question.
    traces = run_dir / "traces.jsonl"
    lines = traces.read_bytes().splitlines(keepends=True)
    traces.write_bytes(b"".join(lines[:2]) + lines[2][:40])
    events = []
    team2, models2 = scripted_team([RIGHT])
    result2 = await annotate(qs, run_dir, RunSettings(budget=REFLECTION_LOOP, concurrency=1), team=team2, verifier=ExactBoxedVerifier(),
                             on_event=lambda kind, data: events.append((kind, data)))
    assert result2.skipped == 2 and result2.finished_now == 1
    assert any(kind == "warning" and "partial last line" in data["message"] for kind, data in events)
    ids = [json.loads(line)["id"] for line in traces.read_text().splitlines()]
    assert sorted(ids) == ["q0", "q1", "q2"]
    assert len(models2["solver"].calls) == 1


def test_trace_store_refuses_a_hand_edited_file(tmp_path):
    path = tmp_path / "traces.jsonl"
    path.write_text('{"id": "a"}\nnot json\n')
    with pytest.raises(TraceFileError, match=r"traces.jsonl:2: not a trace record"):
        TraceStore(path)


def test_sft_pairs_only_accepted_and_keep_the_stage():
    verdict_ok = {"ok": True}
    records = [
        {"id": "a", "subject": "math", "status": "accepted", "question": {"id": "a", "question": "Q?", "answer": "1"},
         "steps": [{"kind": "solution", "stage": "cot", "response": "wrong", "verdict": {"ok": False}},
                   {"kind": "critique", "stage": "reflection", "response": "crit", "verdict": None},
                   {"kind": "solution", "stage": "answer_guided", "response": "right \\boxed{1}", "verdict": verdict_ok,
                    "parsed_answer": "1", "model": "m"}]},
        {"id": "b", "subject": "physics", "status": "rejected", "question": {"id": "b", "question": "Q2?", "answer": "2"},
         "steps": [{"kind": "solution", "stage": "cot", "response": "x", "verdict": {"ok": False}}]},
    ]
    [pair] = filter(None, map(sft_pair, records))
    assert pair["id"] == "a" and pair["stage"] == "answer_guided" and pair["response"] == "right \\boxed{1}"
    assert pair["prompt"] == "Q?" and pair["messages"][0] == {"role": "user", "content": "Q?"}
    summary = summarize([dict(r, accepted_stage="answer_guided" if r["status"] == "accepted" else None, tokens=10, seconds=1.5)
                         for r in records])
    assert summary["math"].accepted_answer_guided == 1 and summary["physics"].rejected == 1
    assert summary["all"].questions == 2 and summary["all"].tokens == 20

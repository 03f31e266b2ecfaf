"""miniF2F rows through the run and the CLI without Lean: every row ``unverified``, one clear message."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scireflect.run.runner import annotate

FIXTURES = Path(__file__).parent / "fixtures" / "lean"
SAMPLE = FIXTURES / "minif2f_valid_sample.jsonl"
ROWS = [json.loads(line) for line in SAMPLE.read_text().splitlines()]

def proof_reply(messages) -> str:
    """A Lean proof of whatever statement the Solver prompt holds."""
    user = str(messages[-1].content)
    statement = re.search(r"Formal statement to prove:\n```lean\n(.*?)\n```", user, re.DOTALL).group(1)
    return f"Direct computation.\n\n```lean\n{statement.rsplit(':= by sorry', 1)[0]}:= by\n  norm_num\n```"


@pytest.fixture
def no_lean(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{tmp_path / 'empty-bin'}")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


async def test_annotate_minif2f_without_lean_every_row_unverified(tmp_path, no_lean):
    from scireflect.agents.roles import AgentTeam
    from scireflect.run.config import RunSettings
    from scireflect.rundata.questions import load_questions
    from tests.fakes import ScriptedChatModel

    questions = load_questions(SAMPLE)
    assert all(q["answer"] is None for q in questions.questions)
    models = {r: ScriptedChatModel(replies=[proof_reply] * len(ROWS)) for r in ("solver", "critic", "reviser")}
    team = AgentTeam.from_models({r: (m, "scripted") for r, m in models.items()})
    events: list[tuple[str, dict]] = []
    result = await annotate(questions, tmp_path / "run", RunSettings(concurrency=2), team=team,
                                        on_event=lambda kind, data: events.append((kind, dict(data or {}))))
    traces = [json.loads(line) for line in (tmp_path / "run" / "traces.jsonl").read_text().splitlines()]
    assert len(traces) == len(ROWS) and {t["status"] for t in traces} == {"unverified"}
    assert all(t["verifier"].startswith("lean/") and t["n_attempts"] == 1 for t in traces)
    assert all(t["steps"][0]["verdict"]["reason"] == "unverified" for t in traces)
    warnings = [d["message"] for k, d in events if k == "warning"]
    assert len(warnings) == 1 and "formal proofs will NOT be checked" in warnings[0]
    assert result.sft_count == 0 and not models["critic"].calls
    assert result.summary["all"].unverified == len(ROWS)
    again = await annotate(questions, tmp_path / "run", RunSettings(), team=team)
    assert again.finished_now == 0  # resumed: nothing left to do


def test_cli_annotate_minif2f_without_lean(tmp_path, no_lean):
    from scireflect.cli import app
    from scireflect.testing.mock_openai import MockOpenAI

    class LeanMock(MockOpenAI):
        def reply(self, messages: list[dict]) -> str:
            user = messages[-1]["content"]
            statement = re.search(r"Formal statement to prove:\n```lean\n(.*?)\n```", user, re.DOTALL).group(1)
            return f"```lean\n{statement.rsplit(':= by sorry', 1)[0]}:= by\n  norm_num\n```"

    with LeanMock() as server:
        result = CliRunner().invoke(app, ["annotate", str(SAMPLE), "--out", str(tmp_path / "run"), "--base-url", server.base_url,
                                          "--model", "mock-model"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.count("formal proofs will NOT be checked") == 1
    traces = [json.loads(line) for line in (tmp_path / "run" / "traces.jsonl").read_text().splitlines()]
    assert len(traces) == len(ROWS) and all(t["status"] == "unverified" for t in traces)


def test_question_file_accepts_null_answer_only_with_a_statement(tmp_path):
    from scireflect.rundata.questions import QuestionFileError, load_questions

    good = tmp_path / "good.jsonl"
    good.write_text(SAMPLE.read_text())
    assert len(load_questions(good)) == len(ROWS)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "question": "q", "answer": None}) + "\n")
    with pytest.raises(QuestionFileError, match="answer"):
        load_questions(bad)
    bad.write_text(json.dumps({"id": "x", "question": "q", "answer": None, "statement": "theorem x : True := trivial"}) + "\n")
    with pytest.raises(QuestionFileError, match="sorry"):
        load_questions(bad)

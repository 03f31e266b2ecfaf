"""The Python tool: the plain-text ```python/```output loop, the LangChain tool, settings and wiring."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage

from scireflect.agents import code_blocks as B
from scireflect.agents.code_loop import CodeExecution, feedback
from scireflect.agents.prompts import PYTHON_PROMPT_VERSION, PYTHON_PROMPTS, PROMPT_VERSION
from scireflect.agents.retry import RetryPolicy
from scireflect.agents.roles import AgentTeam
from scireflect.agents.tools import parse_tool_names
from scireflect.graphs.annotation import build_annotation_graph
from scireflect.graphs.budget import Budget
from scireflect.graphs.context import AnnotationContext, verify_with
from scireflect.graphs.state import initial_state
from scireflect.run.config import ConfigError, load_settings
from scireflect.rundata.questions import load_questions
from scireflect.run.runner import annotate
from scireflect.sandbox import ExecutionResult, sandbox_available
from scireflect.verifiers.base import Verdict
from tests.fakes import ScriptedChatModel

AVAILABLE, WHY = sandbox_available()
requires_sandbox = pytest.mark.skipif(not AVAILABLE and not os.environ.get("CI"), reason=f"sandbox unavailable here: {WHY}")

QUESTION = {"id": "gas-1", "subject": "chemistry", "answer": "50.7", "unit": "$\\mathrm{atm}$",
            "question": "Predict the pressure exerted by 10.0 mol ethane confined to 4.860 dm^3 at 27 C (perfect gas)."}
CODE = "print(10.0 * 0.08206 * 300.15 / 4.860)"
ASK = f"p = nRT/V.\n```python\n{CODE}\n```\n```output\n"


class Boxed:
    """Accepts exactly ``\\boxed{50.7}``; records what it was given."""

    name, version = "boxed", "test"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def verify(self, response: str, question: Mapping[str, Any]) -> Verdict:
        self.seen.append(response)
        ok = "\\boxed{50.7}" in response
        return Verdict(ok=ok, reason="equal" if ok else "no_answer", explanation="", extracted="50.7" if ok else None)


def _team(solver, reviser=(), *, ignore_stop=False, max_tokens=None):
    models = {"solver": ScriptedChatModel(replies=list(solver), name_="s", ignore_stop=ignore_stop),
              "critic": ScriptedChatModel(replies=[], name_="c"),
              "reviser": ScriptedChatModel(replies=list(reviser), name_="r", ignore_stop=ignore_stop)}
    for m in models.values():
        m.max_tokens = max_tokens
    return AgentTeam.from_models({r: (m, r) for r, m in models.items()}, retry=RetryPolicy(max_retries=0)), models


async def _run(team: AgentTeam, verifier=None, budget=None, code=CodeExecution()):
    verifier = verifier or Boxed()
    context = AnnotationContext(agents=team.with_code_execution(code), verify=verify_with(verifier), prompts=PYTHON_PROMPTS,
                                budget=budget or Budget(max_attempts=1))
    return await build_annotation_graph().ainvoke(initial_state(QUESTION, "chemistry"), context=context), verifier


# ------------------------------------------------------------------------------------------ the format


def test_code_blocks_parse_what_the_model_writes() -> None:
    text = "a\n```python\nx = 1\n```\n```output\n1\n```\nb\n```py\nprint(2)\n```\n"
    assert B.last_code_block(text) == "print(2)"
    assert B.last_code_block("```python\nunclosed") is None
    assert B.split_at_output_fence("x\n```output\n180.0\n```") == ("x\n", True)
    assert B.split_at_output_fence("no fence") == ("no fence", False)
    t = "q\n```output\n\\boxed{9}\n```\nthen \\boxed{4}"
    assert B.without_tool_output(t) == "q\nthen \\boxed{4}"
    [(s, e)] = B.tool_output_spans(t)
    assert t[:s].endswith("```output") and t[s:e] == "\n\\boxed{9}\n```\n"
    assert B.output_block("") == "```output\n```\n" and B.tool_output_spans(B.output_block("")) == [(9, 14)]


def test_feedback_shows_output_errors_and_kills() -> None:
    ok = ExecutionResult(stdout="42\n", stderr="", exit_status=0, signal=None, duration_s=0.1)
    assert feedback(ok) == ("42", None)
    silent = ExecutionResult(stdout="", stderr="", exit_status=0, signal=None, duration_s=0.1)
    assert feedback(silent)[0].startswith("(no output")
    crash = ExecutionResult(stdout="1\n", stderr="Traceback ...\n  x\nZeroDivisionError: division by zero\n", exit_status=1,
                            signal=None, duration_s=0.1)
    shown, error = feedback(crash)
    assert error == "ZeroDivisionError: division by zero" and shown.startswith("1\n") and shown.endswith("division by zero")
    killed = ExecutionResult(stdout="", stderr="", exit_status=None, signal=None, duration_s=20.0, timed_out=True,
                             killed_reason="wall-clock limit of 20 s")
    assert feedback(killed) == ("[killed: wall-clock limit of 20 s]", "killed: wall-clock limit of 20 s")
    huge = ExecutionResult(stdout="x" * 50_000, stderr="", exit_status=0, signal=None, duration_s=0.1)
    shown, _ = feedback(huge, output_chars=1000)
    assert len(shown) < 1100 and "characters left out" in shown


@requires_sandbox
async def test_the_scientific_stack_imports_inside_the_sandbox() -> None:
    """numpy, scipy, sympy and pint are declared dependencies, so a fresh install has them in the sandbox."""
    from scireflect.agents.code_loop import execute_code

    code = ("import numpy as np, scipy.optimize as so, sympy as sp, pint\n"
            "u = pint.UnitRegistry()\n"
            "print(round(so.brentq(lambda x: x**2 - 2, 0, 2), 6), sp.factorint(360), np.arange(3).sum(),"
            " (3 * u.km / u.hour).to(u.m / u.s).magnitude.__round__(4))")
    shown, error, execution = await execute_code(code, CodeExecution())
    assert error is None and shown == "1.414214 {2: 3, 3: 2, 5: 1} 3 0.8333", (shown, execution)


# ------------------------------------------------------------------------------------------ the loop


@requires_sandbox
async def test_stop_run_continue_and_the_verifier_reads_the_model_only() -> None:
    """The model asks for the output; the real one is inserted, the same message continues."""
    def answer(messages):
        assert isinstance(messages[-1], AIMessage) and messages[-1].content.endswith("```output\n50.67964814814814\n```\n")
        return "So p = 50.7 atm.\n\\boxed{50.7}"

    team, models = _team([ASK + "180.0\n```\n", answer])
    state, verifier = await _run(team)
    assert state["status"] == "accepted"
    [step] = state["steps"]
    assert step["response"] == ("p = nRT/V.\n```python\n" + CODE + "\n```\n```output\n50.67964814814814\n```\n"
                                "So p = 50.7 atm.\n\\boxed{50.7}")
    [call] = step["tool_calls"]
    assert call["name"] == "python" and call["format"] == "text" and call["args"] == {"code": CODE}
    assert call["result"] == "50.67964814814814" and call["error"] is None
    ex = call["execution"]
    assert ex["stdout"] == "50.67964814814814\n" and ex["exit_status"] == 0 and ex["killed_reason"] is None and ex["duration_s"] > 0
    assert [o["stop"] for o in models["solver"].options] == [["```output"], ["```output"]]
    assert "180.0" not in step["response"]  # the invented output never reached the trace
    assert step["output_tokens"] == len(ASK.split("```output")[0].split()) + len("So p = 50.7 atm.\n\\boxed{50.7}".split())
    # the system prompt and a worked example (a previous turn) taught the format
    system, example_q, example_a, problem = models["solver"].calls[0]
    assert "```output" in system.content and isinstance(example_a, AIMessage) and "```output\n121.5\n```" in example_a.content
    assert problem.content.startswith(QUESTION["question"]) and "integrate natural language reasoning with programs" in problem.content
    assert [m["role"] for m in step["messages"]] == ["system", "user", "assistant", "user"]


@requires_sandbox
async def test_an_endpoint_that_ignores_stop_cannot_smuggle_an_output_in() -> None:
    team, models = _team([ASK + "180.0\n```\nSo \\boxed{180}", "So \\boxed{50.7}"], ignore_stop=True)
    state, _ = await _run(team)
    step = state["steps"][0]
    assert "180" not in step["response"] and step["response"].endswith("```output\n50.67964814814814\n```\nSo \\boxed{50.7}")


@requires_sandbox
async def test_a_printed_answer_is_not_the_models_answer() -> None:
    """Code that prints \\boxed{50.7} does not answer for the model: the verifier reads the model's text."""
    ask = "```python\nprint('\\\\bo' + 'xed{' + str(50.7) + '}')\n```\n"
    team, _ = _team([ask, "That is what the code printed."])
    state, verifier = await _run(team)
    assert state["status"] == "rejected"
    assert "\\boxed{50.7}" in state["steps"][0]["response"] and "\\boxed" not in verifier.seen[0]


@requires_sandbox
async def test_failing_code_is_shown_its_error_and_executions_are_capped() -> None:
    crash = "```python\nprint(1/0)\n```\n"
    def fix(messages):
        assert "ZeroDivisionError: division by zero\n```\n" in messages[-1].content
        return "Fixed.\n```python\nprint(2)\n```\n"
    team, models = _team([crash, fix, "again\n" + crash, "and again\n" + crash, "fine: \\boxed{50.7}"])
    state, _ = await _run(team, code=CodeExecution(max_executions=2))
    step = state["steps"][0]
    calls = step["tool_calls"]
    assert [c["error"] for c in calls] == ["ZeroDivisionError: division by zero", None, "execution limit reached"]
    assert calls[0]["execution"]["exit_status"] == 1 and "Traceback" in calls[0]["execution"]["stderr"]
    assert calls[2]["execution"] is None and "limit of 2 executions" in calls[2]["result"]
    assert len(models["solver"].calls) == 4  # the fourth round asked again and was not continued
    assert models["solver"].replies == ["fine: \\boxed{50.7}"] and state["status"] == "rejected"


@requires_sandbox
async def test_rounds_share_the_calls_max_tokens() -> None:
    team, models = _team([ASK, "So p = 50.7 atm.\n\\boxed{50.7}"], max_tokens=100)
    state, _ = await _run(team)
    first_round = len(ASK.split("```output")[0].split())
    assert [o.get("max_tokens") for o in models["solver"].options] == [100, 100 - first_round]
    assert state["status"] == "accepted"


@requires_sandbox
async def test_the_reviser_runs_code_and_the_critic_does_not() -> None:
    team, models = _team(["I guess \\boxed{49}"], reviser=[ASK, "\\boxed{50.7}"])
    models["critic"].replies.append("Step 1 is a guess: compute nRT/V.")
    state, _ = await _run(team, budget=Budget(max_attempts=2, max_reflections=2))
    assert state["status"] == "accepted" and state["accepted_stage"] == "reflection"
    roles = {s["role"]: s for s in state["steps"]}
    assert roles["reviser"]["tool_calls"][0]["execution"]["exit_status"] == 0
    assert models["critic"].options == [{"stop": None}]  # one plain call
    assert "```output" not in models["critic"].calls[0][0].content


# ------------------------------------------------------------------------------------------ tool calling


@requires_sandbox
async def test_python_as_a_langchain_tool_records_the_execution() -> None:
    from scireflect.agents.tools import python

    call = {"name": "python", "args": {"code": "import sympy as sp\nx = sp.Symbol('x')\nprint(sp.solve(x**2 - 5*x + 6, x))"},
            "id": "c1", "type": "tool_call"}
    team, models = _team([AIMessage(content="Solve it.", tool_calls=[call]), "\\boxed{50.7}"])
    context = AnnotationContext(agents=team.with_tools([python], roles=("solver", "reviser")), verify=verify_with(Boxed()))
    state = await build_annotation_graph().ainvoke(initial_state(QUESTION, "chemistry"), context=context)
    [record] = state["steps"][0]["tool_calls"]
    assert record["result"] == "[2, 3]" and record["format"] == "calls" and record["text"] == "Solve it."
    assert record["execution"]["exit_status"] == 0 and record["execution"]["stdout"] == "[2, 3]\n"
    assert isinstance(models["solver"].calls[-1][-1], ToolMessage) and models["solver"].bound_tools == ["python"]


@requires_sandbox
async def test_twelve_parallel_python_calls_run_only_max_tool_rounds_sandboxes() -> None:
    """Issue 25, finding 2: ``max_tool_rounds`` counted rounds, so one reply with 12 parallel
    ``python`` calls ran 12 sandboxes. It counts executions: 4 run, 8 are answered "not run"."""
    from scireflect.agents.roles import NOT_RUN
    from scireflect.agents.tools import python

    calls = [{"name": "python", "args": {"code": f"print({i} * {i})"}, "id": f"c{i}", "type": "tool_call"} for i in range(12)]
    team, models = _team([AIMessage(content="All at once.", tool_calls=calls), "\\boxed{50.7}"])
    context = AnnotationContext(agents=team.with_tools([python], max_tool_rounds=4, roles=("solver",)), verify=verify_with(Boxed()))
    state = await build_annotation_graph().ainvoke(initial_state(QUESTION, "chemistry"), context=context)
    records = state["steps"][0]["tool_calls"]
    ran = [r for r in records if "execution" in r]
    assert [r["result"] for r in ran] == ["0", "1", "4", "9"] and all(r["execution"]["exit_status"] == 0 for r in ran)
    assert [(r["id"], r["result"], r["error"]) for r in records[4:]] == [(f"c{i}", None, NOT_RUN) for i in range(4, 12)]
    # the model got an answer for each of its 12 calls, then one last call without tools
    answers = [m for m in models["solver"].calls[1] if isinstance(m, ToolMessage)]
    assert [m.tool_call_id for m in answers] == [f"c{i}" for i in range(12)] and answers[-1].content == NOT_RUN
    assert len(models["solver"].calls) == 2 and state["status"] == "accepted"


def test_one_agent_cannot_mix_tool_calling_and_plain_text_code() -> None:
    from scireflect.agents.tools import calculator

    team, _ = _team([])
    with pytest.raises(ValueError, match="solver: tool calling and plain-text code execution cannot be combined"):
        team.with_code_execution(CodeExecution()).with_tools([calculator], roles=("solver",))
    with pytest.raises(ValueError, match="critic: tool calling and plain-text code execution"):
        team.with_tools([calculator]).with_code_execution(CodeExecution(), roles=("critic",))
    mixed = team.with_code_execution(CodeExecution()).with_tools([calculator], roles=("critic",))
    assert mixed.solver.code_execution and not mixed.solver.tools and mixed.critic.tools == [calculator]


# ------------------------------------------------------------------------------------------ settings


def test_tool_names_settings_and_errors(tmp_path: Path) -> None:
    assert parse_tool_names("python,calculator") == ("calculator", "python")
    assert parse_tool_names("all") == ("calculator", "unit_converter", "answer_format_check", "python")
    assert parse_tool_names(True) == parse_tool_names("basic") == ("calculator", "unit_converter", "answer_format_check")
    assert parse_tool_names("none") == parse_tool_names(False) == ()
    with pytest.raises(ValueError, match="unknown tool 'pyton'; known: calculator"):
        parse_tool_names("pyton")
    assert load_settings(tools="python").tools == ("python",)
    config = tmp_path / "run.toml"
    config.write_text('[run]\ntools = ["python"]\ntool_format = "calls"\npython_timeout_s = 5\n')
    s = load_settings(config)
    assert (s.tools, s.tool_format, s.python_timeout_s) == (("python",), "calls", 5.0)
    config.write_text("[run]\ntools = true\n")
    assert load_settings(config).tools == ("calculator", "unit_converter", "answer_format_check")
    assert load_settings(config, tools="none").tools == ()
    config.write_text("[run]\ntools = 3\n")
    with pytest.raises(ConfigError, match="tools must be a list of tool names"):
        load_settings(config)
    with pytest.raises(ConfigError, match="tool_format must be one of auto, text, calls"):
        load_settings(tool_format="xml")


def test_cli_rejects_an_unknown_tool(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from scireflect.cli import app

    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps(QUESTION) + "\n")
    result = CliRunner().invoke(app, ["annotate", str(questions), "-o", str(tmp_path / "run"), "--tools", "python,shell"])
    assert result.exit_code == 2 and "unknown tool 'shell'" in result.output


# ------------------------------------------------------------------------------------------ the run


def _questions(tmp_path: Path, rows: list[dict]) -> Any:
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_questions(path)


async def test_without_a_sandbox_the_tool_is_not_offered_and_the_run_says_so_once(tmp_path: Path, monkeypatch) -> None:
    import scireflect.sandbox as sandbox

    monkeypatch.setattr(sandbox, "sandbox_available", lambda refresh=False: (False, "bubblewrap is not installed"))
    import scireflect.agents.code_loop as code_loop

    ran = []
    monkeypatch.setattr(code_loop, "arun_python", lambda *a, **k: ran.append(a))
    rows = [dict(QUESTION, id=f"q{i}") for i in range(3)]
    team, models = _team([ASK + "180\n```\n\\boxed{50.7}"] * 3)
    events = []
    settings = load_settings(tools="python", budget="attempts=1")
    await annotate(_questions(tmp_path, rows), tmp_path / "run", settings, team=team, verifier=Boxed(),
                   on_event=lambda kind, data: events.append((kind, data)))
    warnings = [d["message"] for k, d in events if k == "warning"]
    assert warnings == ["the python tool is not offered: the code sandbox cannot start here (bubblewrap is not installed); "
                        "model code is never run outside it"]
    assert not ran and all(o["stop"] is None for o in models["solver"].options)  # plain calls, no execution
    records = [json.loads(line) for line in (tmp_path / "run" / "traces.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(r["prompt_version"] == PROMPT_VERSION for r in records)
    assert all(not r["steps"][0]["tool_calls"] for r in records)
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())["runs"][-1]["settings"]
    assert manifest["tools"] == ["python"] and manifest["prompt_version"] == PROMPT_VERSION


@requires_sandbox
async def test_a_run_with_the_tool_records_the_python_prompt_version(tmp_path: Path) -> None:
    team, _ = _team([ASK, "So \\boxed{50.7}"])
    settings = load_settings(tools="python", tool_format="text", budget="attempts=1")
    events = []
    await annotate(_questions(tmp_path, [QUESTION]), tmp_path / "run", settings, team=team, verifier=Boxed(),
                   on_event=lambda kind, data: events.append((kind, data)))
    [record] = [json.loads(line) for line in (tmp_path / "run" / "traces.jsonl").read_text().splitlines()]
    assert record["status"] == "accepted" and record["prompt_version"] == PYTHON_PROMPT_VERSION
    assert record["steps"][0]["tool_calls"][0]["execution"]["exit_status"] == 0
    assert any(k == "status" and d["message"].startswith("tools: python (python: ```python") for k, d in events)
    assert any(k == "tool" and d["name"] == "python" and d["id"] == QUESTION["id"] for k, d in events)
    sft = json.loads((tmp_path / "run" / "sft.jsonl").read_text())
    assert "```output\n50.67964814814814\n```" in sft["response"]

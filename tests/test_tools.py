"""Agent tools (calculator, unit converter, answer format check) and the opt-in tool loop of the graph."""

from __future__ import annotations

import json
import os
import time
from typing import Any
from collections.abc import Mapping

import pytest
from langchain_core.messages import AIMessage, ToolMessage

from scireflect.agents import tools as T
from scireflect.agents.retry import RetryPolicy
from scireflect.agents.roles import AgentTeam
from scireflect.graphs.annotation import build_annotation_graph
from scireflect.graphs.context import AnnotationContext, verify_with
from scireflect.graphs.state import initial_state
from scireflect.verifiers.base import Verdict
from scireflect.verifiers.calc import CalcError, calculate, check_answer_format, convert_units, parse_plain
from scireflect.verifiers.workers import SandboxedRunner
from scireflect.verifiers.units import DimensionMismatch
from tests.fakes import REFLECTION_LOOP, ScriptedChatModel


@pytest.fixture(scope="module", autouse=True)
def fast_runner():
    runner = SandboxedRunner(timeout_s=4.0, memory_mb=1024)
    old = T.set_runner(runner)
    yield runner
    runner.close()
    T.set_runner(old)


def test_calculator_functions() -> None:
    assert calculate("2*(3+4)^2")["result"] == "98"
    assert calculate("sqrt(2)/2")["value"].startswith("0.70710678118654")
    assert calculate("\\frac{1}{3}+\\frac{1}{6}")["result"] == "1/2"
    assert calculate("(x+1)^2 - x^2")["result"] == "2*x + 1"
    big = calculate("10^(10^10)")  # not expanded: only a float value
    assert "approximation" in big["note"]


@pytest.mark.parametrize("text", ["__import__('os').system('touch /tmp/pwned')", "a.b", "x[0]", "'s'", "lambda: 1", "exp"])
def test_calculator_parser_refuses_code(text: str) -> None:
    with pytest.raises(CalcError):
        parse_plain(text)


def test_unit_converter_and_format_check() -> None:
    assert convert_units("5.137e6", "Pa", "atm")["result"].startswith("50.698")
    assert convert_units("5000", "m", "km")["result"] == "5"
    with pytest.raises(DimensionMismatch, match=r"got m \(\[length\]\), expected m/s"):
        convert_units("1", "m", "m/s")
    r = check_answer_format("\\boxed{50.7\\ \\mathrm{m}}", "$\\mathrm{atm}$")
    assert r["kind"] == "number" and r["dimension"] == "[length]" and r["unit_check"].startswith("dimension mismatch")
    assert check_answer_format("5.1 m/s", "m/s")["unit_check"] == "ok"
    assert check_answer_format("5100 mm/s", "m/s")["unit_check"] == "converted"
    assert "reference" not in json.dumps(check_answer_format("\\boxed{7}"))


async def test_tools_run_sandboxed_and_adversarial_input_has_no_effect(tmp_path) -> None:
    marker = tmp_path / "pwned"
    out = await T.calculator.ainvoke({"expression": f"__import__('os').system('touch {marker}')"})
    assert out.startswith("error:") and not marker.exists()
    assert json.loads(await T.calculator.ainvoke({"expression": "2+2"}))["result"] == "4"
    t0 = time.perf_counter()
    bomb = await T.calculator.ainvoke({"expression": "\\frac{d}{dx} " + "(" * 3000 + "x" + ")" * 3000})
    assert bomb.startswith("error:") and time.perf_counter() - t0 < 30
    out = await T.unit_converter.ainvoke({"value": "1", "from_unit": "m", "to_unit": "m/s"})
    assert out.startswith("error:") and "dimension mismatch" in out
    long = await T.calculator.ainvoke({"expression": "1+" * 25_000 + "1"})
    assert long.startswith("error:")


async def test_calculator_times_out_on_a_sympy_bomb() -> None:
    t0 = time.perf_counter()
    out = await T.calculator.ainvoke({"expression": "factorial(10^7) - factorial(10^7-1)*10^7"})
    # either refused as too large (float only) or stopped by the wall-clock limit; never a stall
    assert time.perf_counter() - t0 < 20
    assert out.startswith("error: timeout") or "approximation" in out or out.startswith("{")


class Oracle:
    name, version = "oracle", "test"

    def verify(self, response: str, question: Mapping[str, Any]) -> Verdict:
        ok = "\\boxed{50.7}" in response
        atm = "[mass] / [length] / [time] ** 2"
        return Verdict(ok=ok, reason="equal" if ok else "dimension_mismatch",
                       explanation="matches" if ok else f"dimension mismatch: got m ([length]), expected atm ({atm})",
                       extracted="50.7" if ok else "50.7 m",
                       details={} if ok else {"candidate_unit": "m", "candidate_dimension": "[length]",
                                              "requested_unit": "atm", "requested_dimension": atm})


QUESTION = {"id": "scibench-atkins-e1.17_a_a", "subject": "chemistry", "answer": "50.7", "unit": "$\\mathrm{atm}$",
            "question": "Predict the pressure exerted by 10.0 mol ethane confined to 4.860 dm^3 at 27 C (perfect gas)."}


def _team(solver, critic=(), reviser=()):
    models = {"solver": ScriptedChatModel(replies=list(solver), name_="s"),
              "critic": ScriptedChatModel(replies=list(critic), name_="c"),
              "reviser": ScriptedChatModel(replies=list(reviser), name_="r")}
    return AgentTeam.from_models({r: (m, r) for r, m in models.items()}, retry=RetryPolicy(max_retries=0)), models


def _call(name: str, args: dict[str, Any], cid: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": cid, "type": "tool_call"}


async def test_graph_tool_loop_records_tool_calls() -> None:
    agents, models = _team([
        AIMessage(content="", tool_calls=[_call("calculator", {"expression": "10*0.08206*300.15/4.860"}, "c1")]),
        AIMessage(content="", tool_calls=[_call("answer_format_check", {"answer": "\\boxed{50.7}", "unit": "atm"}, "c2"),
                                          _call("unit_converter", {"value": "1", "from_unit": "m", "to_unit": "m/s"}, "c3")]),
        "p = nRT/V = 50.7 atm.\n\\boxed{50.7}",
    ])
    context = AnnotationContext(agents=agents.with_tools(T.default_tools()), verify=verify_with(Oracle()))
    state = await build_annotation_graph().ainvoke(initial_state(QUESTION, "chemistry"), context=context)
    assert state["status"] == "accepted"
    [step] = state["steps"]
    assert models["solver"].bound_tools == ["calculator", "unit_converter", "answer_format_check"]
    calls = step["tool_calls"]
    assert [c["name"] for c in calls] == ["calculator", "answer_format_check", "unit_converter"]
    assert [c["round"] for c in calls] == [1, 2, 2]
    assert json.loads(calls[0]["result"])["value"].startswith("50.6") and calls[0]["error"] is None
    assert json.loads(calls[1]["result"])["unit_check"] == "no unit given (read in the requested unit)"
    assert calls[2]["result"] is None and "dimension mismatch" in calls[2]["error"]
    # the model saw the tool results: the third call's prompt ends with the two ToolMessages
    last_prompt = models["solver"].calls[-1]
    assert isinstance(last_prompt[-1], ToolMessage) and isinstance(last_prompt[-2], ToolMessage)
    assert step["response"].endswith("\\boxed{50.7}") and step["output_tokens"] > 0


async def test_graph_tool_rounds_are_capped_and_critic_gets_unit_evidence() -> None:
    loop_call = AIMessage(content="", tool_calls=[_call("calculator", {"expression": "1+1"}, "x")])
    agents, models = _team(
        ["\\boxed{50.7 m}"],
        critic=[loop_call, loop_call, "Step 2 used metres: the pressure must be in atm."],
        reviser=["\\boxed{50.7}"],
    )
    context = AnnotationContext(agents=agents.with_tools(T.default_tools(), max_tool_rounds=2), verify=verify_with(Oracle()),
                                budget=REFLECTION_LOOP)
    state = await build_annotation_graph().ainvoke(initial_state(QUESTION, "chemistry"), context=context)
    assert state["status"] == "accepted"
    critique = [s for s in state["steps"] if s["role"] == "critic"][0]
    assert len(critique["tool_calls"]) == 2 and all(c["result"] for c in critique["tool_calls"])
    # the critic's prompt carries the verifier's unit evidence, never the reference answer
    prompt = " ".join(str(m.content) for m in models["critic"].calls[0])
    assert "dimension mismatch: got m ([length]), expected atm" in prompt
    assert not models["reviser"].bound_tools  # the reviser never gets tools


async def test_the_tool_cap_counts_executions_across_rounds() -> None:
    """Issue 25, finding 2: ``max_tool_rounds=4`` with 3 calls, then 3 more: 4 run, the last 2 are
    answered "not run: limit reached", and the model then answers without tools."""
    from scireflect.agents.roles import NOT_RUN

    def three(first: int) -> AIMessage:
        return AIMessage(content="", tool_calls=[_call("calculator", {"expression": f"{i}+{i}"}, f"k{i}") for i in range(first, first + 3)])

    agents, models = _team([three(0), three(3), "p = nRT/V = 50.7 atm.\n\\boxed{50.7}"])
    context = AnnotationContext(agents=agents.with_tools(T.default_tools(), max_tool_rounds=4), verify=verify_with(Oracle()))
    state = await build_annotation_graph().ainvoke(initial_state(QUESTION, "chemistry"), context=context)
    calls = state["steps"][0]["tool_calls"]
    assert [json.loads(c["result"])["result"] for c in calls[:4]] == ["0", "2", "4", "6"]
    assert [(c["round"], c["id"], c["error"]) for c in calls[4:]] == [(2, "k4", NOT_RUN), (2, "k5", NOT_RUN)]
    assert len(models["solver"].calls) == 3 and state["status"] == "accepted"


async def test_tools_off_by_default() -> None:
    agents, models = _team(["\\boxed{50.7}"])
    context = AnnotationContext(agents=agents, verify=verify_with(Oracle()))
    state = await build_annotation_graph().ainvoke(initial_state(QUESTION, "chemistry"), context=context)
    assert state["steps"][0]["tool_calls"] == [] and models["solver"].bound_tools == []


def test_no_pwned_file_left() -> None:
    assert not os.path.exists("/tmp/pwned")

"""Transitions of the annotation graph, driven by a scripted chat model.

The verifier here is a deliberately simple exact-match checker of the last ``\\boxed{}`` so that
these tests exercise only the graph's logic; the real verifier has its own tests.
"""

from __future__ import annotations

import re
from typing import Any
from collections.abc import Mapping

import httpx
import openai
import pytest
from langgraph.checkpoint.memory import InMemorySaver

from scireflect.agents.retry import RetryPolicy
from scireflect.agents.roles import AgentTeam
from scireflect.graphs.annotation import build_annotation_graph
from scireflect.graphs.budget import Budget, decide
from scireflect.graphs.context import AnnotationContext, verify_with
from scireflect.graphs.nodes import EndpointError
from scireflect.graphs.state import initial_state, merge_steps
from scireflect.verifiers.base import Verdict
from tests.fakes import REFLECTION_LOOP, ScriptedChatModel

QUESTION = {
    "id": "gsm8k-train-0000",
    "subject": "math",
    "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "answer": "72",
}


class ExactBoxedVerifier:
    name = "exact-boxed"
    version = "test"

    def verify(self, response: str, question: Mapping[str, Any]) -> Verdict:
        found = re.findall(r"\\boxed\{([^{}]*)\}", response)
        if not found:
            return Verdict(ok=None, reason="no_answer", explanation="no \\boxed{} answer found")
        got = found[-1].strip()
        if got == question["answer"]:
            return Verdict(ok=True, reason="equal", explanation="matches", extracted=got, reference=question["answer"])
        return Verdict(ok=False, reason="numeric_mismatch", explanation=f"the extracted answer {got} is wrong",
                       extracted=got, reference=question["answer"])


def team(solver: list, critic: list | None = None, reviser: list | None = None, retry: RetryPolicy | None = None):
    models = {
        "solver": ScriptedChatModel(replies=list(solver), name_="solver-model"),
        "critic": ScriptedChatModel(replies=list(critic or []), name_="critic-model"),
        "reviser": ScriptedChatModel(replies=list(reviser or []), name_="reviser-model"),
    }
    retry = retry or RetryPolicy(max_retries=0)
    return AgentTeam.from_models({r: (m, f"{r}-model") for r, m in models.items()}, retry=retry), models


RIGHT = "Step 1: May: 48/2 = 24.\nStep 2: total 48 + 24 = 72.\n\\boxed{72}"
WRONG = "Step 1: May: 48*2 = 96.\nStep 2: total 48 + 96 = 144.\n\\boxed{144}"
CRITIQUE = "Step 1 is wrong: 'half as many' means 48/2, not 48*2."


def context(agents, budget=REFLECTION_LOOP) -> AnnotationContext:
    return AnnotationContext(agents=agents, verify=verify_with(ExactBoxedVerifier()), budget=budget)


async def run(agents, budget=REFLECTION_LOOP, checkpointer=None, config=None):
    graph = build_annotation_graph(checkpointer)
    return await graph.ainvoke(initial_state(QUESTION, "math"), config, context=context(agents, budget))


async def test_accepted_at_first_try():
    agents, models = team([RIGHT])
    state = await run(agents)
    assert state["status"] == "accepted" and state["accepted_stage"] == "cot"
    [step] = state["steps"]
    assert step["role"] == "solver" and step["stage"] == "cot" and step["attempt"] == 1
    assert step["verdict"]["ok"] is True and step["parsed_answer"] == "72"
    assert step["messages"][0]["role"] == "system" and "\\boxed" in step["messages"][0]["content"]
    assert step["messages"][1]["content"].startswith("Natalia sold clips")
    assert step["output_tokens"] > 0 and step["model"] == "solver-model"
    assert not models["critic"].calls and not models["reviser"].calls


async def test_reflection_then_accepted_keeps_every_step_and_hides_reference_from_critic():
    agents, models = team([WRONG], [CRITIQUE], [RIGHT])
    state = await run(agents)
    assert state["status"] == "accepted" and state["accepted_stage"] == "reflection"
    roles = [(s["role"], s["stage"], s["attempt"]) for s in state["steps"]]
    assert roles == [("solver", "cot", 1), ("critic", "reflection", 1), ("reviser", "reflection", 2)]
    assert state["steps"][0]["verdict"]["ok"] is False  # the failed attempt is kept, with its verdict
    critic_prompt = "\n".join(m["content"] for m in state["steps"][1]["messages"])
    assert WRONG in critic_prompt and "numeric_mismatch" in critic_prompt  # attempt + verifier evidence
    assert "72" not in critic_prompt  # never the reference answer
    reviser_prompt = "\n".join(m["content"] for m in state["steps"][2]["messages"])
    assert CRITIQUE in reviser_prompt and "72" not in reviser_prompt
    assert WRONG not in reviser_prompt  # issue 24: shown the failed solution, the Reviser copied it; it gets the critique


async def test_answer_guided_after_failed_reflections_is_marked():
    # three different wrong answers: none repeats an earlier one, so both reflections are made
    agents, models = team([WRONG], [CRITIQUE, CRITIQUE], [WRONG.replace("144", "145"), WRONG.replace("144", "146"), RIGHT])
    state = await run(agents, Budget(max_attempts=4, max_reflections=2))
    assert state["status"] == "accepted" and state["accepted_stage"] == "answer_guided"
    stages = [(s["role"], s["stage"]) for s in state["steps"]]
    assert stages == [("solver", "cot"), ("critic", "reflection"), ("reviser", "reflection"),
                      ("critic", "reflection"), ("reviser", "reflection"), ("reviser", "answer_guided")]
    guided_prompt = state["steps"][-1]["messages"][-1]["content"]
    assert "The correct final answer is: 72" in guided_prompt
    # Reflection prompts never saw the reference answer.
    for step in state["steps"][:-1]:
        assert "correct final answer" not in "\n".join(m["content"] for m in step["messages"])


async def test_rejected_when_answer_guided_also_fails():
    agents, _ = team([WRONG], [CRITIQUE], [WRONG, WRONG])
    state = await run(agents, Budget(max_attempts=5, max_reflections=1))
    assert state["status"] == "rejected"
    assert state["stop_reason"] == "answer-guided revision failed"
    assert [s["kind"] for s in state["steps"]].count("solution") == 3


async def test_attempt_budget_exhausted():
    agents, models = team([WRONG], [CRITIQUE], [WRONG])
    state = await run(agents, Budget(max_attempts=2, max_reflections=3))
    assert state["status"] == "rejected" and state["stop_reason"] == "budget: attempts (2)"
    assert state["budget_stop"] == {"limit": "attempts", "used": 2, "allowed": 2}
    assert len(models["critic"].calls) == 1 and len(models["reviser"].calls) == 1


async def test_token_budget_exhausted_after_first_attempt():
    agents, models = team([WRONG])
    state = await run(agents, Budget(max_tokens=50))
    assert state["status"] == "rejected" and state["stop_reason"].startswith("budget: tokens")
    assert state["budget_stop"]["limit"] == "tokens" and state["budget_stop"]["used"] >= 50
    assert not models["critic"].calls


async def test_unparseable_answer_goes_to_reflection_with_evidence():
    agents, models = team(["I think the total is large."], [CRITIQUE], [RIGHT])
    state = await run(agents)
    first = state["steps"][0]
    assert first["verdict"]["ok"] is None and first["verdict"]["status"] == "unparseable"
    assert "no final answer found" in state["steps"][1]["messages"][-1]["content"]
    assert state["status"] == "accepted" and state["accepted_stage"] == "reflection"


def _request() -> httpx.Request:
    return httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")


async def test_rejected_key_stops_the_run():
    response = httpx.Response(401, request=_request(), json={"error": {"message": "bad key"}})
    agents, _ = team([openai.AuthenticationError("bad key", response=response, body=None)])
    with pytest.raises(EndpointError, match="solver model call failed: AuthenticationError"):
        await run(agents)


async def test_transient_faults_are_retried_and_recorded():
    rate_limited = httpx.Response(429, request=_request(), headers={"Retry-After": "0"}, json={"error": {"message": "slow down"}})
    faults = [openai.RateLimitError("slow down", response=rate_limited, body=None),
              openai.APIConnectionError(request=_request()), ""]  # "" = an empty completion
    agents, models = team(faults + [RIGHT], retry=RetryPolicy(max_retries=3, initial_backoff_s=0.0))
    state = await run(agents)
    assert state["status"] == "accepted"
    failures = state["steps"][0]["transport_failures"]
    assert [f["kind"] for f in failures] == ["rate_limit", "connection", "empty"]
    assert failures[0]["status"] == 429 and failures[0]["wait_s"] == 0.0
    assert len(models["solver"].calls) == 4


async def test_persistent_transient_faults_end_the_question_as_error():
    agents, models = team([openai.APIConnectionError(request=_request())] * 3, retry=RetryPolicy(max_retries=2, initial_backoff_s=0.0))
    state = await run(agents)
    assert state["status"] == "error" and state["error_kind"] == "transport"
    assert state["stop_reason"].startswith("solver call failed after 3 tries: APIConnectionError")
    assert len(state["steps"][0]["transport_failures"]) == 3


async def test_bad_request_ends_the_question_as_error():
    response = httpx.Response(400, request=_request(), json={"error": {"message": "context length exceeded"}})
    agents, _ = team([openai.BadRequestError("context length exceeded", response=response, body=None)])
    state = await run(agents)
    assert state["status"] == "error" and "context length exceeded" in state["stop_reason"]
    assert state["error_kind"] == "request"
    assert state["steps"][0]["error"]


async def test_resume_from_checkpoint_repeats_no_model_call():
    saver = InMemorySaver()
    config = {"configurable": {"thread_id": QUESTION["id"]}}
    response = httpx.Response(404, request=_request(), json={"error": {"message": "no such model"}})
    agents, models = team([WRONG], [openai.NotFoundError("no such model", response=response, body=None)])
    with pytest.raises(EndpointError):
        await run(agents, checkpointer=saver, config=config)
    # The solver's attempt and its verdict survived in the checkpoint.
    graph = build_annotation_graph(saver)
    snapshot = await graph.aget_state(config)
    assert snapshot.next == ("critique",) and len(snapshot.values["steps"]) == 1
    agents2, models2 = team([], [CRITIQUE], [RIGHT])
    state = await graph.ainvoke(None, config, context=context(agents2))
    assert state["status"] == "accepted" and state["accepted_stage"] == "reflection"
    assert not models2["solver"].calls  # nothing redone
    assert [s["role"] for s in state["steps"]] == ["solver", "critic", "reviser"]


def test_merge_steps_replaces_by_index_and_appends_new():
    left = [{"index": 0, "v": 1}, {"index": 1, "v": 1}]
    assert merge_steps(left, [{"index": 1, "v": 2}, {"index": 2, "v": 3}]) == [
        {"index": 0, "v": 1}, {"index": 1, "v": 2}, {"index": 2, "v": 3}]


def test_budget_parse_and_errors():
    b = Budget.parse("attempts=3, reflections=1, answer_guided=no, tokens=1000, seconds=30")
    assert (b.max_attempts, b.max_reflections, b.answer_guided, b.max_tokens, b.max_seconds) == (3, 1, False, 1000, 30.0)
    with pytest.raises(ValueError, match="unknown item 'foo=1'"):
        Budget.parse("foo=1")
    with pytest.raises(ValueError, match="bad value for attempts"):
        Budget.parse("attempts=many")
    with pytest.raises(ValueError, match="attempts must be >= 1"):
        Budget.parse("attempts=0")


def test_decide_once_without_answer_guided():
    steps = [{"index": 0, "kind": "solution", "stage": "cot", "verdict": {"ok": False}, "input_tokens": 1,
              "output_tokens": 1, "latency_s": 0.1}]
    ended = decide(steps, Budget(max_reflections=0, answer_guided=False))
    assert (ended.route, ended.status, ended.reason) == ("end", "rejected", "reflection failed (0 rounds)")
    assert decide(steps, Budget(max_reflections=0)).route == "answer_guided"
    assert decide(steps, Budget(max_reflections=1)) == ("critique", "running", None, None, None)
    seconds = decide(steps, Budget(max_seconds=0.1))
    assert seconds.budget_stop == {"limit": "seconds", "used": 0.1, "allowed": 0.1} and seconds.reason == "budget: seconds (0 >= 0)"


def test_budget_rejects_non_finite_values():
    for spec in ("seconds=nan", "seconds=inf", "seconds=-1"):
        with pytest.raises(ValueError):
            Budget.parse(spec)


def test_the_graph_wiring_is_the_documented_loop():
    graph = build_annotation_graph().get_graph()
    edges = {(e.source, e.target) for e in graph.edges}
    assert {("__start__", "solve"), ("solve", "verify"), ("verify", "critique"), ("critique", "revise"),
            ("revise", "verify"), ("verify", "answer_guided"), ("answer_guided", "verify")} <= edges
    assert {("solve", "__end__"), ("verify", "__end__"), ("critique", "__end__"), ("revise", "__end__")} <= edges

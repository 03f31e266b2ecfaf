"""The formal-proof graph: prove -> check (Lean) -> (critique -> revise -> check)* for a given Lean statement.

The same self-reflective loop as :mod:`scireflect.graphs.annotation` (SciGLM, arXiv 2401.07950),
for rows with a Lean 4 ``statement`` (miniF2F; SciInstruct's formal-proof subject):

``solve``     the Solver writes the theorem with a proof in a final ```` ```lean ```` block (stage ``cot``).
``verify``    the Lean proof checker (:class:`~scireflect.verifiers.lean.LeanProofChecker` or any
              :class:`~scireflect.verifiers.base.AnswerVerifier`) judges the proof.
``critique``  the Critic gets the proof and the checker's output (errors with line, column and goal
              state, ``sorry`` goals, integrity findings; :func:`~scireflect.verifiers.lean.lean_evidence`).
``revise``    the Reviser rewrites the proof (stage ``reflection``).
``finalize``  ``accepted`` / ``rejected`` / ``error``, or ``unverified`` when the checker could not
              check at all (no Lean toolchain: verdict reason ``unverified``). An unverified proof
              ends the loop at once: without a checker there is no evidence to reflect on, and the
              row's proof is kept in the trace for a later check.

There is no answer-guided stage: a formal row has no reference proof (``answer`` is null), so the
budget's ``answer_guided`` is ignored. Steps, budget, state keys and the input/output shape are those
of the annotation graph (:class:`AnnotationState`, :func:`initial_state`), so the runner drives both
graphs the same way; ``stop_reason`` for a no-toolchain row is ``unverified: <why>``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import openai
from langgraph.graph import END, START, StateGraph

from ..agents import prompts_formal as PF
from ..agents.roles import AgentTeam, ModelCallError, describe_error
from ..verifiers.base import AnswerVerifier, Verdict
from ..verifiers.lean.judge import lean_evidence
from ..verifiers.lean.source import UNVERIFIED
from .annotation import AnnotationState, Budget, EndpointError, decide_next, initial_state, new_step, seconds_used

FORMAL_FINAL_STATUSES = ("accepted", "rejected", "unverified", "error")
_FATAL = (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)


def _solutions(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for s in state.get("steps", []) if s["kind"] == "solution"]


def _unverified(state: Mapping[str, Any]) -> dict[str, Any] | None:
    solutions = _solutions(state)
    verdict = solutions[-1].get("verdict") if solutions else None
    return verdict if verdict and verdict.get("reason") == UNVERIFIED else None


def decide_formal_next(state: Mapping[str, Any], budget: Budget) -> tuple[str, str]:
    """After ``verify``: ``("finalize", "unverified: ...")`` when the checker could not check, else
    :func:`~scireflect.graphs.annotation.decide_next` with the answer-guided stage off."""
    if state.get("status") != "error" and not (state.get("stop_reason") or "").startswith("budget"):
        verdict = _unverified(state)
        if verdict is not None:
            return "finalize", f"unverified: {verdict.get('explanation', '')}"[:300]
    return decide_next(state, dataclasses.replace(budget, answer_guided=False))


def build_formal_graph(
    agents: AgentTeam,
    checker: AnswerVerifier,
    budget: Budget = Budget(),
    *,
    checkpointer: Any = None,
    verify_fn: Callable[[str, Mapping[str, Any]], Awaitable[Verdict]] | None = None,
):
    """Build and compile the formal-proof graph.

    Args:
        agents: the Solver, Critic and Reviser (any models; the formal prompts are used).
        checker: the proof checker; its ``averify`` is used when present, else ``verify`` in a thread.
        budget: per-question limits (``answer_guided`` is ignored: no reference proof).
        checkpointer: a LangGraph checkpointer; invoke with ``{"configurable": {"thread_id": id}}``.
        verify_fn: override of the verification coroutine (tests).

    Returns:
        A compiled graph. Input: :func:`~scireflect.graphs.annotation.initial_state` of a row with
        ``statement`` (and ``header``, ``question``); output: the final :class:`AnnotationState`
        (``status`` one of :data:`FORMAL_FINAL_STATUSES`).

    Raises (at invocation):
        EndpointError: the endpoint rejects the key or lacks the model.
    """
    if verify_fn is None:
        averify = getattr(checker, "averify", None)
        if averify is not None:
            verify_fn = averify
        else:
            async def verify_fn(response: str, question: Mapping[str, Any]) -> Verdict:
                return await asyncio.to_thread(checker.verify, response, question)

    async def call(state: AnnotationState, role: str, stage: str, attempt: int, prompt, variables) -> dict[str, Any]:
        agent = getattr(agents, role)
        index = len(state.get("steps", []))
        remaining = budget.max_seconds - seconds_used(state)
        if remaining <= 0:
            return {"stop_reason": f"budget: seconds ({budget.max_seconds:.0f})"}
        started = time.perf_counter()
        try:
            reply = await asyncio.wait_for(agent.ainvoke(prompt, variables), timeout=remaining)
        except TimeoutError:
            step = new_step(index, role, stage, attempt, None, error="time budget ran out during the call")
            step["latency_s"] = round(time.perf_counter() - started, 4)
            return {"steps": [step], "stop_reason": f"budget: seconds ({budget.max_seconds:.0f})"}
        except _FATAL as exc:
            raise EndpointError(f"{role} model call failed: {describe_error(exc)}") from exc
        except ModelCallError as exc:
            step = new_step(index, role, stage, attempt, None, error=str(exc))
            step["transport_failures"] = exc.failures
            step["latency_s"] = round(time.perf_counter() - started, 4)
            return {"steps": [step], "status": "error", "stop_reason": str(exc), "error_kind": "transport"}
        except openai.APIError as exc:
            step = new_step(index, role, stage, attempt, None, error=describe_error(exc))
            step["latency_s"] = round(time.perf_counter() - started, 4)
            return {"steps": [step], "status": "error", "stop_reason": f"{role} call failed: {describe_error(exc)}",
                    "error_kind": "request"}
        return {"steps": [new_step(index, role, stage, attempt, reply)]}

    def variables(state: AnnotationState) -> dict[str, str]:
        return PF.formal_prompt_variables(state["question"])

    def last_proof(step: Mapping[str, Any]) -> str:
        verdict = step.get("verdict") or {}
        return verdict.get("extracted") or "(no ```lean block found in the previous answer)"

    async def solve(state: AnnotationState) -> dict[str, Any]:
        return await call(state, "solver", "cot", 1, PF.FORMAL_SOLVER_PROMPT, variables(state))

    async def verify(state: AnnotationState) -> dict[str, Any]:
        step = dict(_solutions(state)[-1])
        if step.get("error"):
            return {}
        verdict = await verify_fn(step["response"], state["question"])
        step["verdict"] = verdict.to_dict()
        step["parsed_answer"] = verdict.extracted
        return {"steps": [step]}

    async def critique(state: AnnotationState) -> dict[str, Any]:
        last = _solutions(state)[-1]
        return await call(state, "critic", "reflection", last["attempt"], PF.FORMAL_CRITIC_PROMPT,
                          {**variables(state), "proof": last_proof(last), "evidence": lean_evidence(last["verdict"])})

    async def revise(state: AnnotationState) -> dict[str, Any]:
        solutions = _solutions(state)
        critiques = [s for s in state["steps"] if s["kind"] == "critique"]
        last = solutions[-1]
        return await call(state, "reviser", "reflection", len(solutions) + 1, PF.FORMAL_REVISER_PROMPT,
                          {**variables(state), "proof": last_proof(last), "evidence": lean_evidence(last["verdict"]),
                           "critique": critiques[-1]["response"]})

    def finalize(state: AnnotationState) -> dict[str, Any]:
        _, reason = decide_formal_next(state, budget)
        if state.get("status") == "error":
            return {"status": "error", "stop_reason": reason, "accepted_stage": None}
        if reason == "accepted":
            return {"status": "accepted", "stop_reason": reason, "accepted_stage": _solutions(state)[-1]["stage"]}
        if reason.startswith("unverified"):
            return {"status": "unverified", "stop_reason": reason, "accepted_stage": None}
        return {"status": "rejected", "stop_reason": reason, "accepted_stage": None}

    def after_call(state: AnnotationState) -> str:
        if state.get("status") == "error" or (state.get("stop_reason") or "").startswith("budget"):
            return "finalize"
        return "next"

    def route_after_verify(state: AnnotationState) -> str:
        return decide_formal_next(state, budget)[0]

    graph = StateGraph(AnnotationState)
    graph.add_node("solve", solve)
    graph.add_node("verify", verify)
    graph.add_node("critique", critique)
    graph.add_node("revise", revise)
    graph.add_node("finalize", finalize)
    graph.add_edge(START, "solve")
    graph.add_conditional_edges("solve", after_call, {"next": "verify", "finalize": "finalize"})
    graph.add_conditional_edges("revise", after_call, {"next": "verify", "finalize": "finalize"})
    graph.add_conditional_edges("critique", after_call, {"next": "revise", "finalize": "finalize"})
    graph.add_conditional_edges("verify", route_after_verify, {"critique": "critique", "finalize": "finalize"})
    graph.add_edge("finalize", END)
    return graph.compile(checkpointer=checkpointer)


def is_formal_question(question: Mapping[str, Any]) -> bool:
    """Whether a row is a formal-proof task (it has a non-empty Lean ``statement``)."""
    return isinstance(question.get("statement"), str) and bool(question["statement"].strip())


__all__ = ["FORMAL_FINAL_STATUSES", "build_formal_graph", "decide_formal_next", "initial_state", "is_formal_question"]

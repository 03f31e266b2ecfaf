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

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from langgraph.graph import END, START, StateGraph

from ..agents import prompts_formal as PF
from ..agents.roles import AgentTeam
from ..verifiers.base import AnswerVerifier, Verdict
from ..verifiers.lean.judge import lean_evidence
from ..verifiers.lean.source import UNVERIFIED
from .annotation import (
    AnnotationState,
    Budget,
    after_model_call,
    async_verify_fn,
    budgeted_model_call,
    decide_next,
    initial_state,
    solution_steps,
    verify_node,
)

FORMAL_FINAL_STATUSES = ("accepted", "rejected", "unverified", "error")

def _unverified(state: Mapping[str, Any]) -> dict[str, Any] | None:
    solutions = solution_steps(state)
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
    call = budgeted_model_call(agents, budget)

    def variables(state: AnnotationState) -> dict[str, str]:
        return PF.formal_prompt_variables(state["question"])

    def last_proof(step: Mapping[str, Any]) -> str:
        verdict = step.get("verdict") or {}
        return verdict.get("extracted") or "(no ```lean block found in the previous answer)"

    async def solve(state: AnnotationState) -> dict[str, Any]:
        return await call(state, "solver", "cot", 1, PF.FORMAL_SOLVER_PROMPT, variables(state))

    verify = verify_node(verify_fn or async_verify_fn(checker))

    async def critique(state: AnnotationState) -> dict[str, Any]:
        last = solution_steps(state)[-1]
        return await call(state, "critic", "reflection", last["attempt"], PF.FORMAL_CRITIC_PROMPT,
                          {**variables(state), "proof": last_proof(last), "evidence": lean_evidence(last["verdict"])})

    async def revise(state: AnnotationState) -> dict[str, Any]:
        solutions = solution_steps(state)
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
            return {"status": "accepted", "stop_reason": reason, "accepted_stage": solution_steps(state)[-1]["stage"]}
        if reason.startswith("unverified"):
            return {"status": "unverified", "stop_reason": reason, "accepted_stage": None}
        return {"status": "rejected", "stop_reason": reason, "accepted_stage": None}

    def route_after_verify(state: AnnotationState) -> str:
        return decide_formal_next(state, budget)[0]

    graph = StateGraph(AnnotationState)
    graph.add_node("solve", solve)
    graph.add_node("verify", verify)
    graph.add_node("critique", critique)
    graph.add_node("revise", revise)
    graph.add_node("finalize", finalize)
    graph.add_edge(START, "solve")
    graph.add_conditional_edges("solve", after_model_call, {"next": "verify", "finalize": "finalize"})
    graph.add_conditional_edges("revise", after_model_call, {"next": "verify", "finalize": "finalize"})
    graph.add_conditional_edges("critique", after_model_call, {"next": "revise", "finalize": "finalize"})
    graph.add_conditional_edges("verify", route_after_verify, {"critique": "critique", "finalize": "finalize"})
    graph.add_edge("finalize", END)
    return graph.compile(checkpointer=checkpointer)


def is_formal_question(question: Mapping[str, Any]) -> bool:
    """Whether a row is a formal-proof task (it has a non-empty Lean ``statement``)."""
    return isinstance(question.get("statement"), str) and bool(question["statement"].strip())


__all__ = ["FORMAL_FINAL_STATUSES", "build_formal_graph", "decide_formal_next", "initial_state", "is_formal_question"]

"""The formal-proof graph: prove -> check (Lean) -> (critique -> revise -> check)* for a given Lean statement.

The annotation graph's loop (:mod:`scireflect.graphs.annotation`) for rows with a Lean 4
``statement`` (miniF2F; SciInstruct's formal-proof subject), with the same nodes and state: the
context carries the formal prompts (:data:`~scireflect.agents.prompts_formal.FORMAL_PROMPTS`, whose
Critic and Reviser read the checker's errors and goal states) and the Lean proof checker. There is
no answer-guided stage: a formal row has no reference proof, so the context's budget must have
``answer_guided=False``. A proof no Lean toolchain could check (verdict reason ``unverified``)
ends the loop at once with status ``unverified``: without a checker there is no evidence to
reflect on, and the proof is kept in the trace for a later check.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from ..agents.prompts_formal import FORMAL_PROMPTS
from ..agents.roles import AgentTeam
from .budget import Budget
from .context import AnnotationContext, VerifyFn
from .nodes import after_call, after_verify, critique, revise, solve, verify
from .state import AnnotationState


def build_formal_graph(checkpointer: Any = None) -> CompiledStateGraph:
    """Wire and compile the formal-proof graph (invoked like the annotation graph; see its module)."""
    builder = StateGraph(AnnotationState, context_schema=AnnotationContext)
    builder.add_node("solve", solve)
    builder.add_node("verify", verify)
    builder.add_node("critique", critique)
    builder.add_node("revise", revise)

    builder.add_edge(START, "solve")
    builder.add_conditional_edges("solve", after_call, {"next": "verify", "end": END})
    # The budget's answer_guided is off for proofs, so verify routes to critique or stops.
    builder.add_conditional_edges("verify", after_verify, {"critique": "critique", "end": END})
    builder.add_conditional_edges("critique", after_call, {"next": "revise", "end": END})
    builder.add_conditional_edges("revise", after_call, {"next": "verify", "end": END})
    return builder.compile(checkpointer=checkpointer, name="formal")


def formal_context(agents: AgentTeam, verify: VerifyFn, budget: Budget = Budget()) -> AnnotationContext:
    """The runtime context of the formal graph: the formal prompts, and the budget without its
    answer-guided stage (there is no reference proof to show) and, of a strategy order, only the
    strategies this graph has (``cot``, ``reflect``). An order that keeps nothing after ``cot`` (the
    default's ``program``, ``resample``) gives proofs the reflection loop: reflecting on the Lean
    checker's errors is grounded feedback, which a fresh proof attempt would throw away."""
    strategy = None if budget.strategy is None else tuple(s for s in budget.strategy if s in ("cot", "reflect"))
    if strategy == ("cot",) and len(budget.order) > 1:
        strategy = None
    return AnnotationContext(agents=agents, verify=verify, budget=replace(budget, answer_guided=False, strategy=strategy),
                             prompts=FORMAL_PROMPTS)


__all__ = ["build_formal_graph", "formal_context"]

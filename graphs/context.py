"""What the graph's nodes need besides the state: the agents, the verifier, the budget and the prompts.

It reaches the nodes as LangGraph's runtime context (``graph.ainvoke(input, config,
context=AnnotationContext(...))``; nodes read ``runtime.context``), so one compiled graph serves
every question of a run, whichever endpoint replica and checker a question uses. The context is
never checkpointed: it holds live objects (chat models, worker pools).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..agents.prompts import ANSWER_PROMPTS, PromptSet
from ..agents.roles import AgentTeam
from ..verifiers.base import AnswerVerifier, Verdict, averify_response
from .budget import Budget
from .call_slots import CallSlots

VerifyFn = Callable[..., Awaitable[Verdict]]
"""``await verify(response, question, finish_reason=None) -> Verdict``: checks one attempt; a response
cut by the token limit (``finish_reason="length"``) states no final answer."""


def verify_with(verifier: AnswerVerifier) -> VerifyFn:
    """The verifier as a coroutine (:func:`~scireflect.verifiers.base.averify_response`): its ``averify``
    when it has one (checks run in its sandbox without blocking the event loop), else its ``verify``
    in a worker thread; ``finish_reason`` is passed to verifiers that take it (plugins may not)."""

    async def verify(response: str, question: Mapping[str, Any], *, finish_reason: str | None = None) -> Verdict:
        return await averify_response(verifier, response, question, finish_reason=finish_reason)

    verify.verifier = verifier  # type: ignore[attr-defined]  # for introspection (tests, logs)
    return verify


@dataclass(frozen=True)
class AnnotationContext:
    """The run-scoped dependencies of the annotation and formal-proof graphs' nodes."""

    agents: AgentTeam
    """The Solver, Critic and Reviser (each a prompt-free chat model with retries)."""
    verify: VerifyFn
    """Checks an attempt: :func:`verify_with` of the answer verifier or of the Lean proof checker."""
    budget: Budget = field(default_factory=Budget)
    """Per-question limits; :func:`~scireflect.graphs.budget.decide` reads it after every verdict."""
    prompts: PromptSet = ANSWER_PROMPTS
    """The task's prompts: :data:`~scireflect.agents.prompts.ANSWER_PROMPTS` or
    :data:`~scireflect.agents.prompts_formal.FORMAL_PROMPTS`."""
    report: Callable[[str, dict[str, Any]], None] | None = None
    """Live progress of model calls, ``report(kind, data)``: ``call`` (a call starts or ends),
    ``tokens`` (tokens streamed so far), ``retry`` (a failed try); ``data`` names the question
    (``id``), ``role``, ``stage`` and ``attempt``. For display only: nothing here is checkpointed."""
    call_slots: CallSlots | None = None
    """The run's model-call slots, shared by every context of the run: each model call holds one
    (:class:`~scireflect.graphs.call_slots.CallSlots`); ``None``: calls are not limited here."""


__all__ = ["AnnotationContext", "VerifyFn", "verify_with"]

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

from ..agents.code_loop import CodeExecution
from ..agents.prompts import ANSWER_PROMPTS, PromptSet
from ..agents.roles import AgentTeam
from ..verifiers.answer.options import is_multiple_choice, mc_path
from ..verifiers.base import AnswerVerifier, Verdict, averify_response
from ..verifiers.workers import SandboxedRunner
from .budget import Budget
from .call_slots import CallSlots
from .state import STRATEGIES

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


PathFn = Callable[[Mapping[str, Any]], Awaitable[str | None]]
"""``await choose(question) -> "options_free" | "k_sample" | None``: a question's multiple-choice path."""

_PATH_KEYS = ("question", "choices", "answer", "question_type", "answer_type", "subject", "unit")


def mc_path_in(runner: SandboxedRunner) -> PathFn:
    """:func:`~scireflect.verifiers.answer.options.mc_path` run in ``runner``'s killable worker.

    The rule parses option texts with sympy and pint, and a question file is untrusted input: a few
    characters of LaTeX in an option can keep sympy busy for hours, which in the graph's process
    would stall every question. A rule that fails or passes the worker's time limit gives
    ``k_sample`` for a multiple-choice question (the path that needs k samples to agree, safe for
    any stem), ``None`` otherwise.
    """

    async def choose(question: Mapping[str, Any]) -> str | None:
        payload = {k: question[k] for k in _PATH_KEYS if question.get(k) is not None}
        try:
            return await runner.arun(mc_path, payload)
        except Exception:  # noqa: BLE001 - timeout, memory, a dead worker: the safe path
            return "k_sample" if is_multiple_choice(question) else None

    return choose


async def choose_mc_path(ctx: AnnotationContext, question: Mapping[str, Any]) -> str | None:
    """The question's multiple-choice path: ``ctx.choose_mc_path`` (a sandboxed worker) when the run set
    one, else :func:`~scireflect.verifiers.answer.options.mc_path` in this process (trusted rows:
    tests, LangGraph Studio). Rows that are not multiple choice never reach a worker."""
    if not is_multiple_choice(question):
        return None
    return await ctx.choose_mc_path(question) if ctx.choose_mc_path is not None else mc_path(question)


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
    choose_mc_path: PathFn | None = None
    """Decides a multiple-choice question's path (:func:`mc_path_in` a sandboxed worker, as the runner
    does); ``None``: decided in this process, for trusted question rows only."""
    program: CodeExecution | None = None
    """The code sandbox's settings for the ``program`` strategy (a Solver attempt whose ```python blocks
    run in the sandbox); ``None`` where the sandbox is not available: ``decide`` then skips ``program``."""

    judge: str = "off"
    """The model reviewer on attempts the verifier accepts (``[judge] mode``): ``off``; ``flag`` (its
    finding is recorded in the step's ``judge``); ``gate`` (also: an accepted attempt stands only when
    the reviewer says no step is wrong, else reason ``judge_rejected``). Its model is the Critic's."""

    @property
    def strategies(self) -> frozenset[str]:
        """The strategies this context can make (``program`` only with :attr:`program`)."""
        return frozenset(STRATEGIES) - (frozenset() if self.program is not None else {"program"})


__all__ = ["AnnotationContext", "PathFn", "VerifyFn", "choose_mc_path", "mc_path_in", "verify_with"]

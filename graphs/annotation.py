"""The self-reflective annotation graph: solve -> verify -> (critique -> revise -> verify)* -> answer-guided.

A LangGraph ``StateGraph`` that annotates one question per thread (``thread_id`` = question id). It
is compiled once per run and invoked for many questions, with a checkpointer so that a killed run
resumes a half-finished question at its last completed node without repeating model calls.

Nodes (SciGLM's self-reflective instruction annotation, Zhang et al. 2024, arXiv 2401.07950; with
the reflection kept instead of thrown away, and answers checked by tools instead of a GPT-4 judge):

``solve``          the Solver writes a chain of thought ending in ``\\boxed{answer}`` (stage ``cot``).
``verify``         deterministic: extract the final answer and check it against the reference
                   answer with the answer verifier (in a sandboxed worker process).
``critique``       the Critic gets the question, the last attempt and the verifier's evidence (not
                   the reference answer) and names the first wrong step (stage ``reflection``).
``revise``         the Reviser rewrites the full solution from the critique (stage ``reflection``).
``answer_guided``  once reflection has failed ``max_reflections`` times: the Reviser is shown the
                   reference answer and must derive it (stage ``answer_guided``; STaR's
                   rationalization, Zelikman et al. 2022). Such traces are marked for filtering.
``finalize``       sets the final status (``accepted`` / ``rejected`` / ``error``) and the reason.

Every model call and every verdict is kept in ``state["steps"]`` (see :func:`new_step`).
The budget (attempts, tokens, wall-clock seconds of model and verifier time) is checked before each
model call; when it runs out the question ends ``rejected`` with the reason.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, UTC
from typing import Annotated, Any, Literal, TypedDict
from collections.abc import Awaitable, Callable, Mapping

import openai
from langgraph.graph import END, START, StateGraph

from ..agents import prompts as P
from ..agents.roles import AgentReply, AgentTeam, ModelCallError, describe_error
from ..verifiers.base import AnswerVerifier, Verdict

STAGES = ("cot", "reflection", "answer_guided")
FINAL_STATUSES = ("accepted", "rejected", "error")


class EndpointError(RuntimeError):
    """The model endpoint cannot serve the run (key rejected, no permission, model not found).

    Raised out of the graph so the runner stops the whole run: the fault is not the question's, and
    the checkpoint keeps every completed node for the next run. (Transient faults are retried by
    the agent; when they persist the question ends ``error`` and the runner's circuit breaker
    stops the run if many questions in a row end that way.)
    """


@dataclass(frozen=True)
class Budget:
    """Per-question limits of the annotation loop.

    Attributes:
        max_attempts: solution attempts in all (the Solver's plus every revision), >= 1.
        max_reflections: critique+revise rounds before the answer-guided revision, >= 0.
        answer_guided: whether to make one answer-guided revision when reflection has failed.
        max_tokens: prompt + completion tokens over all model calls of the question.
        max_seconds: seconds of model and verifier time for the question (summed over its steps,
            so time spent killed or queued does not count).
    """

    max_attempts: int = 4
    max_reflections: int = 2
    answer_guided: bool = True
    max_tokens: int = 24_000
    max_seconds: float = 900.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("budget: attempts must be >= 1")
        if self.max_reflections < 0:
            raise ValueError("budget: reflections must be >= 0")
        if self.max_tokens < 1 or self.max_seconds <= 0:
            raise ValueError("budget: tokens and seconds must be positive")

    @classmethod
    def parse(cls, spec: str) -> Budget:
        """Parse ``"attempts=4,reflections=2,tokens=24000,seconds=900,answer_guided=yes"``.

        Missing keys keep their defaults. Raises ``ValueError`` naming the bad key or value.
        """
        names = {"attempts": "max_attempts", "reflections": "max_reflections", "tokens": "max_tokens",
                 "seconds": "max_seconds", "answer_guided": "answer_guided"}
        values: dict[str, Any] = {}
        for item in filter(None, (s.strip() for s in spec.split(","))):
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or key not in names:
                raise ValueError(f"budget: unknown item '{item}'; use {', '.join(k + '=...' for k in names)}")
            raw = raw.strip()
            try:
                if key == "answer_guided":
                    if raw.lower() not in ("yes", "no", "true", "false", "1", "0"):
                        raise ValueError
                    values[names[key]] = raw.lower() in ("yes", "true", "1")
                elif key == "seconds":
                    values[names[key]] = float(raw)
                else:
                    values[names[key]] = int(raw)
            except ValueError:
                raise ValueError(f"budget: bad value for {key}: '{raw}'") from None
        return cls(**values)


def merge_steps(left: list[dict[str, Any]] | None, right: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """LangGraph reducer for ``steps``: append new steps, replace a step whose ``index`` exists.

    ``verify`` uses the replacement to attach its verdict to the attempt it judged.
    """
    merged = list(left or [])
    position = {step["index"]: i for i, step in enumerate(merged)}
    for step in right or []:
        if step["index"] in position:
            merged[position[step["index"]]] = step
        else:
            position[step["index"]] = len(merged)
            merged.append(step)
    return merged


class AnnotationState(TypedDict, total=False):
    """The graph's state for one question.

    Keys:
        question: the question row (``id``, ``subject``, ``question``, ``answer``, ...).
        variant: the prompt variant (``math``, ``physics``, ``chemistry``, ``general``).
        steps: every model call and verdict, in order (see :func:`new_step`).
        status: ``running`` until ``finalize``; then ``accepted``, ``rejected`` or ``error``.
        stop_reason: why the loop ended (e.g. ``accepted``, ``budget: attempts``).
        error_kind: for ``error``: ``transport`` (the endpoint kept failing) or ``request`` (the
            endpoint refused this question's request, e.g. context too long).
        accepted_stage: the stage of the accepted attempt (``cot``, ``reflection``, ``answer_guided``).
    """

    question: dict[str, Any]
    variant: str
    steps: Annotated[list[dict[str, Any]], merge_steps]
    status: str
    stop_reason: str | None
    accepted_stage: str | None
    error_kind: str | None


def new_step(index: int, role: str, stage: str, attempt: int, reply: AgentReply | None, *, error: str | None = None) -> dict[str, Any]:
    """A trace record of one model call.

    Keys: ``index`` (0-based position), ``role`` (solver/critic/reviser), ``stage``
    (cot/reflection/answer_guided), ``attempt`` (1-based solution number; a critique carries the
    number of the attempt it reviews), ``kind`` (``solution`` or ``critique``), ``messages`` (the
    prompt as sent), ``response``, ``input_tokens``, ``output_tokens``, ``latency_s``, ``model``,
    ``finish_reason``, ``started_at`` (ISO 8601, UTC), ``error``, ``transport_failures`` (each failed
    try before the call succeeded or gave up: error, HTTP status, seconds, wait), ``tool_calls`` (with
    tools on: each call's ``round``, ``id``, ``name``, ``args``, ``result``, ``error``; else empty);
    solution steps gain ``parsed_answer`` and ``verdict`` (see :class:`~scireflect.verifiers.base.Verdict`).
    """
    return {
        "index": index,
        "role": role,
        "stage": stage,
        "attempt": attempt,
        "kind": "critique" if role == "critic" else "solution",
        "messages": reply.messages if reply else [],
        "response": reply.text if reply else "",
        "input_tokens": reply.input_tokens if reply else 0,
        "output_tokens": reply.output_tokens if reply else 0,
        "tokens_estimated": reply.tokens_estimated if reply else False,
        "latency_s": round(reply.latency_s, 4) if reply else 0.0,
        "model": reply.model if reply else None,
        "finish_reason": reply.finish_reason if reply else None,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "error": error,
        "transport_failures": list(reply.failures) if reply else [],
        "tool_calls": list(getattr(reply, "tool_calls", None) or []) if reply else [],
        "parsed_answer": None,
        "verdict": None,
    }


def solution_steps(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``kind == "solution"`` steps of a state, in order (Solver and Reviser attempts)."""
    return [s for s in state.get("steps", []) if s["kind"] == "solution"]


def tokens_used(state: Mapping[str, Any]) -> int:
    """Prompt + completion tokens of every model call so far."""
    return sum(s["input_tokens"] + s["output_tokens"] for s in state.get("steps", []))


def seconds_used(state: Mapping[str, Any]) -> float:
    """Seconds of model and verifier time so far."""
    total = 0.0
    for step in state.get("steps", []):
        total += step["latency_s"]
        if step.get("verdict"):
            total += step["verdict"].get("elapsed_s", 0.0)
    return total


Next = Literal["critique", "answer_guided", "finalize"]


def decide_next(state: Mapping[str, Any], budget: Budget) -> tuple[Next, str]:
    """After ``verify`` (or a failed step): where the loop goes and why.

    Returns ``(next_node, reason)``. Pure function of the state, so the router and ``finalize``
    always agree. Order: an error or an accepted attempt ends the loop; then the budget (attempts,
    tokens, seconds); then reflection while fewer than ``max_reflections`` revisions were made;
    then one answer-guided revision; else the loop is exhausted.
    """
    if state.get("status") == "error":
        return "finalize", state.get("stop_reason") or "error"
    if (state.get("stop_reason") or "").startswith("budget"):
        return "finalize", state["stop_reason"]
    solutions = solution_steps(state)
    last = solutions[-1] if solutions else None
    if last and last.get("verdict") and last["verdict"].get("ok") is True:
        return "finalize", "accepted"
    if len(solutions) >= budget.max_attempts:
        return "finalize", f"budget: attempts ({budget.max_attempts})"
    if tokens_used(state) >= budget.max_tokens:
        return "finalize", f"budget: tokens ({tokens_used(state)} >= {budget.max_tokens})"
    if seconds_used(state) >= budget.max_seconds:
        return "finalize", f"budget: seconds ({seconds_used(state):.0f} >= {budget.max_seconds:.0f})"
    reflections = sum(1 for s in solutions if s["stage"] == "reflection")
    if reflections < budget.max_reflections:
        return "critique", "reflect"
    if budget.answer_guided and not any(s["stage"] == "answer_guided" for s in solutions):
        return "answer_guided", "reflection failed"
    if budget.answer_guided:
        return "finalize", "answer-guided revision failed"
    return "finalize", f"reflection failed ({budget.max_reflections} rounds)"


_FATAL_OPENAI_ERRORS = (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)


def async_verify_fn(verifier: AnswerVerifier) -> Callable[[str, Mapping[str, Any]], Awaitable[Verdict]]:
    """The verifier's ``averify`` coroutine when it has one (checks run in its sandbox without
    blocking the event loop), else its ``verify`` run in a worker thread."""
    averify = getattr(verifier, "averify", None)
    if averify is not None:
        return averify

    async def verify_in_thread(response: str, question: Mapping[str, Any]) -> Verdict:
        return await asyncio.to_thread(verifier.verify, response, question)

    return verify_in_thread


def budgeted_model_call(agents: AgentTeam, budget: Budget) -> Callable[..., Awaitable[dict[str, Any]]]:
    """``call(state, role, stage, attempt, prompt, variables)``: one model call of ``agents.<role>``
    limited to the question's remaining time budget, returning a state update (a new step, and
    ``status``/``stop_reason`` when the call failed or the budget ran out).

    Transient faults that outlast the retries (:class:`ModelCallError`) and request errors (HTTP
    400/422) end this question as ``error``; authentication, permission and unknown-model errors
    raise :class:`EndpointError`, which stops the run. Shared by the annotation and formal graphs.
    """

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
        except _FATAL_OPENAI_ERRORS as exc:
            raise EndpointError(f"{role} model call failed: {describe_error(exc)}") from exc
        except ModelCallError as exc:  # transient faults on every try
            step = new_step(index, role, stage, attempt, None, error=str(exc))
            step["transport_failures"] = exc.failures
            step["latency_s"] = round(time.perf_counter() - started, 4)
            return {"steps": [step], "status": "error", "stop_reason": str(exc), "error_kind": "transport"}
        except openai.APIError as exc:  # 400 (e.g. context length), 422: this question's request
            step = new_step(index, role, stage, attempt, None, error=describe_error(exc))
            step["latency_s"] = round(time.perf_counter() - started, 4)
            return {"steps": [step], "status": "error", "stop_reason": f"{role} call failed: {describe_error(exc)}",
                    "error_kind": "request"}
        return {"steps": [new_step(index, role, stage, attempt, reply)]}

    return call


def after_model_call(state: Mapping[str, Any]) -> str:
    """Route after a model call: ``"finalize"`` when the call failed or the budget stopped it, else
    ``"next"``."""
    if state.get("status") == "error" or (state.get("stop_reason") or "").startswith("budget"):
        return "finalize"
    return "next"


def verify_node(verify_fn: Callable[[str, Mapping[str, Any]], Awaitable[Verdict]]) -> Callable[..., Awaitable[dict[str, Any]]]:
    """The deterministic ``verify`` node: checks the last solution step with ``verify_fn`` and
    stores its verdict and parsed answer on that step (nothing when the step's call failed)."""

    async def verify(state: AnnotationState) -> dict[str, Any]:
        step = dict(solution_steps(state)[-1])
        if step.get("error"):  # the call failed; nothing to verify
            return {}
        verdict = await verify_fn(step["response"], state["question"])
        step["verdict"] = verdict.to_dict()
        step["parsed_answer"] = verdict.extracted
        return {"steps": [step]}

    return verify


def build_annotation_graph(
    agents: AgentTeam,
    verifier: AnswerVerifier,
    budget: Budget = Budget(),
    *,
    checkpointer: Any = None,
    verify_fn: Callable[[str, Mapping[str, Any]], Awaitable[Verdict]] | None = None,
    tools: bool | list[Any] = False,
    max_tool_rounds: int = 4,
):
    """Build and compile the annotation graph.

    Args:
        agents: the Solver, Critic and Reviser.
        verifier: the answer verifier (its ``averify`` coroutine is used when it has one, so
            checks run in its sandbox without blocking the event loop; else ``verify`` in a thread).
        budget: per-question limits.
        checkpointer: a LangGraph checkpointer (e.g. ``AsyncSqliteSaver``) for resumable runs;
            invoke with ``{"configurable": {"thread_id": question_id}}``.
        verify_fn: override of the verification coroutine (tests).
        tools: opt-in tool use (default off: small local models call tools poorly). ``True`` gives
            the Solver and the Critic :func:`scireflect.agents.tools.default_tools` (sympy calculator,
            unit converter, answer format check without the reference); a list gives those tools.
            Their chat models are bound with ``.bind_tools(...)`` and each of their calls runs
            "model -> tools (a LangGraph ``ToolNode``) -> model" for at most ``max_tool_rounds``
            rounds; the calls and results are kept in the step's ``tool_calls``. The Reviser
            never gets tools.
        max_tool_rounds: tool rounds per model call (>= 1) when tools are on.

    Returns:
        A compiled graph. Input: ``{"question": row, "variant": "math"}``; output: the final
        :class:`AnnotationState`.

    Raises (at invocation):
        EndpointError: the endpoint is unreachable, rejects the key, lacks the model, or rate-limits
            beyond the client's retries.
    """
    if tools:
        if max_tool_rounds < 1:
            raise ValueError("max_tool_rounds must be >= 1")
        if tools is True:
            from ..agents.tools import default_tools

            tool_list = default_tools()
        else:
            tool_list = list(tools)
        agents = AgentTeam(solver=agents.solver.with_tools(tool_list, max_tool_rounds),
                           critic=agents.critic.with_tools(tool_list, max_tool_rounds), reviser=agents.reviser)
    call = budgeted_model_call(agents, budget)

    def variables(state: AnnotationState) -> dict[str, str]:
        return P.prompt_variables(state["question"], state["variant"])

    async def solve(state: AnnotationState) -> dict[str, Any]:
        return await call(state, "solver", "cot", 1, P.SOLVER_PROMPT, variables(state))

    verify = verify_node(verify_fn or async_verify_fn(verifier))

    async def critique(state: AnnotationState) -> dict[str, Any]:
        last = solution_steps(state)[-1]
        evidence = Verdict.from_dict(last["verdict"]).evidence_for_critic()
        return await call(
            state, "critic", "reflection", last["attempt"], P.CRITIC_PROMPT,
            {**variables(state), "attempt": last["response"], "evidence": evidence},
        )

    async def revise(state: AnnotationState) -> dict[str, Any]:
        solutions = solution_steps(state)
        critiques = [s for s in state["steps"] if s["kind"] == "critique"]
        return await call(
            state, "reviser", "reflection", len(solutions) + 1, P.REVISER_PROMPT,
            {**variables(state), "attempt": solutions[-1]["response"], "critique": critiques[-1]["response"]},
        )

    async def answer_guided(state: AnnotationState) -> dict[str, Any]:
        solutions = solution_steps(state)
        question = state["question"]
        reference = str(question["answer"])
        unit = P.plain_unit(str(question.get("unit") or ""))
        if unit:
            reference = f"{reference} (in {unit})"
        return await call(
            state, "reviser", "answer_guided", len(solutions) + 1, P.ANSWER_GUIDED_PROMPT,
            {**variables(state), "attempt": solutions[-1]["response"], "reference_answer": reference},
        )

    def finalize(state: AnnotationState) -> dict[str, Any]:
        _, reason = decide_next(state, budget)
        if state.get("status") == "error":
            return {"status": "error", "stop_reason": reason, "accepted_stage": None}
        if reason == "accepted":
            return {"status": "accepted", "stop_reason": reason, "accepted_stage": solution_steps(state)[-1]["stage"]}
        return {"status": "rejected", "stop_reason": reason, "accepted_stage": None}

    def route_after_verify(state: AnnotationState) -> str:
        return decide_next(state, budget)[0]

    graph = StateGraph(AnnotationState)
    graph.add_node("solve", solve)
    graph.add_node("verify", verify)
    graph.add_node("critique", critique)
    graph.add_node("revise", revise)
    graph.add_node("answer_guided", answer_guided)
    graph.add_node("finalize", finalize)
    graph.add_edge(START, "solve")
    graph.add_conditional_edges("solve", after_model_call, {"next": "verify", "finalize": "finalize"})
    graph.add_conditional_edges("revise", after_model_call, {"next": "verify", "finalize": "finalize"})
    graph.add_conditional_edges("answer_guided", after_model_call, {"next": "verify", "finalize": "finalize"})
    graph.add_conditional_edges("critique", after_model_call, {"next": "revise", "finalize": "finalize"})
    graph.add_conditional_edges(
        "verify", route_after_verify,
        {"critique": "critique", "answer_guided": "answer_guided", "finalize": "finalize"},
    )
    graph.add_edge("finalize", END)
    return graph.compile(checkpointer=checkpointer)


def initial_state(question: Mapping[str, Any], variant: str) -> AnnotationState:
    """The graph input for one question."""
    return {"question": dict(question), "variant": variant, "steps": [], "status": "running", "stop_reason": "",
            "accepted_stage": None, "error_kind": None}


__all__ = [
    "AnnotationState",
    "Budget",
    "EndpointError",
    "FINAL_STATUSES",
    "STAGES",
    "build_annotation_graph",
    "decide_next",
    "initial_state",
    "merge_steps",
    "new_step",
    "seconds_used",
    "tokens_used",
]


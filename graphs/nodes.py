"""The nodes of the annotation and formal-proof graphs, and their two routers.

Each node is a function of the question's state and LangGraph's runtime (whose ``context`` is an
:class:`~scireflect.graphs.context.AnnotationContext`) returning a state update:

``solve``          the Solver's chain of thought (stage ``cot``).
``verify``         the verifier judges the last attempt; :func:`~scireflect.graphs.budget.decide`
                   then says, once, where the loop goes (``route``) and, if it ends, how.
``critique``       the Critic names the first wrong step, from the verifier's evidence (stage ``reflection``).
``revise``         the Reviser rewrites the solution from the critique (stage ``reflection``).
``resample``       a fresh Solver attempt at a higher temperature, told which final answers were found
                   wrong (strategy ``resample``, stage ``cot``: it never sees an earlier text).
``program``        the same in Python, its code run in the sandbox (strategy ``program``, stage ``cot``).
``answer_guided``  the Reviser is shown the reference answer and must derive it (stage ``answer_guided``).
``confirm``        a ``k_sample`` multiple-choice attempt the verifier accepted: k-1 more independent
                   samples of its prompt, each verified; accepted only when all pick the correct letter.

Every step records the strategy that made it (``strategy``: :data:`~scireflect.graphs.state.Strategy`);
``verify`` marks an attempt whose final answer equals an earlier failed one's (``repeated``), and
``decide`` then moves on to the next other strategy instead of reflecting on the same text again.

A multiple-choice question takes one path for its whole loop (``mc_path``, set by ``solve``): the
nodes hand the prompts and the verifier the question marked with it
(:func:`~scireflect.verifiers.answer.options.with_mc_path`), so an ``options_free`` question never
shows its options to any role and every attempt derives a value.

Every model call goes through :func:`call_model`, which holds one of the run's call slots
(:mod:`~scireflect.graphs.call_slots`) for the call, limits it to the question's remaining time
budget and turns failures into the question's end: transient faults that outlast the retries and
requests the endpoint refuses end the question ``error``; authentication, permission and
unknown-model errors raise :class:`EndpointError`, which stops the whole run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import openai
from langgraph.runtime import Runtime

from ..agents.code_blocks import model_text
from ..agents.code_loop import CodeExecution
from ..agents.prompts import Prompt
from ..agents.names import Role
from ..agents.retry import ModelCallError, describe_error
from ..agents.roles import LOOP, AgentReply, CallProgress
from ..verifiers.answer.options import is_multiple_choice, with_mc_path
from ..verifiers.answer.select import select_check
from ..verifiers.base import EQUAL, JUDGE_REJECTED, SAMPLE_DISAGREEMENT, UNIT_CONVERTED, Verdict, wrong_answer
from .budget import RESAMPLE_TEMPERATURE, Route, decide, describe_stop
from .context import AnnotationContext, choose_mc_path
from .state import (AnnotationState, BudgetStop, Sample, Stage, Step, Strategy, merge_steps, solution_steps, strategy_of,
                    total_seconds)

SAMPLE_TEMPERATURE = 0.7
"""The sampling temperature of ``confirm``'s samples: independent draws, whatever the run's own
temperature (0.7 is Qwen2.5's recommended sampling temperature)."""


class EndpointError(RuntimeError):
    """The model endpoint cannot serve the run (key rejected, no permission, model not found).

    Raised out of the graph so the runner stops the whole run: the fault is not the question's, and
    the checkpoint keeps every completed node for the next run. (Transient faults are retried by
    the agent; when they persist the question ends ``error`` and the runner's circuit breaker
    stops the run if many questions in a row end that way.)
    """


_FATAL_OPENAI_ERRORS = (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)


def new_step(index: int, role: Role, stage: Stage, attempt: int, reply: AgentReply | None, *,
             error: str | None = None, latency_s: float = 0.0) -> Step:
    """The :class:`~scireflect.graphs.state.Step` of one model call (``reply`` is ``None`` when it failed)."""
    step: Step = {
        "index": index,
        "role": role,
        "stage": stage,
        "attempt": attempt,
        "kind": "critique" if role == "critic" else "solution",
        "messages": reply.messages if reply else [],
        "response": reply.text if reply else "",
        "input_tokens": reply.input_tokens if reply else 0,
        "output_tokens": reply.output_tokens if reply else 0,
        "discarded_tokens": reply.discarded_tokens if reply else 0,
        "tokens_estimated": reply.tokens_estimated if reply else False,
        "latency_s": round(reply.latency_s if reply else latency_s, 4),
        "model": reply.model if reply else None,
        "finish_reason": reply.finish_reason if reply else None,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "error": error,
        "transport_failures": list(reply.failures) if reply else [],
        "tool_calls": list(reply.tool_calls) if reply else [],
        "parsed_answer": None,
        "verdict": None,
    }
    if reply is not None and reply.finish_reason == LOOP:
        step["loop_saved_tokens"] = reply.loop_saved_tokens
    return step


CLOSED_CHECKS = ("choice", "options_free", "boolean")
"""Check kinds (:func:`~scireflect.verifiers.answer.select.select_check`) of questions with a few possible
answers, whose failed answers are never named: "A, B and C were found wrong" of four options, or
"False was found wrong", tells the reference."""


def failed_answers(steps: list[Step], question: Mapping[str, Any]) -> list[str]:
    """The final answers of ``steps``' attempts that the verifier found wrong, in order (repeats kept):
    :func:`~scireflect.verifiers.base.wrong_answer`, so never an answer that matched the reference;
    none for a multiple-choice or true/false ``question`` (:data:`CLOSED_CHECKS`), where naming the wrong
    ones narrows the reference down."""
    if select_check(question) in CLOSED_CHECKS:
        return []
    return [a for a in (wrong_answer(s.get("verdict")) for s in solution_steps(steps)) if a is not None]


def _budget_end(stop: BudgetStop) -> dict[str, Any]:
    return {"status": "rejected", "stop_reason": describe_stop(stop), "budget_stop": stop}


async def call_model(state: AnnotationState, ctx: AnnotationContext, role: Role, stage: Stage, attempt: int,
                     prompt: Prompt, *, temperature: float | None = None, strategy: Strategy | None = None,
                     code: CodeExecution | None = None) -> dict[str, Any]:
    """One model call of ``ctx.agents.<role>`` within the question's remaining time budget, holding
    one of the run's call slots (``ctx.call_slots``) for the call only; ``temperature`` overrides the
    agent's sampling temperature for this call (:meth:`~scireflect.agents.roles.Agent.with_temperature`);
    ``strategy`` is recorded in the step (default: the one of ``stage``, :func:`strategy_of`); with
    ``code``, the agent runs the ```python blocks it writes in the sandbox (strategy ``program``; an agent
    that already does keeps its own settings).

    Returns a state update: the new step; and ``status``/``stop_reason`` (plus ``budget_stop`` or
    ``error_kind``) when the call ended the question.

    Raises:
        EndpointError: the endpoint rejects the key or the permission, or lacks the model.
    """
    steps = state.get("steps", [])
    remaining = ctx.budget.seconds_left(steps)
    if remaining is not None and remaining <= 0:
        return _budget_end({"limit": "seconds", "used": round(total_seconds(steps), 3), "allowed": ctx.budget.max_seconds})
    slot = ctx.call_slots.hold(continuing=bool(steps)) if ctx.call_slots is not None else contextlib.nullcontext()
    async with slot:  # waiting for a slot is not the model's time: the budget's clock starts below
        update = await _call_in_slot(steps, ctx, role, stage, attempt, prompt, state["question"]["id"], remaining, temperature,
                                     code)
    for step in update.get("steps", ()):
        step["strategy"] = strategy or strategy_of(step)
    return update


async def _call_in_slot(steps: list[Step], ctx: AnnotationContext, role: Role, stage: Stage, attempt: int, prompt: Prompt,
                        qid: str, remaining: float | None, temperature: float | None = None,
                        code: CodeExecution | None = None) -> dict[str, Any]:
    """:func:`call_model` once its call slot is held."""
    index = len(steps)
    where = {"id": qid, "role": role, "stage": stage, "attempt": attempt}
    report = ctx.report
    progress = CallProgress(on_update=(lambda kind, data: report(kind, {**where, **data})) if report else None)
    progress.report("call", {"phase": "start"})
    try:
        agent = getattr(ctx.agents, role)
        if code is not None and agent.code_execution is None:
            agent = agent.without_tools().with_code_execution(code)
        agent = agent if temperature is None else agent.with_temperature(temperature)
        reply = await asyncio.wait_for(agent.ainvoke(*prompt, progress=progress, affinity=where["id"]), timeout=remaining)
    except TimeoutError:
        step = _cut_step(index, role, stage, attempt, progress)
        progress.report("call", {"phase": "cut", "tokens": step["output_tokens"], "seconds": step["latency_s"]})
        stop: BudgetStop = {"limit": "seconds", "used": round(total_seconds([*steps, step]), 3), "allowed": ctx.budget.max_seconds}
        return {"steps": [step], **_budget_end(stop)}
    except _FATAL_OPENAI_ERRORS as exc:
        raise EndpointError(f"{role} model call failed: {describe_error(exc)}") from exc
    except ModelCallError as exc:  # transient faults on every try
        step = new_step(index, role, stage, attempt, None, error=str(exc), latency_s=time.perf_counter() - progress.started)
        step["transport_failures"] = exc.failures
        step["discarded_tokens"] = sum(int(f.get("output_tokens") or 0) for f in exc.failures)
        progress.report("call", {"phase": "failed", "error": str(exc)})
        return {"steps": [step], "status": "error", "stop_reason": str(exc), "error_kind": "transport"}
    except openai.APIError as exc:  # 400 (e.g. context length), 422: this question's request
        step = new_step(index, role, stage, attempt, None, error=describe_error(exc), latency_s=time.perf_counter() - progress.started)
        progress.report("call", {"phase": "failed", "error": describe_error(exc)})
        return {"steps": [step], "status": "error", "stop_reason": f"{role} call failed: {describe_error(exc)}",
                "error_kind": "request"}
    progress.report("call", {"phase": "end", "tokens": reply.output_tokens, "seconds": round(reply.latency_s, 2)})
    return {"steps": [new_step(index, role, stage, attempt, reply)]}


def _cut_step(index: int, role: Role, stage: Stage, attempt: int, progress: CallProgress) -> Step:
    """The step of a call the time budget cut part-way: what it had streamed, and its tokens, are kept."""
    step = new_step(index, role, stage, attempt, None, latency_s=time.perf_counter() - progress.started,
                    error=f"cut by the time budget after {time.perf_counter() - progress.started:.0f} s "
                          f"({progress.tokens} tokens streamed)")
    step.update(response=progress.text, output_tokens=progress.prefix_tokens + progress.tokens,
                discarded_tokens=progress.discarded_tokens, finish_reason="cut", tool_calls=list(progress.tool_calls))
    return step


def _last_attempt(state: AnnotationState) -> Step:
    return solution_steps(state["steps"])[-1]


def _question(state: Mapping[str, Any]) -> dict[str, Any]:
    """The question as the prompts and the verifier see it: marked with its multiple-choice path."""
    return with_mc_path(state["question"], state.get("mc_path"))


def attempt_prompt(ctx: AnnotationContext, question: Mapping[str, Any], variant: str, strategy: Strategy,
                   earlier: list[Step]) -> Prompt:
    """The prompt of a solution attempt made by ``strategy`` after the steps ``earlier``: the Solver's
    (``cot``), a revision from the last critique (``reflect``), a fresh attempt told the failed answers
    (``resample``; ``program``: in Python) or the answer-guided revision (``answer_guided``). The one place an attempt's prompt
    is made, so that ``confirm`` samples exactly the prompt of the attempt it confirms."""
    if strategy == "cot":
        return ctx.prompts.solve(question, variant)
    attempts = solution_steps(earlier)
    if strategy == "reflect":
        last_critique = [s for s in earlier if s["kind"] == "critique"][-1]
        return ctx.prompts.revise(question, variant, attempts[-1], last_critique, failed_answers(earlier, question))
    if strategy == "resample":
        return ctx.prompts.resample(question, variant, failed_answers(earlier, question))
    if strategy == "program":
        return ctx.prompts.program(question, variant, failed_answers(earlier, question))
    return ctx.prompts.answer_guided(question, variant, attempts[-1], failed_answers(earlier, question))


async def solve(state: AnnotationState, runtime: Runtime[AnnotationContext]) -> dict[str, Any]:
    """The Solver writes a chain of thought ending in its final answer. Decides the question's
    multiple-choice path first (:func:`~scireflect.verifiers.answer.options.mc_path`): an
    ``options_free`` question is shown without its options."""
    ctx = runtime.context
    path = await choose_mc_path(ctx, state["question"])
    question = with_mc_path(state["question"], path)
    update = await call_model(state, ctx, "solver", "cot", 1, attempt_prompt(ctx, question, state["variant"], "cot", []),
                              strategy="cot")
    return {**update, "mc_path": path}


async def verify(state: AnnotationState, runtime: Runtime[AnnotationContext]) -> dict[str, Any]:
    """Judge the last attempt, attach the verdict to its step, and decide where the loop goes.

    The verifier reads what the model wrote (:func:`~scireflect.agents.code_blocks.model_text`): the
    ```output blocks that code execution inserted, found by their recorded outputs, and the code are
    left out (an answer the code printed counts only once the model writes it).
    """
    ctx = runtime.context
    step = dict(_last_attempt(state))
    written = model_text(step["response"], step.get("tool_calls"))
    verdict = await ctx.verify(written, _question(state), finish_reason=step.get("finish_reason"))
    if verdict.ok is True and getattr(ctx, "judge", "off") != "off" and not _question(state).get("statement"):
        step["judge"] = await judge_attempt(ctx, state, {**step, "verdict": verdict.to_dict()})
        if ctx.judge == "gate" and step["judge"]["step"] != 0:
            verdict = judge_rejected(verdict, step["judge"])
    step["verdict"] = verdict.to_dict()
    step["parsed_answer"] = verdict.extracted
    earlier = [s for s in solution_steps(state["steps"]) if s["index"] < step["index"]]
    started = time.perf_counter()
    step["repeated"] = await repeated_attempt(ctx, step["verdict"], earlier, _question(state))
    step["repeat_check_s"] = round(time.perf_counter() - started, 4)
    judged: Step = step  # type: ignore[assignment]
    decision = decide(merge_steps(state["steps"], [judged]), ctx.budget, state.get("mc_path"), _strategies(ctx))
    return {"steps": [judged], **decision.update()}


async def judge_attempt(ctx: AnnotationContext, state: AnnotationState, step: Mapping[str, Any]) -> dict[str, Any]:
    """The model reviewer's finding on an attempt the verifier accepted (``[judge] mode`` ``flag`` or
    ``gate``; :mod:`scireflect.agents.judge`): the Critic's model, holding a call slot, names the
    earliest wrong step or none. Returns the record kept in the step's ``judge``: ``step`` (the
    earliest wrong step, 0 for none, ``None`` for no verdict: a reply outside the format or a failed
    call), ``text`` (that step), ``why``, ``model``, tokens, ``latency_s`` and the prompt ``version``."""
    from ..agents.judge import JUDGE_VERSION, ask_judge

    record = {"id": state["question"]["id"], "question": _question(state), "steps": [step]}
    slot = ctx.call_slots.hold(continuing=True) if ctx.call_slots is not None else contextlib.nullcontext()
    finding: dict[str, Any] = {"mode": ctx.judge, "version": JUDGE_VERSION, "model": ctx.agents.critic.model_name}
    try:
        async with slot:
            verdict, numbered, reply = await ask_judge(ctx.agents.critic, record)
    except ModelCallError as exc:
        return {**finding, "step": None, "text": "", "why": f"the judge's call failed: {describe_error(exc)}",
                "input_tokens": 0, "output_tokens": 0, "latency_s": 0.0}
    return {**finding, "step": verdict.step, "text": numbered[verdict.step - 1] if verdict.step else "", "why": verdict.why,
            "reply": reply.text[-2000:], "input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens,
            "latency_s": round(reply.latency_s, 3)}


def judge_rejected(verdict: Verdict, finding: Mapping[str, Any]) -> Verdict:
    """An accepted verdict turned down by the model reviewer (``[judge] mode = "gate"``): reason
    ``judge_rejected``, the finding in ``details["judge"]`` (the step and its text: the attempt's own words)."""
    from dataclasses import replace

    why = (f"the model reviewer found step {finding['step']} wrong" if finding.get("step")
           else f"the model reviewer gave no verdict ({finding.get('why')})")
    return replace(verdict, ok=False, reason=JUDGE_REJECTED, explanation=f"The answer matches, but {why}.",
                   details={**verdict.details, "judge": {"step": finding.get("step"), "text": finding.get("text", ""),
                                                         "why": finding.get("why")}})


def _strategies(ctx: Any) -> frozenset[str] | None:
    """The strategies the context can make (a context without ``strategies``, e.g. Studio's: all but ``program``)."""
    return getattr(ctx, "strategies", None) or frozenset({"cot", "reflect", "resample", "answer_guided"})


def _same_answer(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Two verdicts' answers are the same string: their normalised candidates, else their extracted texts."""
    if a.get("candidate") is not None and b.get("candidate") is not None:
        return " ".join(str(a["candidate"]).split()) == " ".join(str(b["candidate"]).split())
    return " ".join(str(a.get("extracted")).split()) == " ".join(str(b.get("extracted")).split())


async def repeated_attempt(ctx: AnnotationContext, verdict: Mapping[str, Any], earlier: list[Step],
                           question: Mapping[str, Any]) -> int | None:
    """The attempt number of the first of ``earlier`` whose wrong final answer this ``verdict``'s wrong
    answer equals, or ``None`` (also when this answer was not found wrong: :func:`wrong_answer`).

    Equal means the same normalised candidate (or extracted text); else, for a question that is not
    multiple choice, the verifier's own equivalence: ``ctx.verify`` (the sandboxed check, never an
    evaluation of model text here) of ``\\boxed{this answer}`` with the earlier answer as the reference
    (``equal`` or ``unit_converted``), so ``0.5`` repeats ``1/2``. Multiple-choice letters, truth values
    and Lean proofs are compared as strings only (a value solved without the options maps to its letter
    by the reference only; a proof is never sent to the checker as a reference).
    """
    answer = wrong_answer(verdict)
    if answer is None:
        return None
    prior = [(s["attempt"], s["verdict"], wrong_answer(s.get("verdict"))) for s in earlier]
    prior = [(n, v, a) for n, v, a in prior if a is not None]
    for number, prior_verdict, _ in prior:
        if _same_answer(verdict, prior_verdict):
            return number
    if is_multiple_choice(question) or question.get("statement") or select_check(question) in ("none", *CLOSED_CHECKS):
        return None  # letters, truth values and Lean proofs (a formal row's ``statement``) compare as strings only
    checked: set[str] = set()
    for number, _, prior_answer in prior:
        if prior_answer in checked:
            continue
        checked.add(prior_answer)
        same = await ctx.verify(f"\\boxed{{{answer}}}", {**question, "answer": prior_answer})
        if same.reason in (EQUAL, UNIT_CONVERTED):
            return number
    return None


async def confirm(state: AnnotationState, runtime: Runtime[AnnotationContext]) -> dict[str, Any]:
    """Draw k-1 more independent samples of the accepted ``k_sample`` attempt's prompt and verify each.

    The samples (``budget.mc_samples`` - 1, at :data:`SAMPLE_TEMPERATURE`) are kept in the attempt's
    step (``samples``) and count in its tokens and seconds. The attempt stays accepted only when every
    sample's verdict is ok (the same correct letter); else its verdict becomes ``sample_disagreement``
    (``ok`` false; ``details["letters"]``: the attempt's letter, then each sample's) and the loop goes
    on as for a wrong answer. A sample call that ends the question (endpoint failure, time budget)
    ends it as :func:`call_model` says, the attempt left unconfirmed (``sample_disagreement``).
    """
    ctx = runtime.context
    step = dict(_last_attempt(state))
    question = _question(state)
    earlier = [s for s in state["steps"] if s["index"] < step["index"]]
    prompt = attempt_prompt(ctx, question, state["variant"], strategy_of(step), earlier)
    samples: list[Sample] = []
    ended: dict[str, Any] = {}
    for _ in range(ctx.budget.mc_samples - 1):
        so_far = merge_steps(state["steps"], [{**step, "samples": samples}])  # type: ignore[list-item]
        update = await call_model({**state, "steps": so_far}, ctx, step["role"], step["stage"], step["attempt"], prompt,
                                  temperature=SAMPLE_TEMPERATURE, strategy=strategy_of(step),
                                  code=getattr(ctx, "program", None) if strategy_of(step) == "program" else None)
        call = update["steps"][0] if update.get("steps") else None
        if call is not None:
            samples.append(await _verified_sample(ctx, call, question))
        if update.get("status", "running") != "running":
            ended = {k: v for k, v in update.items() if k != "steps"}
            break
    step["samples"] = samples
    agreed = not ended and all((s["verdict"] or {}).get("ok") is True for s in samples)
    if not agreed:
        step["verdict"] = _disagreement(step["verdict"], samples, complete=not ended)
    judged: Step = step  # type: ignore[assignment]
    if ended:
        return {"steps": [judged], "route": "end", **ended}
    decision = decide(merge_steps(state["steps"], [judged]), ctx.budget, state.get("mc_path"), _strategies(ctx))
    return {"steps": [judged], **decision.update()}


async def _verified_sample(ctx: AnnotationContext, call: Mapping[str, Any], question: Mapping[str, Any]) -> Sample:
    """One sample call as kept in its attempt's step, with the verifier's verdict of it."""
    verdict = None
    if not call.get("error") and call.get("finish_reason") != "cut":
        written = model_text(call["response"], call.get("tool_calls"))
        verdict = (await ctx.verify(written, question, finish_reason=call.get("finish_reason"))).to_dict()
    return {"response": call["response"], "parsed_answer": (verdict or {}).get("extracted"), "verdict": verdict,
            "input_tokens": call["input_tokens"], "output_tokens": call["output_tokens"],
            "discarded_tokens": call["discarded_tokens"], "latency_s": call["latency_s"],
            "finish_reason": call["finish_reason"], "temperature": SAMPLE_TEMPERATURE, "model": call["model"],
            "started_at": call["started_at"], "error": call["error"]}


def _disagreement(verdict: Mapping[str, Any], samples: list[Sample], *, complete: bool) -> dict[str, Any]:
    """The attempt's verdict once its samples did not all pick the correct letter (or were not all drawn)."""
    def letter(v: Mapping[str, Any] | None) -> str | None:
        return (v or {}).get("candidate") or (v or {}).get("extracted")

    letters = [letter(verdict), *(letter(s["verdict"]) for s in samples)]
    agree = sum(1 for s in samples if (s["verdict"] or {}).get("ok") is True) + 1
    how = (f"{agree} of {len(letters)} independent samples agree with the checked answer (letters: "
           f"{', '.join(str(x) for x in letters)})") if complete else \
        f"the independent samples could not all be drawn ({len(samples)} drawn)"
    return {**verdict, "ok": False, "reason": SAMPLE_DISAGREEMENT, "status": "rejected",
            "explanation": f"not confirmed: {how}",
            "details": {**dict(verdict.get("details") or {}), "letters": letters, "first_verdict": dict(verdict),
                        "samples_complete": complete}}


async def critique(state: AnnotationState, runtime: Runtime[AnnotationContext]) -> dict[str, Any]:
    """The Critic reviews the last attempt with the verifier's evidence and the final answers of the
    earlier attempts that were found wrong (never the reference answer)."""
    ctx = runtime.context
    last = _last_attempt(state)
    earlier = [s for s in state["steps"] if s["index"] < last["index"]]
    question = _question(state)
    prompt = ctx.prompts.critique(question, state["variant"], last, failed_answers(earlier, question))
    return await call_model(state, ctx, "critic", "reflection", last["attempt"], prompt, strategy="reflect")


async def revise(state: AnnotationState, runtime: Runtime[AnnotationContext]) -> dict[str, Any]:
    """The Reviser rewrites the whole solution from the last critique."""
    ctx = runtime.context
    attempts = solution_steps(state["steps"])
    prompt = attempt_prompt(ctx, _question(state), state["variant"], "reflect", state["steps"])
    return await call_model(state, ctx, "reviser", "reflection", len(attempts) + 1, prompt, strategy="reflect")


async def resample(state: AnnotationState, runtime: Runtime[AnnotationContext]) -> dict[str, Any]:
    """A fresh Solver attempt at :data:`~scireflect.graphs.budget.RESAMPLE_TEMPERATURE`, told which final
    answers were found wrong and shown no earlier text (the pass@k baseline, with that one hint)."""
    ctx = runtime.context
    attempts = solution_steps(state["steps"])
    prompt = attempt_prompt(ctx, _question(state), state["variant"], "resample", state["steps"])
    return await call_model(state, ctx, "solver", "cot", len(attempts) + 1, prompt, temperature=RESAMPLE_TEMPERATURE,
                            strategy="resample")


async def program(state: AnnotationState, runtime: Runtime[AnnotationContext]) -> dict[str, Any]:
    """Program of thought: a fresh Solver attempt that computes in Python, its ```python blocks run in the
    code sandbox (``ctx.program``) and their output read before it goes on; told which final answers
    were found wrong. Routed to only when the context has the sandbox (``decide``'s ``available``)."""
    ctx = runtime.context
    attempts = solution_steps(state["steps"])
    prompt = attempt_prompt(ctx, _question(state), state["variant"], "program", state["steps"])
    return await call_model(state, ctx, "solver", "cot", len(attempts) + 1, prompt, strategy="program", code=ctx.program)


async def answer_guided(state: AnnotationState, runtime: Runtime[AnnotationContext]) -> dict[str, Any]:
    """The Reviser is shown the problem and the reference answer (never the failed solution's text, only
    its wrong final answers) and derives it (STaR's rationalization); for an ``options_free`` question the
    reference is the correct option's text, never its letter."""
    ctx = runtime.context
    attempts = solution_steps(state["steps"])
    prompt = attempt_prompt(ctx, _question(state), state["variant"], "answer_guided", state["steps"])
    return await call_model(state, ctx, "reviser", "answer_guided", len(attempts) + 1, prompt, strategy="answer_guided")


def after_call(state: Mapping[str, Any]) -> Literal["next", "end"]:
    """After a model call: ``end`` when the call ended the question (failure or budget), else ``next``."""
    return "next" if state.get("status") == "running" else "end"


def after_verify(state: Mapping[str, Any]) -> Route:
    """After ``verify`` or ``confirm``: the route it decided."""
    return state["route"]


__all__ = [
    "EndpointError",
    "after_call",
    "after_verify",
    "answer_guided",
    "attempt_prompt",
    "call_model",
    "confirm",
    "critique",
    "failed_answers",
    "new_step",
    "program",
    "repeated_attempt",
    "resample",
    "revise",
    "solve",
    "strategy_of",
    "verify",
]

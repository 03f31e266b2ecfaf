"""The records a run writes: one :class:`TraceRecord` per finished question, one :class:`SftPair` per accepted one.

``traces.jsonl`` holds one :class:`TraceRecord` a line (the source of truth); ``sft.jsonl`` is
derived from it. Steps and statuses are the graph's (:mod:`scireflect.graphs.state`); the verdict
inside a step is :meth:`scireflect.verifiers.base.Verdict.to_dict`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypedDict

from ..agents.figures import figure_refs
from ..graphs.state import BudgetStop, ErrorKind, Stage, Status, Step, solution_steps, total_seconds, total_tokens
from .questions import is_formal_question

if TYPE_CHECKING:
    from ..agents.prompts import PromptSet


class TraceRecord(TypedDict):
    """One finished question: its outcome, its cost and every step of its loop."""

    id: str
    """The question id."""
    subject: str
    """The question's subject (``general`` when the input had none)."""
    status: Status
    """How the loop ended: ``accepted``, ``rejected``, ``invalid`` (the last attempt was cut off, a
    loop or contradicted its box), ``error`` or ``unverified``."""
    stop_reason: str | None
    """Why, in words (``accepted``, ``budget: attempts (4)``, ``answer-guided revision failed``, ...)."""
    budget_stop: BudgetStop | None
    """The budget limit that ended the loop, if one did."""
    error_kind: ErrorKind | None
    """For ``error``: ``transport`` or ``request``."""
    accepted_stage: Stage | None
    """The stage of the accepted attempt (``cot``, ``reflection``, ``answer_guided``)."""
    mc_path: str | None
    """The multiple-choice path the question took: ``options_free`` (solved without its options, the
    value mapped to them), ``k_sample`` (k samples had to agree), or ``None`` (not multiple choice)."""
    variant: str
    """The prompt variant used (``math``, ``physics``, ``chemistry``, ``general``)."""
    n_attempts: int
    """Solution attempts made."""
    tokens: int
    """Prompt + completion tokens of every call."""
    seconds: float
    """Model and verifier seconds of every step."""
    prompt_version: str
    """The prompt set's version."""
    verifier: str
    """``name/version`` of the verifier (or proof checker) that judged the attempts."""
    step_claims_checked: int | None
    """Calculation claims the step checker could check in the accepted attempt (else in the last
    judged one); ``None`` where the step checker did not run (``[verifier] steps = "off"``, no answer)."""
    step_errors: int | None
    """False calculation claims among them (``0`` for every accepted attempt under ``steps = "gate"``;
    the claims themselves are in the verdict's ``details["steps"]``)."""
    finished_at: str
    """When the question ended (ISO 8601, UTC)."""
    question: dict[str, Any]
    """The input row (keys starting with ``_``, e.g. the input line number, left out)."""
    steps: list[Step]
    """Every model call and verdict, in order."""


class SftPair(TypedDict):
    """One accepted question as a prompt/response pair, in ``sft.jsonl``."""

    id: str
    subject: str
    stage: Stage
    """The stage of the accepted attempt: filter or down-weight ``answer_guided`` pairs, which saw the answer."""
    prompt: str
    """The problem as the Solver saw it (no critique, no reference answer), whatever the stage."""
    response: str
    """The accepted attempt's text."""
    messages: list[dict[str, Any]]
    """``[{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]``, with the
    tool turns between them when the attempt called tools (:func:`attempt_messages`)."""
    reference_answer: str | None
    extracted_answer: str | None
    """The final answer the verifier extracted from the response."""
    model: str | None
    prompt_version: str | None
    source: str | None
    step_claims_checked: int | None
    """Calculation claims of the response the step checker checked (``None``: it did not run)."""
    step_errors: int | None
    """False ones among them (``0`` under ``steps = "gate"``; can be more under ``flag``)."""
    images: list[dict[str, Any]]
    """The question's figure references (sha256, path relative to the question file's directory);
    ``[]`` for a text question. The figure goes with the prompt: a vision-language model is trained
    on the question and the figure (SciTune's instruction stage)."""


def prompts_for(question: Mapping[str, Any]) -> PromptSet:
    """The prompt set of a question: formal-proof prompts for rows with a Lean ``statement``, figure
    prompts (their version and problem text) for rows with figures, else answer prompts."""
    # Imported here: reading traces (the viewer, ``scireflect traces``) should not load LangChain.
    from ..agents.prompts import ANSWER_PROMPTS, FIGURE_PROMPTS
    from ..agents.prompts_formal import FORMAL_PROMPTS

    if is_formal_question(question):
        return FORMAL_PROMPTS
    return FIGURE_PROMPTS if figure_refs(question) else ANSWER_PROMPTS


def trace_record(state: Mapping[str, Any], *, verifier: str, prompt_version: str | None = None) -> TraceRecord:
    """The ``traces.jsonl`` line of one finished question: its final graph state plus totals.

    Args:
        state: the final :class:`~scireflect.graphs.state.AnnotationState`.
        verifier: ``name/version`` of the verifier that judged it.
        prompt_version: the version of the prompt set the run used (default: that of
            :func:`prompts_for` the question, i.e. the plain answer or formal prompts).
    """
    question = {k: v for k, v in state["question"].items() if not k.startswith("_")}
    steps = list(state.get("steps", []))
    judged = accepted_step({"status": state["status"], "steps": steps}) or {"verdict": last_verdict({"steps": steps})}
    checked, errors = step_check_counts(judged.get("verdict"))
    return {
        "id": question["id"],
        "subject": question.get("subject", "general"),
        "status": state["status"],
        "stop_reason": state.get("stop_reason"),
        "budget_stop": state.get("budget_stop"),
        "error_kind": state.get("error_kind"),
        "accepted_stage": state.get("accepted_stage"),
        "mc_path": state.get("mc_path"),
        "variant": state.get("variant", "general"),
        "n_attempts": len(solution_steps(steps)),
        "tokens": total_tokens(steps),
        "seconds": round(total_seconds(steps), 3),
        "prompt_version": prompt_version or prompts_for(question).version,
        "verifier": verifier,
        "step_claims_checked": checked,
        "step_errors": errors,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "question": question,
        "steps": steps,
    }


def last_verdict(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The verdict of the last solution attempt that has one, or ``None``."""
    for step in reversed(solution_steps(record.get("steps") or [])):
        if step.get("verdict"):
            return step["verdict"]
    return None


def step_check_counts(verdict: Mapping[str, Any] | None) -> tuple[int | None, int | None]:
    """``(claims checked, false claims)`` of the step checker's report in a verdict
    (``details["steps"]``, :mod:`scireflect.verifiers.answer.step_gate`); ``(None, None)`` when the
    step checker did not run on it. The one place these two numbers are read from a verdict."""
    report = ((verdict or {}).get("details") or {}).get("steps") if isinstance(verdict, Mapping) else None
    if not isinstance(report, Mapping):
        return None, None
    try:
        return int(report.get("checked") or 0), int(report.get("n_errors", len(report.get("errors") or [])) or 0)
    except (TypeError, ValueError):  # a hand-edited or foreign trace
        return None, None


def accepted_step(record: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The accepted attempt of an accepted question (the last one with ``ok`` true), else ``None``."""
    if record.get("status") != "accepted":
        return None
    accepted = [s for s in solution_steps(record.get("steps") or []) if (s.get("verdict") or {}).get("ok") is True]
    return accepted[-1] if accepted else None


def sft_pair(record: Mapping[str, Any]) -> SftPair | None:
    """The SFT pair of one trace record, or ``None`` when the question was not accepted."""
    step = accepted_step(record)
    if step is None:
        return None
    from ..verifiers.answer.options import is_options_free, reference_option_text, with_mc_path

    question = with_mc_path(record["question"], record.get("mc_path"))  # options_free: the stem the Solver saw
    prompt = prompts_for(question).problem(question)
    checked, errors = step_check_counts(step.get("verdict"))
    return {
        "id": record["id"],
        "subject": record["subject"],
        "stage": step["stage"],
        "prompt": prompt,
        "response": step["response"],
        "messages": attempt_messages(prompt, step),
        "reference_answer": reference_option_text(question) if is_options_free(question) else question.get("answer"),
        "extracted_answer": step.get("parsed_answer"),
        "model": step.get("model"),
        "prompt_version": record.get("prompt_version"),
        "source": question.get("source"),
        "step_claims_checked": checked,
        "step_errors": errors,
        "images": [{"sha256": r.get("sha256"), "path": r.get("path")} for r in figure_refs(question)],
    }


def attempt_messages(prompt: str, step: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One solution attempt as the chat a model is trained on: the problem, then the assistant's turns.

    Without tool calls, and with Python in plain text, ``[user, assistant]``: the ```output blocks stay
    inside the assistant message, where the sandbox wrote them (``scireflect train`` masks them from
    the loss, :mod:`scireflect.agents.code_blocks`). With tool calling, each round is an assistant
    message with its text and ``tool_calls`` (OpenAI form: ``{"id", "type": "function", "function":
    {"name", "arguments": JSON text}}``) followed by one ``{"role": "tool", "tool_call_id", "name",
    "content"}`` message per call (its result, or its error), and the final response closes the chat.
    """
    messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    rounds: dict[int, list[Mapping[str, Any]]] = {}
    for call in step.get("tool_calls") or []:
        if isinstance(call, Mapping) and call.get("format") != "text":
            rounds.setdefault(int(call.get("round") or 1), []).append(call)
    for number, calls in sorted(rounds.items()):
        ids = [str(c.get("id") or f"call-{number}-{i}") for i, c in enumerate(calls)]
        messages.append({"role": "assistant", "content": str(calls[0].get("text") or ""), "tool_calls": [
            {"id": cid, "type": "function", "function": {"name": str(c.get("name")), "arguments": json.dumps(c.get("args") or {}, ensure_ascii=False)}}
            for cid, c in zip(ids, calls, strict=True)]})
        messages += [{"role": "tool", "tool_call_id": cid, "name": str(c.get("name")),
                      "content": tool_call_parts(c)[2] or str(c.get("error") or "")} for cid, c in zip(ids, calls, strict=True)]
    messages.append({"role": "assistant", "content": step["response"]})
    return messages


def tool_call_parts(call: Any) -> tuple[str, str, str]:
    """``(name, arguments, output)`` of a recorded tool call, in any of the common shapes."""
    if not isinstance(call, Mapping):
        return "tool", str(call), ""
    function = call.get("function") if isinstance(call.get("function"), Mapping) else {}
    name = call.get("name") or function.get("name") or call.get("type") or "tool"
    args = call.get("args", call.get("arguments", function.get("arguments", call.get("input"))))
    if isinstance(args, Mapping) and len(args) == 1 and isinstance(next(iter(args.values())), str):
        args_text = next(iter(args.values()))  # e.g. {"code": "..."}: show the code itself
    elif isinstance(args, str):
        args_text = args
    else:
        args_text = json.dumps(args, ensure_ascii=False, indent=1) if args is not None else ""
    output = call.get("output", call.get("result", call.get("content")))
    out_text = output if isinstance(output, str) else ("" if output is None else json.dumps(output, ensure_ascii=False))
    return str(name), args_text, out_text


def execution_status(call: Any) -> tuple[str, str] | None:
    """``(status line, stderr)`` of a tool call that ran code in the sandbox (it has ``execution``), else ``None``.

    The line reads ``exit 0 · 0.41 s (cpu 0.20 s)``, ``exit 1: ZeroDivisionError: ...``, ``killed:
    wall-clock limit of 20 s · 20.0 s`` or ``not run: ...``.
    """
    if not isinstance(call, Mapping) or "execution" not in call:
        return None
    ex = call.get("execution")
    if not isinstance(ex, Mapping):
        return f"not run: {call.get('error') or 'no execution'}", ""
    if ex.get("killed_reason"):
        head = f"killed: {ex['killed_reason']}"
    elif ex.get("exit_status") is not None:
        head = f"exit {ex['exit_status']}" + (f": {call['error']}" if ex["exit_status"] != 0 and call.get("error") else "")
    else:
        head = f"signal {ex.get('signal')}"
    cpu = f" (cpu {float(ex['cpu_s']):.2f} s)" if isinstance(ex.get("cpu_s"), (int, float)) else ""
    return f"{head} · {float(ex.get('duration_s') or 0):.2f} s{cpu}", str(ex.get("stderr") or "")


__all__ = ["SftPair", "TraceRecord", "accepted_step", "attempt_messages", "execution_status", "last_verdict", "prompts_for", "sft_pair",
           "step_check_counts", "tool_call_parts", "trace_record"]

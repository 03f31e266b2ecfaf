"""The annotation graph's data: one question's state, the record of each model call, and the statuses.

Read this before the graph code (the layout of langchain-ai/react-agent's ``state.py``): every field
is documented where it is declared. A question's state is checkpointed after every node and its
final value becomes the question's line in ``traces.jsonl`` (:mod:`scireflect.rundata.records`), so
every value here is plain JSON (dicts, lists, strings, numbers): no objects, nothing that a
checkpoint would have to import to read back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from ..agents.names import Role

Stage = Literal["cot", "reflection", "answer_guided"]
"""Where an attempt came from: the Solver's chain of thought (``cot``), a critique-and-revise round
(``reflection``), or a revision that was shown the reference answer (``answer_guided``, STaR's
rationalization: such traces know the answer and are marked so they can be filtered)."""

STAGES: tuple[Stage, ...] = ("cot", "reflection", "answer_guided")

Strategy = Literal["cot", "reflect", "resample", "program", "answer_guided"]
"""How an attempt is made: ``cot`` (the Solver's chain of thought: always the first attempt),
``reflect`` (the Critic reviews the last attempt with the verifier's evidence, then the Reviser
rewrites it: graph nodes ``critique`` -> ``revise``), ``resample`` (a fresh Solver attempt at
:data:`~scireflect.graphs.budget.RESAMPLE_TEMPERATURE`, told which answers already failed, not shown any earlier text: node
``resample``), ``program`` (program of thought: a fresh Solver attempt that writes Python, run in
the code sandbox, and reads its output: node ``program``; skipped where the sandbox is not
available), ``answer_guided`` (the Reviser is shown the reference answer and derives it: node
``answer_guided``; only as the last strategy). The order is ``Budget.strategy`` (:class:`~scireflect.graphs.budget.Budget`)."""

STRATEGIES: tuple[Strategy, ...] = ("cot", "reflect", "resample", "program", "answer_guided")

Status = Literal["running", "accepted", "rejected", "invalid", "error", "unverified"]
"""A question's status: ``running`` until the loop ends, then one of :data:`FINAL_STATUSES`."""

FINAL_STATUSES: tuple[Status, ...] = ("accepted", "rejected", "invalid", "error", "unverified")
"""How a question can end: ``accepted`` (an attempt matched the reference answer), ``rejected`` (the
budget or the loop ran out), ``invalid`` (the budget or the loop ran out and the last attempt was
not a usable one: cut off by the token limit, a loop, a text that contradicts its box; the verdict
reason ``invalid``), ``error`` (the endpoint failed or refused the question's request),
``unverified`` (a formal proof that no Lean toolchain could check)."""

ErrorKind = Literal["transport", "request"]
"""For ``error``: ``transport`` (the endpoint kept failing: retried, then given up) or ``request``
(the endpoint refused this question's request, e.g. HTTP 400 context too long)."""

class BudgetStop(TypedDict):
    """Which per-question limit ended the loop (see :class:`~scireflect.graphs.budget.Budget`)."""

    limit: Literal["attempts", "tokens", "seconds"]
    """The limit that ran out."""
    used: float
    """What the question had used of it: attempts, tokens (prompt + completion) or seconds."""
    allowed: float
    """The budget's value for that limit."""


class Sample(TypedDict):
    """One more independent sample of an attempt's prompt (``k_sample`` multiple choice, the ``confirm`` node)."""

    response: str
    """The sample's text (empty when the call failed)."""
    parsed_answer: str | None
    """The final answer the verifier extracted, or ``None``."""
    verdict: dict[str, Any] | None
    """The verifier's verdict of the sample (the same check as the attempt's)."""
    input_tokens: int
    output_tokens: int
    discarded_tokens: int
    latency_s: float
    """Wall-clock seconds of the call."""
    finish_reason: str | None
    temperature: float
    """The sampling temperature of the call."""
    model: str | None
    started_at: str
    error: str | None
    """Why the call failed, or ``None``."""


class Step(TypedDict):
    """One model call of a question, as kept in the state and in ``traces.jsonl``."""

    index: int
    """0-based position in the question's steps (the reducer replaces a step with the same index)."""
    role: Role
    """Who was called: ``solver``, ``critic`` or ``reviser``."""
    stage: Stage
    """The stage this call belongs to (critiques belong to ``reflection``)."""
    attempt: int
    """1-based number of the solution attempt; a critique carries the number of the attempt it reviews."""
    kind: Literal["solution", "critique"]
    """``solution`` (an attempt the verifier judges) or ``critique``."""
    messages: list[dict[str, Any]]
    """The prompt as sent: ``[{"role": "system"|"user"|"assistant"|"tool", "content": str}, ...]``."""
    response: str
    """The reply's text (empty when the call failed)."""
    input_tokens: int
    """Prompt tokens of the call (every round of a tool loop), as the endpoint reported them."""
    output_tokens: int
    """Completion tokens of the call, as reported (for a call cut part-way: the tokens it had streamed)."""
    discarded_tokens: int
    """Completion tokens of tries that failed part-way (a timeout, a dropped stream): spent, not kept."""
    tokens_estimated: bool
    """True when the endpoint reported no usage and the counts are estimates (4 characters a token)."""
    latency_s: float
    """Wall-clock seconds of the call (tool executions included; failed tries are in ``transport_failures``)."""
    model: str | None
    """The model name the endpoint reported, else the configured one."""
    finish_reason: str | None
    """``stop``, ``length`` (cut by ``max_tokens``), ``tool_calls``, ... as reported; ``cut`` when the
    time budget stopped the call part-way."""
    started_at: str
    """When the call started (ISO 8601, UTC, seconds)."""
    error: str | None
    """Why the call failed, or ``None``."""
    transport_failures: list[dict[str, Any]]
    """Each failed try before the call succeeded or gave up: ``kind``, ``error``, ``status``, ``seconds``, ``wait_s``."""
    tool_calls: list[dict[str, Any]]
    """Tool calls made during the call (tools on): ``round``, ``id``, ``name``, ``args``, ``result``, ``error``."""
    parsed_answer: str | None
    """Solutions: the final answer the verifier extracted, or ``None``."""
    verdict: dict[str, Any] | None
    """Solutions: the verifier's verdict (:meth:`scireflect.verifiers.base.Verdict.to_dict`), once judged."""
    strategy: NotRequired[Strategy]
    """Solutions: the strategy that made the attempt (:data:`Strategy`): ``cot``, ``reflect``,
    ``resample``, ``program`` or ``answer_guided``; critiques carry ``reflect``. Absent in traces and checkpoints
    made before strategies were data (there the stage says it: ``reflection`` is ``reflect``)."""
    repeated: NotRequired[int | None]
    """Solutions: the attempt number of an earlier failed attempt whose final answer this one's equals
    (by the verifier's equivalence: see the ``verify`` node), or ``None``; set with the verdict. After
    a repeated answer :func:`~scireflect.graphs.budget.decide` does not ``reflect`` again."""
    repeat_check_s: NotRequired[float]
    """Solutions: seconds the repeat check took (the verifier's equivalence with each earlier wrong
    answer; counted in the step's seconds, as verifier time)."""
    loop_saved_tokens: NotRequired[int]
    """A call stopped while streaming because its reply had fallen into a loop (``finish_reason``
    ``loop``): the completion tokens it did not spend, ``max_tokens`` minus those streamed (0 when the
    model's ``max_tokens`` is unknown). Absent on other calls."""
    samples: NotRequired[list[Sample]]
    """A ``k_sample`` attempt the verifier accepted: the k-1 more samples of its prompt that ``confirm``
    drew (each verified); its ``verdict`` is then ``sample_disagreement`` unless every sample picked the
    correct letter. Absent until drawn (and on every other step)."""
    judge: NotRequired[dict[str, Any]]
    """The model reviewer's finding on this accepted attempt (``[judge] mode`` ``flag``/``gate``;
    :func:`~scireflect.graphs.nodes.judge_attempt`): ``step`` (earliest wrong step, 0 none, ``None``
    no verdict), ``text``, ``why``, ``model``, tokens and ``latency_s`` (counted in the step's)."""


def merge_steps(left: list[Step] | None, right: list[Step] | None) -> list[Step]:
    """LangGraph reducer of ``steps``: append new steps, replace a step whose ``index`` exists.

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
    """The state of one question in the annotation (or formal-proof) graph; one thread per question."""

    question: dict[str, Any]
    """The question row: ``id``, ``question``, ``answer`` (the reference answer), ``subject``, ... (see
    :mod:`scireflect.rundata.questions`)."""
    variant: str
    """The prompt variant: ``math``, ``physics``, ``chemistry`` or ``general``."""
    steps: Annotated[list[Step], merge_steps]
    """Every model call and verdict, in order."""
    status: Status
    """``running`` until the loop ends; then how it ended."""
    stop_reason: str | None
    """Why the loop ended, in words: ``accepted``, ``budget: attempts (4)``, ``reflection failed (2 rounds)``, ..."""
    budget_stop: BudgetStop | None
    """Set when a budget limit ended the loop (``status`` is then ``rejected``, or ``invalid`` when the
    last attempt was invalid)."""
    accepted_stage: Stage | None
    """The stage of the accepted attempt."""
    error_kind: ErrorKind | None
    """Set when ``status`` is ``error``."""
    route: str | None
    """Where the loop goes after ``verify`` (or ``confirm``): ``confirm``, ``critique``, ``answer_guided``
    or ``end``; decided once, by :func:`scireflect.graphs.budget.decide`, in the ``verify`` node."""
    mc_path: str | None
    """Multiple choice (:func:`scireflect.verifiers.answer.options.mc_path`, set by ``solve``):
    ``options_free`` (every attempt sees the stem without the options and derives a value, which the
    verifier maps to an option), ``k_sample`` (an accepted attempt needs k independent samples that all
    pick the correct letter); ``None`` for any other question."""


def initial_state(question: Mapping[str, Any], variant: str) -> AnnotationState:
    """The graph input for one question (``question`` is copied)."""
    return {"question": dict(question), "variant": variant, "steps": [], "status": "running", "stop_reason": None,
            "budget_stop": None, "accepted_stage": None, "error_kind": None, "route": None, "mc_path": None}


def solution_steps(steps: Iterable[Mapping[str, Any]]) -> list[Any]:
    """The ``kind == "solution"`` steps, in order (Solver and Reviser attempts)."""
    return [s for s in steps if s.get("kind", "solution") == "solution"]


_STRATEGY_OF_STAGE: dict[str, Strategy] = {"cot": "cot", "reflection": "reflect", "answer_guided": "answer_guided"}

FRESH_STRATEGIES: tuple[Strategy, ...] = ("resample", "program")
"""The strategies of a fresh attempt after the first: stage ``cot`` (no earlier text or reference
shown), told apart from the first chain of thought only by their ``strategy``."""


def strategy_of(step: Mapping[str, Any]) -> Strategy:
    """The strategy that made ``step``: its ``strategy``, or, for steps recorded before strategies were
    data, the one of its stage (``reflection`` -> ``reflect``). A trace file is untrusted: a field that is
    not text counts as absent (an unknown stage as ``cot``)."""
    strategy, stage = step.get("strategy"), step.get("stage", "cot")
    if strategy and isinstance(strategy, str):
        return strategy  # type: ignore[return-value]
    return _STRATEGY_OF_STAGE.get(stage, "cot") if isinstance(stage, str) else "cot"


def attempt_notes(step: Mapping[str, Any]) -> list[str]:
    """What an attempt's ``stage`` does not say, for a trace's display: its strategy when it is a fresh
    attempt after the first (``resample``, ``program``: stage ``cot``), and ``repeats attempt N``."""
    notes = [str(step["strategy"])] if step.get("strategy") in FRESH_STRATEGIES else []
    if step.get("repeated"):
        notes.append(f"repeats attempt {step['repeated']}")
    return notes


def step_tokens(step: Mapping[str, Any]) -> int:
    """Prompt + completion tokens of one step, discarded tries' completion tokens included, and those
    of its samples (``confirm``) and of the model reviewer's call on it (``judge``)."""
    own = int(step.get("input_tokens") or 0) + int(step.get("output_tokens") or 0) + int(step.get("discarded_tokens") or 0)
    judge = step.get("judge") or {}
    own += int(judge.get("input_tokens") or 0) + int(judge.get("output_tokens") or 0)
    return own + sum(step_tokens(s) for s in step.get("samples") or ())


def step_seconds(step: Mapping[str, Any]) -> float:
    """Seconds of one step: the model call's latency plus its verifier checks' (the answer's, the repeat
    check's), and its samples'."""
    own = (float(step.get("latency_s") or 0.0) + float((step.get("verdict") or {}).get("elapsed_s") or 0.0)
           + float(step.get("repeat_check_s") or 0.0) + float((step.get("judge") or {}).get("latency_s") or 0.0))
    return own + sum(step_seconds(s) for s in step.get("samples") or ())


def total_tokens(steps: Iterable[Mapping[str, Any]]) -> int:
    """Prompt + completion tokens over ``steps``: the one place tokens are totalled."""
    return sum(step_tokens(s) for s in steps)


def total_seconds(steps: Iterable[Mapping[str, Any]]) -> float:
    """Model and verifier seconds over ``steps``: the one place time is totalled."""
    return sum(step_seconds(s) for s in steps)


__all__ = [
    "strategy_of",
    "FRESH_STRATEGIES",
    "FINAL_STATUSES",
    "Sample",
    "STAGES",
    "AnnotationState",
    "BudgetStop",
    "ErrorKind",
    "STRATEGIES",
    "attempt_notes",
    "Stage",
    "Status",
    "Strategy",
    "Step",
    "initial_state",
    "merge_steps",
    "solution_steps",
    "step_seconds",
    "step_tokens",
    "total_seconds",
    "total_tokens",
]

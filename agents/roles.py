"""The Solver, Critic and Reviser: chat-model runnables (``prompt | chat model``) with bookkeeping.

Each :class:`Agent` pairs one prompt of :mod:`scireflect.agents.prompts` with a LangChain chat model
(normally ``langchain_openai.ChatOpenAI`` against any OpenAI-compatible endpoint; a scripted fake
model in tests) and returns an :class:`AgentReply` that records everything a trace needs: the exact
messages sent, the response text, token counts and latency.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.prompts import ChatPromptTemplate
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from ..verifiers.extract import LOOP_FINISH_REASON
from ..verifiers.repetition import MAX_PERIOD, MIN_COPIES, repeating_tail
from .figures import content_text, recorded_content
from .code_loop import CodeExecution, generate_with_code
from .names import ROLES
from .openai_chat import OpenAIStreamingChat
from .retry import BadResponseBody, EmptyCompletion, ModelCallError, RetryPolicy, describe_error, failure_kind, is_transient

NOT_RUN = "not run: limit reached"
"""The answer to a tool call past ``max_tool_rounds`` executions of one agent call (the call is not run)."""


@dataclass(frozen=True)
class AgentReply:
    """One model call, as recorded in a trace.

    Attributes:
        text: the response content (a string; empty when the model returned nothing).
        messages: the prompt as sent, ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``;
            a message with figures has a list of content parts, each figure recorded by its
            reference (sha256, path), never its bytes (:func:`~scireflect.agents.figures.recorded_content`).
        input_tokens / output_tokens: token counts reported by the endpoint; when it reports none,
            an estimate of one token per 4 characters, with ``tokens_estimated`` set.
        latency_s: wall-clock seconds of the call.
        model: the model name the endpoint reported (or the configured one).
        finish_reason: ``stop``, ``length``, ... as reported, or ``None``.
    """

    text: str
    messages: list[dict[str, Any]]
    input_tokens: int
    output_tokens: int
    latency_s: float
    model: str
    finish_reason: str | None = None
    tokens_estimated: bool = False
    failures: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """Tool calls made during this call (tools on): ``{"round", "id", "name", "args", "result", "error"}``."""
    discarded_tokens: int = 0
    """Completion tokens received in tries that failed part-way (a timeout or a dropped stream): spent,
    though their text was not kept."""
    loop_saved_tokens: int = 0
    """A reply stopped while streaming because it fell into a loop (``finish_reason`` :data:`LOOP`): the
    completion tokens not spent, the model's ``max_tokens`` minus those streamed (0 when unknown)."""


LOOP = LOOP_FINISH_REASON
"""The ``finish_reason`` of a reply stopped while streaming because it had fallen into a loop (the
verifier reads it as an ``invalid`` ``degenerate`` response)."""

LOOP_CHECK_CHARS = 512
"""While a reply streams, its tail is checked for a loop every this many characters."""

STREAM_LOOP_MIN_CHARS = 1200
"""A loop stops a streaming reply once it covers this many characters (and :data:`MIN_COPIES` copies):
stricter than the verifier's 400 (:mod:`~scireflect.verifiers.repetition`), since a reply still
streaming may yet leave a short repetition (a table, a rule of dashes)."""

_LOOP_TAIL_CHARS = MIN_COPIES * MAX_PERIOD + 1000  # enough for three copies of the longest passage


class LoopCut(Exception):
    """Raised by :meth:`CallProgress.add` when the reply streamed so far ends in a loop; the agent stops
    the call there and keeps the text (``finish_reason`` :data:`LOOP`)."""


@dataclass
class CallProgress:
    """What a model call has streamed so far; the graph reads it when it cuts a call (time budget).

    Attributes:
        started: ``time.perf_counter()`` at the start of the call.
        parts: the text chunks of the try in progress.
        tokens: completion tokens of the try in progress (one per streamed chunk with text, until
            the endpoint reports usage).
        discarded_tokens: completion tokens of earlier tries that failed part-way.
        on_update: ``on_update(kind, data)`` for live display: ``tokens`` (``{"tokens", "seconds"}``,
            at most every ``interval_s``), ``retry`` (a failed try: ``kind``, ``error``, ``wait_s``, ``try``)
            and ``tool`` (a code block ran: ``name``, ``round``, ``error``, ``seconds``).
        prefix / prefix_tokens / tool_calls: a call made of several rounds (code execution,
            :mod:`scireflect.agents.code_loop`): the message and completion tokens of the rounds
            before the one in progress, and the executions so far.
        loop_check_chars: check the try's tail for a loop (:func:`~scireflect.verifiers.repetition.repeating_tail`)
            every this many streamed characters, and raise :class:`LoopCut` on one of at least
            :data:`STREAM_LOOP_MIN_CHARS`; 0 (the default) never checks.
    """

    started: float = field(default_factory=time.perf_counter)
    parts: list[str] = field(default_factory=list)
    tokens: int = 0
    discarded_tokens: int = 0
    on_update: Callable[[str, dict[str, Any]], None] | None = None
    interval_s: float = 0.5
    prefix: str = ""
    prefix_tokens: int = 0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    loop_check_chars: int = 0
    _last_update: float = 0.0
    _open: bool = False
    _unchecked: int = 0

    @property
    def text(self) -> str:
        """The text of the call so far: earlier rounds' (``prefix``) and the try in progress (or the last try)."""
        return self.prefix + "".join(self.parts)

    def start_try(self) -> None:
        """A try starts; what an unfinished earlier try streamed is discarded (and counted as such)."""
        if self._open:
            self.discarded_tokens += self.tokens
        self.parts, self.tokens, self._open, self._unchecked = [], 0, True, 0

    def end_try(self) -> None:
        """The try in progress finished (its text is the reply)."""
        self._open = False

    def add(self, text: str) -> None:
        """One streamed chunk.

        Raises:
            LoopCut: loop checks are on (``loop_check_chars``) and the try now ends in a loop.
        """
        if text:
            self.parts.append(text)
            self.tokens += 1
            now = time.perf_counter()
            if self.on_update is not None and now - self._last_update >= self.interval_s:
                self._last_update = now
                self.on_update("tokens", {"tokens": self.tokens, "seconds": round(now - self.started, 2)})
            if self.loop_check_chars:
                self._unchecked += len(text)
                if self._unchecked >= self.loop_check_chars:
                    self._unchecked = 0
                    self._check_loop()

    def _check_loop(self) -> None:
        """Raise :class:`LoopCut` when the try's last :data:`_LOOP_TAIL_CHARS` characters end in a long loop."""
        tail, size = [], 0
        for part in reversed(self.parts):
            tail.append(part)
            size += len(part)
            if size >= _LOOP_TAIL_CHARS:
                break
        loop = repeating_tail("".join(reversed(tail)))
        if loop is not None and loop.span >= STREAM_LOOP_MIN_CHARS:
            raise LoopCut(f"a passage of {loop.period} characters repeated {loop.copies:.0f} times")

    def report(self, kind: str, data: dict[str, Any]) -> None:
        if self.on_update is not None:
            self.on_update(kind, data)


async def _stream(llm: Any, messages: list[BaseMessage], progress: CallProgress) -> Any:
    """One try: stream the reply, chunk by chunk, into ``progress``; returns the merged message.

    Streaming makes the client's timeout a timeout on silence (the read timeout between chunks), so a
    long generation that keeps producing tokens is never cut by it. An :class:`OpenAIStreamingChat`
    streams through its own lean event reader; any other LangChain chat model through ``astream``. A model without streaming
    support yields its whole reply as one message, returned as it is.
    """
    if isinstance(llm, OpenAIStreamingChat):  # the lean client: one AIMessage per call, not one per chunk
        return await llm.astream_reply(_wire(messages), progress.add)
    merged = None
    try:
        async for chunk in llm.astream(messages):
            if not isinstance(chunk, AIMessageChunk):
                return chunk
            merged = chunk if merged is None else merged + chunk
            progress.add(_text(chunk))
    except ValueError as exc:
        if "No generation chunks" in str(exc):  # langchain-core: the body held no stream event at all
            raise BadResponseBody("the endpoint's reply held no completion chunk (not an event stream?)") from None
        raise
    if merged is None:
        raise EmptyCompletion("the endpoint streamed no reply")
    return merged


_ROLE_NAMES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}


def _wire(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    """The messages as the endpoint receives them (OpenAI chat format; ``image_url`` parts keep their data URLs)."""
    return [{"role": _ROLE_NAMES.get(m.type, m.type), "content": m.content} for m in messages]


def _as_dicts(messages: list[BaseMessage], figures: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The messages as a trace records them; ``figures`` maps each attached data URL to its reference."""
    return [{"role": _ROLE_NAMES.get(m.type, m.type),
             "content": m.content if isinstance(m.content, str) else recorded_content(m.content, figures)} for m in messages]


def _text(message: Any) -> str:
    """The text of a reply (string content, or the text parts of content blocks)."""
    return content_text(getattr(message, "content", message))


class Agent:
    """A role (``solver``, ``critic`` or ``reviser``): a prompt template and a chat model.

    Args:
        role: one of :data:`ROLES`.
        llm: any LangChain chat model (``ChatOpenAI``, a fake chat model in tests).
        model_name: the name recorded in traces when the endpoint reports none.
        llm_for_affinity: ``with llm_for_affinity(llm, affinity) as call_llm:`` gives the model for
            one call of an affinity key (a question id), e.g. with request options of its endpoint,
            and learns when the call ends; see :meth:`ainvoke`. ``None``: every call uses ``llm``.
    """

    def __init__(self, role: str, llm: BaseChatModel, model_name: str, retry: RetryPolicy | None = None,
                 tools: list[Any] | None = None, max_tool_rounds: int = 4, code_execution: CodeExecution | None = None,
                 llm_for_affinity: Callable[[BaseChatModel, str], AbstractContextManager[BaseChatModel]] | None = None):
        if role not in ROLES:
            raise ValueError(f"unknown role '{role}'; expected one of {ROLES}")
        if tools and code_execution is not None:
            raise ValueError(f"{role}: tool calling and plain-text code execution cannot be combined in one agent")
        self.role = role
        self.llm = llm
        self.model_name = model_name
        self.retry = retry or RetryPolicy()
        self.tools = list(tools or [])
        self.max_tool_rounds = int(max_tool_rounds)
        self.llm_for_affinity = llm_for_affinity
        self.code_execution = code_execution

    def with_tools(self, tools: list[Any], max_tool_rounds: int = 4) -> Agent:
        """A copy of this agent whose model is bound to its tools and ``tools`` (``llm.bind_tools``).

        Each :meth:`ainvoke` then runs "model -> tools -> model" (a LangGraph ``ToolNode`` executes
        the calls) for at most ``max_tool_rounds`` tool executions in all, however the model groups
        them: calls past the cap (e.g. 12 parallel calls in one reply) are answered
        :data:`NOT_RUN` without running, and once the cap is spent the model gets one last call
        without tools and must answer.
        """
        return self._copy(tools=[*self.tools, *tools], max_tool_rounds=max_tool_rounds)

    def with_code_execution(self, settings: CodeExecution) -> Agent:
        """A copy of this agent that runs the ```python blocks it writes in the sandbox and reads their
        output before it goes on (:func:`scireflect.agents.code_loop.generate_with_code`).

        Raises:
            ValueError: the agent calls tools (one call cannot mix the two forms).
        """
        return self._copy(code_execution=settings)

    def without_tools(self) -> Agent:
        """A copy of this agent that calls no tool (e.g. to run plain-text code instead)."""
        return self._copy(tools=[])

    def with_temperature(self, temperature: float) -> Agent:
        """A copy of this agent whose calls sample at ``temperature`` (e.g. the independent samples that
        confirm a multiple-choice answer): the lean client sends it in the request body, a LangChain
        chat model with a ``temperature`` field is copied with it, any other model gets it bound as a
        call option (``llm.bind(temperature=...)``).
        """
        llm = self.llm
        if isinstance(llm, OpenAIStreamingChat):
            sampled: Any = llm.with_extra_body({"temperature": temperature})
        elif "temperature" in getattr(type(llm), "model_fields", {}):
            sampled = llm.model_copy(update={"temperature": temperature})
        else:
            sampled = llm.bind(temperature=temperature)
        return self._copy(llm=sampled)

    def _copy(self, **changes: Any) -> Agent:
        """This agent with some of its settings changed (the constructor checks the result again)."""
        settings = {"llm": self.llm, "retry": self.retry, "tools": self.tools, "max_tool_rounds": self.max_tool_rounds,
                    "code_execution": self.code_execution, "llm_for_affinity": self.llm_for_affinity, **changes}
        return Agent(self.role, model_name=self.model_name, **settings)

    async def _call_with_retries(self, messages: list[BaseMessage], llm: Any, progress: CallProgress) -> tuple[Any, float, list[dict[str, Any]]]:
        """One model call, streamed, with tenacity retries of transient faults; each failed try is recorded.

        Returns ``(response, seconds of the successful try, failures)``. An empty completion on the
        last try is returned as it is (the verifier then says ``no_answer``).

        Raises:
            ModelCallError: every try failed with a transient fault.
            Exception: a non-transient error, at once.
        """
        failures: list[dict[str, Any]] = []
        last: dict[str, Any] = {}

        async def attempt() -> Any:
            progress.start_try()
            last["started"] = time.perf_counter()
            try:
                response = await _stream(llm, messages, progress)
            except LoopCut:  # stop generating: the text so far is the reply, its tokens estimated
                response = AIMessage(content="".join(progress.parts), response_metadata={"finish_reason": LOOP})
            progress.end_try()
            last["response"] = response
            if not getattr(response, "tool_calls", None) and not _text(response).strip():
                raise EmptyCompletion("the endpoint returned an empty completion")
            return response

        def record(retry_state: RetryCallState, wait: float | None = None) -> None:
            exc = retry_state.outcome.exception()
            wait = retry_state.upcoming_sleep if wait is None else wait
            failure = {"kind": failure_kind(exc), "error": describe_error(exc), "status": getattr(exc, "status_code", None),
                       "seconds": round(time.perf_counter() - last["started"], 4), "wait_s": round(wait, 4),
                       "output_tokens": progress.tokens}
            failures.append(failure)
            progress.report("retry", {**failure, "try": len(failures), "tries": self.retry.max_retries + 1})

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.max_retries + 1),
            wait=self.retry.wait,
            retry=retry_if_exception(is_transient),
            before_sleep=record,
            retry_error_callback=lambda state: state,
            reraise=False,
        )
        outcome = await retrying(attempt)
        if not isinstance(outcome, RetryCallState):
            return outcome, time.perf_counter() - last["started"], failures
        exc = outcome.outcome.exception()
        record(outcome, wait=0.0)  # the last try: no wait after it
        if isinstance(exc, EmptyCompletion) and "response" in last:
            return last["response"], time.perf_counter() - last["started"], failures
        raise ModelCallError(f"{self.role} call failed after {len(failures)} tries: {describe_error(exc)}", failures) from exc

    async def ainvoke(self, prompt: ChatPromptTemplate, variables: Mapping[str, Any], progress: CallProgress | None = None,
                      affinity: str | None = None) -> AgentReply:
        """Format ``prompt`` with ``variables``, call the model (streamed, retrying transient faults), record it.

        ``prompt`` is a ``ChatPromptTemplate``, or a :class:`~scireflect.agents.prompts.FigurePrompt`
        whose figures go to the model as ``image_url`` parts and into the record as references.

        ``latency_s`` of the reply is the successful try's; the failed tries are in ``failures``
        (error, HTTP status, seconds, wait before the next try, tokens streamed before the failure).
        ``progress`` (optional) follows the call as it streams, for live display and for the graph
        to keep what a call it cuts had produced. ``affinity`` (a question id) selects the model of
        ``llm_for_affinity`` for this call only.

        Raises:
            ModelCallError: every try failed with a transient fault.
            openai.APIStatusError and others: non-transient errors (400, 401, 403, 404, ...), at once;
            the graph decides which end a question and which stop the run.
        """
        if affinity is not None and self.llm_for_affinity is not None:
            with self.llm_for_affinity(self.llm, affinity) as llm:
                return await self._copy(llm=llm, llm_for_affinity=None).ainvoke(prompt, variables, progress)
        messages = prompt.format_messages(**variables)
        sent = _as_dicts(messages, getattr(prompt, "image_refs", None))
        progress = progress if progress is not None else CallProgress()
        # a loop is cut while it streams, on plain calls (a tool or code round's text is not one reply)
        progress.loop_check_chars = LOOP_CHECK_CHARS if self.code_execution is None and not self.tools else 0
        if self.code_execution is not None:
            turn = await generate_with_code(self._call_with_retries, self.llm, list(messages), progress, self.code_execution)
            response, latency, failures, tool_calls, text = turn.response, turn.latency_s, turn.failures, turn.tool_calls, turn.text
            input_tokens, output_tokens, estimated = turn.input_tokens, turn.output_tokens, turn.tokens_estimated
        else:
            if self.tools:
                response, latency, failures, tool_calls, in_tok, out_tok = await self._tool_loop(list(messages), progress)
            else:
                response, latency, failures = await self._call_with_retries(messages, self.llm, progress)
                tool_calls, in_tok, out_tok = [], 0, 0
            text = _text(response)
            usage = getattr(response, "usage_metadata", None) or {}
            estimated = not usage
            input_tokens = in_tok + (int(usage.get("input_tokens", 0)) if usage else sum(len(content_text(m["content"])) for m in sent) // 4)
            output_tokens = out_tok + (int(usage.get("output_tokens", 0)) if usage else max(progress.tokens, len(text) // 4))
        meta = getattr(response, "response_metadata", None) or {}
        saved = 0
        if meta.get("finish_reason") == LOOP:
            limit = getattr(self.llm, "max_tokens", None)
            saved = max(0, int(limit) - output_tokens) if isinstance(limit, int) else 0
        model = meta.get("model_name") or self.model_name
        if not isinstance(model, str) or model in ("", "0"):
            model = self.model_name
        return AgentReply(
            text=text,
            messages=sent,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            latency_s=latency,
            model=model,
            finish_reason=meta.get("finish_reason"),
            tokens_estimated=estimated,
            failures=failures,
            tool_calls=tool_calls,
            discarded_tokens=progress.discarded_tokens,
            loop_saved_tokens=saved,
        )

    async def _tool_loop(self, messages: list[BaseMessage], progress: CallProgress):
        """model -> ToolNode -> model ..., at most ``max_tool_rounds`` tool executions in all.

        Returns ``(final response, latency, failures, tool_calls, input_tokens, output_tokens)``
        where the token counts are those of the intermediate (tool-calling) responses.
        """
        from langchain_core.messages import ToolMessage
        from langgraph.prebuilt import ToolNode

        bound = self.llm.bind_tools(self.tools)
        node = ToolNode(self.tools, handle_tool_errors=True)
        records: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        latency, in_tok, out_tok, executed = 0.0, 0, 0, 0
        for round_no in range(self.max_tool_rounds + 1):  # each round but the last runs >= 1 call
            left = self.max_tool_rounds - executed
            llm = bound if left > 0 else self.llm
            response, secs, fails = await self._call_with_retries(messages, llm, progress)
            latency += secs
            failures += fails
            calls = list(getattr(response, "tool_calls", None) or [])
            if not calls or left <= 0:
                return response, latency, failures, records, in_tok, out_tok
            calls, refused = calls[:left], calls[left:]
            executed += len(calls)
            usage = getattr(response, "usage_metadata", None) or {}
            in_tok += int(usage.get("input_tokens", 0))
            out_tok += int(usage.get("output_tokens", 0))
            messages.append(response)
            started = time.perf_counter()
            results = await node.ainvoke([response.model_copy(update={"tool_calls": calls})] if refused else [response])
            latency += time.perf_counter() - started
            if isinstance(results, dict):
                results = results.get("messages", [])
            by_id = {m.tool_call_id: m for m in results if isinstance(m, ToolMessage)}
            for call in calls:
                msg = by_id.get(call.get("id"))
                content = str(msg.content) if msg is not None else ""
                artifact = getattr(msg, "artifact", None)
                if isinstance(artifact, dict) and "execution" in artifact:  # the python tool: shown output + its run
                    records.append({"round": round_no + 1, "id": call.get("id"), "name": call.get("name"), "format": "calls",
                                    "args": dict(call.get("args") or {}), "result": content, "error": artifact.get("error"),
                                    "execution": artifact["execution"], "text": _text(response)})
                    continue
                failed = msg is None or getattr(msg, "status", "success") == "error" or content.startswith("error:")
                records.append({"round": round_no + 1, "id": call.get("id"), "name": call.get("name"),
                                "args": dict(call.get("args") or {}), "result": None if failed else content,
                                "error": (content or "no result") if failed else None, "text": _text(response)})
            messages.extend(results)
            for call in refused:  # every call gets its answer: a chat API wants one per tool_call id
                messages.append(ToolMessage(NOT_RUN, tool_call_id=call.get("id") or "", name=call.get("name"), status="error"))
                records.append({"round": round_no + 1, "id": call.get("id"), "name": call.get("name"),
                                "args": dict(call.get("args") or {}), "result": None, "error": NOT_RUN,
                                "text": _text(response)})
        raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class AgentTeam:
    """The three agents of the annotation loop; roles may use different models and endpoints."""

    solver: Agent
    critic: Agent
    reviser: Agent

    def with_tools(self, tools: list[Any], max_tool_rounds: int = 4, roles: tuple[str, ...] = ("solver", "critic")) -> AgentTeam:
        """A team whose ``roles`` (by default the Solver and the Critic) may also call ``tools`` (see
        :meth:`Agent.with_tools`).

        Raises:
            ValueError: ``max_tool_rounds`` < 1, or a role runs plain-text code execution.
        """
        if max_tool_rounds < 1:
            raise ValueError("max_tool_rounds must be >= 1")
        return AgentTeam(**{r: getattr(self, r).with_tools(tools, max_tool_rounds) if r in roles else getattr(self, r)
                            for r in ROLES})

    def with_code_execution(self, settings: CodeExecution, roles: tuple[str, ...] = ("solver", "reviser")) -> AgentTeam:
        """A team whose ``roles`` (by default the Solver and the Reviser) run the ```python blocks they
        write in the sandbox (see :meth:`Agent.with_code_execution`)."""
        return AgentTeam(**{r: getattr(self, r).with_code_execution(settings) if r in roles else getattr(self, r)
                            for r in ROLES})

    async def aclose(self) -> None:
        """Close the roles' model clients that hold connections (:meth:`OpenAIStreamingChat.aclose`),
        each once; other chat models are left as they are."""
        for llm in {id(a.llm): a.llm for a in (self.solver, self.critic, self.reviser)}.values():
            if isinstance(llm, OpenAIStreamingChat):
                await llm.aclose()

    @classmethod
    def from_models(cls, models: Mapping[str, tuple[BaseChatModel, str]], retry: RetryPolicy | None = None) -> AgentTeam:
        """Build a team from ``{"solver": (llm, name), "critic": ..., "reviser": ...}``."""
        return cls(**{role: Agent(role, *models[role], retry=retry) for role in ROLES})


__all__ = ["NOT_RUN", "ROLES", "Agent", "AgentReply", "AgentTeam", "CallProgress"]

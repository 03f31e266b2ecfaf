"""The Solver, Critic and Reviser: chat-model runnables (``prompt | chat model``) with bookkeeping.

Each :class:`Agent` pairs one prompt of :mod:`scireflect.agents.prompts` with a LangChain chat model
(normally ``langchain_openai.ChatOpenAI`` against any OpenAI-compatible endpoint; a scripted fake
model in tests) and returns an :class:`AgentReply` that records everything a trace needs: the exact
messages sent, the response text, token counts and latency.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Mapping

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential

from .names import ROLES


@dataclass(frozen=True)
class AgentReply:
    """One model call, as recorded in a trace.

    Attributes:
        text: the response content (a string; empty when the model returned nothing).
        messages: the prompt as sent, ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``.
        input_tokens / output_tokens: token counts reported by the endpoint; when it reports none,
            an estimate of one token per 4 characters, with ``tokens_estimated`` set.
        latency_s: wall-clock seconds of the call.
        model: the model name the endpoint reported (or the configured one).
        finish_reason: ``stop``, ``length``, ... as reported, or ``None``.
    """

    text: str
    messages: list[dict[str, str]]
    input_tokens: int
    output_tokens: int
    latency_s: float
    model: str
    finish_reason: str | None = None
    tokens_estimated: bool = False
    failures: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """Tool calls made during this call (tools on): ``{"round", "id", "name", "args", "result", "error"}``."""


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one model call on transient endpoint faults (see :func:`is_transient`).

    Waits use exponential backoff with full jitter (``uniform(0, min(max_backoff_s, initial_backoff_s
    * 2**n))``, the AWS Architecture Blog's "Exponential Backoff And Jitter"; tenacity's
    ``wait_random_exponential``), or the server's ``Retry-After`` header when it sends one (capped
    at ``max_retry_after_s``).

    Attributes:
        max_retries: retries after the first try (so ``max_retries + 1`` tries in all), >= 0.
        initial_backoff_s / max_backoff_s / max_retry_after_s: seconds.
    """

    max_retries: int = 4
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 20.0
    max_retry_after_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")

    def wait(self, retry_state: RetryCallState) -> float:
        """Seconds to wait before the next try (a tenacity ``wait`` strategy)."""
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        response = getattr(exc, "response", None)
        header = response.headers.get("retry-after") if response is not None else None
        if header:
            try:
                return min(max(float(header), 0.0), self.max_retry_after_s)
            except ValueError:
                pass  # an HTTP date: fall back to backoff
        return wait_random_exponential(multiplier=self.initial_backoff_s, max=self.max_backoff_s)(retry_state)


class ModelCallError(RuntimeError):
    """A model call failed on every try with transient faults; ``failures`` lists each try."""

    def __init__(self, message: str, failures: list[dict[str, Any]]):
        super().__init__(message)
        self.failures = failures


class EmptyCompletion(Exception):
    """The endpoint answered 200 with no content."""


_CLIENT_MODULES = ("openai", "langchain_openai", "httpx", "httpcore", "json")


def _raised_by_client(exc: BaseException) -> bool:
    """Whether ``exc`` was raised inside the HTTP/JSON client stack (a bad body), not in our code."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "") if tb is not None else ""
    return module.split(".")[0] in _CLIENT_MODULES


def is_transient(exc: BaseException) -> bool:
    """Whether a model-call exception is a transport fault worth retrying.

    Transient: connection errors and timeouts, dropped connections and truncated bodies
    (``openai.APIConnectionError``), HTTP 408, 409, 429 and 5xx, bodies that are not the expected
    JSON (``openai.APIResponseValidationError``, or a ``ValueError`` raised inside the openai /
    langchain-openai / httpx / json code that parses the body), and empty completions. Anything
    else, a ``ValueError`` from our own code included, is a bug or a refusal and is not retried.
    """
    if isinstance(exc, (openai.APIConnectionError, openai.APIResponseValidationError, EmptyCompletion)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return isinstance(exc, ValueError) and _raised_by_client(exc)


def failure_kind(exc: BaseException) -> str:
    """A short category of a failed call: ``rate_limit``, ``server_error``, ``timeout``,
    ``connection``, ``bad_body``, ``empty``, or ``http_<status>``."""
    if isinstance(exc, EmptyCompletion):
        return "empty"
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code == 429:
            return "rate_limit"
        return "server_error" if exc.status_code >= 500 else f"http_{exc.status_code}"
    return "bad_body"


def describe_error(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 300 characters)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300]


_ROLE_NAMES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}


def _as_dicts(messages: list[BaseMessage]) -> list[dict[str, str]]:
    return [{"role": _ROLE_NAMES.get(m.type, m.type), "content": str(m.content)} for m in messages]


def _text(message: Any) -> str:
    """The text of a reply (string content, or the text parts of content blocks)."""
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    # Content blocks (list of dicts/strings): keep the text parts.
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


class Agent:
    """A role (``solver``, ``critic`` or ``reviser``): a prompt template and a chat model.

    Args:
        role: one of :data:`ROLES`.
        llm: any LangChain chat model (``ChatOpenAI``, a fake chat model in tests).
        model_name: the name recorded in traces when the endpoint reports none.
    """

    def __init__(self, role: str, llm: BaseChatModel, model_name: str, retry: RetryPolicy | None = None,
                 tools: list[Any] | None = None, max_tool_rounds: int = 4):
        if role not in ROLES:
            raise ValueError(f"unknown role '{role}'; expected one of {ROLES}")
        self.role = role
        self.llm = llm
        self.model_name = model_name
        self.retry = retry or RetryPolicy()
        self.tools = list(tools or [])
        self.max_tool_rounds = int(max_tool_rounds)

    def with_tools(self, tools: list[Any], max_tool_rounds: int = 4) -> Agent:
        """A copy of this agent whose model is bound to ``tools`` (``llm.bind_tools``).

        Each :meth:`ainvoke` then runs "model -> tools -> model" (a LangGraph ``ToolNode`` executes
        the calls) for at most ``max_tool_rounds`` rounds; a model still calling tools after that
        gets one last call without tools and must answer.
        """
        return Agent(self.role, self.llm, self.model_name, self.retry, tools=tools, max_tool_rounds=max_tool_rounds)

    async def _call_with_retries(self, messages: list[BaseMessage], llm: Any = None) -> tuple[Any, float, list[dict[str, Any]]]:
        """One model call with tenacity retries of transient faults; each failed try is recorded.

        Returns ``(response, seconds of the successful try, failures)``. An empty completion on the
        last try is returned as it is (the verifier then says ``no_answer``).

        Raises:
            ModelCallError: every try failed with a transient fault.
            Exception: a non-transient error, at once.
        """
        llm = llm if llm is not None else self.llm
        failures: list[dict[str, Any]] = []
        last: dict[str, Any] = {}

        async def attempt() -> Any:
            started = time.perf_counter()
            last["started"] = started
            response = await llm.ainvoke(messages)
            last["response"] = response
            if not getattr(response, "tool_calls", None) and not _text(response).strip():
                raise EmptyCompletion("the endpoint returned an empty completion")
            return response

        def record(retry_state: RetryCallState, wait: float | None = None) -> None:
            exc = retry_state.outcome.exception()
            wait = retry_state.upcoming_sleep if wait is None else wait
            failures.append({"kind": failure_kind(exc), "error": describe_error(exc), "status": getattr(exc, "status_code", None),
                             "seconds": round(time.perf_counter() - last["started"], 4), "wait_s": round(wait, 4)})

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
        if isinstance(exc, EmptyCompletion):
            return last["response"], time.perf_counter() - last["started"], failures
        raise ModelCallError(f"{self.role} call failed after {len(failures)} tries: {describe_error(exc)}", failures) from exc

    async def ainvoke(self, prompt: ChatPromptTemplate, variables: Mapping[str, Any]) -> AgentReply:
        """Format ``prompt`` with ``variables``, call the model (retrying transient faults), record it.

        ``latency_s`` of the reply is the successful try's; the failed tries are in ``failures``
        (error, HTTP status, seconds, wait before the next try).

        Raises:
            ModelCallError: every try failed with a transient fault.
            openai.APIStatusError and others: non-transient errors (400, 401, 403, 404, ...), at once;
            the graph decides which end a question and which stop the run.
        """
        messages = prompt.format_messages(**variables)
        sent = _as_dicts(messages)
        if self.tools:
            response, latency, failures, tool_calls, in_tok, out_tok = await self._tool_loop(list(messages))
        else:
            response, latency, failures = await self._call_with_retries(messages)
            tool_calls, in_tok, out_tok = [], 0, 0
        text = _text(response)
        usage = getattr(response, "usage_metadata", None) or {}
        meta = getattr(response, "response_metadata", None) or {}
        estimated = not usage
        input_tokens = in_tok + (int(usage.get("input_tokens", 0)) if usage else sum(len(m["content"]) for m in sent) // 4)
        output_tokens = out_tok + (int(usage.get("output_tokens", 0)) if usage else len(text) // 4)
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
        )

    async def _tool_loop(self, messages: list[BaseMessage]):
        """model -> ToolNode -> model ..., at most ``max_tool_rounds`` tool rounds.

        Returns ``(final response, latency, failures, tool_calls, input_tokens, output_tokens)``
        where the token counts are those of the intermediate (tool-calling) responses.
        """
        from langchain_core.messages import ToolMessage
        from langgraph.prebuilt import ToolNode

        bound = self.llm.bind_tools(self.tools)
        node = ToolNode(self.tools, handle_tool_errors=True)
        records: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        latency, in_tok, out_tok = 0.0, 0, 0
        for round_no in range(self.max_tool_rounds + 1):
            llm = bound if round_no < self.max_tool_rounds else self.llm
            response, secs, fails = await self._call_with_retries(messages, llm)
            latency += secs
            failures += fails
            calls = list(getattr(response, "tool_calls", None) or [])
            if not calls or round_no == self.max_tool_rounds:
                return response, latency, failures, records, in_tok, out_tok
            usage = getattr(response, "usage_metadata", None) or {}
            in_tok += int(usage.get("input_tokens", 0))
            out_tok += int(usage.get("output_tokens", 0))
            messages.append(response)
            started = time.perf_counter()
            results = await node.ainvoke([response])
            latency += time.perf_counter() - started
            if isinstance(results, dict):
                results = results.get("messages", [])
            by_id = {m.tool_call_id: m for m in results if isinstance(m, ToolMessage)}
            for call in calls:
                msg = by_id.get(call.get("id"))
                content = str(msg.content) if msg is not None else ""
                failed = msg is None or getattr(msg, "status", "success") == "error" or content.startswith("error:")
                records.append({"round": round_no + 1, "id": call.get("id"), "name": call.get("name"),
                                "args": dict(call.get("args") or {}), "result": None if failed else content,
                                "error": (content or "no result") if failed else None})
            messages.extend(results)
        raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class AgentTeam:
    """The three agents of the annotation loop; roles may use different models and endpoints."""

    solver: Agent
    critic: Agent
    reviser: Agent

    def with_tools(self, tools: list[Any], max_tool_rounds: int = 4) -> AgentTeam:
        """A team whose Solver and Critic may call ``tools`` (see :meth:`Agent.with_tools`); the
        Reviser never gets tools.

        Raises:
            ValueError: ``max_tool_rounds`` < 1.
        """
        if max_tool_rounds < 1:
            raise ValueError("max_tool_rounds must be >= 1")
        return AgentTeam(solver=self.solver.with_tools(tools, max_tool_rounds),
                         critic=self.critic.with_tools(tools, max_tool_rounds), reviser=self.reviser)

    @classmethod
    def from_models(cls, models: Mapping[str, tuple[BaseChatModel, str]], retry: RetryPolicy | None = None) -> AgentTeam:
        """Build a team from ``{"solver": (llm, name), "critic": ..., "reviser": ...}``."""
        return cls(**{role: Agent(role, *models[role], retry=retry) for role in ROLES})


__all__ = ["ROLES", "Agent", "AgentReply", "AgentTeam", "ModelCallError", "RetryPolicy", "describe_error", "is_transient"]

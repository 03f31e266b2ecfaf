"""The Solver, Critic and Reviser: chat-model runnables (``prompt | chat model``) with bookkeeping.

Each :class:`Agent` pairs one prompt of :mod:`scireflect.agents.prompts` with a LangChain chat model
(normally ``langchain_openai.ChatOpenAI`` against any OpenAI-compatible endpoint; a scripted fake
model in tests) and returns an :class:`AgentReply` that records everything a trace needs: the exact
messages sent, the response text, token counts and latency.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Mapping

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.prompts import ChatPromptTemplate



ROLES = ("solver", "critic", "reviser")


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
    """Retries of one model call on transient endpoint faults.

    Transient: connection errors and timeouts, dropped connections and truncated bodies, HTTP 429,
    408, 409 and 5xx, bodies that are not the expected JSON, and empty completions. Waits use
    exponential backoff with full jitter (``uniform(0, min(max_backoff_s, initial_backoff_s * 2**n))``,
    as in the AWS Architecture Blog's "Exponential Backoff And Jitter"), or the server's
    ``Retry-After`` header when it sends one (capped at ``max_retry_after_s``).

    Attributes:
        max_retries: retries after the first try (so ``max_retries + 1`` tries in all).
        initial_backoff_s / max_backoff_s / max_retry_after_s: seconds.
    """

    max_retries: int = 4
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 20.0
    max_retry_after_s: float = 60.0

    def backoff(self, retry: int, exc: BaseException | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (0-based) after ``exc``."""
        response = getattr(exc, "response", None)
        header = response.headers.get("retry-after") if response is not None else None
        if header:
            try:
                return min(max(float(header), 0.0), self.max_retry_after_s)
            except ValueError:
                pass  # an HTTP date: fall back to backoff
        return rng.uniform(0.0, min(self.max_backoff_s, self.initial_backoff_s * (2**retry)))


class ModelCallError(RuntimeError):
    """A model call failed on every try with transient faults; ``failures`` lists each try."""

    def __init__(self, message: str, failures: list[dict[str, Any]]):
        super().__init__(message)
        self.failures = failures


class EmptyCompletion(Exception):
    """The endpoint answered 200 with no content."""


def is_transient(exc: BaseException) -> bool:
    """Whether a model-call exception is worth retrying (see :class:`RetryPolicy`)."""
    if isinstance(exc, (openai.APIConnectionError, openai.APIResponseValidationError, EmptyCompletion, ValueError)):
        return True  # ValueError: a body that is not JSON, from the openai client's parser
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


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


def _text(message: AIMessage) -> str:
    content = message.content
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
        self._rng = random.Random()

    def with_tools(self, tools: list[Any], max_tool_rounds: int = 4) -> Agent:
        """A copy of this agent whose model is bound to ``tools`` (``llm.bind_tools``).

        Each :meth:`ainvoke` then runs "model -> tools -> model" (a LangGraph ``ToolNode`` executes
        the calls) for at most ``max_tool_rounds`` rounds; a model still calling tools after that
        gets one last call without tools and must answer.
        """
        return Agent(self.role, self.llm, self.model_name, self.retry, tools=tools, max_tool_rounds=max_tool_rounds)

    async def _call_with_retries(self, messages: list[BaseMessage], llm: Any = None) -> tuple[Any, float, list[dict[str, Any]]]:
        failures: list[dict[str, Any]] = []
        llm = llm if llm is not None else self.llm
        for retry in range(self.retry.max_retries + 1):
            started = time.perf_counter()
            try:
                response = await llm.ainvoke(messages)
                if getattr(response, "tool_calls", None):
                    return response, time.perf_counter() - started, failures
                if not (_text(response) if isinstance(response, AIMessage) else str(getattr(response, "content", ""))).strip():
                    raise EmptyCompletion("the endpoint returned an empty completion")
                return response, time.perf_counter() - started, failures
            except Exception as exc:
                if not is_transient(exc):
                    raise
                wait = self.retry.backoff(retry, exc, self._rng) if retry < self.retry.max_retries else 0.0
                status = getattr(exc, "status_code", None)
                failures.append({"kind": failure_kind(exc), "error": describe_error(exc), "status": status, "seconds": round(time.perf_counter() - started, 4),
                                 "wait_s": round(wait, 4)})
                if retry == self.retry.max_retries:
                    if isinstance(exc, EmptyCompletion):  # keep the empty answer: the verifier says no_answer
                        return response, time.perf_counter() - started, failures
                    raise ModelCallError(f"{self.role} call failed after {retry + 1} tries: {describe_error(exc)}", failures) from exc
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

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
        text = _text(response) if isinstance(response, AIMessage) else str(getattr(response, "content", response))
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

    @classmethod
    def from_models(cls, models: Mapping[str, tuple[BaseChatModel, str]], retry: RetryPolicy | None = None) -> AgentTeam:
        """Build a team from ``{"solver": (llm, name), "critic": ..., "reviser": ...}``."""
        return cls(**{role: Agent(role, *models[role], retry=retry) for role in ROLES})


__all__ = ["ROLES", "Agent", "AgentReply", "AgentTeam", "ModelCallError", "RetryPolicy", "describe_error", "is_transient"]

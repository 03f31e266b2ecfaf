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
    extra: dict[str, Any] = field(default_factory=dict)


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

    def __init__(self, role: str, llm: BaseChatModel, model_name: str):
        if role not in ROLES:
            raise ValueError(f"unknown role '{role}'; expected one of {ROLES}")
        self.role = role
        self.llm = llm
        self.model_name = model_name

    async def ainvoke(self, prompt: ChatPromptTemplate, variables: Mapping[str, Any]) -> AgentReply:
        """Format ``prompt`` with ``variables``, call the model once, and record the call.

        Raises:
            whatever the chat model raises (``openai.APIConnectionError``, ``openai.BadRequestError``,
            ...); the graph decides which errors end a question and which stop the run.
        """
        messages = prompt.format_messages(**variables)
        started = time.perf_counter()
        response = await self.llm.ainvoke(messages)
        latency = time.perf_counter() - started
        text = _text(response) if isinstance(response, AIMessage) else str(getattr(response, "content", response))
        usage = getattr(response, "usage_metadata", None) or {}
        meta = getattr(response, "response_metadata", None) or {}
        sent = _as_dicts(messages)
        estimated = not usage
        input_tokens = int(usage.get("input_tokens", 0)) if usage else sum(len(m["content"]) for m in sent) // 4
        output_tokens = int(usage.get("output_tokens", 0)) if usage else len(text) // 4
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
        )


@dataclass(frozen=True)
class AgentTeam:
    """The three agents of the annotation loop; roles may use different models and endpoints."""

    solver: Agent
    critic: Agent
    reviser: Agent

    @classmethod
    def from_models(cls, models: Mapping[str, tuple[BaseChatModel, str]]) -> AgentTeam:
        """Build a team from ``{"solver": (llm, name), "critic": ..., "reviser": ...}``."""
        return cls(**{role: Agent(role, *models[role]) for role in ROLES})


__all__ = ["ROLES", "Agent", "AgentReply", "AgentTeam"]

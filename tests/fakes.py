"""Test doubles: a scripted chat model for graph logic (no network, no model)."""

from __future__ import annotations

from typing import Any
from collections.abc import Callable, Sequence

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from scireflect.graphs.budget import Budget

REFLECTION_LOOP = Budget(max_reflections=2)
"""SciGLM's loop, cot/reflect/reflect/answer_guided: the order the scripted tests of reflection script
(the default order, cot/program/resample/answer_guided, is tested in test_strategies)."""

Reply = str | BaseException | Callable[[list[BaseMessage]], str]


class ScriptedChatModel(BaseChatModel):
    """Returns scripted replies in order; records every prompt it was sent.

    A reply may be a string, an ``AIMessage`` (e.g. with ``tool_calls``), an exception instance
    (raised), or a function of the messages returning either.
    Reports usage like an OpenAI endpoint: input tokens = characters/4, output tokens = words.
    ``bind_tools`` records the tool names in ``bound_tools`` and returns the model itself.
    Like a server, a text reply stops before the first of the call's ``stop`` sequences (unless
    ``ignore_stop``, as some endpoints do); each call's ``stop`` and other options are in ``options``.
    """

    replies: list[Any] = Field(default_factory=list)
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    options: list[dict[str, Any]] = Field(default_factory=list)
    ignore_stop: bool = False
    max_tokens: int | None = None
    bound_tools: list[str] = Field(default_factory=list)
    name_: str = "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        self.bound_tools = [getattr(t, "name", str(t)) for t in tools]
        return self

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _next(self, messages: list[BaseMessage], stop: Sequence[str] | None = None, **options: Any) -> ChatResult:
        self.calls.append(list(messages))
        self.options.append({"stop": list(stop) if stop else None, **options})
        if not self.replies:
            raise AssertionError("ScriptedChatModel: no scripted reply left")
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        text = reply(messages) if callable(reply) else reply
        prompt_chars = sum(len(str(m.content)) for m in messages)
        if isinstance(text, AIMessage):
            words = len(str(text.content).split()) + 1
            message = text.model_copy(update={
                "usage_metadata": {"input_tokens": prompt_chars // 4, "output_tokens": words, "total_tokens": prompt_chars // 4 + words},
                "response_metadata": {"model_name": self.name_, "finish_reason": "tool_calls" if text.tool_calls else "stop"},
            })
            return ChatResult(generations=[ChatGeneration(message=message)])
        for sequence in ([] if self.ignore_stop else stop or []):
            text = text.split(sequence, 1)[0]
        message = AIMessage(
            content=text,
            usage_metadata={"input_tokens": prompt_chars // 4, "output_tokens": len(text.split()), "total_tokens": prompt_chars // 4 + len(text.split())},
            response_metadata={"model_name": self.name_, "finish_reason": "stop"},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(self, messages: list[BaseMessage], stop: Sequence[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return self._next(messages, stop, **kwargs)

    async def _agenerate(self, messages: list[BaseMessage], stop: Sequence[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return self._next(messages, stop, **kwargs)

"""The annotation graph for LangGraph Studio / ``langgraph dev`` (see ``langgraph.json``).

``langgraph dev`` (``pip install "langgraph-cli[inmem]"``) loads :func:`make_graph` from this file and
serves the graph on a local LangGraph API server that Studio connects to. The model comes from the
environment, as in the ``scireflect annotate`` defaults:

``OPENAI_BASE_URL``   an OpenAI-compatible endpoint (default: OpenAI's), e.g. ``http://127.0.0.1:8000/v1``.
``OPENAI_API_KEY``    its key (a placeholder is sent when unset: local servers ignore it).
``SCIREFLECT_MODEL``  the model name at that endpoint (required).

Any of these (and ``temperature``, ``max_tokens``, ``budget`` as in ``--budget``) can be overridden
per assistant in Studio through the ``configurable`` section of the run config. Answers are checked
by :class:`scireflect.verifiers.SandboxedAnswerVerifier`. The graph input is
``{"question": {"id", "question", "answer", "subject"?, ...}, "variant": "math"}``.

Tracing: nothing is sent to LangSmith unless you turn it on yourself with LangChain's environment
variables (``LANGSMITH_TRACING=true`` and ``LANGSMITH_API_KEY``; LangChain's default behaviour).
Studio shows the graph's runs from the local server either way.

This file is loaded by path by ``langgraph dev``, so it imports scireflect by absolute name (and
does not use ``from __future__ import annotations``: a dataclass in a module loaded by path must
have evaluated annotations).
"""

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_openai import ChatOpenAI
from langgraph.config import get_config
from langgraph.graph.state import CompiledStateGraph

from scireflect.agents.prompts import ANSWER_PROMPTS
from scireflect.agents.roles import ROLES, AgentTeam
from scireflect.graphs.annotation import build_annotation_graph
from scireflect.graphs.budget import Budget
from scireflect.graphs.context import VerifyFn, verify_with
from scireflect.verifiers import SandboxedAnswerVerifier

PLACEHOLDER_API_KEY = "local"


def studio_settings(config: RunnableConfig | Mapping[str, Any] | None = None,
                    env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The model settings of the Studio graph: ``configurable`` values over environment values.

    Returns ``{"base_url", "api_key", "model", "temperature", "max_tokens", "budget"}`` where
    ``budget`` is a :class:`~scireflect.graphs.budget.Budget`.

    Raises:
        ValueError: no model name (neither ``configurable.model`` nor ``SCIREFLECT_MODEL``), or a
            bad ``budget`` string.
    """
    env = os.environ if env is None else env
    configurable = dict((config or {}).get("configurable") or {})
    model = configurable.get("model") or env.get("SCIREFLECT_MODEL")
    if not model:
        raise ValueError("set SCIREFLECT_MODEL (the model name at OPENAI_BASE_URL) or configurable.model")
    return {
        "base_url": configurable.get("base_url") or env.get("OPENAI_BASE_URL") or None,
        "api_key": env.get("OPENAI_API_KEY") or PLACEHOLDER_API_KEY,
        "model": str(model),
        "temperature": float(configurable.get("temperature", 0.2)),
        "max_tokens": int(configurable.get("max_tokens", 1536)),
        "budget": Budget.parse(str(configurable.get("budget") or "")),
    }


@dataclass(frozen=True)
class StudioContext:
    """The runtime context of the Studio graph: plain values, editable in Studio's assistant settings.

    Unset values come from the run's ``configurable`` and then the environment (:func:`studio_settings`).
    The nodes read the same ``agents``, ``verify``, ``budget`` and ``prompts`` as from an
    :class:`~scireflect.graphs.context.AnnotationContext`, built here on first use: every role on
    one ``ChatOpenAI`` model, answers checked by :class:`~scireflect.verifiers.SandboxedAnswerVerifier`.
    """

    model: str | None = None
    """The model name at the endpoint (default: ``SCIREFLECT_MODEL``)."""
    base_url: str | None = None
    """An OpenAI-compatible endpoint (default: ``OPENAI_BASE_URL``, else OpenAI's)."""
    temperature: float | None = None
    """Sampling temperature (default 0.2)."""
    max_tokens: int | None = None
    """Completion tokens per call (default 1536)."""
    budget_spec: str | None = None
    """The per-question budget as in ``--budget``, e.g. ``attempts=3,reflections=1``."""

    prompts = ANSWER_PROMPTS

    @cached_property
    def settings(self) -> dict[str, Any]:
        """:func:`studio_settings` of the run's ``configurable`` overridden by this context's values."""
        try:
            configurable = dict(get_config().get("configurable") or {})
        except RuntimeError:  # outside a run
            configurable = {}
        own = {("budget" if k == "budget_spec" else k): v for k, v in asdict(self).items() if v not in (None, "")}
        return studio_settings({"configurable": {**configurable, **own}})

    @cached_property
    def agents(self) -> AgentTeam:
        s = self.settings
        llm = ChatOpenAI(base_url=s["base_url"], api_key=s["api_key"], model=s["model"], temperature=s["temperature"],
                         max_tokens=s["max_tokens"])
        return AgentTeam.from_models({role: (llm, s["model"]) for role in ROLES})

    @cached_property
    def verify(self) -> VerifyFn:
        return verify_with(SandboxedAnswerVerifier())

    @property
    def budget(self) -> Budget:
        return self.settings["budget"]


def make_graph(config: RunnableConfig | None = None) -> CompiledStateGraph:
    """The annotation graph for Studio (no checkpointer: the LangGraph server adds its own).

    Args:
        config: the run config LangGraph passes to graph factories; ``config["configurable"]``
            may set ``model``, ``base_url``, ``temperature``, ``max_tokens``, ``budget``.

    Returns:
        :func:`~scireflect.graphs.annotation.build_annotation_graph` with :class:`StudioContext` as
        its context schema. No model is called here.

    Raises:
        ValueError: see :func:`studio_settings` (checked here, so a misconfigured server fails at start).
    """
    studio_settings(config)
    return build_annotation_graph(context_schema=StudioContext)


__all__ = ["StudioContext", "make_graph", "studio_settings"]

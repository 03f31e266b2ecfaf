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

This file is loaded by path by ``langgraph dev``, so it imports scireflect by absolute name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_openai import ChatOpenAI

from scireflect.agents.roles import ROLES, AgentTeam
from scireflect.graphs.annotation import Budget, build_annotation_graph
from scireflect.verifiers import SandboxedAnswerVerifier

PLACEHOLDER_API_KEY = "local"


def studio_settings(config: RunnableConfig | Mapping[str, Any] | None = None,
                    env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The model settings for :func:`make_graph`: ``configurable`` values over environment values.

    Returns ``{"base_url", "api_key", "model", "temperature", "max_tokens", "budget"}`` where
    ``budget`` is a :class:`~scireflect.graphs.annotation.Budget`.

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


def make_graph(config: RunnableConfig | None = None):
    """Build the compiled annotation graph for Studio (no checkpointer: the LangGraph server adds its own).

    Args:
        config: the run config LangGraph passes to graph factories; ``config["configurable"]``
            may set ``model``, ``base_url``, ``temperature``, ``max_tokens``, ``budget``.

    Returns:
        The compiled graph of :func:`scireflect.graphs.annotation.build_annotation_graph`, every role
        on one ``ChatOpenAI`` model. No model is called here.

    Raises:
        ValueError: see :func:`studio_settings`.
    """
    settings = studio_settings(config)
    llm = ChatOpenAI(
        base_url=settings["base_url"],
        api_key=settings["api_key"],
        model=settings["model"],
        temperature=settings["temperature"],
        max_tokens=settings["max_tokens"],
    )
    team = AgentTeam.from_models({role: (llm, settings["model"]) for role in ROLES})
    return build_annotation_graph(team, SandboxedAnswerVerifier(), settings["budget"])


__all__ = ["make_graph", "studio_settings"]

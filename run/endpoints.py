"""Reaching the models: the embedded llama.cpp server, OpenAI-compatible endpoints, and the agents on them.

Used by ``scireflect annotate`` and ``scireflect judge`` (:func:`open_teams`). The endpoint check is
:func:`scireflect.agents.endpoints.preflight`; the embedded model's files are chosen by
:mod:`scireflect.embedded.choice`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from langchain_openai import ChatOpenAI

from ..agents.endpoints import EndpointCheckError, preflight
from ..agents.openai_chat import OpenAIStreamingChat
from ..agents.roles import ROLES, Agent, AgentTeam, RetryPolicy
from ..rundata.errors import RunError
from ..rundata.files import SERVER_LOG
from .config import LLMSettings, RunSettings

Say = Callable[[str, Mapping[str, Any] | None], None]
"""A progress callback: ``say(kind, data)`` (see :func:`scireflect.run.runner.annotate`)."""


def chat_model(settings: LLMSettings, base_url: str, model: str, *, tools: bool = False) -> Any:
    """The chat model of one role on one endpoint: the lean :class:`OpenAIStreamingChat`, or
    ``ChatOpenAI`` when the agents call tools (``bind_tools``).

    The agent streams its calls, so ``request_timeout_s`` is httpx's read timeout between streamed
    chunks: a timeout on silence (a stalled server), never on a long generation that keeps coming.
    The agent retries, so the client does not.
    """
    if not tools:
        return OpenAIStreamingChat(base_url=base_url, model=model, api_key=settings.api_key(), temperature=settings.temperature,
                                   max_tokens=settings.max_tokens, timeout_s=settings.request_timeout_s)
    return ChatOpenAI(
        base_url=base_url,
        model=model,
        api_key=settings.api_key(),
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        timeout=settings.request_timeout_s,
        stream_usage=True,  # the final streamed chunk carries the endpoint's token counts
        max_retries=0,  # the agent retries, recording each failed try in the trace
    )


def _with_slot(affinity: Any) -> Callable[[Any, str], contextlib.AbstractContextManager[Any]]:
    """``llm_for_affinity`` of the agents on the embedded server: each call of a question carries its
    slot (``id_slot``, ``cache_prompt``) in the request body (``extra_body``); other endpoints never
    see these options."""

    @contextlib.contextmanager
    def llm_for_affinity(llm: Any, key: str) -> Iterator[Any]:
        with affinity.request_options(key) as options:
            if isinstance(llm, OpenAIStreamingChat):
                yield llm.with_extra_body(options)
            else:
                yield llm.model_copy(update={"extra_body": {**(llm.extra_body or {}), **options}})

    return llm_for_affinity


def endpoint_urls(settings: LLMSettings, embedded_url: str | None) -> list[str]:
    """The endpoints one role spreads its questions over: ``base_url`` then its replicas (or the embedded server)."""
    if settings.base_url is None:
        if embedded_url is None:
            raise RunError("the embedded model is needed but was not started")
        return [embedded_url]
    return [settings.base_url, *settings.replicas]


@contextlib.asynccontextmanager
async def open_teams(settings: RunSettings, run_dir: Path, say: Say, *,
                     images: bool = False) -> AsyncIterator[tuple[list[AgentTeam], dict[str, str]]]:
    """Start the embedded model if a role needs it, check every endpoint, and build the agents.

    Yields ``([team per replica], {role: model name})``: team ``r`` uses endpoint ``r`` of each
    role's list (cycling when a role has fewer replicas). On exit the agents' connections close and the
    embedded server stops.
    ``images``: the run sends figures, so every model must take an image (see :func:`preflight`).

    Raises:
        RunError: an endpoint fails :func:`scireflect.agents.endpoints.preflight`.
        scireflect.embedded.EmbeddedModelError: the embedded model (or a ``--gguf``/``--mmproj`` file) is missing or corrupt.
    """
    server_cm: Any = contextlib.nullcontext()
    embedded_name = affinity = None
    if settings.uses_embedded:
        from ..embedded import EmbeddedServer, ServerTuning, SlotAffinity, embedded_draft, embedded_gguf, embedded_mmproj

        say("status", {"message": f"preparing embedded model {settings.gguf_path or settings.embedded_model or 'default'}"})
        gguf, embedded_name = await embedded_gguf(settings.embedded_model, settings.gguf_path)
        mmproj = embedded_mmproj(settings.mmproj_path)
        draft = await embedded_draft(settings.speculative, embedded_name, settings.gguf_path)
        tuning = ServerTuning.for_machine(slots=settings.concurrency, threads=settings.embedded_threads)
        extras = (f", draft {draft.name}" if draft else "") + (f", projector {mmproj.name}" if mmproj else "")
        say("status", {"message": f"starting embedded llama.cpp server ({embedded_name}, {tuning.slots} slots, "
                                  f"{tuning.threads} threads{extras})"})
        server_cm = EmbeddedServer(gguf, parallel=tuning.slots, threads=tuning.threads, batch=tuning.batch, ubatch=tuning.ubatch,
                                   draft=draft, context_per_slot=8192, log_path=run_dir / SERVER_LOG, model_name=embedded_name,
                                   mmproj_path=mmproj)
        affinity = SlotAffinity(tuning.slots) if settings.slot_affinity else None
    async with server_cm as server:
        embedded_url = server.base_url if server is not None else None
        urls = {role: endpoint_urls(settings.roles[role], embedded_url) for role in ROLES}
        names = {role: (settings.roles[role].model if settings.roles[role].base_url else embedded_name) for role in ROLES}
        endpoints: dict[str, tuple[str, set[str]]] = {}
        for role in ROLES:
            for url in urls[role]:
                endpoints.setdefault(url, (settings.roles[role].api_key(), set()))[1].add(names[role])
        try:
            await preflight(endpoints, images=images)
        except EndpointCheckError as exc:
            raise RunError(str(exc)) from None
        teams = []
        for r in range(max(len(u) for u in urls.values())):
            agents = {}
            for role in ROLES:
                llm = settings.roles[role]
                retry = RetryPolicy(max_retries=llm.max_retries, initial_backoff_s=llm.retry_backoff_s)
                url = urls[role][r % len(urls[role])]
                hook = _with_slot(affinity) if affinity is not None and url == embedded_url else None
                agents[role] = Agent(role, chat_model(llm, url, names[role], tools=bool(settings.tools)), names[role], retry=retry,
                                     llm_for_affinity=hook)
            teams.append(AgentTeam(**agents))
        if len(teams) > 1:
            say("status", {"message": f"spreading questions over {len(teams)} endpoint replicas"})
        try:
            yield teams, names
        finally:
            for team in teams:
                await team.aclose()


__all__ = ["Say", "chat_model", "endpoint_urls", "open_teams"]

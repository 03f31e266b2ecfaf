"""Reaching the models: the embedded llama.cpp server, OpenAI-compatible endpoints, and the agents on them.

Used by ``scireflect annotate`` (:func:`open_teams`) and by ``scireflect eval`` (:func:`preflight`,
:func:`embedded_gguf`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openai
from langchain_openai import ChatOpenAI

from ..agents.openai_chat import OpenAIStreamingChat
from ..agents.roles import ROLES, Agent, AgentTeam, RetryPolicy
from .config import LLMSettings, RunSettings
from .errors import RunError
from .files import SERVER_LOG
from .manifest import redact_url

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


PROBE_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC")
"""A 1x1 PNG: what :func:`preflight` sends to learn whether a model takes images."""

FIGURES_HINT = ("use --figures text to send the figures' caption, OCR text and mentions instead, or a vision-language "
                "model (the embedded model takes images with --mmproj FILE: see docs/figures.md)")


async def _probe_images(client: openai.AsyncOpenAI, base_url: str, model: str) -> None:
    """Send :data:`PROBE_PNG` to ``model``; raise :class:`RunError` when the endpoint refuses it."""
    url = "data:image/png;base64," + base64.b64encode(PROBE_PNG).decode("ascii")
    try:
        await client.chat.completions.create(model=model, max_tokens=1, temperature=0.0, messages=[
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "Say ok."}]}])
    except (openai.APIStatusError, openai.APIConnectionError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise RunError(f"model {model} at {redact_url(base_url)} cannot take images ({message}); {FIGURES_HINT}") from None


def refuse_credentials_in_url(base_url: str) -> None:
    """Refuse an endpoint URL carrying ``user:pass@``: the clients would send its basic-auth header
    and the API key's ``Bearer`` header together, which aiohttp rejects on every call ("Cannot
    combine AUTHORIZATION header with AUTH argument", then retried as if transient) and which a
    server reads either way. The key belongs in ``OPENAI_API_KEY`` (or the role's ``api_key_env``).

    Raises:
        RunError: the URL has a user name or a password (the message shows it redacted).
    """
    parts = urlsplit(base_url)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise RunError(f"endpoint {redact_url(base_url)} has a user name or password in its URL (user:pass@host), which "
                       "scireflect does not send: remove it from --base-url (or base_url/replicas in --config) and "
                       "put the API key in OPENAI_API_KEY (or the role's api_key_env); it is sent as a Bearer token")


async def preflight(endpoints: Mapping[str, tuple[str, set[str]]], *, images: bool = False) -> None:
    """Check that each endpoint answers and serves the models the run needs.

    Args:
        endpoints: ``{base_url: (api_key, {model names})}``.
        images: also send each model a 1x1 image (the run's questions have figures to send).

    Raises:
        RunError: a URL with a user name or password (:func:`refuse_credentials_in_url`, checked
            for every endpoint before any is called), unreachable endpoint, rejected key, a model the endpoint does not list (the
            message lists what it serves), or (``images``) a model that refuses an image (the message
            says to use ``--figures text``). Endpoints without a ``/models`` route are not checked
            for names.
    """
    for base_url in endpoints:
        refuse_credentials_in_url(base_url)
    for base_url, (api_key, models) in endpoints.items():
        client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=15.0, max_retries=1)
        try:
            listed = [m.id async for m in client.models.list()]
        except openai.APIConnectionError as exc:
            raise RunError(f"endpoint unreachable: {redact_url(base_url)} ({exc.__cause__ or exc}); is the server running?") from None
        except openai.AuthenticationError:
            raise RunError(f"endpoint {redact_url(base_url)} rejected the API key; set it in OPENAI_API_KEY (or the role's api_key_env)") from None
        except (openai.NotFoundError, openai.UnprocessableEntityError):
            listed = []  # no /models route: cannot check names here
        except openai.APIError as exc:
            await client.close()
            raise RunError(f"endpoint {redact_url(base_url)} failed when listing models: {exc}") from None
        try:
            missing = sorted(m for m in models if m not in listed)
            if missing and listed:
                raise RunError(
                    f"model not found: {', '.join(missing)} is not served by {redact_url(base_url)}; available: {', '.join(listed[:20])}"
                )
            for model in sorted(models) if images else []:
                await _probe_images(client, base_url, model)
        finally:
            await client.close()


def embedded_mmproj(mmproj_path: Path | None) -> Path | None:
    """The multimodal projector GGUF to serve beside the embedded model, checked to exist.

    Raises:
        RunError: ``mmproj_path`` is not a file.
    """
    if mmproj_path is not None and not Path(mmproj_path).is_file():
        raise RunError(f"--mmproj {mmproj_path}: no such file")
    return mmproj_path


async def embedded_gguf(embedded_model: str | None, gguf_path: Path | None) -> tuple[Path, str]:
    """The GGUF file to serve and its display name: ``gguf_path`` if given, else the embedded model
    ``embedded_model`` (default: the first installed, else the default one), joined from its
    PyPI parts on first use.

    Raises:
        RunError: ``gguf_path`` does not exist.
        scireflect.embedded.EmbeddedModelError: the embedded model is not installed or is corrupt.
    """
    from ..embedded import DEFAULT_EMBEDDED_MODEL, available_embedded_models, materialise_embedded_model

    if gguf_path is not None:
        gguf = Path(gguf_path)
        if not gguf.is_file():
            raise RunError(f"--gguf {gguf}: no such file")
        return gguf, gguf.stem
    name = embedded_model or (available_embedded_models() or [DEFAULT_EMBEDDED_MODEL])[0]
    return await asyncio.to_thread(materialise_embedded_model, name), name


async def embedded_draft(speculative: str, served: str, gguf_path: Path | None) -> Any:
    """The draft model for speculative decoding, as :class:`~scireflect.embedded.DraftSettings`, or ``None``.

    ``speculative`` is ``off``; ``auto`` (the served embedded model's draft of
    :data:`~scireflect.embedded.DRAFT_MODELS` when it is installed; none for a ``--gguf`` file); or
    an embedded model name or alias, used as the draft whatever is served.

    Raises:
        scireflect.embedded.EmbeddedModelError: a named draft is unknown, not installed or corrupt.
    """
    from ..embedded import DRAFT_MODELS, DraftSettings, available_embedded_models, materialise_embedded_model, resolve_embedded_model

    if speculative == "off":
        return None
    if speculative == "auto":
        name = DRAFT_MODELS.get(served) if gguf_path is None else None
        if name is None or name not in available_embedded_models():
            return None
    else:
        name = resolve_embedded_model(speculative)
    return DraftSettings(path=await asyncio.to_thread(materialise_embedded_model, name), name=name)


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
        RunError: see :func:`preflight` and :func:`embedded_gguf`.
    """
    server_cm: Any = contextlib.nullcontext()
    embedded_name = affinity = None
    if settings.uses_embedded:
        from ..embedded import EmbeddedServer, ServerTuning, SlotAffinity

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
        await preflight(endpoints, images=images)
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


__all__ = ["FIGURES_HINT", "PROBE_PNG", "Say", "chat_model", "embedded_draft", "embedded_gguf", "embedded_mmproj", "endpoint_urls",
           "open_teams", "refuse_credentials_in_url", "preflight"]

"""A lean streaming chat client for OpenAI-compatible endpoints (the agents' default model client).

LangChain's ``ChatOpenAI.astream`` builds a pydantic chunk model in the openai SDK, then an
``AIMessageChunk``, a ``ChatGenerationChunk`` and a callback event for every streamed token, and
merges the chunks one by one: about 4.7 ms of CPU for a 15-chunk reply on the mock endpoint, and
a cost per token for real models (issue 17's profile: the model call was over half of the runner's
CPU per question). :class:`OpenAIStreamingChat` sends the same request over aiohttp, reads the
server-sent events itself (one ``json.loads`` per event, one ``AIMessage`` per call) and raises
the openai SDK's public exceptions for HTTP errors, timeouts and broken connections
(``openai.RateLimitError``, ``openai.APITimeoutError``, ...: what the retries classify).

Why aiohttp and not the SDK's own HTTP library (httpx/httpx2): measured on the mock endpoint with 64
streamed calls at once (``benchmarks/bench_runner.py --http``), httpx2 took 1.4 ms of CPU per call
and aiohttp 0.25 ms. httpx's connection pool re-scans every pooled connection (probing each idle
socket) twice per request, and its anyio streams yield to the event loop on every read; aiohttp
keeps idle connections in a queue per host and parses HTTP in C. At concurrency 64 that was a
fifth of the runner's CPU per question.

It is the model of a role without tools; with tools the agents use ``ChatOpenAI`` (``bind_tools``).
Its timeout is a timeout on silence between streamed chunks (and on connecting), as before.
"""

from __future__ import annotations

import asyncio
import functools
import json
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp
import openai
from langchain_core.messages import AIMessage

try:  # the openai SDK's HTTP types (its exceptions carry them): httpx2 from openai 3 on, httpx before
    import httpx2 as http
except ImportError:  # pragma: no cover - older openai
    import httpx as http

from .retry import BadResponseBody, EmptyCompletion


@functools.cache
def _tls() -> Any:
    """One TLS context for every client of the process (building one reads the CA bundle: ~45 ms)."""
    return http.create_ssl_context()


_STATUS_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError, 401: openai.AuthenticationError, 403: openai.PermissionDeniedError,
    404: openai.NotFoundError, 409: openai.ConflictError, 422: openai.UnprocessableEntityError, 429: openai.RateLimitError,
}


def status_error(response: Any, body: bytes) -> openai.APIStatusError:
    """The openai SDK's exception for an HTTP error reply (the same classes and message as the SDK's)."""
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = body.decode("utf-8", "replace")[:1000]
    data = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
    status = response.status_code
    cls = _STATUS_ERRORS.get(status) or (openai.InternalServerError if status >= 500 else openai.APIStatusError)
    return cls(f"Error code: {status} - {parsed}", response=response, body=data)


class _Session:
    """The aiohttp session of one client and of its copies: made on first use, in the running event
    loop (an aiohttp session belongs to one loop), and closed by :meth:`OpenAIStreamingChat.aclose`."""

    def __init__(self, headers: Mapping[str, str], timeout_s: float):
        self.headers = dict(headers)
        self.timeout_s = timeout_s
        self.session: aiohttp.ClientSession | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self.session is None or self.session.closed or self.loop is not loop:
            self.loop = loop
            connector = aiohttp.TCPConnector(limit=1000, limit_per_host=0, keepalive_timeout=KEEPALIVE_S, ssl=_tls())
            self.session = aiohttp.ClientSession(
                connector=connector, headers=self.headers, trust_env=False,  # proxies: env_proxy, read once
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout_s, sock_read=self.timeout_s),
                read_bufsize=READ_BUFFER_BYTES, raise_for_status=False, auto_decompress=True)
        return self.session

    async def aclose(self) -> None:
        session, self.session = self.session, None
        if session is not None and not session.closed and self.loop is asyncio.get_running_loop():
            await session.close()


def env_proxy(url: str) -> str | None:
    """The HTTP proxy the environment names for ``url`` (``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``,
    upper or lower case, unless ``NO_PROXY`` covers the host), read by the standard library as
    ``requests`` and httpx read it; ``None`` for none, or for a proxy that is not ``http(s)://``
    (aiohttp speaks to HTTP proxies only).

    Read once per client, not through aiohttp's ``trust_env``, which looks up ``~/.netrc`` in a
    worker thread on every request (and refuses a request whose host has a netrc entry, since the
    client sends its own ``Authorization`` header)."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    return proxy if proxy and proxy.lower().startswith(("http://", "https://")) else None


KEEPALIVE_S = 2.0
"""Seconds an idle connection is kept for reuse: under the 5 s after which llama.cpp's HTTP server
(cpp-httplib) closes one, which may otherwise happen just as a request is sent on it (seen once in
a 10-question run against the embedded server: the call failed at once and was retried)."""

READ_BUFFER_BYTES = 4 * 2**20
"""aiohttp's read buffer; one streamed event (one line) may be up to twice this long: a server that
sends a whole long completion as one event still fits."""


async def _one_event(body: bytes) -> AsyncIterator[bytes]:
    """An ``application/json`` reply as event lines: a whole chat completion (some servers and proxies
    ignore ``"stream": true``) is the one event it stands for, its choices carrying ``message`` where
    chunks carry ``delta``, its ``usage`` and ``finish_reason`` as a last chunk does; a body that is an
    event stream after all (a wrong content type) is read line by line."""
    if body.lstrip().startswith(b"{"):
        yield b"data: " + body
        return
    for line in body.splitlines():
        yield line


class OpenAIStreamingChat:
    """One model on one OpenAI-compatible endpoint, streamed.

    Args:
        base_url: the endpoint (``.../v1``).
        model: the model name sent with every request.
        api_key: the bearer key (local servers accept any).
        temperature / max_tokens: sampling settings of every call.
        timeout_s: seconds without a streamed chunk (or to connect) before the call fails
            (``openai.APITimeoutError``).

    The client never retries (the agent does, recording each try). Its connections are kept alive
    and reused (up to 1,000 at once, as the openai SDK's), for :data:`KEEPALIVE_S` of idleness at
    most; an HTTP proxy comes from the environment (:func:`env_proxy`), as with the SDK. Close it
    with :meth:`aclose` in the event loop that used it.
    """

    def __init__(self, *, base_url: str, model: str, api_key: str, temperature: float, max_tokens: int, timeout_s: float):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.proxy = env_proxy(self.url)
        self._session = _Session({"Authorization": f"Bearer {api_key}"}, timeout_s)
        self.model_name = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.extra_body: dict[str, Any] = {}

    def with_extra_body(self, options: Mapping[str, Any]) -> OpenAIStreamingChat:
        """A copy (sharing this one's connections) whose requests also carry ``options`` in their
        JSON body, e.g. llama.cpp's ``id_slot``/``cache_prompt`` (as ``ChatOpenAI``'s ``extra_body``)."""
        copy = object.__new__(OpenAIStreamingChat)
        copy.__dict__.update(self.__dict__)
        copy.extra_body = {**self.extra_body, **options}
        return copy

    def bind(self, **options: Any) -> OpenAIStreamingChat:
        """A copy whose requests carry LangChain-style call options (``stop``, ``max_tokens``,
        ``temperature``, ...) in their JSON body, as ``BaseChatModel.bind`` does: what the plain-text
        code loop (:mod:`scireflect.agents.code_loop`) binds for each round."""
        return self.with_extra_body(options)

    async def aclose(self) -> None:
        """Close the connections (of this client and of its copies); a later call opens new ones."""
        await self._session.aclose()

    def request(self, messages: Sequence[Mapping[str, str]]) -> dict[str, Any]:
        """The JSON body of one streamed chat completion."""
        return {"model": self.model_name, "messages": [dict(m) for m in messages], "temperature": self.temperature,
                "max_tokens": self.max_tokens, "stream": True, "stream_options": {"include_usage": True}, **self.extra_body}

    def _sdk_request(self) -> Any:
        """The request as the openai SDK's exceptions carry it."""
        return http.Request("POST", self.url)

    async def astream_reply(self, messages: Sequence[Mapping[str, str]], on_text: Any) -> AIMessage:
        """Stream one completion; ``on_text(text)`` is called with every chunk's text as it arrives.

        Returns:
            An ``AIMessage``: the text, ``usage_metadata`` (when the endpoint reported usage) and
            ``response_metadata`` (``model_name``, ``finish_reason``).

        Raises:
            openai.APIStatusError (and subclasses): the endpoint answered with an HTTP error.
            openai.APITimeoutError / openai.APIConnectionError: silence past the timeout, a refused
                or dropped connection, a body cut mid-stream.
            BadResponseBody: the body held no server-sent event, or an event that is not JSON. A whole
                ``application/json`` completion (from a server that does not stream) is taken as one event.
            EmptyCompletion: the stream ended without a completion chunk.
        """
        parts: list[str] = []
        usage: dict[str, Any] | None = None
        model, finish, events = None, None, 0
        try:
            async with self._session.get().post(self.url, json=self.request(messages), allow_redirects=False,
                                                proxy=self.proxy) as response:
                if response.status >= 400:
                    body = await response.read()
                    raise status_error(http.Response(response.status, headers=list(response.headers.items()), content=body,
                                                     request=self._sdk_request()), body)
                lines = response.content
                if response.content_type == "application/json":  # a server that ignored "stream": true
                    lines = _one_event(await response.read())
                async for line in lines:  # read to the end, so that the connection is reused
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        continue
                    events += 1
                    try:
                        chunk = json.loads(data)
                    except ValueError:
                        raise BadResponseBody(f"a streamed event is not JSON: {data[:80]!r}") from None
                    model = chunk.get("model") or model
                    for choice in chunk.get("choices") or ():
                        text = (choice.get("delta") or choice.get("message") or {}).get("content")
                        if text:
                            parts.append(text)
                            on_text(text)
                        finish = choice.get("finish_reason") or finish
                    if chunk.get("usage"):
                        usage = chunk["usage"]
        except TimeoutError as exc:  # aiohttp's read and connect timeouts are TimeoutErrors
            raise openai.APITimeoutError(request=self._sdk_request()) from exc
        except aiohttp.ClientError as exc:  # refused or dropped connection, truncated body
            raise openai.APIConnectionError(message=f"Connection error: {type(exc).__name__}: {exc}",
                                            request=self._sdk_request()) from exc
        if not events:
            raise BadResponseBody("the endpoint's reply held no completion chunk (not an event stream?)")
        if not parts and finish is None:
            raise EmptyCompletion("the endpoint streamed no reply")
        meta = {"model_name": model or self.model_name, "finish_reason": finish}
        tokens = None
        if usage:
            prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            tokens = {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion}
        return AIMessage(content="".join(parts), usage_metadata=tokens, response_metadata=meta)


__all__ = ["OpenAIStreamingChat", "env_proxy", "status_error"]

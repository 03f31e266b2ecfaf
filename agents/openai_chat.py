"""A lean streaming chat client for OpenAI-compatible endpoints (the agents' default model client).

LangChain's ``ChatOpenAI.astream`` builds a pydantic chunk model in the openai SDK, then an
``AIMessageChunk``, a ``ChatGenerationChunk`` and a callback event for every streamed token, and
merges the chunks one by one: about 4.7 ms of CPU for a 15-chunk reply on the mock endpoint, and
a cost per token for real models (issue 17's profile: the model call was over half of the runner's
CPU per question). :class:`OpenAIStreamingChat` sends the same request with the openai SDK's own
HTTP client library (``httpx2`` from openai 3 on), raises the SDK's public exceptions for HTTP
errors, timeouts and broken connections (``openai.RateLimitError``, ``openai.APITimeoutError``, ...:
what the retries classify), and reads the server-sent events itself: one ``json.loads`` per event
and one ``AIMessage`` per call (about 1 ms on the same reply; 1.3 ms through the SDK's ``post``).

It is the model of a role without tools; with tools the agents use ``ChatOpenAI`` (``bind_tools``).
Its timeout is the HTTP client's read timeout, a timeout on silence between streamed chunks, as before.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import openai
from langchain_core.messages import AIMessage

try:  # the HTTP client of the installed openai SDK: httpx2 from openai 3 on, httpx before
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
    and reused (up to 1,000 at once, as the openai SDK's), but for 2 s of idleness at most, not
    httpx's 5 s: llama.cpp's HTTP server (cpp-httplib, whose default keep-alive timeout is also 5 s)
    may close an idle connection just as a request is sent on it, which then fails at once
    (``RemoteProtocolError``; seen once in a 10-question run against the embedded server, retried).
    """

    def __init__(self, *, base_url: str, model: str, api_key: str, temperature: float, max_tokens: int, timeout_s: float):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.http = http.AsyncClient(headers={"Authorization": f"Bearer {api_key}"}, timeout=http.Timeout(timeout_s), verify=_tls(),
                                     limits=http.Limits(max_connections=1000, max_keepalive_connections=100, keepalive_expiry=2.0))
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

    def request(self, messages: Sequence[Mapping[str, str]]) -> dict[str, Any]:
        """The JSON body of one streamed chat completion."""
        return {"model": self.model_name, "messages": [dict(m) for m in messages], "temperature": self.temperature,
                "max_tokens": self.max_tokens, "stream": True, "stream_options": {"include_usage": True}, **self.extra_body}

    async def astream_reply(self, messages: Sequence[Mapping[str, str]], on_text: Any) -> AIMessage:
        """Stream one completion; ``on_text(text)`` is called with every chunk's text as it arrives.

        Returns:
            An ``AIMessage``: the text, ``usage_metadata`` (when the endpoint reported usage) and
            ``response_metadata`` (``model_name``, ``finish_reason``).

        Raises:
            openai.APIStatusError (and subclasses): the endpoint answered with an HTTP error.
            openai.APITimeoutError / openai.APIConnectionError: silence past the timeout, a refused
                or dropped connection, a body cut mid-stream.
            BadResponseBody: the body held no server-sent event, or an event that is not JSON.
            EmptyCompletion: the stream ended without a completion chunk.
        """
        request = self.http.build_request("POST", self.url, json=self.request(messages))
        parts: list[str] = []
        usage: dict[str, Any] | None = None
        model, finish, events = None, None, 0
        try:
            response = await self.http.send(request, stream=True)
            try:
                if response.status_code >= 400:
                    raise status_error(response, await response.aread())
                async for line in response.aiter_lines():  # read to the end, so that the connection is reused
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        continue
                    events += 1
                    try:
                        chunk = json.loads(data)
                    except ValueError:
                        raise BadResponseBody(f"a streamed event is not JSON: {data[:80]!r}") from None
                    model = chunk.get("model") or model
                    for choice in chunk.get("choices") or ():
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            parts.append(text)
                            on_text(text)
                        finish = choice.get("finish_reason") or finish
                    if chunk.get("usage"):
                        usage = chunk["usage"]
            finally:
                await response.aclose()
        except http.TimeoutException as exc:
            raise openai.APITimeoutError(request=request) from exc
        except http.TransportError as exc:  # refused or dropped connection, truncated chunked body
            raise openai.APIConnectionError(message=f"Connection error: {type(exc).__name__}", request=request) from exc
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


__all__ = ["OpenAIStreamingChat", "status_error"]

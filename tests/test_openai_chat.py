"""The lean streaming client (agents/openai_chat.py) against the fault-injecting mock: the reply, its
usage, and each fault as the exception the agent's retries classify."""

from __future__ import annotations

import openai
import pytest

from scireflect.agents.openai_chat import OpenAIStreamingChat, http, status_error
from scireflect.agents.retry import BadResponseBody, failure_kind, is_transient
from scireflect.testing.mock_openai import FaultPlan, MockOpenAI

MESSAGES = [{"role": "system", "content": "You solve."}, {"role": "user", "content": "What is 6 x 7?"}]


async def reply_from(url: str, on_text=lambda text: None, timeout_s: float = 5.0):
    """One call of a fresh client, closed afterwards."""
    chat = OpenAIStreamingChat(base_url=url, model="mock-model", api_key="k", temperature=0.0, max_tokens=64, timeout_s=timeout_s)
    try:
        return await chat.astream_reply(MESSAGES, on_text)
    finally:
        await chat.aclose()


async def test_a_streamed_reply_with_usage_and_every_chunk_seen():
    seen = []
    with MockOpenAI(answers={"6 x 7": "42"}) as mock:
        reply = await reply_from(mock.base_url, seen.append)
        request = mock.requests[0]
    assert reply.content.endswith("\\boxed{42}") and "".join(seen) == reply.content and len(seen) > 3
    assert reply.usage_metadata["output_tokens"] == len(seen) and reply.usage_metadata["input_tokens"] > 0
    assert reply.response_metadata == {"model_name": "mock-model", "finish_reason": "stop"}
    assert request == MESSAGES


@pytest.mark.parametrize(("fault", "error", "kind"), [
    ("rate_limit", openai.RateLimitError, "rate_limit"),
    ("server_error", openai.InternalServerError, "server_error"),
    ("hang", openai.APITimeoutError, "timeout"),
    ("truncated", openai.APIConnectionError, "connection"),
    ("drop", openai.APIConnectionError, "connection"),
    ("non_json", BadResponseBody, "bad_body"),
])
async def test_each_fault_is_the_exception_the_retries_expect(fault, error, kind):
    with MockOpenAI(faults=FaultPlan(rate=1.0, kinds=(fault,), hang_s=3.0, retry_after_s=7)) as mock:
        with pytest.raises(error) as caught:
            await reply_from(mock.base_url, timeout_s=1.0)
    assert is_transient(caught.value) and failure_kind(caught.value) == kind
    if fault == "rate_limit":
        assert caught.value.response.headers["retry-after"] == "7"  # RetryPolicy.wait honours it


async def test_an_empty_completion_comes_back_empty_for_the_agent_to_retry():
    with MockOpenAI(faults=FaultPlan(rate=1.0, kinds=("empty",))) as mock:
        reply = await reply_from(mock.base_url)
    assert reply.content == "" and reply.response_metadata["finish_reason"] == "stop"  # Agent raises EmptyCompletion


@pytest.mark.parametrize(("status", "error", "transient"), [
    (401, openai.AuthenticationError, False), (403, openai.PermissionDeniedError, False), (404, openai.NotFoundError, False),
    (400, openai.BadRequestError, False), (429, openai.RateLimitError, True), (503, openai.InternalServerError, True),
])
def test_http_errors_are_the_sdks_exceptions(status, error, transient):
    request = http.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    exc = status_error(http.Response(status, request=request), b'{"error": {"message": "no such model"}}')
    assert type(exc) is error and exc.status_code == status and exc.body == {"message": "no such model"}
    assert is_transient(exc) is transient and "no such model" in str(exc)


async def test_an_event_longer_than_the_default_read_buffer_is_read_whole():
    """A server may send a long completion as one event: one line of ~300 KB (aiohttp's default
    buffer takes lines up to 128 KiB)."""
    long_answer = "7" * 300_000
    with MockOpenAI(answers={"6 x 7": long_answer}) as mock:
        reply = await reply_from(mock.base_url)
    assert reply.content.endswith("\\boxed{" + long_answer + "}")


async def test_one_client_serves_two_event_loops_and_closes_cleanly():
    """The connections belong to the loop that opened them; a client used again from a new loop
    (a second ``asyncio.run``) opens new ones."""
    import asyncio

    with MockOpenAI() as mock:
        chat = OpenAIStreamingChat(base_url=mock.base_url, model="mock-model", api_key="k", temperature=0.0, max_tokens=64, timeout_s=5)
        first = await chat.astream_reply(MESSAGES, lambda text: None)

        def in_another_loop():
            async def call():
                try:
                    return await chat.astream_reply(MESSAGES, lambda text: None)
                finally:
                    await chat.aclose()
            return asyncio.run(call())

        second = await asyncio.to_thread(in_another_loop)
        await chat.aclose()
    assert first.content == second.content and "\\boxed{42}" in first.content


def test_the_proxy_comes_from_the_environment_unless_no_proxy_covers_the_host(monkeypatch):
    from scireflect.agents.openai_chat import env_proxy

    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert env_proxy("https://api.example.com/v1/chat/completions") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,.cluster.local")
    assert env_proxy("https://api.example.com/v1/chat/completions") == "http://proxy.internal:3128"
    assert env_proxy("http://api.example.com/v1/chat/completions") is None  # no HTTP_PROXY
    assert env_proxy("https://127.0.0.1:8000/v1/chat/completions") is None
    assert env_proxy("https://vllm.cluster.local/v1/chat/completions") is None
    monkeypatch.setenv("HTTPS_PROXY", "socks5://proxy.internal:1080")  # not an HTTP proxy: not used
    assert env_proxy("https://api.example.com/v1/chat/completions") is None


async def test_calls_go_through_the_environments_http_proxy(monkeypatch):
    """The mock answers any POST, so as the proxy it serves a call to a host that does not exist."""
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with MockOpenAI() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url.removesuffix("/v1"))
        monkeypatch.setenv("http_proxy", proxy.base_url.removesuffix("/v1"))
        reply = await reply_from("http://endpoint.invalid/v1")
        assert proxy.stats.chat_requests == 1
    assert "\\boxed{42}" in reply.content

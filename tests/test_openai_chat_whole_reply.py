"""A server that ignores ``"stream": true`` and answers with a whole ``application/json`` chat
completion is read like a stream of one event (issue 25, "servers that do not stream")."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from scireflect.agents.openai_chat import OpenAIStreamingChat
from scireflect.agents.retry import BadResponseBody

MESSAGES = [{"role": "user", "content": "What is 6 x 7?"}]
COMPLETION = {"id": "c1", "object": "chat.completion", "model": "plain-model",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "6 x 7 = 42, so \\boxed{42}"},
                           "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 11, "completion_tokens": 9, "total_tokens": 20}}


async def _reply_of(body: bytes, content_type: str):
    """One call of the client against a server that answers every POST with ``body``; the requests it saw."""
    seen: list[dict] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.Response(body=body, content_type=content_type)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    chat = OpenAIStreamingChat(base_url=f"http://127.0.0.1:{port}/v1", model="m", api_key="k", temperature=0.0,
                               max_tokens=64, timeout_s=5.0)
    texts: list[str] = []
    try:
        return await chat.astream_reply(MESSAGES, texts.append), texts, seen
    finally:
        await chat.aclose()
        await runner.cleanup()


async def test_a_whole_json_completion_is_accepted():
    reply, texts, seen = await _reply_of(json.dumps(COMPLETION, indent=2).encode(), "application/json")
    assert seen[0]["stream"] is True  # asked to stream, answered whole
    assert reply.content == "6 x 7 = 42, so \\boxed{42}" and texts == [reply.content]
    assert reply.response_metadata == {"model_name": "plain-model", "finish_reason": "stop"}
    assert reply.usage_metadata == {"input_tokens": 11, "output_tokens": 9, "total_tokens": 20}


async def test_an_event_stream_labelled_json_is_still_read_as_events():
    chunks = [{"model": "m", "choices": [{"delta": {"content": "4"}}]},
              {"model": "m", "choices": [{"delta": {"content": "2"}, "finish_reason": "stop"}]}]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks).encode() + b"data: [DONE]\n\n"
    reply, texts, _ = await _reply_of(body, "application/json")
    assert reply.content == "42" and texts == ["4", "2"]


async def test_a_json_reply_that_is_not_json_is_still_a_bad_body():
    with pytest.raises(BadResponseBody):
        await _reply_of(b"{not json", "application/json")

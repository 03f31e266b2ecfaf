"""A tiny OpenAI-compatible chat server on loopback for runner and CLI tests.

Deterministic replies: the Critic gets a fixed critique; an answer-guided prompt ("The correct final
answer is: X") gets ``\\boxed{X}``; every other prompt gets ``\\boxed{<default_answer>}``. Each
request sleeps ``delay_s`` first, so a test can kill a run in the middle. Bound to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class MockOpenAI:
    """Start with ``with MockOpenAI() as server: server.base_url``; ``server.requests`` logs the prompts."""

    def __init__(self, *, default_answer: str = "42", delay_s: float = 0.0, model: str = "mock-model"):
        self.default_answer = default_answer
        self.delay_s = delay_s
        self.model = model
        self.requests: list[list[dict]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": outer.model, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                request = json.loads(self.rfile.read(length))
                messages = request["messages"]
                with outer._lock:
                    outer.requests.append(messages)
                time.sleep(outer.delay_s)
                text = outer.reply(messages)
                prompt_tokens = sum(len(m["content"]) for m in messages) // 4
                self._send(200, {
                    "id": "chatcmpl-mock", "object": "chat.completion", "created": int(time.time()), "model": outer.model,
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                              "total_tokens": prompt_tokens + len(text.split())},
                })

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def reply(self, messages: list[dict]) -> str:
        system = messages[0]["content"]
        user = messages[-1]["content"]
        if "reviewer" in system:
            return "Step 1 is wrong: the quantity was misread."
        guided = re.search(r"The correct final answer is: (\S+)", user)
        answer = guided.group(1) if guided else self.default_answer
        return f"Step 1: work it out.\nStep 2: the result is {answer}.\n\\boxed{{{answer}}}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> MockOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

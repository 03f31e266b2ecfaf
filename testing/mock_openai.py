"""A fault-injecting OpenAI-compatible chat server on loopback, for tests and benchmarks.

It answers ``GET /v1/models`` and ``POST /v1/chat/completions`` with deterministic replies and,
on a seeded random share of requests, with the faults real endpoints produce: 429 with
``Retry-After``, 500, a hang past the client's timeout, a dropped connection, a truncated body, a
non-JSON body, or an empty message. It binds to 127.0.0.1 only, and it is bounded: it refuses
(503) requests past ``max_requests`` and caps every sleep.

Replies: a judge prompt (:mod:`scireflect.agents.judge`) gets ``judge_replies[key]`` for the first key in
its text, else ``VERDICT: none``; a prompt whose system message casts it as a reviewer of solutions (the Critic) gets a fixed critique; an
answer-guided prompt ("The correct final answer is: X") gets ``\\boxed{X}``; every other prompt
gets ``\\boxed{<answer>}`` where ``<answer>`` comes from ``answers`` (a map from a substring of the
question to its answer) or ``default_answer``.

Figures: a message's content may be a list of OpenAI content parts; ``image_url`` parts must hold
base64 ``data:image/...`` URLs, and the sha256 of each decoded image is kept per request
(``request_images``). ``vision=False`` makes the mock a text-only model (a request with an image part
gets HTTP 400, as OpenAI answers); ``require_images=True`` refuses (HTTP 400) any chat request that
carries no image, so a run whose every question ends accepted proves that every call of every role
sent its figure.

Usage::

    with MockOpenAI(latency_s=0.05, faults=FaultPlan(rate=0.2, seed=1)) as server:
        ChatOpenAI(base_url=server.base_url, model=server.model, api_key="x")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULT_KINDS = ("rate_limit", "server_error", "hang", "drop", "truncated", "non_json", "empty")


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: 64 clients connecting at once lose SYNs and wait the
    # kernel's 1 s retransmission, an artefact that made benchmark calls take 2 s instead of 1 s.
    request_queue_size = 1024


@dataclass
class FaultPlan:
    """Which share of chat requests fail, and how.

    Attributes:
        rate: probability in [0, 1] that a chat request gets a fault.
        kinds: the fault kinds drawn uniformly (subset of :data:`FAULT_KINDS`).
        seed: RNG seed, so a run's fault sequence is reproducible.
        retry_after_s: the ``Retry-After`` value of 429 replies, in seconds.
        hang_s: how long a ``hang`` sleeps before answering (set it above the client's timeout).
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    retry_after_s: float = 0.05
    hang_s: float = 2.0

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown or not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"bad fault plan: rate {self.rate}, unknown kinds {sorted(unknown)}")


@dataclass
class MockStats:
    """Counts of what the server did: chat requests, faults by kind, refused images, and chat requests
    being answered at once (now and at the most)."""

    chat_requests: int = 0
    faults: Counter = field(default_factory=Counter)
    refused_images: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0


class MockOpenAI:
    """The mock server; a context manager that serves on a free loopback port in a thread.

    Args:
        latency_s: seconds every chat reply waits before answering (the model's "generation").
        default_answer: what ``\\boxed{}`` holds when no entry of ``answers`` matches.
        answers: ``{substring of the user message: answer}``.
        faults: the fault plan (none by default).
        model: the one model name listed by ``/v1/models``.
        max_requests: chat requests served before answering 503 (a bound for runaway tests).
        token_latency_s: with ``"stream": true`` requests, the wait before each streamed token (word)
            after the first: a slow model that keeps producing tokens.
        vision: whether the model takes images (``False``: a request with an image part gets 400).
        require_images: refuse (400) every chat request without an image part.

    Attributes:
        requests: the messages of every chat request, in arrival order.
        request_images: per chat request, the sha256 of each image it carried (same order as ``requests``).
        stats: :class:`MockStats`.
    """

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        default_answer: str = "42",
        answers: dict[str, str] | None = None,
        faults: FaultPlan | None = None,
        model: str = "mock-model",
        max_requests: int = 1_000_000,
        token_latency_s: float = 0.0,
        vision: bool = True,
        require_images: bool = False,
        judge_replies: dict[str, str] | None = None,
    ):
        self.latency_s = latency_s
        self.token_latency_s = token_latency_s
        self.default_answer = default_answer
        self.answers = dict(answers or {})
        self.faults = faults or FaultPlan()
        self.model = model
        self.max_requests = max_requests
        self.vision = vision
        self.require_images = require_images
        self.judge_replies = dict(judge_replies or {})
        """A judge prompt (its system message asks for ``VERDICT:``) whose text contains a key gets its reply;
        any other gets ``VERDICT: none``."""
        self.requests: list[list[dict]] = []
        self.request_images: list[list[str]] = []
        self.bodies: list[dict] = []
        """Every chat request body as received (messages and the request's options)."""
        self.stats = MockStats()
        self._rng = random.Random(self.faults.seed)
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="mock-openai", daemon=True)

    # -- replies ---------------------------------------------------------------------------------
    @staticmethod
    def text(content: object) -> str:
        """The text of a message's content (a string, or the text parts of a list of parts)."""
        if isinstance(content, str):
            return content
        return "".join(str(p.get("text", "")) for p in content or [] if isinstance(p, dict) and p.get("type") == "text")

    @staticmethod
    def images(messages: list[dict]) -> list[str]:
        """The sha256 of every image part of a request's messages.

        Raises:
            ValueError: an ``image_url`` part that is not a base64 ``data:image/`` URL.
        """
        digests = []
        for message in messages:
            content = message.get("content")
            for part in content if isinstance(content, list) else []:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    url = str((part.get("image_url") or {}).get("url") or "")
                    head, _, payload = url.partition(",")
                    if not (head.startswith("data:image/") and head.endswith(";base64")):
                        raise ValueError(f"image_url is not a base64 data URL: {url[:40]!r}")
                    try:
                        digests.append(hashlib.sha256(base64.b64decode(payload, validate=True)).hexdigest())
                    except binascii.Error:
                        raise ValueError("image_url holds invalid base64") from None
        return digests

    def prompt_tokens(self, messages: list[dict]) -> int:
        """A prompt's token count: a token per 4 characters of text, 85 per image (OpenAI's low-detail cost)."""
        return sum(len(self.text(m.get("content", ""))) for m in messages) // 4 + 85 * len(self.images(messages))

    def reply(self, messages: list[dict]) -> str:
        """The deterministic reply text for a chat request."""
        system = self.text(messages[0]["content"]) if messages else ""
        user = self.text(messages[-1]["content"]) if messages else ""
        if "VERDICT:" in system:  # the process judge (scireflect.agents.judge)
            for key, reply in self.judge_replies.items():
                if key in user:
                    return reply
            return "Every step follows from the one before.\nVERDICT: none"
        if "reviewer of" in system:  # the Critic ("a meticulous reviewer of worked solutions"), not the Reviser told of one
            return "Step 1 is wrong: the quantity was misread."
        guided = re.search(r"The correct final answer is: (\S+)", user)
        if guided:
            answer = guided.group(1)
        else:
            answer = next((a for key, a in self.answers.items() if key in user), self.default_answer)
        return f"Step 1: work it out.\nStep 2: the result is {answer}.\n\\boxed{{{answer}}}"

    def _draw_fault(self) -> str | None:
        with self._lock:
            if self._rng.random() < self.faults.rate:
                return self._rng.choice(self.faults.kinds)
        return None

    def _handler_class(self):
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers
            # Headers and body go out in two writes; without TCP_NODELAY, Nagle plus the client's
            # delayed ACK stall every reply by ~40 ms on loopback (a mock artefact, not the runner's).
            disable_nagle_algorithm = True

            def log_message(self, *args):  # quiet
                pass

            def handle(self):
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    pass  # the client gave up (e.g. its timeout during a "hang"): nothing to answer

            def _send(self, code: int, body: bytes, *, content_type: str = "application/json", headers: dict | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, code: int, payload: dict, headers: dict | None = None) -> None:
                self._send(code, json.dumps(payload).encode(), headers=headers)

            def _stream(self, text: str, messages: list[dict], usage: bool, cut: bool) -> None:
                """Server-sent events as OpenAI streams them: one chunk per word, then the finish
                chunk and, when asked, a usage chunk; ``cut`` drops the connection half-way."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

                def event(payload: dict | str) -> None:
                    data = f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n".encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()

                base = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": int(time.time()), "model": mock.model}
                words = [w + " " for w in text.split(" ")] if text else []
                if words:
                    words[-1] = words[-1][:-1]
                for i, word in enumerate(words):
                    if i and mock.token_latency_s:
                        time.sleep(min(mock.token_latency_s, 30.0))
                    if cut and i == len(words) // 2:
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": word} if i == 0
                                                else {"content": word}, "finish_reason": None}]})
                event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                if usage:
                    prompt_tokens = mock.prompt_tokens(messages)
                    event({**base, "choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(words),
                                                            "total_tokens": prompt_tokens + len(words)}})
                event("[DONE]")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": mock.model, "object": "model", "owned_by": "mock"}]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self):
                with mock._lock:
                    mock.stats.in_flight += 1
                    mock.stats.peak_in_flight = max(mock.stats.peak_in_flight, mock.stats.in_flight)
                try:
                    self._chat()
                finally:
                    with mock._lock:
                        mock.stats.in_flight -= 1

            def _chat(self):
                length = int(self.headers.get("Content-Length", 0))
                try:
                    request = json.loads(self.rfile.read(length))
                    messages = request["messages"]
                    images = mock.images(messages)
                except (ValueError, KeyError) as exc:
                    self._json(400, {"error": {"message": f"bad request body ({exc})"}})
                    return
                with mock._lock:
                    mock.stats.chat_requests += 1
                    over = mock.stats.chat_requests > mock.max_requests
                    mock.requests.append(messages)
                    mock.request_images.append(images)
                    refuse = (images and not mock.vision) or (mock.require_images and not images)
                    mock.stats.refused_images += bool(refuse)
                    mock.bodies.append(request)
                if over:
                    self._json(503, {"error": {"message": "mock server request bound reached"}})
                    return
                if refuse:
                    why = "this model does not take image input" if images else "this request carries no image"
                    self._json(400, {"error": {"message": why, "type": "invalid_request_error"}})
                    return
                fault = mock._draw_fault()
                if fault:
                    with mock._lock:
                        mock.stats.faults[fault] += 1
                time.sleep(min(mock.latency_s, 30.0))
                text = "" if fault == "empty" else mock.reply(messages)
                if request.get("stream") and fault in (None, "empty", "hang", "truncated"):
                    if fault == "hang":
                        time.sleep(min(mock.faults.hang_s, 30.0))
                    self._stream(text, messages, bool((request.get("stream_options") or {}).get("include_usage")),
                                 cut=fault == "truncated")
                    return
                prompt_tokens = mock.prompt_tokens(messages)
                payload = {
                    "id": "chatcmpl-mock", "object": "chat.completion", "created": int(time.time()), "model": mock.model,
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                              "total_tokens": prompt_tokens + len(text.split())},
                }
                if fault == "rate_limit":
                    self._json(429, {"error": {"message": "rate limited", "type": "rate_limit"}},
                               headers={"Retry-After": f"{mock.faults.retry_after_s:g}"})
                elif fault == "server_error":
                    self._json(500, {"error": {"message": "internal error"}})
                elif fault == "hang":
                    time.sleep(min(mock.faults.hang_s, 30.0))
                    self._json(200, payload)
                elif fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                elif fault == "truncated":
                    body = json.dumps(payload).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                elif fault == "non_json":
                    self._send(200, b"<html><body>upstream proxy error</body></html>", content_type="text/html")
                else:  # no fault, or "empty"
                    self._json(200, payload)

        return Handler

    def request_counts(self, pattern: str) -> Counter:
        """Chat requests per question: ``{first match of pattern's group 1 in a request's messages: count}``
        (e.g. ``r"Item (\\d+):"``); requests without a match are not counted."""
        regex = re.compile(pattern)
        counts: Counter = Counter()
        with self._lock:
            requests = list(self.requests)
        for messages in requests:
            found = regex.search("\n".join(str(m.get("content", "")) for m in messages))
            if found:
                counts[found.group(1)] += 1
        return counts

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> MockOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

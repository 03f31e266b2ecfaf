"""The llama.cpp server of the embedded models, on loopback, in a child process.

When the user configures no endpoint, ``scireflect annotate`` starts a local OpenAI-compatible server
(llama.cpp's server from the prebuilt ``xllamacpp`` wheels) on a free loopback port, talks to it
through ``langchain-openai`` like any other endpoint, and stops it at the end. No key and no network
are needed.

The server runs in a child process (``python -m scireflect.embedded serve ...``) so that a crash of
the native code never takes the annotation run with it, and so it can always be stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .models import EmbeddedModelError
from .tuning import DraftSettings

#: Poolings of ``EmbeddedServer(embedding_pooling=...)`` (llama.cpp's LLAMA_POOLING_TYPE_LAST/MEAN).
EMBEDDING_POOLINGS = ("last", "mean")


def free_loopback_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (the server retries if it is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedServer:
    """A llama.cpp OpenAI-compatible server on loopback, in a child process.

    Use as an async context manager::

        async with EmbeddedServer(gguf_path, parallel=2) as server:
            llm = ChatOpenAI(base_url=server.base_url, model=server.model_name, api_key="local")

    Args:
        gguf_path: the GGUF model file.
        parallel: number of server slots (requests decoded concurrently); match the run's concurrency.
        context_per_slot: context length in tokens available to each slot.
        threads: CPU threads for generation and prompt processing (default: all cores).
        batch / ubatch: llama.cpp's logical and physical batch sizes in tokens (``n_batch``,
            ``n_ubatch``; default 2048 and 512, llama.cpp's); see :class:`~scireflect.embedded.tuning.ServerTuning`.
        draft: a draft model for speculative decoding (``None``: off); see
            :class:`~scireflect.embedded.tuning.DraftSettings`.
        log_path: where the server's log goes (default: discarded).
        startup_timeout_s: seconds to wait for ``/health`` to answer 200.
        embedding_pooling: ``None`` (chat and completions) or ``"last"``/``"mean"``: serve
            ``/v1/embeddings`` instead, returning the model's final-layer hidden state (after the final
            norm, not normalised) at the last token or averaged over the tokens. One input must then
            fit in ``context_per_slot`` tokens (llama.cpp embeds each input in one batch).
        mmproj_path: a multimodal projector GGUF (llama.cpp's ``--mmproj``): the server then takes
            images in chat messages (OpenAI ``image_url`` parts), e.g. SmolVLM or Qwen2.5-VL with
            their ``mmproj-*.gguf``.

    The server's Prometheus counters (``/metrics``: prompt tokens processed and their seconds,
    tokens generated and their seconds, drafted and accepted tokens) are read by :meth:`metrics`,
    and written to the log as one ``scireflect embedded server metrics: {json}`` line when it stops.

    The server process exits by itself within about a second if this process dies without stopping
    it (SIGKILL, out of memory), so a killed run never leaves a model server behind.

    Raises:
        EmbeddedModelError: on ``__aenter__`` when the server exits or is not healthy in time.
    """

    def __init__(
        self,
        gguf_path: Path,
        *,
        parallel: int = 1,
        context_per_slot: int = 4096,
        threads: int | None = None,
        log_path: Path | None = None,
        startup_timeout_s: float = 180.0,
        model_name: str | None = None,
        embedding_pooling: str | None = None,
        mmproj_path: Path | None = None,
        batch: int | None = None,
        ubatch: int | None = None,
        draft: DraftSettings | None = None,
    ):
        self.mmproj_path = Path(mmproj_path) if mmproj_path is not None else None
        if embedding_pooling not in (None, *EMBEDDING_POOLINGS):
            raise EmbeddedModelError(f"unknown pooling {embedding_pooling!r}; choose one of {', '.join(EMBEDDING_POOLINGS)}")
        self.embedding_pooling = embedding_pooling
        self.gguf_path = Path(gguf_path)
        self.parallel = max(1, parallel)
        self.context_per_slot = context_per_slot
        self.threads = threads or os.cpu_count() or 1
        self.log_path = log_path
        self.startup_timeout_s = startup_timeout_s
        self.model_name = model_name or self.gguf_path.stem
        self.batch, self.ubatch, self.draft = batch, ubatch, draft
        self.final_metrics: dict[str, float] = {}
        """The server's counters read just before it stopped (see :meth:`metrics`)."""
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1`` once started."""
        if self.port is None:
            raise EmbeddedModelError("embedded server not started")
        return f"http://127.0.0.1:{self.port}/v1"

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        cmd = [
            sys.executable, "-m", "scireflect.embedded", "serve",
            "--gguf", str(self.gguf_path), "--port", str(port), "--parallel", str(self.parallel),
            "--ctx", str(self.context_per_slot * self.parallel), "--threads", str(self.threads),
            "--alias", self.model_name, "--parent-pid", str(os.getpid()),
        ]
        if self.embedding_pooling:
            cmd += ["--embedding", self.embedding_pooling]
        if self.mmproj_path is not None:
            cmd += ["--mmproj", str(self.mmproj_path)]
        for flag, value in (("--batch", self.batch), ("--ubatch", self.ubatch)):
            if value:
                cmd += [flag, str(value)]
        if self.draft is not None:
            cmd += ["--draft", str(self.draft.path), "--draft-max", str(self.draft.n_max),
                    "--draft-min", str(self.draft.n_min), "--draft-p-min", str(self.draft.p_min)]
        out = self._log if self._log is not None else subprocess.DEVNULL
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    async def __aenter__(self) -> EmbeddedServer:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")
        last_error = "no attempt"
        for _ in range(3):  # a port taken between probing and binding: try another
            self.port = free_loopback_port()
            self._proc = self._spawn(self.port)
            try:
                await self._wait_healthy()
                return self
            except EmbeddedModelError as exc:
                last_error = str(exc)
                self._stop()
        raise EmbeddedModelError(f"embedded server failed to start: {last_error}" + self._log_hint())

    def _log_hint(self) -> str:
        return f" (server log: {self.log_path})" if self.log_path else ""

    async def _wait_healthy(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"http://127.0.0.1:{self.port}/health"
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    raise EmbeddedModelError(f"server process exited with code {self._proc.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(url)
                    if response.status_code == 200:
                        return
                await asyncio.sleep(0.25)
        raise EmbeddedModelError(f"server not healthy after {self.startup_timeout_s:.0f} s")

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    async def metrics(self) -> dict[str, float]:
        """The server's counters since it started, from llama.cpp's ``/metrics`` (Prometheus text).

        Keys without the ``llamacpp:`` prefix, e.g. ``prompt_tokens_total`` (prompt tokens
        processed, i.e. not taken from a cached prefix), ``prompt_seconds_total``,
        ``tokens_predicted_total``, ``tokens_predicted_seconds_total``, ``n_decode_total``,
        ``n_tokens_max``; seconds are summed over slots. Empty when the server does not answer.
        """
        if self.port is None:
            return {}
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.get(f"http://127.0.0.1:{self.port}/metrics")
        except httpx.HTTPError:
            return {}
        return parse_prometheus(response.text) if response.status_code == 200 else {}

    async def __aexit__(self, *exc_info: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.final_metrics = await self.metrics()
            if self._log is not None and self.final_metrics:
                import json

                self._log.write(f"scireflect embedded server metrics: {json.dumps(self.final_metrics)}\n".encode())
                self._log.flush()
        self.stop()

    def start(self) -> EmbeddedServer:
        """Start the server from synchronous code (not inside a running event loop); see :meth:`stop`."""
        return asyncio.run(self.__aenter__())

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        self._stop()
        if self._log is not None:
            self._log.close()
            self._log = None


def parse_prometheus(text: str) -> dict[str, float]:
    """``{name: value}`` of the unlabelled samples of a Prometheus text exposition, ``llamacpp:``
    prefixes dropped; comment lines and unparsable samples are skipped."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2 or line.startswith("#") or "{" in parts[0]:
            continue
        with contextlib.suppress(ValueError):
            values[parts[0].removeprefix("llamacpp:")] = float(parts[1])
    return values


def _serve(argv: list[str]) -> int:
    """Child-process entry: run llama.cpp's server until SIGTERM/SIGINT or until ``--parent-pid`` dies."""
    import argparse
    import signal
    import threading

    parser = argparse.ArgumentParser(prog="python -m scireflect.embedded serve")
    parser.add_argument("--gguf", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--alias", default=None)
    parser.add_argument("--batch", type=int, default=None, help="llama.cpp n_batch (logical batch, tokens)")
    parser.add_argument("--ubatch", type=int, default=None, help="llama.cpp n_ubatch (physical batch, tokens)")
    parser.add_argument("--draft", default=None, help="draft GGUF model: speculative decoding")
    parser.add_argument("--draft-max", type=int, default=8)
    parser.add_argument("--draft-min", type=int, default=0)
    parser.add_argument("--draft-p-min", type=float, default=0.75)
    parser.add_argument("--embedding", choices=EMBEDDING_POOLINGS, default=None,
                        help="serve /v1/embeddings (final-layer hidden states, this pooling) instead of chat")
    parser.add_argument("--mmproj", default=None, help="multimodal projector GGUF: the model takes images")
    parser.add_argument("--parent-pid", type=int, default=None,
                        help="exit when this process is no longer our parent (it died, even by SIGKILL)")
    args = parser.parse_args(argv)

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.gguf
    params.hostnames = ["127.0.0.1"]  # loopback only
    params.port = args.port
    params.n_parallel = args.parallel
    params.n_ctx = args.ctx
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.endpoint_metrics = True  # /metrics on loopback: the run's prompt/generation counters
    if args.batch:
        params.n_batch = args.batch
    if args.ubatch:
        params.n_ubatch = args.ubatch
    if args.draft:
        draft = params.speculative.draft
        draft.mparams.path = args.draft
        draft.n_max, draft.n_min, draft.p_min = args.draft_max, args.draft_min, args.draft_p_min
        draft.cpuparams.n_threads = draft.cpuparams_batch.n_threads = args.threads
        params.speculative.types = [xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE]
    if args.embedding:
        params.embedding = True
        params.pooling_type = getattr(xllamacpp.llama_pooling_type, f"LLAMA_POOLING_TYPE_{args.embedding.upper()}")
        params.embd_normalize = -1  # raw hidden states; the probe standardises them itself
        params.n_batch = params.n_ubatch = args.ctx // max(1, args.parallel)  # one input = one batch
    if args.mmproj:
        params.mmproj.path = args.mmproj
    if args.alias:
        params.model_alias = {args.alias}  # a set of names in llama.cpp's params
    server = xllamacpp.Server(params)  # starts serving; keep the reference alive
    print(f"scireflect embedded server listening on {server.listening_address}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # The server runs in its own session (so Ctrl-C in the terminal reaches only the runner, which
    # stops it in order); a runner killed outright (SIGKILL, OOM) cannot stop it, so it watches its
    # parent and exits once it has been re-parented, instead of serving (and computing) forever.
    while not stop.wait(0.5):
        if args.parent_pid is not None and os.getppid() != args.parent_pid:
            print("scireflect embedded server: parent process gone; exiting", flush=True)
            break
    return 0

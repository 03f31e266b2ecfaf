"""What one sandboxed execution returns: :class:`ExecutionResult`, JSON-serialisable for traces."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["ExecutionResult"]


@dataclass(frozen=True)
class ExecutionResult:
    """The outcome of :func:`scireflect.sandbox.run_python`.

    Exactly one of ``exit_status`` and ``signal`` is set once the code has ended; both are ``None``
    only when the supervisor killed the sandbox before its PID 1 could report (e.g. a wall-clock
    timeout), in which case ``killed_reason`` says why.

    Examples:
        >>> r = ExecutionResult(stdout="4\\n", stderr="", exit_status=0, signal=None, duration_s=0.05)
        >>> r.ok, ExecutionResult.from_dict(r.to_dict()) == r
        (True, True)
    """

    stdout: str
    """Standard output, decoded as UTF-8 (invalid bytes replaced), at most ``max_output_bytes``."""

    stderr: str
    """Standard error (tracebacks land here), same decoding and cap."""

    exit_status: int | None
    """The code's exit status when it exited by itself (0 = success, 1 = uncaught exception)."""

    signal: str | None
    """Name of the signal that ended the code (``"SIGKILL"``, ``"SIGXCPU"``, ``"SIGSYS"``, ...)."""

    duration_s: float
    """Wall-clock seconds from starting the sandbox to its end, start-up included."""

    timed_out: bool = False
    """The wall-clock limit was reached and the sandbox was killed."""

    truncated: bool = False
    """More than ``max_output_bytes`` were written; the output was cut and the sandbox killed."""

    killed_reason: str | None = None
    """Why the sandbox or the code was stopped, in words (``None`` when it ended by itself)."""

    cpu_s: float | None = None
    """CPU seconds (user + system) the code used, as measured by the sandbox's PID 1."""

    @property
    def ok(self) -> bool:
        """The code ran to the end and exited with status 0."""
        return self.exit_status == 0 and self.killed_reason is None

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of JSON types (``json.dumps`` takes it as is)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExecutionResult:
        """The inverse of :meth:`to_dict`; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

"""What one sandboxed execution may use: :class:`SandboxLimits`.

Each limit is enforced by the kernel or by the supervising process, never by the sandboxed
Python itself (see docs/sandbox.md for which mechanism enforces which limit).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["SandboxLimits", "DEFAULT_LIMITS"]


@dataclass(frozen=True)
class SandboxLimits:
    """Hard limits of one execution. All are per execution; none is shared between executions.

    Examples:
        >>> SandboxLimits(wall_s=5, memory_mb=512).cpu_s
        20
    """

    wall_s: float = 30.0
    """Wall-clock seconds from start to kill, sandbox start-up included. Past it the supervisor
    kills the sandbox's PID namespace (``timed_out`` is set)."""

    cpu_s: int = 20
    """CPU seconds (``RLIMIT_CPU``, per process): SIGXCPU at ``cpu_s``, SIGKILL one second later."""

    memory_mb: int = 1024
    """Address space of each process in MiB (``RLIMIT_AS``): an allocation past it fails
    (``MemoryError`` in Python). The whole sandbox can use at most about
    ``memory_mb * max_processes + tmpfs_mb``."""

    max_processes: int = 8
    """Processes and threads the sandbox may hold at once, its PID 1 included (``RLIMIT_NPROC``,
    counted in the sandbox's own user namespace). A fork past it fails with EAGAIN."""

    max_output_bytes: int = 1_000_000
    """Bytes read from stdout and stderr together; past it the sandbox is killed and the output
    kept so far is returned with ``truncated`` set."""

    max_file_mb: int = 64
    """Largest file the code may write, in MiB (``RLIMIT_FSIZE``); a bigger write fails with EFBIG."""

    tmpfs_mb: int = 64
    """Size of the private writable ``/tmp`` (a tmpfs, so it counts as memory) in MiB."""

    max_open_files: int = 256
    """Open file descriptors per process (``RLIMIT_NOFILE``)."""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"SandboxLimits.{name} must be a positive number, got {value!r}")
        for name in ("cpu_s", "memory_mb", "max_processes", "max_output_bytes", "max_file_mb", "tmpfs_mb",
                     "max_open_files"):
            if not isinstance(getattr(self, name), int):
                raise ValueError(f"SandboxLimits.{name} must be an integer, got {getattr(self, name)!r}")
        if self.max_processes < 2:
            raise ValueError("SandboxLimits.max_processes must be at least 2 (the sandbox's PID 1 and the code)")


DEFAULT_LIMITS = SandboxLimits()

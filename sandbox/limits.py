"""What one sandboxed execution may use: :class:`SandboxLimits`.

Each limit is enforced by the kernel or by the supervising process, never by the sandboxed
Python itself (see docs/sandbox.md for which mechanism enforces which limit).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["BOOT_MEMORY_MB", "DEFAULT_LIMITS", "SandboxLimits"]

BOOT_MEMORY_MB = 64
"""Address space of the sandbox's PID 1 (``boot.py``, about 13 MiB in use): it lowers its own
``RLIMIT_AS`` to this once it has forked the code, so that it counts for little in the total."""


@dataclass(frozen=True)
class SandboxLimits:
    """Hard limits of one execution. All are per execution; none is shared between executions.

    The sandbox as a whole holds at most ``total_memory_mb``: no cgroup is used, so the kernel's
    per-process limits must add up to it, ``(max_processes - 1) * memory_mb`` for the code's
    processes, plus :data:`BOOT_MEMORY_MB` for PID 1 and ``tmpfs_mb`` for ``/tmp``; a combination
    past it is refused (``ValueError``).

    Examples:
        >>> SandboxLimits(wall_s=5, memory_mb=256).cpu_s
        20
        >>> SandboxLimits().memory_bound_mb  # 3 x 512 MiB + 64 (PID 1) + 64 (/tmp), under 2048
        1664
    """

    wall_s: float = 30.0
    """Wall-clock seconds from start to kill, sandbox start-up included. Past it the supervisor
    kills the sandbox's PID namespace (``timed_out`` is set)."""

    cpu_s: int = 20
    """CPU seconds (``RLIMIT_CPU``, per process): SIGXCPU at ``cpu_s``, SIGKILL one second later."""

    memory_mb: int = 512
    """Address space of each of the code's processes in MiB (``RLIMIT_AS``): an allocation past it
    fails (``MemoryError`` in Python). Importing sympy, numpy, scipy and pint takes about 270 MiB."""

    max_processes: int = 4
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

    total_memory_mb: int = 2048
    """Memory of the whole sandbox, all its processes and ``/tmp`` together, in MiB: the sum
    :attr:`memory_bound_mb` of the per-process limits may not exceed it."""

    @property
    def memory_bound_mb(self) -> int:
        """The most memory the sandbox can hold, in MiB: the code's processes at ``memory_mb`` each
        (``max_processes`` counts PID 1 too), PID 1 at :data:`BOOT_MEMORY_MB`, and ``/tmp``."""
        return (self.max_processes - 1) * self.memory_mb + BOOT_MEMORY_MB + self.tmpfs_mb

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"SandboxLimits.{name} must be a positive number, got {value!r}")
        for name in ("cpu_s", "memory_mb", "max_processes", "max_output_bytes", "max_file_mb", "tmpfs_mb",
                     "max_open_files", "total_memory_mb"):
            if not isinstance(getattr(self, name), int):
                raise ValueError(f"SandboxLimits.{name} must be an integer, got {getattr(self, name)!r}")
        if self.max_processes < 2:
            raise ValueError("SandboxLimits.max_processes must be at least 2 (the sandbox's PID 1 and the code)")
        if self.memory_bound_mb > self.total_memory_mb:
            raise ValueError(
                f"SandboxLimits: {self.max_processes - 1} processes of memory_mb={self.memory_mb} MiB, "
                f"PID 1 ({BOOT_MEMORY_MB} MiB) and tmpfs_mb={self.tmpfs_mb} could hold {self.memory_bound_mb} MiB, "
                f"more than total_memory_mb={self.total_memory_mb}: lower memory_mb or max_processes")


DEFAULT_LIMITS = SandboxLimits()

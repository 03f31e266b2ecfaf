"""Run untrusted Python (a model's sympy / numpy / pint / scipy code) in an OS-level sandbox.

Each execution gets a fresh bubblewrap sandbox: new user (nobody, no capabilities), PID,
network, IPC, UTS and cgroup namespaces, a read-only view of this interpreter and its libraries,
a private tmpfs /tmp, a seccomp filter built by libseccomp, and hard limits on wall time, CPU,
memory, processes, file size and output. There is no unsandboxed fallback: where the sandbox
cannot start, :func:`sandbox_available` says why and :func:`run_python` raises
:class:`SandboxUnavailable`. See docs/sandbox.md; ``python -m scireflect.sandbox --check``
checks a machine.

Example:
    >>> from scireflect.sandbox import run_python, SandboxLimits
    >>> run_python("import sympy; print(sympy.factorint(360))", limits=SandboxLimits(wall_s=10)).stdout
    '{2: 3, 3: 2, 5: 1}\\n'
"""

from .check import sandbox_available
from .errors import SandboxUnavailable
from .limits import DEFAULT_LIMITS, SandboxLimits
from .result import ExecutionResult
from .run import arun_python, run_python

__all__ = [
    "DEFAULT_LIMITS",
    "ExecutionResult",
    "SandboxLimits",
    "SandboxUnavailable",
    "arun_python",
    "run_python",
    "sandbox_available",
]

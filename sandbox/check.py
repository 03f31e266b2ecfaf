"""Can this machine run the sandbox? :func:`sandbox_available`, and the probes of ``--check``."""

from __future__ import annotations

import functools
import json

from .bwrap import host_layout
from .errors import SandboxUnavailable
from .limits import SandboxLimits
from .seccomp import SeccompUnavailable, compile_filter
from .supervise import execute

__all__ = ["sandbox_available", "require_available", "PROBES"]

_SELF_TEST_LIMITS = SandboxLimits(wall_s=30.0, cpu_s=10)


@functools.lru_cache(maxsize=1)
def _availability() -> tuple[bool, str]:
    try:
        layout = host_layout()
        compile_filter()
        result = execute("print('sandbox ok')", _SELF_TEST_LIMITS)
    except (SandboxUnavailable, SeccompUnavailable) as exc:
        return False, str(exc)
    if result.stdout != "sandbox ok\n" or not result.ok:
        return False, f"the sandbox's self-test failed: {json.dumps(result.to_dict())[:2000]}"
    who = "as nobody, through setpriv" if layout.setpriv else "as the caller"
    return True, f"bubblewrap at {layout.bwrap} ({who}), seccomp by libseccomp; self-test ran in {result.duration_s:.3f} s"


def sandbox_available(*, refresh: bool = False) -> tuple[bool, str]:
    """Whether sandboxed execution works here, and why (or why not), in words.

    The first call checks bubblewrap (0.8 or newer), ``setpriv`` for a root caller, libseccomp,
    and then starts a real sandbox that prints a line; the answer is cached for the process
    (``refresh=True`` checks again). A caller that gets ``False`` must not offer code execution:
    :func:`scireflect.sandbox.run_python` then raises :class:`SandboxUnavailable` and never runs
    code unsandboxed.

    Returns:
        ``(True, description)`` or ``(False, reason)``.

    Examples:
        >>> ok, why = sandbox_available()
        >>> isinstance(ok, bool) and isinstance(why, str)
        True
    """
    if refresh:
        _availability.cache_clear()
    return _availability()


def require_available() -> None:
    """Raise :class:`SandboxUnavailable` with the reason unless :func:`sandbox_available`."""
    ok, reason = sandbox_available()
    if not ok:
        raise SandboxUnavailable(reason)


#: ``--check``'s probes: (what is checked, code run in the sandbox, the stdout that means "isolated").
PROBES: tuple[tuple[str, str, str], ...] = (
    ("runs as nobody, no capabilities",
     "import os; s = open('/proc/self/status').read()\n"
     "print(os.getuid(), 'CapEff:\\t0000000000000000' in s, 'NoNewPrivs:\\t1' in s)", "65534 True True\n"),
    ("seccomp filter loaded",
     "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('Seccomp:')][0])", "2\n"),
    ("no network (AF_INET refused, only lo)",
     "import socket\ntry:\n    socket.socket(socket.AF_INET, socket.SOCK_STREAM); print('socket!')\n"
     "except OSError as e:\n    print(e.errno == 97, [l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]])",
     "True ['lo']\n"),
    ("no host files (/etc/shadow, /root, /home)",
     "import os; print([os.path.exists(p) for p in ('/etc/shadow', '/etc/passwd', '/home')],"
     " [e for e in (os.listdir('/root') if os.path.isdir('/root') else []) if not os.path.isdir('/root/' + e)])",
     "[False, False, False] []\n"),
    ("own PID namespace",
     "import os; print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))", "[1, 2]\n"),
    ("sympy, numpy and pint import",
     "import sympy, numpy, pint\nprint(sympy.integrate(sympy.Symbol('x')**2, (sympy.Symbol('x'), 0, 3)), int(numpy.arange(5).sum()),"
     " pint.UnitRegistry().Quantity(3, 'km').to('m').magnitude)", "9 10 3000.0\n"),
)

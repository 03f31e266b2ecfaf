"""Tests of the code sandbox's API: limits, results, the seccomp program, the bwrap command line,
availability without bubblewrap, and real runs of sympy / numpy / pint / scipy code (sync, async,
concurrent, cancelled). The attacks are in test_sandbox_security.py."""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from pathlib import Path

import pytest

from scireflect.sandbox import (
    DEFAULT_LIMITS,
    ExecutionResult,
    SandboxLimits,
    SandboxUnavailable,
    arun_python,
    run_python,
    sandbox_available,
)
from scireflect.sandbox import bwrap, check, seccomp

from .test_sandbox_security import bind_parents_in_tmp, requires_sandbox, sandbox_processes, wait_until_gone


@pytest.fixture
def no_strays():
    before = set(sandbox_processes())
    yield
    assert not wait_until_gone(set(sandbox_processes()) - before)


# --- limits and results (no sandbox needed) -----------------------------------------------------

@pytest.mark.parametrize("bad", [{"wall_s": 0}, {"cpu_s": -1}, {"memory_mb": 1.5}, {"max_processes": 1},
                                 {"max_output_bytes": True}, {"tmpfs_mb": "64"}])
def test_limits_reject_nonsense(bad: dict) -> None:
    with pytest.raises(ValueError):
        SandboxLimits(**bad)


def test_limits_are_frozen_with_documented_defaults() -> None:
    assert DEFAULT_LIMITS == SandboxLimits(wall_s=30.0, cpu_s=20, memory_mb=512, max_processes=4,
                                           max_output_bytes=1_000_000, max_file_mb=64, tmpfs_mb=64, max_open_files=256,
                                           total_memory_mb=2048)
    with pytest.raises(AttributeError):
        DEFAULT_LIMITS.wall_s = 1  # type: ignore[misc]


def test_result_round_trips_through_json() -> None:
    r = ExecutionResult(stdout="x\n", stderr="", exit_status=None, signal="SIGKILL", duration_s=1.5, timed_out=True,
                        killed_reason="wall-clock limit of 1.5 s")
    back = ExecutionResult.from_dict(json.loads(json.dumps(r.to_dict())) | {"unknown": 1})
    assert back == r and not back.ok
    assert ExecutionResult(stdout="", stderr="", exit_status=0, signal=None, duration_s=0.1).ok


# --- the seccomp program and the command line ---------------------------------------------------

def test_seccomp_program_is_built_by_libseccomp() -> None:
    try:
        program = seccomp.compile_filter()
    except seccomp.SeccompUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    assert len(program) % 8 == 0 and len(program) > 8 * 40  # struct sock_filter[], one rule or more per syscall
    import pyseccomp

    unknown = [n for names in seccomp.DENIED_SYSCALLS.values() for n in names
               if pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, n) == -1]
    assert not unknown  # every name of the deny list is a real system call here


@requires_sandbox
def test_command_line_carries_no_code_and_every_isolation_flag() -> None:
    layout = bwrap.host_layout()
    fds = bwrap.SandboxFds(boot=10, code=11, seccomp=12, info=13, report=14)
    argv = layout.argv(DEFAULT_LIMITS, fds)
    sandbox = argv[argv.index("--unshare-user") - 1:]  # stage 2: the sandbox's own bwrap
    for flag in ("--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                 "--unshare-cgroup", "--disable-userns", "--die-with-parent", "--new-session", "--as-pid-1",
                 "--clearenv"):
        assert flag in sandbox, flag
    assert sandbox[sandbox.index("--uid") + 1] == "65534" and sandbox[sandbox.index("--cap-drop") + 1] == "ALL"
    assert sandbox[sandbox.index("--seccomp") + 1] == "12"
    assert sandbox[sandbox.index(bwrap.CODE_PATH) - 1] == "11"  # the code arrives through fd 11, read-only
    binds = [sandbox[i + 1] for i, a in enumerate(sandbox) if a in ("--bind", "--dev-bind")]
    assert binds == []  # nothing of the host is writable
    assert "--share-net" not in argv and "/home" not in sandbox and "/etc" not in sandbox
    if os.geteuid() == 0:  # root: started as nobody through setpriv, which keeps no capability
        assert layout.setpriv and argv[0] == layout.bwrap and "--reuid=65534" in argv and "--inh-caps=-all" in argv


def test_unavailable_without_bubblewrap_and_never_runs_unsandboxed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on PATH
    bwrap.host_layout.cache_clear()
    try:
        ok, why = sandbox_available(refresh=True)
        assert not ok and "bubblewrap is not installed" in why
        marker = tmp_path / "ran"
        with pytest.raises(SandboxUnavailable, match="bubblewrap"):
            run_python(f"open({str(marker)!r}, 'w').write('ran unsandboxed')")
        with pytest.raises(SandboxUnavailable):
            asyncio.run(arun_python("print(1)"))
        assert not marker.exists()
    finally:
        monkeypatch.undo()
        bwrap.host_layout.cache_clear()
        check.sandbox_available(refresh=True)


# --- real runs --------------------------------------------------------------------------------

LIMITS = SandboxLimits(wall_s=60, cpu_s=30)


@requires_sandbox
def test_sympy_numpy_pint_code_prints_the_right_numbers(no_strays) -> None:
    code = r'''
import sympy as sp, numpy as np, pint
x = sp.symbols("x")
print(sp.solve(x**2 - 5*x + 6, x))
print(sp.integrate(sp.sin(x)**2, (x, 0, sp.pi)))
print(np.linalg.solve(np.array([[3.0, 1.0], [1.0, 2.0]]), np.array([9.0, 8.0])).round(6).tolist())
ureg = pint.UnitRegistry()
v = (72 * ureg.km / ureg.hour).to(ureg.m / ureg.s)
print(f"{v.magnitude:.3f} {v.units:~}")
print(f"{(9.81 * ureg.m / ureg.s**2 * 2 * ureg.s**2 / 2).to('cm'):.1f}")
'''
    result = run_python(code, limits=LIMITS)
    assert result.ok, result
    assert result.stdout.splitlines() == ["[2, 3]", "pi/2", "[2.0, 3.0]", "20.000 m / s", "981.0 centimeter"]
    assert result.stderr == "" and result.cpu_s is not None


@requires_sandbox
def test_scipy_runs_when_installed(no_strays) -> None:
    pytest.importorskip("scipy")
    result = run_python("from scipy import integrate, optimize\nimport math\n"
                        "print(round(integrate.quad(math.exp, 0, 1)[0], 9), round(optimize.brentq(lambda t: t**3 - 2, 0, 2), 9))",
                        limits=LIMITS)
    assert result.ok and result.stdout == f"{round(math.e - 1, 9)} {round(2 ** (1 / 3), 9)}\n", result


@requires_sandbox
def test_a_reasonable_script_finishes_well_under_the_limits(no_strays) -> None:
    code = r'''
import sympy as sp
n = sp.symbols("n", integer=True, positive=True)
print(sp.summation(1 / n**2, (n, 1, sp.oo)), sp.factorint(2**32 + 1), sp.nsimplify(0.333333333333))
'''
    t0 = time.monotonic()
    result = run_python(code)  # default limits: 30 s wall, 20 s CPU
    wall = time.monotonic() - t0
    assert result.ok and result.stdout == "pi**2/6 {641: 1, 6700417: 1} 1/3\n", result
    assert result.duration_s <= wall and wall < DEFAULT_LIMITS.wall_s / 3 and result.cpu_s < DEFAULT_LIMITS.cpu_s / 3


@requires_sandbox
def test_stdin_unicode_exit_status_traceback_and_signals(no_strays) -> None:
    echo = run_python("import sys\ndata = sys.stdin.read()\nprint(data.upper(), len(data))", stdin="größe μ ∫", limits=LIMITS)
    assert echo.ok and echo.stdout == "GRÖSSE Μ ∫ 9\n", echo
    big = run_python("import sys\nprint(len(sys.stdin.buffer.read()))", stdin=b"x" * 3_000_000, limits=LIMITS)
    assert big.ok and big.stdout == "3000000\n"
    exited = run_python("import sys\nprint('partial')\nsys.exit(3)", limits=LIMITS)
    assert exited.exit_status == 3 and exited.stdout == "partial\n" and exited.killed_reason is None and not exited.ok
    error = run_python("def f():\n    return 1 / 0\nf()", limits=LIMITS)
    assert error.exit_status == 1 and 'File "/sandbox/main.py", line 2, in f' in error.stderr
    assert error.stderr.rstrip().endswith("ZeroDivisionError: division by zero")
    killed = run_python("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)", limits=LIMITS)
    assert killed.exit_status is None and killed.signal == "SIGTERM" and killed.killed_reason == "ended by SIGTERM"
    assert json.loads(json.dumps(killed.to_dict()))["signal"] == "SIGTERM"


@requires_sandbox
def test_each_run_starts_from_a_clean_sandbox(no_strays) -> None:
    first = run_python("open('/tmp/state', 'w').write('x')\nimport os\nprint(sorted(os.listdir('/tmp')))", limits=LIMITS)
    second = run_python("import os\nprint(sorted(os.listdir('/tmp')))", limits=LIMITS)
    bound = bind_parents_in_tmp()
    assert first.stdout == f"{sorted(['state', *bound])}\n" and second.stdout == f"{bound}\n"


@requires_sandbox
async def test_async_runs_concurrently(no_strays) -> None:
    codes = [f"import time\ntime.sleep(1)\nprint({i} ** 2)" for i in range(4)]
    t0 = time.monotonic()
    results = await asyncio.gather(*(arun_python(c, limits=LIMITS) for c in codes))
    assert [r.stdout for r in results] == ["0\n", "1\n", "4\n", "9\n"]
    assert time.monotonic() - t0 < 4 * 1.0 + 3  # they overlap; each also has its own process limit


@requires_sandbox
async def test_cancelling_the_task_kills_the_sandbox(no_strays) -> None:
    before = set(sandbox_processes())
    task = asyncio.create_task(arun_python("import time\ntime.sleep(120)", limits=LIMITS))
    deadline = time.monotonic() + 30
    while not set(sandbox_processes()) - before and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    t0 = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - t0 < 5
    assert not wait_until_gone(set(sandbox_processes()) - before, timeout_s=5)


@requires_sandbox
def test_check_cli_passes() -> None:
    from scireflect.sandbox.__main__ import main

    assert main(["--check", "--runs", "3"]) == 0



def test_a_distribution_python_shows_its_executable_not_usr_bin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A venv of /usr/bin/python3: /usr/lib and the executable's symlink chain are bound, never
    the whole /usr prefix (which would show /usr/bin and its shell)."""
    real = tmp_path / "usr-bin-python3.11"
    real.write_text("")
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").symlink_to(real)
    monkeypatch.setattr(bwrap.sys, "base_prefix", "/usr")
    monkeypatch.setattr(bwrap.sys, "prefix", str(tmp_path / "venv"))
    monkeypatch.setattr(bwrap.sys, "executable", str(tmp_path / "venv" / "bin" / "python"))
    paths = bwrap._interpreter_paths()
    assert "/usr" not in paths and "/" not in paths and "/usr/lib" in paths
    assert str(tmp_path / "venv") in paths and str(real) in paths

"""Start one sandbox and watch it: wall clock, output cap, cancellation, and a clean kill.

:func:`execute` starts bubblewrap (:mod:`.bwrap`) with the code, boot.py and the seccomp program
in memfds, then reads stdout, stderr and two control pipes with ``selectors`` until the sandbox
ends, its wall-clock limit passes, its output passes the cap, or it is cancelled. To kill, it
sends SIGKILL through a pidfd to the sandbox's PID 1 (whose death makes the kernel kill every
process of the PID namespace) and to bubblewrap's process group, then waits on the pidfd, which
becomes readable only once PID 1 and so the whole namespace are gone.
"""

from __future__ import annotations

import errno
import json
import os
import selectors
import signal
import subprocess
import time
from pathlib import Path

from .bwrap import SandboxFds, host_layout
from .errors import SandboxUnavailable
from .limits import SandboxLimits
from .result import ExecutionResult
from .seccomp import SeccompUnavailable, compile_filter

__all__ = ["execute"]

BOOT_SOURCE = (Path(__file__).with_name("boot.py")).read_bytes()
_READ = 65536
_KILL_WAIT_S = 10.0  # how long to wait for a killed namespace to be gone


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name)  # close-on-exec; Popen's pass_fds hands it to bwrap only
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _sandbox_pidfd(info: bytes) -> int | None:
    """A pidfd on the sandbox's PID 1, from bwrap's ``--info-fd`` JSON; ``None`` if unusable.

    The pid is checked to be PID 1 of a nested PID namespace before use, so that a pid reused by
    an unrelated process (PID 1 long gone) is never signalled."""
    try:
        pid = int(json.loads(info)["child-pid"])
        fd = os.pidfd_open(pid)
    except (ValueError, KeyError, TypeError, OSError):
        return None
    try:
        nspid = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("NSpid:"))
    except (OSError, StopIteration):
        nspid = ""
    fields = nspid.split()[1:]
    if len(fields) >= 2 and fields[-1] == "1":
        return fd
    os.close(fd)
    return None


class _Run:
    """The state of one execution while it is watched."""

    def __init__(self, proc: subprocess.Popen, limits: SandboxLimits, stdin: bytes | None) -> None:
        self.proc = proc
        self.limits = limits
        self.stdin = memoryview(stdin) if stdin else None
        self.out = {"stdout": bytearray(), "stderr": bytearray()}
        self.report = bytearray()
        self.info = bytearray()
        self.pidfd: int | None = None
        self.killed_reason: str | None = None
        self.timed_out = False
        self.truncated = False

    def kill(self, reason: str) -> None:
        if self.killed_reason is None:
            self.killed_reason = reason
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def take(self, name: str, chunk: bytes) -> None:
        """Keep output up to the cap; past it, kill the sandbox."""
        buf = self.out[name]
        room = self.limits.max_output_bytes - len(self.out["stdout"]) - len(self.out["stderr"])
        if len(chunk) > room:
            buf += chunk[:max(room, 0)]
            self.truncated = True
            self.kill(f"output limit: more than {self.limits.max_output_bytes} bytes on stdout and stderr")
        else:
            buf += chunk


def execute(code: str, limits: SandboxLimits, stdin: bytes | None = None, cancel_fd: int | None = None) -> ExecutionResult:
    """Run ``code`` in a new sandbox and return how it ended.

    ``cancel_fd``, when given, is the read end of a pipe: once it is readable the sandbox is
    killed and the result says ``killed_reason="cancelled"``.

    Raises:
        SandboxUnavailable: the sandbox could not be started (bubblewrap failed before the code's
            interpreter started, e.g. no user namespaces); the code has not run.
    """
    layout = host_layout()
    try:
        program = compile_filter()
    except SeccompUnavailable as exc:
        raise SandboxUnavailable(str(exc)) from exc
    info_r, info_w = os.pipe()
    report_r, report_w = os.pipe()
    child_fds = [info_w, report_w]
    try:
        child_fds += [_memfd("boot.py", BOOT_SOURCE), _memfd("main.py", code.encode("utf-8", errors="surrogatepass")),
                      _memfd("seccomp.bpf", program)]
        fds = SandboxFds(boot=child_fds[2], code=child_fds[3], seccomp=child_fds[4], info=info_w, report=report_w)
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                layout.argv(limits, fds), stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=child_fds, env={}, cwd="/",
                start_new_session=True,
            )
        except OSError as exc:
            raise SandboxUnavailable(f"cannot start bubblewrap: {exc}") from exc
        finally:
            for fd in child_fds:  # only the sandbox holds them now: EOF on a pipe means all its holders are gone
                os.close(fd)
            child_fds = []
        run = _Run(proc, limits, stdin)
        try:
            _watch(run, start, info_r, report_r, cancel_fd)
        except BaseException:
            run.kill("supervisor error")  # never leave a sandbox running behind an exception
            _await_gone(run)
            raise
        finally:
            end = time.monotonic()
            for f in (proc.stdout, proc.stderr, proc.stdin):
                if f is not None and not f.closed:
                    f.close()
            if run.pidfd is not None:
                os.close(run.pidfd)
        rc = proc.wait()
    finally:
        for fd in (info_r, report_r, *child_fds):
            os.close(fd)
    return _result(run, rc, end - start)


def _watch(run: _Run, start: float, info_r: int, report_r: int, cancel_fd: int | None) -> None:
    """Read everything until all pipes are closed (all sandbox processes gone), killing on limits."""
    proc, limits = run.proc, run.limits
    deadline = start + limits.wall_s
    sel = selectors.DefaultSelector()
    try:
        sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
        sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
        sel.register(info_r, selectors.EVENT_READ, "info")
        sel.register(report_r, selectors.EVENT_READ, "report")
        if cancel_fd is not None:
            sel.register(cancel_fd, selectors.EVENT_READ, "cancel")
        if run.stdin is not None:
            os.set_blocking(proc.stdin.fileno(), False)
            sel.register(proc.stdin, selectors.EVENT_WRITE, "stdin")
        while len(sel.get_map()) > (cancel_fd is not None) and run.killed_reason is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                run.timed_out = True
                run.kill(f"wall-clock limit of {limits.wall_s:g} s")
                break
            for key, _ in sel.select(remaining):
                name = key.data
                if name == "cancel":
                    run.kill("cancelled")
                    break
                if name == "stdin":
                    _feed_stdin(run, sel)
                    continue
                chunk = os.read(key.fd, _READ)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                if name == "info":
                    run.info += chunk
                    if run.pidfd is None:
                        run.pidfd = _sandbox_pidfd(bytes(run.info))
                elif name == "report":
                    run.report += chunk
                else:
                    run.take(name, chunk)
                if run.killed_reason is not None:
                    break
    finally:
        sel.close()
    if run.killed_reason is not None:
        _await_gone(run)


def _feed_stdin(run: _Run, sel: selectors.BaseSelector) -> None:
    stdin = run.proc.stdin
    try:
        written = os.write(stdin.fileno(), run.stdin[:_READ])
        run.stdin = run.stdin[written:]
    except BlockingIOError:
        return
    except OSError as exc:  # the code closed its stdin or ended: the rest is not wanted
        if exc.errno not in (errno.EPIPE, errno.EBADF):
            raise
        run.stdin = run.stdin[:0]
    if not run.stdin:
        sel.unregister(stdin)
        stdin.close()


def _await_gone(run: _Run) -> None:
    """After a kill: wait until the sandbox's PID 1 (so its whole namespace) and bwrap are gone."""
    if run.pidfd is not None:
        sel = selectors.DefaultSelector()
        sel.register(run.pidfd, selectors.EVENT_READ)
        sel.select(_KILL_WAIT_S)
        sel.close()
    try:
        run.proc.wait(timeout=_KILL_WAIT_S)
    except subprocess.TimeoutExpired:
        run.kill(run.killed_reason or "killed")
        run.proc.wait()


def _result(run: _Run, rc: int, duration: float) -> ExecutionResult:
    lines = bytes(run.report).decode("ascii", errors="replace").split("\n")
    started = "started" in lines
    if not started and run.killed_reason is None:
        stderr = bytes(run.out["stderr"]).decode("utf-8", errors="replace").strip()
        raise SandboxUnavailable(f"the sandbox did not start (bubblewrap exit status {rc}): {stderr[-2000:] or 'no message'}")
    exit_status = sig_name = cpu = None
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] in ("exit", "signal"):
            value, cpu = int(parts[1]), float(parts[2])
            if parts[0] == "exit":
                exit_status = value
            else:
                sig_name = _signal_name(value)
    reason = run.killed_reason
    if reason is None and sig_name is not None:
        reason = _signal_reason(sig_name, cpu, run.limits)
    if reason is None and exit_status is None:
        reason = "the sandbox ended without reporting how the code ended"
    return ExecutionResult(
        stdout=bytes(run.out["stdout"]).decode("utf-8", errors="replace"),
        stderr=bytes(run.out["stderr"]).decode("utf-8", errors="replace"),
        exit_status=exit_status, signal=sig_name, duration_s=round(duration, 4), timed_out=run.timed_out,
        truncated=run.truncated, killed_reason=reason, cpu_s=cpu,
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _signal_reason(name: str, cpu: float | None, limits: SandboxLimits) -> str:
    # SIGKILL after a handled SIGXCPU is RLIMIT_CPU's hard limit; rusage, which ``cpu`` comes
    # from, is sampled and can read a little under the kernel's precise CPU clock
    if name == "SIGXCPU" or (name == "SIGKILL" and cpu is not None and cpu >= 0.9 * limits.cpu_s):
        return f"CPU time limit of {limits.cpu_s} s"
    if name == "SIGXFSZ":
        return f"file size limit of {limits.max_file_mb} MiB"
    if name == "SIGSYS":
        return "a forbidden system call (seccomp)"
    return f"ended by {name}"

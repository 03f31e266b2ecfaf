"""PID 1 of the sandbox: set the resource limits, run the code as PID 2, report how it ended.

This file is not imported by scireflect: its source is copied into the sandbox (read-only, as
``/sandbox/boot.py``) and run there by ``python -I -S -B``, after bubblewrap has built the
namespaces and loaded the seccomp filter, so it uses the standard library only.

Usage inside the sandbox::

    python -I -S -B /sandbox/boot.py REPORT_FD PID1_RLIMIT_AS=67108864 RLIMIT_CPU=20:21 RLIMIT_AS=536870912 ...

It writes ``started`` to REPORT_FD (a pipe to the supervisor), sets each rlimit given as
``NAME=SOFT[:HARD]``, forks the code (``python -I -B -X utf8 /sandbox/main.py``) with every other
file descriptor closed, sets its own ``PID1_NAME=SOFT[:HARD]`` limits, reaps every process until the code has ended, writes ``exit N CPU`` or
``signal N CPU`` (CPU = seconds the code used) and exits; the kernel then kills whatever the code
left running, since PID 1 of a PID namespace has ended. It also exits at once when the
supervisor is gone (REPORT_FD's read end closed: the kernel closes it even when the supervisor
is killed with SIGKILL), which ends the sandbox whatever became of the processes between them.

The limits are set here rather than before bubblewrap because ``RLIMIT_NPROC`` counts processes
per user and user namespace: set inside the sandbox's own user namespace it counts only the
sandbox's processes. The code does not run as PID 1 so that it gets the ordinary signal
behaviour (PID 1 ignores signals it has no handler for) and so that its exact wait status, not
bubblewrap's ``128 + signal``, reaches the supervisor.
"""

import os
import resource
import select
import signal
import sys

MAIN = "/sandbox/main.py"
PID1_PREFIX = "PID1_"


def _set_limits(specs: list[str], prefix: str = "") -> None:
    """Set each ``PREFIX + NAME=SOFT[:HARD]`` of ``specs`` (those without the prefix are skipped;
    with no prefix, those starting with ``PID1_``, which apply to PID 1 alone)."""
    for spec in specs:
        if prefix and not spec.startswith(prefix) or not prefix and spec.startswith(PID1_PREFIX):
            continue
        name, _, values = spec[len(prefix):].partition("=")
        soft, _, hard = values.partition(":")
        resource.setrlimit(getattr(resource, name), (int(soft), int(hard or soft)))


def _not_dumpable() -> None:
    """Make PID 1 non-dumpable, so that the code (same uid) cannot open its /proc/1/mem or
    /proc/1/environ; best effort (prctl through ctypes)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        pass


def _exec_code() -> None:
    """In the child: close every inherited descriptor but 0-2, restore default signals, exec."""
    try:
        signal.set_wakeup_fd(-1)
        os.closerange(3, 1 << 20)
        for sig in (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL)
        os.execv(sys.executable, [sys.executable, "-I", "-B", "-X", "utf8", MAIN])
    except BaseException as exc:  # noqa: BLE001 - report anything, then leave without cleanup
        os.write(2, f"sandbox: cannot start the code: {exc}\n".encode())
    finally:
        os._exit(127)


def _report_end(report_fd: int, status: int, usage) -> None:
    cpu = usage.ru_utime + usage.ru_stime
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        os.write(report_fd, f"signal {sig} {cpu:.3f}\n".encode())
        os._exit(128 + sig)
    code = os.waitstatus_to_exitcode(status)
    os.write(report_fd, f"exit {code} {cpu:.3f}\n".encode())
    os._exit(code)


def main(argv: list[str]) -> None:
    report_fd = int(argv[1])
    os.write(report_fd, b"started\n")
    _not_dumpable()
    _set_limits(argv[2:])
    # SIGCHLD wakes the poll below through this pipe (its handler does nothing itself)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pid = os.fork()
    if pid == 0:
        _exec_code()
    _set_limits(argv[2:], PID1_PREFIX)  # e.g. a small RLIMIT_AS: PID 1 counts in the sandbox's total
    poller = select.poll()
    poller.register(report_fd, 0)  # no events asked: poll still reports POLLERR once no reader is left
    poller.register(wake_r, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == report_fd:  # the supervisor is gone: end the sandbox
                os._exit(137)
            while True:
                try:
                    os.read(wake_r, 512)
                except BlockingIOError:
                    break
        while True:  # reap every child that has ended: the code, and orphans handed to PID 1
            try:
                wpid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if wpid == 0:
                break
            if wpid == pid:
                _report_end(report_fd, status, usage)


if __name__ == "__main__":
    main(sys.argv)

"""The sandbox's seccomp filter: which system calls are refused, compiled to BPF by libseccomp.

The filter allows by default and refuses, with an errno, the system calls that sandboxed Python
never needs and that are the usual ways out of a namespace sandbox or into the kernel's less
exercised code (the lists follow Docker's and Flatpak's default profiles). bubblewrap loads it
(``--seccomp FD``) right before it executes the sandbox's first program, with ``no_new_privs``
set; every process in the sandbox inherits it and cannot remove it.

The BPF program is built by libseccomp (Debian's ``libseccomp2``) through ``pyseccomp``, a thin
ctypes binding, not assembled by hand. libseccomp adds the architecture check: a system call made
through another ABI (32-bit ``int 0x80`` or x32 numbers on x86-64) kills the process with SIGSYS,
so the deny list cannot be bypassed by calling the same syscall under another number.
"""

from __future__ import annotations

import errno
import functools
import socket
import tempfile

__all__ = ["DENIED_SYSCALLS", "NAMESPACE_CLONE_FLAGS", "SeccompUnavailable", "compile_filter"]

#: System calls refused with EPERM, grouped by why.
DENIED_SYSCALLS: dict[str, tuple[str, ...]] = {
    "inspect or write other processes": (
        "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    ),
    "mounts and the file-system view": (
        "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
        "fsmount", "fspick", "mount_setattr",
    ),
    "namespaces": ("unshare", "setns"),
    # memfd and SysV shared-memory pages are not counted by RLIMIT_AS once unmapped: without a
    # cgroup they would let a sandbox hold any amount of memory
    "memory outside the address-space limit": ("memfd_create", "memfd_secret", "shmget"),
    "kernel keyrings": ("keyctl", "add_key", "request_key"),
    "kernel attack surface": (
        "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
        "personality", "open_by_handle_at", "name_to_handle_at", "lookup_dcookie", "uselib",
        "mbind", "migrate_pages", "move_pages",
    ),
    "kernel modules and kexec": (
        "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    ),
    "system administration": (
        "reboot", "swapon", "swapoff", "syslog", "acct", "settimeofday", "clock_settime", "clock_adjtime",
        "adjtimex", "sethostname", "setdomainname", "iopl", "ioperm", "quotactl", "quotactl_fd", "vhangup",
        "fanotify_init",
    ),
}

#: ``clone`` flags that create namespaces; a ``clone`` with any of them is refused (EPERM).
NAMESPACE_CLONE_FLAGS: dict[str, int] = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
    "CLONE_NEWTIME": 0x00000080,
}

# ioctl requests that push characters into a terminal's input (the classic sandbox escape through a
# shared tty); --new-session already detaches the sandbox from the caller's terminal.
_TIOCSTI = 0x5412
_TIOCLINUX = 0x541C


class SeccompUnavailable(RuntimeError):
    """libseccomp or its binding is missing, or refused the filter."""


@functools.lru_cache(maxsize=1)
def compile_filter() -> bytes:
    """The filter as a BPF program (``struct sock_filter[]``, native byte order), ready for
    ``bwrap --seccomp FD``. Built once per process.

    Besides :data:`DENIED_SYSCALLS` (EPERM) it refuses ``socket`` for every family but AF_UNIX
    (EAFNOSUPPORT: no TCP/UDP, netlink, packet or vsock sockets), ``clone`` with a namespace flag
    (EPERM), ``clone3`` (ENOSYS: its flags sit in memory a filter cannot read, and glibc then
    falls back to ``clone``), and the ioctls TIOCSTI and TIOCLINUX (EPERM).

    Raises:
        SeccompUnavailable: libseccomp or ``pyseccomp`` is missing, or a rule was refused.
    """
    try:
        import pyseccomp as sc  # raises RuntimeError when libseccomp.so is missing
    except (ImportError, OSError, RuntimeError) as exc:
        raise SeccompUnavailable(f"cannot load libseccomp through pyseccomp: {exc}") from exc
    try:
        f = sc.SyscallFilter(sc.ALLOW)
        f.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
        for names in DENIED_SYSCALLS.values():
            for name in names:
                if sc.resolve_syscall(sc.Arch.NATIVE, name) == -1:  # unknown to this libseccomp
                    continue
                f.add_rule(sc.ERRNO(errno.EPERM), name)
        f.add_rule(sc.ERRNO(errno.EAFNOSUPPORT), "socket", sc.Arg(0, sc.NE, socket.AF_UNIX))
        for flag in NAMESPACE_CLONE_FLAGS.values():
            f.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
        f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        for request in (_TIOCSTI, _TIOCLINUX):  # the kernel reads the request as 32 bits: compare those
            f.add_rule(sc.ERRNO(errno.EPERM), "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
        with tempfile.TemporaryFile() as out:
            f.export_bpf(out)
            out.seek(0)
            program = out.read()
    except OSError as exc:
        raise SeccompUnavailable(f"libseccomp refused the filter: {exc}") from exc
    if not program or len(program) % 8:
        raise SeccompUnavailable(f"libseccomp produced a malformed BPF program ({len(program)} bytes)")
    return program

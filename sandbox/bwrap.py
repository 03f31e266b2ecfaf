"""The bubblewrap command line of one execution, and the host paths the sandbox may see.

The sandbox sees, read-only, the interpreter that runs scireflect (its prefix, the virtual
environment's prefix with its site-packages, the shared libraries in /usr/lib) and nothing else of
the host: no /etc, no /home or /root, no /usr/bin, no project files. It gets a private tmpfs /tmp,
a fresh /proc of its own PID namespace and a minimal /dev. The root, /dev and the code are
read-only.

When the caller is root, the sandbox must not run as root outside its user namespace either
(a uid-0 process is exempt from ``RLIMIT_NPROC`` and owns every root-owned file it can reach), so
bubblewrap is started as ``nobody`` (65534) through two stages:

1. a root ``bwrap`` that only builds a mount namespace in which the interpreter's directories are
   reachable by ``nobody`` (a directory such as ``/root`` with mode 0700 on the way is covered by
   a tmpfs holding just those directories), then ``setpriv`` drops to ``nobody`` with no
   capabilities and ``no_new_privs``;
2. the sandbox's ``bwrap``, as ``nobody``, exactly as for a non-root caller.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass

from .errors import SandboxUnavailable
from .limits import BOOT_MEMORY_MB, SandboxLimits

__all__ = ["BOOT_PATH", "CODE_PATH", "SANDBOX_UID", "HostLayout", "SandboxFds", "host_layout"]

SANDBOX_UID = 65534
"""uid and gid of the code inside the sandbox, and outside it when the caller is root (``nobody``)."""

BOOT_PATH = "/sandbox/boot.py"
CODE_PATH = "/sandbox/main.py"
MIN_BWRAP = (0, 8, 0)  # --disable-userns, --size, --ro-bind-data, --info-fd

#: The environment of the code: nothing of the caller's.
SANDBOX_ENV = {
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    # one thread per BLAS / OpenMP pool: threads count against max_processes
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "SCIREFLECT_SANDBOX": "1",  # marks sandbox processes: grep -l SCIREFLECT_SANDBOX /proc/*/environ
}


@dataclass(frozen=True)
class SandboxFds:
    """File descriptors the supervisor passes to bubblewrap for one execution."""

    boot: int
    """memfd holding boot.py, copied to BOOT_PATH."""
    code: int
    """memfd holding the code (UTF-8), copied to CODE_PATH."""
    seccomp: int
    """memfd holding the BPF program."""
    info: int
    """pipe to which bwrap writes ``{"child-pid": N}`` (the sandbox's PID 1 as seen by the host)."""
    report: int
    """pipe to which the sandbox's PID 1 writes ``started`` and how the code ended."""


@dataclass(frozen=True)
class HostLayout:
    """Where the tools are and which host paths the sandbox sees (all absolute)."""

    bwrap: str
    setpriv: str | None
    """Set when the caller is root: the privilege drop between the two stages."""
    python: str
    """The interpreter run inside the sandbox, at the same path as on the host (``sys.executable``,
    unresolved, so that a virtual environment's ``pyvenv.cfg`` is found)."""
    ro_binds: tuple[str, ...]
    """Host paths bound read-only at the same path."""
    symlinks: tuple[tuple[str, str], ...]
    """``(target, path)``: symlinks recreated as on the host (``/lib -> usr/lib`` on merged-/usr)."""
    covers: tuple[str, ...] = ()
    """Root only: directories ``nobody`` cannot traverse, covered by a tmpfs in stage 1."""

    def argv(self, limits: SandboxLimits, fds: SandboxFds) -> list[str]:
        """The full command line: stage 1 (root callers only) followed by the sandbox's bwrap."""
        return self._stage1() + self._stage2(limits, fds)

    def _stage1(self) -> list[str]:
        if self.setpriv is None:
            return []
        args = [self.bwrap, "--die-with-parent", "--dev-bind", "/", "/"]
        made: set[str] = set()
        for cover in self.covers:
            args += ["--perms", "0755", "--tmpfs", cover]
            for path in self.ro_binds:
                if not path.startswith(cover + "/"):
                    continue
                parent = os.path.dirname(path)
                dirs = []
                while parent != cover:
                    dirs.append(parent)
                    parent = os.path.dirname(parent)
                for d in reversed(dirs):  # bwrap would create missing parents with mode 0700
                    if d not in made:
                        made.add(d)
                        args += ["--perms", "0755", "--dir", d]
                args += ["--ro-bind", path, path]
        uid = str(SANDBOX_UID)
        return args + ["--", self.setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                       "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--pdeathsig=SIGKILL", "--"]

    def _stage2(self, limits: SandboxLimits, fds: SandboxFds) -> list[str]:
        uid = str(SANDBOX_UID)
        args = [
            self.bwrap,
            # namespaces: user (nobody inside, no capabilities), PID, network (loopback only), IPC,
            # UTS and cgroup; no further user namespaces inside
            "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup", "--disable-userns", "--uid", uid, "--gid", uid, "--hostname", "sandbox",
            "--cap-drop", "ALL",
            # the sandbox dies with its supervisor, has no controlling terminal, and its first
            # program (boot.py) is PID 1: no unfiltered bwrap process stays inside
            "--die-with-parent", "--new-session", "--as-pid-1",
        ]
        # /tmp first, so that an interpreter kept under /tmp (bound below) stays visible in it
        args += ["--perms", "0700", "--size", str(limits.tmpfs_mb << 20), "--tmpfs", "/tmp"]
        for path in self.ro_binds:
            args += ["--ro-bind", path, path]
        for target, path in self.symlinks:
            args += ["--symlink", target, path]
        args += [
            "--proc", "/proc", "--dev", "/dev",
            "--perms", "0444", "--ro-bind-data", str(fds.boot), BOOT_PATH,
            "--perms", "0444", "--ro-bind-data", str(fds.code), CODE_PATH,
            "--remount-ro", "/dev", "--remount-ro", "/",
            "--clearenv",
        ]
        for name, value in SANDBOX_ENV.items():
            args += ["--setenv", name, value]
        args += ["--setenv", "PATH", os.path.dirname(self.python), "--chdir", "/tmp",
                 "--info-fd", str(fds.info), "--seccomp", str(fds.seccomp), "--"]
        return args + [self.python, "-I", "-S", "-B", BOOT_PATH, str(fds.report), *_rlimits(limits)]


def _rlimits(limits: SandboxLimits) -> list[str]:
    """boot.py's ``NAME=SOFT[:HARD]`` arguments; ``PID1_`` ones apply to PID 1 alone, after its fork."""
    return [
        f"PID1_RLIMIT_AS={BOOT_MEMORY_MB << 20}",  # so the total stays within limits.total_memory_mb
        f"RLIMIT_CPU={limits.cpu_s}:{limits.cpu_s + 1}",  # SIGXCPU, then SIGKILL a second later
        f"RLIMIT_AS={limits.memory_mb << 20}",
        f"RLIMIT_NPROC={limits.max_processes}",
        f"RLIMIT_FSIZE={limits.max_file_mb << 20}",
        f"RLIMIT_NOFILE={limits.max_open_files}",
        "RLIMIT_CORE=0",
    ]


def _bwrap_version(bwrap: str) -> tuple[int, ...]:
    try:
        out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10, env={}).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxUnavailable(f"cannot run {bwrap} --version: {exc}") from exc
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", out)
    if not match:
        raise SandboxUnavailable(f"cannot read the bubblewrap version from {out!r}")
    return tuple(int(part or 0) for part in match.groups())


def _symlink_chain(path: str) -> list[str]:
    """``path`` and every path its symlinks lead through, ending with the real file."""
    chain = [os.path.abspath(path)]
    while os.path.islink(chain[-1]) and len(chain) < 40:
        chain.append(os.path.normpath(os.path.join(os.path.dirname(chain[-1]), os.readlink(chain[-1]))))
    return chain


def _interpreter_paths() -> list[str]:
    """Host paths the interpreter needs: shared libraries, its prefix and the venv's prefix.

    A prefix of ``/usr`` or ``/`` (a distribution's Python) is not bound whole, which would show
    ``/usr/bin``; its standard library is in ``/usr/lib`` and the executable is bound alone."""
    paths = [p for p in ("/usr/lib", "/usr/lib64") if os.path.isdir(p)]
    paths += [p for p in ("/lib", "/lib64") if os.path.isdir(p) and not os.path.islink(p)]
    if os.path.isfile("/etc/ld.so.cache"):
        paths.append("/etc/ld.so.cache")  # the dynamic loader's index of /usr/lib; no secrets
    for prefix in (sys.base_prefix, sys.prefix):
        paths += [p for p in (os.path.abspath(prefix), os.path.realpath(prefix)) if p not in ("/", "/usr")]
    for link in _symlink_chain(sys.executable):  # e.g. venv/bin/python -> /usr/bin/python3 -> python3.11
        if not any(link.startswith(p + "/") for p in paths):
            paths.append(link)
    unique = sorted(set(paths))
    # drop a path inside another: a bind of the outer one already shows it
    return [p for p in unique if not any(p.startswith(q + "/") for q in unique if q != p)]


def _covers(paths: list[str]) -> list[str]:
    """For a root caller: the topmost directory above each path that ``nobody`` cannot traverse."""
    covers = set()
    for path in paths:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            parent = "/" + "/".join(parts[:i])
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                covers.add(parent)
                break
        mode = os.stat(path).st_mode
        needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
        if mode & needed != needed:
            raise SandboxUnavailable(f"{path} is not readable by other users (mode {stat.filemode(mode)}): "
                                     f"the sandbox, which runs as uid {SANDBOX_UID}, could not load Python from it")
    return sorted(covers)


@functools.lru_cache(maxsize=1)
def host_layout() -> HostLayout:
    """The layout for the running interpreter, computed once per process.

    Raises:
        SandboxUnavailable: not Linux, bubblewrap missing or older than 0.8, ``setpriv`` missing
            for a root caller, or the interpreter not readable by the sandbox's uid.
    """
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(f"the sandbox needs Linux (bubblewrap, namespaces, seccomp); this is {sys.platform}")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap is not installed (no bwrap on PATH; Debian: apt-get install bubblewrap)")
    version = _bwrap_version(bwrap)
    if version < MIN_BWRAP:
        raise SandboxUnavailable(f"bubblewrap {'.'.join(map(str, version))} is too old; "
                                 f"{'.'.join(map(str, MIN_BWRAP))} or newer is needed")
    setpriv = None
    paths = _interpreter_paths()
    covers: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise SandboxUnavailable("running as root needs setpriv (util-linux) to start the sandbox as nobody")
        covers = _covers(paths)
    symlinks = tuple((os.readlink(p), p) for p in ("/lib", "/lib64", "/lib32") if os.path.islink(p))
    return HostLayout(bwrap=bwrap, setpriv=setpriv, python=os.path.abspath(sys.executable),
                      ro_binds=tuple(paths), symlinks=symlinks, covers=tuple(covers))

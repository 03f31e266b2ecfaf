"""A throwaway PostgreSQL server for tests: a fresh cluster in a temporary directory, on a unix socket only.

PostgreSQL refuses to run as root; run as root, :class:`TempPostgres` runs ``initdb`` and the server
as an unprivileged user that is already there (:data:`SERVER_USERS`: the ``postgres`` user of Debian's
package, else ``nobody``; ``runuser``), so that a test leaves no system user behind. The server listens
on no TCP address (``listen_addresses=''``): its unix socket lives in the temporary directory, so it
is reachable from any network namespace of the machine and from nowhere else. It runs with
``fsync=off`` (a test database). Debian's ``postgresql`` package provides the binaries
(``/usr/lib/postgresql/<version>/bin``).

Usage::

    with TempPostgres() as pg:
        url = pg.url   # postgresql:///postgres?host=/tmp/scireflect-pg-xxxx&user=scireflect
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

SERVER_USERS = ("postgres", "nobody")
"""Who runs the server when the tests run as root, the first that exists; none is ever created."""
ROLE = "scireflect"


def postgres_bin() -> Path | None:
    """The newest installed ``/usr/lib/postgresql/<version>/bin`` with ``initdb`` and ``pg_ctl``, or ``None``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def server_user() -> pwd.struct_passwd:
    """The first of :data:`SERVER_USERS` on this machine.

    Raises:
        RuntimeError: none of them exists.
    """
    for name in SERVER_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError(f"no unprivileged user to run PostgreSQL as (one of {', '.join(SERVER_USERS)})")


class TempPostgres:
    """A PostgreSQL server in a temporary directory; a context manager.

    Attributes:
        url: the ``postgresql://`` URL of its ``postgres`` database (unix socket, role ``scireflect``, trust auth).
        root: the temporary directory (data directory ``data``, socket, ``server.log``).

    Raises:
        RuntimeError: PostgreSQL is not installed, or the server did not start (the log's tail is in the message).
    """

    def __init__(self) -> None:
        self.bin = postgres_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.root = Path(tempfile.mkdtemp(prefix="scireflect-pg-", dir="/tmp"))
        self.url = f"postgresql:///postgres?host={self.root}&user={ROLE}"
        self._as_user: list[str] = []

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as_user, *args], capture_output=True, text=True, timeout=120)

    def __enter__(self) -> TempPostgres:
        try:
            self._start()
        except BaseException:
            self.__exit__()  # a failed start leaves no directory and no server behind
            raise
        return self

    def _start(self) -> None:
        if os.geteuid() == 0:
            user = server_user()
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", user.pw_name, "--"]
        data = self.root / "data"
        done = self._run(str(self.bin / "initdb"), "-D", str(data), "-U", ROLE, "--auth=trust", "--no-sync", "-E", "UTF8")
        if done.returncode:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()[-500:]}")
        options = f"-k {self.root} -c listen_addresses='' -c fsync=off -c full_page_writes=off -c max_connections=200"
        done = self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.root / "server.log"), "-w", "start")
        if done.returncode:
            log = (self.root / "server.log").read_text(errors="replace")[-800:] if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {done.stderr.strip()[-300:]} {log}")

    def __exit__(self, *exc: object) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


__all__ = ["SERVER_USERS", "TempPostgres", "postgres_bin", "server_user"]

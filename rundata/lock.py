"""One writer per run directory: an exclusive ``flock`` on ``RUN_DIR/.lock`` for the whole run.

Two ``annotate`` processes on one ``--out`` would each make every model call and append every
question twice. The lock is taken before anything in the directory is read or written; a second
process stops at once with the holder's pid. The kernel drops the lock when its holder exits, even
on ``kill -9``, so a stale lock never needs cleaning (the pid written in the file is only for the
message). With Ray, the driver holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import RunError

LOCK_FILE = ".lock"


class RunDirBusy(RunError):
    """Another process holds the run directory's lock (the message names its pid)."""


@contextlib.contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``run_dir`` (which must exist) while the block runs.

    Raises:
        RunDirBusy: another process holds it (the message names its pid).
    """
    path = Path(run_dir) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise RunDirBusy(f"{run_dir} is in use by another scireflect process (pid {holder}); "
                           "wait for it to finish, or stop it, or use another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


__all__ = ["LOCK_FILE", "RunDirBusy", "run_dir_lock"]

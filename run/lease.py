"""Shard leases with an epoch: the fencing token that keeps a presumed-dead worker from committing.

A Ray run (:mod:`scireflect.run.cluster`) hands each shard ``K`` to one actor at a time. The driver,
which holds the run directory's lock, *grants* the shard: it raises the epoch in
``RUN/shards/K/lease`` and gives the new epoch to the actor it starts. The actor commits every
group of finished questions inside :meth:`ShardLease.fence`, which takes the lease file's ``flock``,
re-reads the epoch and refuses (:class:`LeaseLost`) unless it is still the actor's own. A worker
that was presumed dead (its node stopped answering, Ray restarted the shard elsewhere) and comes
back holds an old epoch: its next commit is refused, so a question's record is committed by one
holder of the shard only (Kleppmann, "How to do distributed locking", 2016: a lock with timeouts
needs a fencing token checked by the storage).

The check and the write happen under the same ``flock``, and the driver takes it to grant: a grant
is ordered before or after a whole commit, never in the middle of one. The lease file lives on the
run directory's shared file system; ``flock`` works across NFS clients (Linux emulates it with
POSIX byte-range locks there).

File format: one line, ``EPOCH PID HOST`` (the holder's pid and host are informative).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

LEASE_FILE = "lease"


class LeaseLost(RuntimeError):
    """The shard was granted to a newer holder: this worker may not commit any more."""


def _read_epoch(fd: int) -> int:
    text = os.pread(fd, 128, 0).decode("ascii", "replace").split()
    try:
        return int(text[0]) if text else 0
    except ValueError:
        return 0  # a lease file cut by a crash during a grant: the next grant starts from 1


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # releases the flock


def _write(fd: int, epoch: int, pid: int, host: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{epoch} {pid} {host}\n".encode(), 0)
    os.fsync(fd)


class ShardLease:
    """The lease of one shard directory (``RUN/shards/K``).

    Args:
        shard_dir: the shard's directory (created if missing).
    """

    def __init__(self, shard_dir: str | Path):
        self.dir = Path(shard_dir)
        self.path = self.dir / LEASE_FILE

    def epoch(self) -> int:
        """The current epoch (0 before the first grant)."""
        if not self.path.exists():
            return 0
        with _locked(self.path) as fd:
            return _read_epoch(fd)

    def grant(self) -> int:
        """Driver side: raise the epoch (fsynced) and return it; every older holder is fenced off from now on."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with _locked(self.path) as fd:
            epoch = _read_epoch(fd) + 1
            _write(fd, epoch, 0, "")
            return epoch

    def accept(self, epoch: int) -> None:
        """Worker side: record this process as the holder of ``epoch``.

        Raises:
            LeaseLost: the lease already moved past ``epoch``.
        """
        with _locked(self.path) as fd:
            current = _read_epoch(fd)
            if current != epoch:
                raise LeaseLost(f"shard {self.dir.name}: epoch {epoch} was superseded by {current}")
            _write(fd, epoch, os.getpid(), socket.gethostname())

    def holder(self) -> tuple[int, int, str]:
        """``(epoch, pid, host)`` as last written (pid 0 before a worker accepted the grant)."""
        if not self.path.exists():
            return 0, 0, ""
        parts = self.path.read_text(encoding="ascii", errors="replace").split() + ["0", "0", ""]
        return int(parts[0]) if parts[0].isdigit() else 0, int(parts[1]) if parts[1].isdigit() else 0, parts[2]

    def fence(self, epoch: int):
        """A :data:`~scireflect.rundata.store.Fence` for the holder of ``epoch``: ``with fence(): commit``
        holds the lease file's lock and raises :class:`LeaseLost` (before anything is written) when
        the shard was granted again since."""

        @contextlib.contextmanager
        def holding() -> Iterator[None]:
            with _locked(self.path) as fd:
                current = _read_epoch(fd)
                if current != epoch:
                    raise LeaseLost(f"shard {self.dir.name}: epoch {epoch} was superseded by {current}; "
                                    "this worker was presumed dead and may not commit")
                yield

        return holding


__all__ = ["LEASE_FILE", "LeaseLost", "ShardLease"]

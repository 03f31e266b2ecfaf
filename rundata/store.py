"""``traces.jsonl``: the append-only store of finished questions, and the reading of it.

Exactly once: a question's record is appended once, keyed by id, and a reader keeps the first
record of an id. Appends are group-committed: the lines of the questions that finish while an
earlier ``fsync`` is in flight go out together in one ``write`` + ``fsync``, and each
:meth:`TraceStore.append` returns only once its own line is durable (the runner deletes a question's
checkpoints after that, never before). A last line without its ``\\n`` is a write cut by a kill:
:class:`TraceStore` removes it when it opens the file (that question is redone, or taken from its
final checkpoint) and :func:`load_traces` ignores it (a run in progress may be writing it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from .files import TRACES, traces_path
from .jsonl import JsonlError, append_lines, dumps_line, read_complete_lines

Fence = Callable[[], AbstractContextManager[Any]]
"""``with fence(): write`` : the context a commit's write happens in; it raises when the writer may no
longer commit (a shard lease taken over, :class:`scireflect.run.lease.LeaseLost`)."""


class TraceFileError(JsonlError):
    """A complete line of ``traces.jsonl`` is not a trace record (the message names file and line)."""


def trace_record(value: dict[str, Any] | JsonlError, path: Path, lineno: int) -> dict[str, Any]:
    """A parsed line of ``traces.jsonl`` (or the error reading it) as a trace record.

    Raises:
        TraceFileError: the line is not JSON, or not a record with a string ``id`` (file and line named).
    """
    if isinstance(value, JsonlError):
        raise TraceFileError(path, lineno, value.reason)
    if not isinstance(value.get("id"), str):
        raise TraceFileError(path, lineno, "not a trace record (no 'id')")
    return value


def _records(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int, list[TraceFileError]]:
    """The complete trace lines from ``offset``: ``(records, new offset, problems)``."""
    lines, end = read_complete_lines(path, offset)
    records, problems = [], []
    for lineno, value in lines:
        try:
            records.append(trace_record(value, path, lineno))
        except TraceFileError as exc:
            problems.append(exc)
    return records, end, problems


def read_traces(path: str | Path, offset: int = 0) -> tuple[list[dict[str, Any]], int, list[TraceFileError]]:
    """Read the complete trace lines of a ``traces.jsonl`` from byte ``offset`` on (a growing file).

    Returns:
        ``(records, offset after the last complete line, problems)``: the records (dicts with a
        string ``id``, file order, duplicates included) and one :class:`TraceFileError` per complete
        line that is not a record (line numbers count from ``offset``'s line).

    Raises:
        FileNotFoundError: no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {TRACES} at {path}")
    return _records(path, offset)


def load_traces(run_dir: str | Path) -> list[dict[str, Any]]:
    """All finished questions of a run directory (or of a ``traces.jsonl`` file), in file order.

    A question id that appears twice keeps its first record (as the runner does).

    Raises:
        FileNotFoundError: no ``traces.jsonl`` there.
        TraceFileError: a complete line is not a trace record (the file was edited by hand).
    """
    path = traces_path(run_dir)
    if not path.is_file():
        raise FileNotFoundError(f"no {TRACES} in {run_dir}")
    records, _, problems = _records(path)
    if problems:
        raise problems[0]
    first: dict[str, dict[str, Any]] = {}
    for record in records:
        first.setdefault(record["id"], record)
    return list(first.values())


class TraceStore:
    """The ``traces.jsonl`` a run appends to, keyed by question id.

    Args:
        path: the traces file (created when missing).
        fence: every group commit's write and ``fsync`` run inside ``fence()`` (see :data:`Fence`);
            ``None``: no fencing (a local run, whose directory lock is enough).

    Attributes:
        records: ``{id: record}`` of every finished question, in file order.
        repaired_bytes: the size of a partial last line removed on open (0 if none).

    Raises:
        TraceFileError: on open, a complete line is not a trace record (the file was edited by hand).
    """

    def __init__(self, path: str | Path, *, fence: Fence | None = None):
        self.path = Path(path)
        self._fence = fence or contextlib.nullcontext
        self.repaired_bytes = 0
        self.path.touch(exist_ok=True)
        size = self.path.stat().st_size
        records, end, problems = _records(self.path)
        if problems:
            raise TraceFileError(self.path, problems[0].line, "not a trace record; the file was changed by hand")
        if end < size:  # a partial last line from a kill: cut it, that question is redone
            self.repaired_bytes = size - end
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())
        self.records: dict[str, dict[str, Any]] = {}
        for record in records:
            self.records.setdefault(record["id"], record)
        self._queue: list[tuple[dict[str, Any], asyncio.Future[bool]]] = []
        self._queued: set[str] = set()
        self._writer: asyncio.Task[None] | None = None
        self.commits = 0
        """Group commits made (``write`` + ``fsync`` pairs), for benchmarks."""

    def __contains__(self, qid: str) -> bool:
        return qid in self.records

    async def append(self, record: Mapping[str, Any]) -> bool:
        """Commit one finished question unless its id is there (or on its way); returns once its line is
        durable: True if written, False if the id was already stored.

        Raises:
            Whatever the fence raises (the line is then not written), or ``OSError`` from the write.
        """
        qid = record["id"]
        if qid in self.records or qid in self._queued:
            return False
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((dict(record), done))
        self._queued.add(qid)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._commit_loop())
        return await asyncio.shield(done)  # a cancelled caller does not cancel the group's write

    async def _commit_loop(self) -> None:
        """Write what is queued, one group per ``write`` + ``fsync``, until the queue stays empty."""
        while self._queue:
            group, self._queue = self._queue, []
            lines = [dumps_line(record) for record, _ in group]
            try:
                await asyncio.to_thread(self._write, lines)
            except BaseException as exc:  # noqa: BLE001 - each waiter gets the failure
                for record, done in group:
                    self._queued.discard(record["id"])
                    if not done.done():
                        done.set_exception(exc if isinstance(exc, Exception) else RuntimeError(f"commit interrupted: {exc!r}"))
                if not isinstance(exc, Exception):
                    raise
                continue
            self.commits += 1
            for record, done in group:
                self.records[record["id"]] = record
                self._queued.discard(record["id"])
                if not done.done():
                    done.set_result(True)

    def _write(self, lines: list[bytes]) -> None:
        with self._fence():
            append_lines(self.path, lines)

    async def drain(self) -> None:
        """Wait until every queued line is written (or failed)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)


__all__ = ["TraceFileError", "TraceStore", "load_traces", "read_traces", "trace_record"]

"""What the viewer shows: the finished questions of a growing ``traces.jsonl`` and the questions in progress."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from ..run.checkpoints import read_in_progress
from ..run.files import CHECKPOINTS, TRACES
from ..run.query import trace_row
from ..run.store import read_traces


class TraceIndex:
    """The finished questions of a run directory, kept in sync with its growing ``traces.jsonl``.

    Args:
        run_dir: the run directory (``traces.jsonl`` may not exist yet).

    Attributes:
        generation: bumped whenever the file had to be re-read from the start (it shrank or was replaced).
        offset: bytes of ``traces.jsonl`` read so far (always at a line end).
        records: ``{id: record}`` in file order (the first record of an id wins).
        rows: :func:`~scireflect.run.query.trace_row` of each record, in file order.
        problems: messages for lines that were not trace records.

    Thread-safe: :meth:`refresh` takes a lock.
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / TRACES
        self.generation = 0
        self.offset = 0
        self.records: dict[str, dict[str, Any]] = {}
        self.rows: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self._ident: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self.refresh()

    def _reset(self) -> None:
        self.generation += 1
        self.offset = 0
        self.records, self.rows, self.problems = {}, [], []

    def refresh(self) -> int:
        """Read the lines appended since the last call; returns how many new records were added."""
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                if self.offset or self.records:
                    self._reset()
                self._ident = None
                return 0
            ident = (st.st_dev, st.st_ino)
            if (self._ident is not None and ident != self._ident) or st.st_size < self.offset:
                self._reset()
            self._ident = ident
            if st.st_size == self.offset:
                return 0
            records, self.offset, problems = read_traces(self.path, self.offset)
            self.problems.extend(str(p) for p in problems)
            added = 0
            for record in records:
                if record["id"] in self.records:
                    continue
                self.records[record["id"]] = record
                self.rows.append(trace_row(record))
                added += 1
            return added


class InProgress:
    """Questions in progress, read from the run's ``checkpoints.sqlite`` (read-only, best effort).

    :meth:`states` returns ``{id: pseudo-record}`` built from each thread's latest checkpoint:
    ``id``, ``subject``, ``status`` (``running``), ``question``, ``steps``, ``n_attempts``,
    ``tokens``, ``seconds``, ``updated_at``. The result is cached until the database files change.
    Any failure (no database, locked, unknown format) gives ``{}`` and sets :attr:`error`; a
    question whose checkpoint is not plain data is left out (never executed) and named in :attr:`rejected`.
    """

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / CHECKPOINTS
        self.error: str | None = None
        self.rejected: list[str] = []
        self._key: tuple | None = None
        self._states: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _stamp(self) -> tuple:
        stamp = []
        for suffix in ("", "-wal"):
            try:
                st = os.stat(str(self.path) + suffix)
                stamp.append((st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                stamp.append(None)
        return tuple(stamp)

    def states(self) -> dict[str, dict[str, Any]]:
        """The in-progress questions (see the class docstring)."""
        with self._lock:
            if not self.path.exists():
                self._key, self._states = None, {}
                return {}
            key = self._stamp()
            if key == self._key:
                return self._states
            try:
                self._states = self._read()
                self.error = None
            except Exception as exc:  # noqa: BLE001 - best effort: a viewer must not die on a locked db
                self._states, self.error = {}, f"{type(exc).__name__}: {exc}"
            self._key = key
            return self._states

    def _read(self) -> dict[str, dict[str, Any]]:
        states, rejected = read_in_progress(self.path)
        self.rejected = rejected
        return states


__all__ = ["InProgress", "TraceIndex"]

"""What the viewer shows: the finished questions of a growing ``traces.jsonl`` and the questions in progress.

A run of 100,000 questions has a ``traces.jsonl`` of well over 100 MB. The index keeps one small row
per question (:func:`~scireflect.rundata.query.trace_row`) and where its line is in the file, never the
records themselves: a question's record is read back from its line when a page asks for it. The file
is read in chunks of at most :data:`CHUNK_BYTES` (plus the rest of a line longer than that). Filtering,
sorting and paging happen here, on the server, so that a browser only ever holds one page of rows.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..rundata.checkpoints import read_in_progress
from ..rundata.files import CHECKPOINTS, TRACES
from ..rundata.jsonl import JsonlError, parse_line
from ..rundata.query import trace_row
from ..rundata.store import TraceFileError, trace_record

CHUNK_BYTES = 4 << 20
"""Bytes of ``traces.jsonl`` read at a time (a longer line is read whole)."""

FACETS = ("subject", "status", "stage", "reason")
"""The row keys the questions table filters on with a list of values (``-`` stands for none)."""

SORT_KEYS = ("id", "subject", "status", "stage", "reason", "attempts", "tokens", "seconds")
"""The row keys the questions table sorts on."""

_NUMERIC = frozenset({"attempts", "tokens", "seconds"})

# Row keys the table never shows: left out of the index's rows to keep 100k of them small.
_UNSHOWN = ("reference", "extracted", "finished_at", "stop_reason")


def facet_value(value: Any) -> str:
    """A row value as the filters list it: ``-`` for none, else its text."""
    return "-" if value is None else str(value)


class TraceIndex:
    """The finished questions of a run directory, kept in sync with its growing ``traces.jsonl``.

    Args:
        run_dir: the run directory (``traces.jsonl`` may not exist yet).
        chunk_bytes: bytes read at a time (:data:`CHUNK_BYTES`).

    Attributes:
        generation: bumped whenever the file had to be re-read from the start (it shrank or was replaced).
        offset: bytes of ``traces.jsonl`` read so far (always at a line end).
        rows: one row per question (:func:`~scireflect.rundata.query.trace_row` without the keys the
            table does not show), in file order; the first record of an id wins, as in the runner.
        locations: ``{id: (byte offset, length)}`` of each question's line, for :meth:`record`.
        facets: ``{key: Counter(value)}`` over :data:`FACETS`, values as :func:`facet_value` writes them.
        problems: messages for lines that were not trace records (file and line named).

    Thread-safe: :meth:`refresh`, :meth:`record` and :meth:`query` take a lock.
    """

    def __init__(self, run_dir: str | Path, *, chunk_bytes: int = CHUNK_BYTES):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / TRACES
        self.chunk_bytes = chunk_bytes
        self.generation = 0
        self.offset = 0
        self.rows: list[dict[str, Any]] = []
        self.locations: dict[str, tuple[int, int]] = {}
        self.facets: dict[str, Counter[str]] = {k: Counter() for k in FACETS}
        self.problems: list[str] = []
        self._lines = 0
        self._ident: tuple[int, int] | None = None
        self._cache: tuple[tuple, list[dict[str, Any]]] | None = None
        self._lock = threading.Lock()
        self.refresh()

    def _reset(self) -> None:
        self.generation += 1
        self.offset = self._lines = 0
        self.rows, self.locations, self.problems = [], {}, []
        self.facets = {k: Counter() for k in FACETS}
        self._cache = None

    def refresh(self) -> int:
        """Read the lines appended since the last call; returns how many new questions were added."""
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                if self.offset or self.rows:
                    self._reset()
                self._ident = None
                return 0
            ident = (st.st_dev, st.st_ino)
            if (self._ident is not None and ident != self._ident) or st.st_size < self.offset:
                self._reset()
            self._ident = ident
            if st.st_size == self.offset:
                return 0
            try:
                with open(self.path, "rb") as fh:
                    return self._read_from(fh)
            except OSError as exc:
                self.problems.append(f"{self.path}: cannot read file ({exc.strerror or exc})")
                return 0

    def _read_from(self, fh: Any) -> int:
        added = 0
        fh.seek(self.offset)
        pending = b""
        while True:
            chunk = fh.read(self.chunk_bytes)
            if not chunk:
                return added  # what is pending is a line still being written
            data = pending + chunk
            end = data.rfind(b"\n") + 1
            if not end:
                pending = data
                continue
            start = self.offset
            for raw in data[:end].split(b"\n")[:-1]:
                self._lines += 1
                added += self._add_line(raw, start)
                start += len(raw) + 1
            self.offset += end
            pending = data[end:]

    def _add_line(self, raw: bytes, start: int) -> int:
        if not raw.strip():
            return 0
        try:
            value: dict[str, Any] | JsonlError = parse_line(raw, self.path, self._lines)
        except JsonlError as exc:
            value = exc
        try:
            record = trace_record(value, self.path, self._lines)
        except TraceFileError as exc:
            self.problems.append(str(exc))
            return 0
        qid = record["id"]
        if qid in self.locations:
            return 0
        row = trace_row(record)
        for key in _UNSHOWN:
            row.pop(key, None)
        self.locations[qid] = (start, len(raw))
        self.rows.append(row)
        for key in FACETS:
            self.facets[key][facet_value(row.get(key))] += 1
        self._cache = None
        return 1

    def record(self, qid: str) -> dict[str, Any] | None:
        """The full trace record of ``qid``, read back from its line; ``None`` if there is none (or the
        file changed under the index: the next :meth:`refresh` re-reads it)."""
        with self._lock:
            where, ident = self.locations.get(qid), self._ident
        if where is None:
            return None
        start, length = where
        try:
            with open(self.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                if (st.st_dev, st.st_ino) != ident:
                    return None
                fh.seek(start)
                raw = fh.read(length)
            record = parse_line(raw, self.path, 0)
        except (OSError, JsonlError):
            return None
        return record if record.get("id") == qid else None

    def query(self, filters: Mapping[str, str] | None = None, text: str = "", sort: str | None = None,
              desc: bool = False, offset: int = 0, limit: int = 200) -> tuple[int, list[dict[str, Any]]]:
        """One page of the rows that match.

        Args:
            filters: ``{key: value}`` over :data:`FACETS`: rows whose :func:`facet_value` equals it.
            text: rows whose id contains it (case-insensitive).
            sort: a key of :data:`SORT_KEYS` (``None``: file order); numbers sort as numbers, ``desc``
                reverses.
            offset, limit: the page: rows ``offset`` to ``offset + limit`` of the matches.

        Returns:
            ``(number of matching rows, the page's rows)``. The last query's matches are cached until
            new rows arrive, so paging through one filter costs only the slice.

        Raises:
            ValueError: an unknown filter or sort key.
        """
        filters = {k: v for k, v in (filters or {}).items() if v}
        unknown = sorted(set(filters) - set(FACETS)) + ([sort] if sort is not None and sort not in SORT_KEYS else [])
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(map(str, unknown))}")
        key = (self.generation, len(self.rows), tuple(sorted(filters.items())), text.lower(), sort, desc)
        with self._lock:
            if self._cache is None or self._cache[0] != key:
                self._cache = (key, self._match(filters, text.lower(), sort, desc))
            matched = self._cache[1]
            offset = max(0, offset)
            return len(matched), matched[offset:offset + max(0, limit)]

    def _match(self, filters: Mapping[str, str], text: str, sort: str | None, desc: bool) -> list[dict[str, Any]]:
        rows = self.rows
        for key, value in filters.items():
            rows = [r for r in rows if facet_value(r.get(key)) == value]
        if text:
            rows = [r for r in rows if text in str(r.get("id")).lower()]
        if sort in _NUMERIC:
            rows = sorted(rows, key=lambda r: r.get(sort) or 0, reverse=desc)
        elif sort is not None:
            rows = sorted(rows, key=lambda r: str(r.get(sort) or ""), reverse=desc)
        elif desc:
            rows = rows[::-1]
        return rows if rows is not self.rows else list(rows)


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


__all__ = ["CHUNK_BYTES", "FACETS", "SORT_KEYS", "InProgress", "TraceIndex", "facet_value"]

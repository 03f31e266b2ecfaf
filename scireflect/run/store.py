"""``traces.jsonl``: the append-only store of finished questions, and the reading of it.

Exactly once: a question's record is appended once, keyed by id (one ``write`` + ``fsync``), and a
reader keeps the first record of an id. A last line without its ``\\n`` is a write cut by a kill:
:class:`TraceStore` removes it when it opens the file (that question is redone) and
:func:`load_traces` ignores it (a run in progress may be writing it).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .files import TRACES, traces_path
from .jsonl import JsonlError, append_line, read_complete_lines


class TraceFileError(JsonlError):
    """A complete line of ``traces.jsonl`` is not a trace record (the message names file and line)."""


def _records(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int, list[TraceFileError]]:
    """The complete trace lines from ``offset``: ``(records, new offset, problems)``."""
    lines, end = read_complete_lines(path, offset)
    records, problems = [], []
    for lineno, value in lines:
        if isinstance(value, JsonlError):
            problems.append(TraceFileError(path, lineno, value.reason))
        elif not isinstance(value.get("id"), str):
            problems.append(TraceFileError(path, lineno, "not a trace record (no 'id')"))
        else:
            records.append(value)
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

    Attributes:
        records: ``{id: record}`` of every finished question, in file order.
        repaired_bytes: the size of a partial last line removed on open (0 if none).

    Raises:
        TraceFileError: on open, a complete line is not a trace record (the file was edited by hand).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
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
        self._lock = asyncio.Lock()

    def __contains__(self, qid: str) -> bool:
        return qid in self.records

    async def append(self, record: Mapping[str, Any]) -> bool:
        """Append one finished question (one ``write`` + ``fsync``) unless its id is there; True if written."""
        async with self._lock:
            if record["id"] in self.records:
                return False
            await asyncio.to_thread(append_line, self.path, record)
            self.records[record["id"]] = dict(record)
            return True


__all__ = ["TraceFileError", "TraceStore", "load_traces", "read_traces"]

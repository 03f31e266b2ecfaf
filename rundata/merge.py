"""Committing the records of several run directories into one, exactly once by question id.

Two users: ``scireflect merge RUN_DIR... --out RUN`` (shard directories made by hand with
``--shard K/N``, possibly on other machines), and the Ray driver (:mod:`scireflect.run.cluster`),
which commits its shards' stores (``RUN/shards/K/traces.jsonl``) into the run's ``traces.jsonl``.

The rule is the trace store's: a question's record is committed once, keyed by id, and the first
committed record of an id is the one that counts. A source record whose id is already committed is
skipped. ``merge`` first checks that such a record is the same one (the same bytes as JSON: merging
a shard twice is harmless) and refuses two different annotations of one question before writing
anything (:class:`MergeConflict` names both places); the driver keeps the first. New records go
out in one group commit (one ``write`` + ``fsync``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import RunError
from .files import MANIFEST, TRACES
from .jsonl import JsonlError, append_lines, dumps_line, read_complete_lines, read_json, write_json_atomic
from .store import TraceFileError, TraceStore


class MergeConflict(RunError):
    """Two run directories hold different records for one question id (the message names both)."""


def _where(path: Path, line: int) -> str:
    return f"{path}:{line}"


def source_records(path: Path, offset: int = 0) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """The complete records of a ``traces.jsonl`` from byte ``offset``, each with its ``file:line``.

    Returns ``([(place, record)], offset after the last complete line)``; ``([], offset)`` when the
    file does not exist. Line numbers count from ``offset``'s line.

    Raises:
        TraceFileError: a complete line is not a trace record.
    """
    if not path.is_file():
        return [], offset
    lines, end = read_complete_lines(path, offset)
    out = []
    for lineno, value in lines:
        if isinstance(value, JsonlError):
            raise TraceFileError(path, lineno, value.reason)
        if not isinstance(value.get("id"), str):
            raise TraceFileError(path, lineno, "not a trace record (no 'id')")
        out.append((_where(path, lineno), value))
    return out, end


def commit_new(store_path: Path, committed: set[str], candidates: Iterable[tuple[str, dict[str, Any]]]) -> tuple[list[str], int]:
    """Append to ``store_path`` every candidate whose id is not in ``committed`` (the first of an id
    wins), in one group commit; ``committed`` is updated.

    Returns:
        ``(ids committed now, candidates skipped because their id was committed)``.
    """
    lines: list[bytes] = []
    added: list[str] = []
    skipped = 0
    for _, record in candidates:
        if record["id"] in committed:
            skipped += 1
            continue
        committed.add(record["id"])
        added.append(record["id"])
        lines.append(dumps_line(record))
    if lines:
        append_lines(store_path, lines)
    return added, skipped


@dataclass
class MergeResult:
    """What :func:`merge_runs` did: records added, identical duplicates skipped, records in ``out`` now."""

    out: Path
    added: int
    duplicates: int
    total: int
    records: list[dict[str, Any]] = field(default_factory=list)


def _check_conflicts(store: TraceStore, candidates: list[tuple[str, dict[str, Any]]]) -> None:
    """Raise :class:`MergeConflict` for the first id with two different records (nothing is written)."""
    seen: dict[str, tuple[str, bytes]] = {}
    for qid, record in store.records.items():
        seen[qid] = (f"{store.path} (already merged)", dumps_line(record))
    for place, record in candidates:
        line = dumps_line(record)
        first_place, first_line = seen.setdefault(record["id"], (place, line))
        if first_line != line:
            raise MergeConflict(f"question {record['id']!r}: {first_place} and {place} hold different records; "
                                "keep one of the two (delete the other line) and merge again")


def merge_runs(sources: Sequence[Path], out: Path) -> MergeResult:
    """Commit the ``traces.jsonl`` records of ``sources`` into ``out``'s, exactly once by id, then write
    ``out``'s ``sft.jsonl``, ``summary.json`` and ``run.json`` (the sources' invocations, each with
    ``merged_from``). The caller holds ``out``'s lock.

    Raises:
        RunError: a source has no ``traces.jsonl``, is ``out`` itself, or has a line that is not a
            trace record (file:line).
        MergeConflict: two different records of one id (nothing is written then).
    """
    from .outputs import write_outputs

    out = Path(out)
    store = TraceStore(out / TRACES)  # cuts a partial last line a killed merge left
    candidates: list[tuple[str, dict[str, Any]]] = []
    for source in sources:
        source = Path(source)
        if source.resolve() == out.resolve():
            raise RunError(f"{source}: the --out directory cannot also be a source")
        path = source / TRACES if source.is_dir() else source
        if not path.is_file():
            raise RunError(f"{source}: no {TRACES} there (is it a run directory?)")
        try:
            candidates += source_records(path)[0]
        except TraceFileError as exc:
            raise RunError(str(exc)) from None
    _check_conflicts(store, candidates)
    added, duplicates = commit_new(store.path, set(store.records), candidates)
    records = list(TraceStore(store.path).records.values())
    write_outputs(out, records)
    _record_sources(out, sources)
    return MergeResult(out=out, added=len(added), duplicates=duplicates, total=len(records), records=records)


def _record_sources(out: Path, sources: Sequence[Path]) -> None:
    """Append the sources' invocations to ``out/run.json``, each marked with the directory it came from."""
    runs: list[dict[str, Any]] = []
    path = out / MANIFEST
    if path.exists():
        try:
            runs = list(read_json(path, what="the run manifest").get("runs") or [])
        except (JsonlError, AttributeError) as exc:
            raise RunError(f"{exc}; was the run directory edited by hand?") from None
    for source in sources:
        try:
            theirs = read_json(Path(source) / MANIFEST, what="the run manifest").get("runs") or []
        except (JsonlError, AttributeError):
            theirs = []
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        runs += [{**run, "merged_from": str(source), "merged_at": stamp} for run in theirs if isinstance(run, dict)]
    write_json_atomic(path, {"runs": runs})


__all__ = ["MergeConflict", "MergeResult", "commit_new", "merge_runs", "source_records"]

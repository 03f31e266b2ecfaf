"""The one JSONL reader and writer of scireflect: questions, traces, SFT pairs, exports, results.

A line ends at the byte ``\\n`` and nowhere else. ``str.splitlines()`` also splits at U+2028,
U+2029, U+0085, ``\\r``, ``\\x1c``-``\\x1e``..., which JSON allows raw inside strings: a model reply
holding one of them was written fine and then read back as two broken lines. Every reader here
splits the bytes at ``\\n`` only.

Writers keep text lossless: JSON is written as UTF-8 with non-ASCII characters as they are, except
for a line holding a lone surrogate (``"\\ud800"``, possible in model output and in JSON input),
which is not encodable as UTF-8 and is written with ``\\uXXXX`` escapes instead (JSON reads it back
unchanged). Files that must not be seen half-written (``sft.jsonl``, ``summary.json``, exports) are
written to a temporary file, fsynced and renamed into place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any


class JsonlError(ValueError):
    """A JSONL file, or one of its lines, cannot be read; the message names the file and the 1-based line.

    Attributes:
        path: the file.
        line: the 1-based line number, or ``None`` for the whole file (e.g. unreadable).
    """

    def __init__(self, path: str | Path, line: int | None, message: str):
        self.path = Path(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


def nesting_depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests lists and dicts (a scalar is 0, ``{"a": [1]}`` is 2), counted
    without recursion and only up to ``limit + 1``: past the limit the walk stops.

    Examples:
        >>> nesting_depth({"a": [1, {"b": 2}]}, 10)
        3
    """
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def parse_line(raw: bytes, path: str | Path, lineno: int, *, max_depth: int | None = None) -> dict[str, Any]:
    """One JSONL line (without its ``\\n``) as a JSON object.

    Args:
        max_depth: the deepest nesting of lists and objects accepted (the line's object is level 1);
            ``None``: as deep as Python's JSON parser goes (about 1000 levels).

    Raises:
        JsonlError: not UTF-8, not valid JSON (or a number Python refuses to read: an integer of
            more than 4300 digits), not an object, or nested too deeply (past
            ``max_depth``, or past what the parser can read: never a ``RecursionError``).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonlError(path, lineno, f"not UTF-8 text (byte {exc.start + 1})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonlError(path, lineno, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except ValueError as exc:  # not a JSONDecodeError: e.g. an integer past Python's 4300-digit limit
        cause = "an integer of more than 4300 digits" if "integer string conversion" in str(exc) else str(exc)
        raise JsonlError(path, lineno, f"not readable JSON ({cause})") from None
    except RecursionError:
        limit = f"; the limit is {max_depth} levels" if max_depth is not None else ""
        raise JsonlError(path, lineno, f"lists or objects nested too deeply to read{limit}") from None
    if not isinstance(value, dict):
        raise JsonlError(path, lineno, f"expected a JSON object, got {type(value).__name__}")
    if max_depth is not None and nesting_depth(value, max_depth) > max_depth:
        raise JsonlError(path, lineno, f"lists or objects nested more than {max_depth} levels deep; the limit is {max_depth}")
    return value


def _read_bytes(path: Path, offset: int = 0) -> bytes:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read()
    except OSError as exc:
        raise JsonlError(path, None, f"cannot read file ({exc.strerror or exc})") from None


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every non-blank line of a JSONL file as ``(1-based line number, object)``, in file order.

    A last line without its ``\\n`` is read like the others.

    Raises:
        JsonlError: the file cannot be read, or a line is not a UTF-8 JSON object (at that line).
    """
    path = Path(path)
    for lineno, raw in enumerate(_read_bytes(path).split(b"\n"), start=1):
        if raw.strip():
            yield lineno, parse_line(raw, path, lineno)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The objects of a JSONL file, in order (see :func:`iter_jsonl`; raises :class:`JsonlError`)."""
    return [row for _, row in iter_jsonl(path)]


def read_complete_lines(path: str | Path, offset: int = 0) -> tuple[list[tuple[int, dict[str, Any] | JsonlError]], int]:
    """The lines of a file being appended to that are complete (end in ``\\n``), from byte ``offset``.

    Made for incremental reading (a run in progress): a last line without its ``\\n`` is a write in
    progress and is left for the next call. A bad line does not stop the reading: it comes back as
    a :class:`JsonlError` in place of its object.

    Returns:
        ``([(line number counted from offset's line, object or error), ...], offset after the last complete line)``.

    Raises:
        JsonlError: the file cannot be read.
    """
    path = Path(path)
    data = _read_bytes(path, offset)
    end = data.rfind(b"\n") + 1
    out: list[tuple[int, dict[str, Any] | JsonlError]] = []
    for lineno, raw in enumerate(data[:end].split(b"\n")[:-1], start=1):
        if raw.strip():
            try:
                out.append((lineno, parse_line(raw, path, lineno)))
            except JsonlError as exc:
                out.append((lineno, exc))
    return out, offset + end


def dumps_line(row: Any) -> bytes:
    """One JSONL line (with its ``\\n``) as UTF-8 bytes; lossless for any Python string (see the module docstring)."""
    text = json.dumps(row, ensure_ascii=False)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escape it, JSON reads it back unchanged
        data = json.dumps(row, ensure_ascii=True).encode("ascii")
    return data + b"\n"


def fsync_dir(path: str | Path) -> None:
    """fsync a directory, so that a rename or a new file in it survives a crash (best effort)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, chunks: Iterable[bytes]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_jsonl_atomic(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write ``rows`` as JSONL through a fsynced temporary file and a rename; returns the row count.

    Readers see the old file or the new one, never a half-written one; a kill leaves no temporary
    file behind unless it strikes between the write and the rename (then a ``.NAME.PID.tmp`` stays).
    """
    count = 0

    def chunks() -> Iterator[bytes]:
        nonlocal count
        for row in rows:
            count += 1
            yield dumps_line(row)

    _atomic_write(Path(path), chunks())
    return count


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write one JSON document (indented) through a fsynced temporary file and a rename."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    try:
        payload = text.encode("utf-8")
    except UnicodeEncodeError:
        payload = (json.dumps(data, indent=2, ensure_ascii=True) + "\n").encode("ascii")
    _atomic_write(Path(path), [payload])


def append_line(path: str | Path, row: Any) -> None:
    """Append one JSONL line with a single ``write`` and ``fsync`` (``O_APPEND``: a kill leaves at
    most a partial last line, which readers of complete lines ignore)."""
    append_lines(path, [dumps_line(row)])


def append_lines(path: str | Path, lines: list[bytes]) -> None:
    """Append encoded lines (each ending in ``\n``, see :func:`dumps_line`) with one ``write`` and one
    ``fsync`` (a group commit). A kill leaves a prefix of them: complete lines, then at most one
    partial last line, which readers of complete lines ignore."""
    data = b"".join(lines)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:  # a regular file takes it in one write; loop only for the rare short write
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path: str | Path, *, what: str = "file") -> Any:
    """One JSON document.

    Raises:
        JsonlError: the file cannot be read or is not valid JSON (``what`` names it in the message).
    """
    path = Path(path)
    data = _read_bytes(path)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise JsonlError(path, None, f"{what} is not UTF-8 text (byte {exc.start + 1})") from None
    except json.JSONDecodeError as exc:
        raise JsonlError(path, exc.lineno, f"{what} is not valid JSON ({exc.msg})") from None


__all__ = [
    "JsonlError",
    "append_line",
    "append_lines",
    "dumps_line",
    "fsync_dir",
    "iter_jsonl",
    "nesting_depth",
    "parse_line",
    "read_complete_lines",
    "read_json",
    "read_jsonl",
    "write_json_atomic",
    "write_jsonl_atomic",
]

"""The LangGraph checkpoints of a run directory, read safely.

A run directory travels between machines (shards, shared runs), so ``checkpoints.sqlite`` is
untrusted input. LangGraph's default serializer imports and calls any callable a checkpoint names
(msgpack "ext" values: module, name, arguments), which makes a crafted checkpoint remote code
execution. The graph's state here is plain JSON data (:mod:`scireflect.graphs.state`), so
:class:`PlainDataSerializer` reads plain msgpack data only and refuses everything else with
:class:`CheckpointRejected`: nothing named in a checkpoint is ever imported. Every reader of
checkpoints (the runner's resume, the viewer's questions in progress) uses it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiosqlite
import ormsgpack
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from ..graphs.state import solution_steps, total_seconds, total_tokens


class CheckpointRejected(ValueError):
    """A checkpoint holds something other than plain data (an object to construct, a pickle, ...)."""


class PlainDataSerializer(JsonPlusSerializer):
    """LangGraph's serializer for writing; for reading, plain msgpack data only.

    ``loads_typed`` accepts ``null``, ``bytes`` and ``msgpack`` without extension types (dicts,
    lists, strings, numbers, booleans) and raises :class:`CheckpointRejected` for anything else:
    an extension value (a constructor or method call LangGraph would import and run), ``pickle``,
    ``json`` with LangChain constructors, unknown types. Writing is LangGraph's (``dumps_typed``), and
    the state it writes here is plain data, so a run reads back everything it wrote.
    """

    def __init__(self) -> None:
        super().__init__(allowed_msgpack_modules=None, pickle_fallback=False)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        type_, payload = data
        if type_ == "msgpack":
            extensions: list[int] = []

            def refuse(code: int, data: bytes) -> None:  # never import or call what the value names
                extensions.append(code)

            try:
                value = ormsgpack.unpackb(payload, ext_hook=refuse, option=ormsgpack.OPT_NON_STR_KEYS)
            except ormsgpack.MsgpackDecodeError as exc:
                raise CheckpointRejected(f"the checkpoint is not valid msgpack ({exc})") from None
            if extensions:
                raise CheckpointRejected(f"the checkpoint holds a msgpack extension value (type {extensions[0]}), "
                                         "an object LangGraph would construct, not plain data")
            return value
        if type_ in ("null", "bytes", "bytearray"):
            return super().loads_typed(data)
        raise CheckpointRejected(f"the checkpoint holds a value of type '{type_}' (only plain msgpack data is read)")


@contextlib.asynccontextmanager
async def open_checkpointer(path: str | Path) -> AsyncIterator[AsyncSqliteSaver]:
    """The run's SQLite checkpointer (WAL, ``synchronous=NORMAL``) with :class:`PlainDataSerializer`."""
    async with aiosqlite.connect(str(path)) as conn:
        saver = AsyncSqliteSaver(conn, serde=PlainDataSerializer())
        await saver.setup()
        await conn.execute("PRAGMA synchronous=NORMAL")
        yield saver


async def checkpointed_threads(saver: AsyncSqliteSaver) -> set[str]:
    """The question ids that have checkpoints (one query; interrupted questions of an earlier run)."""
    async with saver.conn.execute("SELECT DISTINCT thread_id FROM checkpoints") as cursor:
        return {row[0] async for row in cursor}


def read_in_progress(path: str | Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The questions in progress of a ``checkpoints.sqlite`` (opened read-only), each as a pseudo trace record.

    Returns:
        ``({id: record}, rejected)``: records built from each thread's latest checkpoint (``id``,
        ``subject``, ``status`` ``running``, ``question``, ``steps``, ``n_attempts``, ``tokens``,
        ``seconds``, ``updated_at``), and one message per question whose checkpoint is not plain
        data (left out, never executed).

    Raises:
        sqlite3.Error: the database is missing, locked or not a checkpoint database.
    """
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=1.0, check_same_thread=False)
    try:
        saver = SqliteSaver(conn, serde=PlainDataSerializer())
        threads = [row[0] for row in conn.execute("SELECT DISTINCT thread_id FROM checkpoints WHERE checkpoint_ns = ''")]
        out, rejected = {}, []
        for thread in threads:
            try:
                saved = saver.get_tuple({"configurable": {"thread_id": thread, "checkpoint_ns": ""}})
            except CheckpointRejected as exc:
                rejected.append(f"question {thread!r}: {exc}; ignored")
                continue
            if saved is None:
                continue
            values = saved.checkpoint.get("channel_values") or {}
            question = values.get("question") if isinstance(values.get("question"), dict) else {"id": thread}
            question = {k: v for k, v in question.items() if not str(k).startswith("_")}
            steps = [s for s in values.get("steps") or [] if isinstance(s, dict)]
            out[thread] = {
                "id": thread,
                "subject": question.get("subject", "general"),
                "status": "running",
                "stop_reason": None,
                "accepted_stage": None,
                "n_attempts": len(solution_steps(steps)),
                "tokens": total_tokens(steps),
                "seconds": round(total_seconds(steps), 3),
                "updated_at": saved.checkpoint.get("ts"),
                "question": question,
                "steps": steps,
            }
        return out, rejected
    finally:
        conn.close()


__all__ = ["CheckpointRejected", "PlainDataSerializer", "checkpointed_threads", "open_checkpointer", "read_in_progress"]

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

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from langgraph.checkpoint.sqlite import SqliteSaver

from ..graphs.state import solution_steps, total_seconds, total_tokens
from .checkpoint_serde import CheckpointRejected, PlainDataSerializer


class CheckedSqliteSaver(SqliteSaver):
    """LangGraph's SQLite checkpointer whose reads turn a malformed row into :class:`CheckpointRejected`.

    ``SqliteSaver.get_tuple`` parses a row's ``metadata`` with ``json.loads`` and indexes the decoded
    checkpoint: a row whose metadata is msgpack bytes or cut JSON (``{"step": ``), or whose
    checkpoint decodes to something other than a mapping, raised ``JSONDecodeError``,
    ``UnicodeDecodeError`` or ``TypeError`` out of every resume. Such a row is reported like a
    checkpoint that is not plain data: the reader names the question and the cause, and the
    runner deletes the checkpoints and restarts the question.
    """

    def get_tuple(self, config: Any) -> Any:
        try:
            saved = super().get_tuple(config)
        except CheckpointRejected:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # JSONDecodeError, UnicodeDecodeError are ValueErrors
            raise CheckpointRejected(f"the checkpoint row is malformed ({type(exc).__name__}: {str(exc)[:200]})") from None
        if saved is not None and not (isinstance(saved.checkpoint, dict) and isinstance(saved.checkpoint.get("channel_values", {}), dict)
                                      and isinstance(saved.metadata, dict)):
            raise CheckpointRejected("the checkpoint row is malformed (its checkpoint or metadata is not a mapping)")
        return saved


class InlineSqliteSaver(CheckedSqliteSaver):
    """LangGraph's SQLite checkpointer with its async methods run in the event loop's own thread, and
    one commit for every write made in one turn of the loop.

    ``AsyncSqliteSaver`` (aiosqlite) sends every statement to a helper thread and awaits the answer:
    about ten thread hops per question, which cost the runner ~2-3 ms of CPU per question (issue 17's
    profile) for statements that take microseconds. In WAL mode with ``synchronous=NORMAL`` a commit
    does not wait for the disk, so running the sync ``SqliteSaver`` methods in place is cheaper; the
    rare WAL checkpoint holds the loop for one ``fsync``.

    ``SqliteSaver`` commits after every statement group (a question's checkpoint and its writes: about
    eight commits per question, ~60 us each). Here a write used from the event loop schedules one
    commit for the end of the loop's current turn (``loop.call_soon``), so the writes of every question
    that stepped in that turn share it. A process killed in between loses at most those writes:
    the questions resume from their previous checkpoints and repeat at most one model call, which a
    kill mid-call costs anyway; trace lines are fsynced apart and never depend on it. A failed
    commit is raised by the next use of the saver. Outside a running event loop every write commits
    at once, as ``SqliteSaver``'s.
    """

    _commit_pending = False
    _commit_error: sqlite3.Error | None = None

    @contextlib.contextmanager
    def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
        with self.lock:
            if self._commit_error is not None:
                error, self._commit_error = self._commit_error, None
                raise error
            self.setup()
            cur = self.conn.cursor()
            try:
                yield cur
            finally:
                cur.close()
                if transaction:
                    self._commit_soon()

    def _commit_soon(self) -> None:
        if self._commit_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # sync use (tools, tests): commit now
            self.conn.commit()
            return
        self._commit_pending = True
        loop.call_soon(self._scheduled_commit)

    def _scheduled_commit(self) -> None:
        """The end-of-turn commit: nobody awaits it, so a failure is kept for the next use to raise."""
        try:
            self.commit()
        except sqlite3.Error as exc:
            self._commit_error = exc

    def commit(self) -> None:
        """Commit what the saver wrote (also the last commit, before the connection closes).

        Raises:
            sqlite3.Error: the commit failed (e.g. the disk is full).
        """
        with self.lock:
            self._commit_pending = False
            self.conn.commit()

    async def aget_tuple(self, config: Any) -> Any:
        return self.get_tuple(config)

    async def alist(self, config: Any, *, filter: Any = None, before: Any = None, limit: int | None = None) -> AsyncIterator[Any]:
        for item in self.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)

    async def aget_delta_channel_history(self, *, config: Any, channels: Any) -> Any:
        return self.get_delta_channel_history(config=config, channels=channels)


@contextlib.asynccontextmanager
async def open_checkpointer(path: str | Path) -> AsyncIterator[InlineSqliteSaver]:
    """The run's SQLite checkpointer (WAL, ``synchronous=NORMAL``) with :class:`PlainDataSerializer`."""
    conn = sqlite3.connect(str(path), check_same_thread=False)
    try:
        saver = InlineSqliteSaver(conn, serde=PlainDataSerializer())
        saver.setup()
        conn.execute("PRAGMA synchronous=NORMAL")
        try:
            yield saver
        finally:
            saver.commit()
    finally:
        conn.close()


def compact(path: str | Path) -> str:
    """After a run: delete the checkpoint database when no question is left in it, else reclaim its
    free pages (``VACUUM``) when they are more than half of it. Checkpoints of finished questions are
    deleted as they finish, but SQLite keeps their pages: one 50 MB question left a 577 MB file.

    Returns what was done: ``removed``, ``vacuumed`` or ``kept``.
    """
    path = Path(path)
    if not path.exists():
        return "kept"
    with contextlib.closing(sqlite3.connect(path, timeout=5.0)) as conn:
        remaining = conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
        if remaining:
            free, total = conn.execute("PRAGMA freelist_count").fetchone()[0], conn.execute("PRAGMA page_count").fetchone()[0]
            if total and free * 2 > total:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.execute("VACUUM")
                return "vacuumed"
            return "kept"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return "removed"


def read_in_progress(path: str | Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The questions in progress of a ``checkpoints.sqlite`` (opened read-only), each as a pseudo trace record.

    Returns:
        ``({id: record}, rejected)``: records built from each thread's latest checkpoint (``id``,
        ``subject``, ``status`` ``running``, ``question``, ``steps``, ``n_attempts``, ``tokens``,
        ``seconds``, ``updated_at``), and one message per question whose checkpoint is not plain
        data or is malformed (left out, never executed).

    Raises:
        sqlite3.Error: the database is missing, locked or not a checkpoint database.
    """
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=1.0, check_same_thread=False)
    try:
        saver = CheckedSqliteSaver(conn, serde=PlainDataSerializer())
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


__all__ = ["CheckedSqliteSaver", "CheckpointRejected", "InlineSqliteSaver", "PlainDataSerializer", "compact", "open_checkpointer",
           "read_in_progress"]

"""The run's checkpointer: SQLite in the run directory (default) or PostgreSQL for shared runs.

The choice of backend belongs to the runner; reading a run directory's SQLite checkpoints safely
(:class:`~scireflect.rundata.checkpoints.PlainDataSerializer`) belongs to :mod:`scireflect.rundata.checkpoints`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver

from ..rundata.checkpoints import open_checkpointer
from ..rundata.errors import RunError
from .postgres import open_postgres_checkpointer, postgres_threads


@contextlib.asynccontextmanager
async def open_run_checkpointer(path: str | Path, url: str | None = None, schema: str | None = None, *,
                                max_connections: int = 4) -> AsyncIterator[Any]:
    """The run's checkpointer: SQLite at ``path`` (default), or PostgreSQL at ``url`` in ``schema``
    (:mod:`scireflect.run.postgres`); both read with :class:`PlainDataSerializer`.

    Raises:
        RunError: PostgreSQL is asked for without a schema, or cannot be reached.
    """
    if not url:
        async with open_checkpointer(path) as saver:
            yield saver
        return
    if not schema:
        raise RunError("PostgreSQL checkpoints need the run's schema (set from run.json's run id)")
    async with open_postgres_checkpointer(url, schema, max_connections=max_connections) as saver:
        yield saver


async def checkpointed_threads(saver: Any) -> set[str]:
    """The question ids that have checkpoints (one query; interrupted questions of an earlier run)."""
    if isinstance(saver, SqliteSaver):
        return {row[0] for row in saver.conn.execute("SELECT DISTINCT thread_id FROM checkpoints")}
    return await postgres_threads(saver)


__all__ = ["checkpointed_threads", "open_run_checkpointer"]

"""LangGraph checkpoints in PostgreSQL: one checkpointer shared by every process and machine of a run.

The default checkpoints are a SQLite file per run directory (per shard with Ray), which needs a
file system every worker shares. With ``--checkpoints postgresql://...`` every worker writes its
questions' checkpoints to one PostgreSQL database instead (``langgraph-checkpoint-postgres``):
workers then need no shared file system for checkpoints, and a question interrupted on one node
resumes on any other, whatever shard it lands in next time.

Each run directory gets its own schema (``scireflect_<run id>``, the id recorded in ``run.json``),
so runs sharing a database never see each other's threads (a thread is a question id). The
tables are created under a PostgreSQL advisory lock, so that many workers starting at once do
not race on them. Values are read with :class:`~scireflect.run.checkpoints.PlainDataSerializer`:
a crafted row is refused, never executed.

Requires the ``postgres`` extra (``pip install -e ".[postgres]"``; ``ray`` includes it).
"""

from __future__ import annotations

import contextlib
import re
import zlib
from collections.abc import AsyncIterator
from typing import Any

from .errors import RunError

_SCHEMA = re.compile(r"[a-z][a-z0-9_]{0,62}")


def is_postgres_url(url: str | None) -> bool:
    """Whether ``url`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return bool(url) and str(url).startswith(("postgresql://", "postgres://"))


def schema_name(run_id: str) -> str:
    """The schema of a run's checkpoints: ``scireflect_`` and the run id's letters and digits.

    Raises:
        ValueError: nothing of ``run_id`` is usable.
    """
    name = "scireflect_" + re.sub(r"[^a-z0-9_]", "", run_id.lower())[:40]
    if not _SCHEMA.fullmatch(name) or name == "scireflect_":
        raise ValueError(f"no schema name can be made from run id {run_id!r}")
    return name


@contextlib.asynccontextmanager
async def open_postgres_checkpointer(url: str, schema: str, *, max_connections: int = 4) -> AsyncIterator[Any]:
    """An ``AsyncPostgresSaver`` on ``url``, in ``schema`` (created with its tables when missing), over a
    pool of at most ``max_connections`` connections.

    Raises:
        RunError: the driver is not installed, or the database cannot be reached (the message names
            the server without its password).
    """
    from .checkpoints import PlainDataSerializer
    from .manifest import redact_url

    if not _SCHEMA.fullmatch(schema):
        raise RunError(f"bad checkpoint schema name {schema!r}")
    try:
        import psycopg
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg import sql
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool
    except ImportError:
        raise RunError("PostgreSQL checkpoints need the postgres extra: pip install 'scireflect[postgres]'") from None
    kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row, "options": f"-c search_path={schema}"}
    try:
        async with await psycopg.AsyncConnection.connect(url, **kwargs) as admin:
            # One worker at a time creates the schema and runs LangGraph's migrations.
            await admin.execute("SELECT pg_advisory_lock(%s)", (zlib.crc32(schema.encode()),))
            await admin.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            await AsyncPostgresSaver(admin, serde=PlainDataSerializer()).setup()
            await admin.execute("SELECT pg_advisory_unlock(%s)", (zlib.crc32(schema.encode()),))
    except psycopg.Error as exc:
        raise RunError(f"checkpoint database {redact_url(url)}: {str(exc).strip().splitlines()[0]}") from None
    pool = AsyncConnectionPool(url, kwargs=kwargs, min_size=1, max_size=max(1, max_connections), open=False)
    await pool.open()
    try:
        yield AsyncPostgresSaver(pool, serde=PlainDataSerializer())
    finally:
        await pool.close()


async def postgres_threads(saver: Any) -> set[str]:
    """The question ids with checkpoints in the saver's schema (one query)."""
    async with saver.conn.connection() as conn:
        cursor = await conn.execute("SELECT DISTINCT thread_id FROM checkpoints")
        return {row["thread_id"] for row in await cursor.fetchall()}


__all__ = ["is_postgres_url", "open_postgres_checkpointer", "postgres_threads", "schema_name"]

"""LangGraph checkpoints in PostgreSQL: one checkpointer shared by every process and machine of a run.

The default checkpoints are a SQLite file per run directory (per shard with Ray), which needs a
file system every worker shares. With ``--checkpoints postgresql://...`` every worker writes its
questions' checkpoints to one PostgreSQL database instead (``langgraph-checkpoint-postgres``):
workers then need no shared file system for checkpoints, and a question interrupted on one node
resumes on any other, whatever shard it lands in next time.

Each run directory gets its own schema (``scireflect_<run id>``, the id recorded in ``run.json``),
so runs sharing a database never see each other's threads (a thread is a question id). The schema
and its tables are set up once, in one place (:func:`setup_schema`), by the process that owns the
run directory: the local runner, or the Ray driver before any shard starts; a shard's worker only
opens them (:func:`open_postgres_checkpointer`). Workers that each set the schema up behind an
advisory lock deadlocked: LangGraph's migrations run ``CREATE INDEX CONCURRENTLY``, which waits
for every open transaction, a worker's waiting in ``pg_advisory_lock`` included (issue 25). Values
are read with :class:`~scireflect.rundata.checkpoints.PlainDataSerializer`: a crafted row is refused,
never executed.

Requires the ``postgres`` extra (``pip install -e ".[postgres]"``; ``ray`` includes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import zlib
from collections.abc import AsyncIterator
from typing import Any

from ..rundata.errors import RunError

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


SETUP_POLL_S = 0.05
"""How often a second set-up of one schema asks for the advisory lock the first holds."""


def _driver() -> Any:
    """The ``psycopg`` module.

    Raises:
        RunError: the postgres extra is not installed.
    """
    try:
        import psycopg
    except ImportError:
        raise RunError("PostgreSQL checkpoints need the postgres extra: pip install 'scireflect[postgres]'") from None
    return psycopg


def _connection_kwargs(schema: str) -> dict[str, Any]:
    """psycopg connection options of a run's checkpoints: autocommit, dict rows, ``search_path`` = ``schema``.

    Raises:
        RunError: ``schema`` is not a plain lower-case name.
    """
    from psycopg.rows import dict_row

    if not _SCHEMA.fullmatch(schema):
        raise RunError(f"bad checkpoint schema name {schema!r}")
    return {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row, "options": f"-c search_path={schema}"}


def _database_error(url: str, exc: Exception) -> RunError:
    """A driver error as a one-line :class:`RunError` naming the server without its password."""
    from ..agents.endpoints import redact_url

    return RunError(f"checkpoint database {redact_url(url)}: {str(exc).strip().splitlines()[0]}")


async def setup_schema(url: str, schema: str) -> None:
    """Create ``schema`` and LangGraph's checkpoint tables in it (its migrations), where missing.

    Called once per run, by the process that owns the run directory (it holds ``RUN/.lock``): the
    runner of a local run, the Ray driver before any shard starts. A second set-up of the same schema
    at the same time (two copies of one run directory share its run id) waits its turn by polling
    ``pg_try_advisory_lock`` every :data:`SETUP_POLL_S`, never inside ``pg_advisory_lock``: a waiter
    keeps no transaction open, so the ``CREATE INDEX CONCURRENTLY`` of the holder's migrations, which
    waits for every open transaction, cannot deadlock with it.

    Raises:
        RunError: the driver is not installed, the schema name is bad, or the database cannot be
            reached or refused the set-up (the message names the server without its password).
    """
    psycopg = _driver()
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg import sql

    from ..rundata.checkpoint_serde import PlainDataSerializer

    kwargs, key = _connection_kwargs(schema), zlib.crc32(schema.encode())
    try:
        async with await psycopg.AsyncConnection.connect(url, **kwargs) as admin:
            while not (await (await admin.execute("SELECT pg_try_advisory_lock(%s) AS held", (key,))).fetchone())["held"]:
                await asyncio.sleep(SETUP_POLL_S)
            try:
                await admin.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
                await AsyncPostgresSaver(admin, serde=PlainDataSerializer()).setup()
            finally:
                await admin.execute("SELECT pg_advisory_unlock(%s)", (key,))
    except psycopg.Error as exc:
        raise _database_error(url, exc) from None


@contextlib.asynccontextmanager
async def open_postgres_checkpointer(url: str, schema: str, *, max_connections: int = 4) -> AsyncIterator[Any]:
    """An ``AsyncPostgresSaver`` on ``url``, in ``schema`` (set up by :func:`setup_schema`; never here), over
    a pool of at most ``max_connections`` connections.

    Raises:
        RunError: the driver is not installed, the database cannot be reached (the message names the
            server without its password), or ``schema`` has no checkpoint tables.
    """
    psycopg = _driver()
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg_pool import AsyncConnectionPool

    from ..rundata.checkpoint_serde import PlainDataSerializer

    kwargs = _connection_kwargs(schema)
    try:
        async with await psycopg.AsyncConnection.connect(url, **kwargs) as conn:
            found = await (await conn.execute("SELECT to_regclass('checkpoints') IS NOT NULL AS ok")).fetchone()
    except psycopg.Error as exc:
        raise _database_error(url, exc) from None
    if not found["ok"]:
        raise RunError(f"checkpoint schema {schema} has no checkpoint tables: the run's owner sets it up first (setup_schema)")
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


__all__ = ["is_postgres_url", "open_postgres_checkpointer", "postgres_threads", "schema_name", "setup_schema"]

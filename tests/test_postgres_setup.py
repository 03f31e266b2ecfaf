"""PostgreSQL checkpoints: the schema is set up once, in one place, and fresh runs never deadlock
(issue 25, finding 6: a shard waiting in ``pg_advisory_lock`` while another ran LangGraph's
``CREATE INDEX CONCURRENTLY`` gave ``deadlock detected``, 1 run in 8 with two shards; 10 rounds in 10
with four workers opening a fresh schema at once).

Each round is a fresh schema: two set-ups at once (two copies of one run directory), then four
shard workers opening it at once, as the Ray driver and its actors do. Bounded: 8 rounds, well
under a minute on a throwaway server (scireflect.testing.postgres).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from scireflect.rundata.errors import RunError
from scireflect.run.postgres import open_postgres_checkpointer, postgres_threads, setup_schema
from scireflect.testing.postgres import TempPostgres, postgres_bin

psycopg = pytest.importorskip("psycopg", reason="the postgres extra is not installed (pip install -e '.[postgres]')")
pytestmark = pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed (apt-get install postgresql)")


@pytest.fixture(scope="module")
def pg():
    with TempPostgres() as server:
        yield server


async def _worker(url: str, schema: str) -> set[str]:
    async with open_postgres_checkpointer(url, schema, max_connections=1) as saver:
        return await postgres_threads(saver)


async def test_repeated_fresh_setups_and_opens_never_deadlock(pg):
    started = time.monotonic()
    for round_ in range(8):
        schema = f"scireflect_fresh{round_}"
        results = await asyncio.gather(setup_schema(pg.url, schema), setup_schema(pg.url, schema), return_exceptions=True)
        assert results == [None, None], results
        opened = await asyncio.gather(*(_worker(pg.url, schema) for _ in range(4)), return_exceptions=True)
        assert opened == [set()] * 4, opened
    assert time.monotonic() - started < 60
    with psycopg.connect(pg.url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'scireflect_fresh7'")}
    assert {"checkpoints", "checkpoint_blobs", "checkpoint_writes", "checkpoint_migrations"} <= tables


async def test_a_worker_never_sets_the_schema_up(pg):
    with pytest.raises(RunError, match="scireflect_never has no checkpoint tables"):
        await _worker(pg.url, "scireflect_never")
    with psycopg.connect(pg.url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'scireflect_never'").fetchone() == (0,)

"""Throwaway PostgreSQL databases for the benchmarks, filled on the server side.

A benchmark gets a database of its own next to the one its DSN names: created, given
opstatus's schema by ``opstatus migrate`` (the schema opstatus makes, not a copy of it), and
dropped at the end, also on error, so that runs never see each other's rows nor leave any.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from bench.common import SEED_TIME, SUB

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"

#: The rows of seed_postgres, made by the server: the same as seed_sqlite's (ids op-%07d,
#: etags of 16 hex digits), so that the same wrk script reads either store.
_SEED = """
INSERT INTO opstatus_operations (subscription_id, operation_key, operation_id, namespace,
    location, status, start_time, etag, created_at, updated_at, create_digest)
SELECT $1, id, id, 'Microsoft.Cache', 'westus', 'InProgress', $2, lpad(to_hex(i), 16, '0'),
    $2, $2, 'seed'
FROM generate_series(0::bigint, $3::bigint - 1) AS i,
    LATERAL (SELECT 'op-' || lpad(i::text, greatest(7, length(i::text)), '0') AS id) AS k
"""


async def execute(dsn: str, *statements: str) -> None:
    """Run statements one after the other on a connection of their own (outside any
    transaction: CREATE DATABASE and VACUUM refuse to run inside one)."""
    conn = await asyncpg.connect(dsn)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def throwaway_database(dsn: str, name: str, home: Path) -> Iterator[str]:
    """A new database with opstatus's schema, next to ``dsn``'s; yields its URL, drops it
    after. ``home`` is the opstatus home folder ``opstatus migrate`` is given."""
    db = f"opstatus_bench_{name}_{os.getpid()}"
    url = dsn.rsplit("/", 1)[0] + f"/{db}"
    asyncio.run(execute(dsn, f'CREATE DATABASE "{db}"'))
    previous = signal.signal(signal.SIGTERM, _exit)  # a kill, too, drops the database
    try:
        argv = [sys.executable, "-m", "opstatus", "migrate", "--home", str(home), "--store", url]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"opstatus migrate failed: {done.stderr or done.stdout}")
        yield url
    finally:
        asyncio.run(execute(dsn, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        signal.signal(signal.SIGTERM, previous)


def _exit(signum: int, frame: object) -> None:
    """SIGTERM as an exception, so that the ``finally`` clauses run."""
    sys.exit(128 + signum)


def seed_postgres(url: str, count: int) -> None:
    """Load ``count`` InProgress operations in one INSERT ... SELECT generate_series, then
    VACUUM ANALYZE: reads then find hint bits set and the planner knows the table's size, as
    in a store that has been running for a while."""

    async def seed() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(_SEED, SUB, SEED_TIME, count)
        finally:
            await conn.close()
        await execute(url, "VACUUM (ANALYZE) opstatus_operations")

    asyncio.run(seed())

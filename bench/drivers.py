"""psycopg 3 (+ psycopg_pool, async) against asyncpg, for the two queries opstatus lives on.

    python bench/drivers.py [--dsn postgresql://postgres@127.0.0.1:5432/test] [--n 3000]

Works in a throwaway database (bench.pg: created, migrated, dropped) with opstatus's table,
on uvloop as the server runs. For each driver: a primary-key lookup (the status GET) and an
insert + commit (a create; the commit waits for the WAL flush, synchronous_commit=on),
one at a time (latency) and from 16 tasks at once on a pool of 8 (throughput).
Needs both drivers installed: pip install "psycopg[binary,pool]" asyncpg
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import psycopg_pool
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SUB, scratch  # noqa: E402
from bench.pg import DEFAULT_DSN, throwaway_database  # noqa: E402

COLUMNS = (
    "operation_key, subscription_id, operation_id, namespace, location, status, start_time, "
    "end_time, percent_complete, properties, error, etag, created_at, updated_at, "
    "create_digest, http_status_code, kind, cancelable, cancel_requested_at, lease_seconds, "
    "lease_expires_at, expires_at"
)
ROWS = 1000
POOL = 8
TASKS = 16


def row(key: str) -> tuple[Any, ...]:
    t = "2026-01-01T00:00:00.000Z"
    props = '{"a": 1, "b": "two"}'
    return (
        key,
        SUB,
        key,
        "Microsoft.Cache",
        "westus",
        "InProgress",
        t,
        None,
        10.0,
        props,
        None,
        "0123456789abcdef",
        t,
        t,
        "d" * 32,
        None,
        None,
        True,
        None,
        None,
        None,
        None,
    )


def placeholders(style: str) -> str:
    count = COLUMNS.count(",") + 1
    if style == "psycopg":
        return ", ".join(["%s"] * count)
    return ", ".join(f"${i}" for i in range(1, count + 1))


async def timed(n: int, op: Callable[[int], Awaitable[None]]) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        await op(i)
        out.append(time.perf_counter() - start)
    return out


async def throughput(n: int, op: Callable[[int], Awaitable[None]]) -> float:
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await op(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(TASKS)))
    return n / (time.perf_counter() - start)


async def bench_psycopg(dsn: str, n: int, tag: str) -> dict[str, tuple[list[float], float]]:
    select = (
        f"SELECT {COLUMNS} FROM opstatus_operations "
        "WHERE subscription_id = %s AND operation_key = %s"
    )
    insert = f"INSERT INTO opstatus_operations ({COLUMNS}) VALUES ({placeholders('psycopg')})"
    async with psycopg_pool.AsyncConnectionPool(
        dsn, min_size=POOL, max_size=POOL, open=False
    ) as pool:
        await pool.wait()

        async def get(i: int) -> None:
            async with pool.connection() as conn:
                cur = await conn.execute(select, (SUB, f"k{i % ROWS}"), prepare=True)
                assert await cur.fetchone() is not None

        def put(prefix: str) -> Callable[[int], Awaitable[None]]:
            async def run(i: int) -> None:
                async with pool.connection() as conn, conn.transaction():
                    await conn.execute(insert, row(f"{prefix}{i}"), prepare=True)

            return run

        return {
            "get": (await timed(n, get), await throughput(n, get)),
            "insert+commit": (
                await timed(n // 3, put(tag + "pa")),
                await throughput(n // 3, put(tag + "pb")),
            ),
        }


async def bench_asyncpg(dsn: str, n: int, tag: str) -> dict[str, tuple[list[float], float]]:
    select = (
        f"SELECT {COLUMNS} FROM opstatus_operations "
        "WHERE subscription_id = $1 AND operation_key = $2"
    )
    insert = f"INSERT INTO opstatus_operations ({COLUMNS}) VALUES ({placeholders('asyncpg')})"
    pool = await asyncpg.create_pool(dsn, min_size=POOL, max_size=POOL)
    try:

        async def get(i: int) -> None:
            async with pool.acquire() as conn:
                assert await conn.fetchrow(select, SUB, f"k{i % ROWS}") is not None

        def put(prefix: str) -> Callable[[int], Awaitable[None]]:
            async def run(i: int) -> None:
                async with pool.acquire() as conn, conn.transaction():
                    await conn.execute(insert, *row(f"{prefix}{i}"))

            return run

        return {
            "get": (await timed(n, get), await throughput(n, get)),
            "insert+commit": (
                await timed(n // 3, put(tag + "aa")),
                await throughput(n // 3, put(tag + "ab")),
            ),
        }
    finally:
        await pool.close()


def micro(seconds: float) -> str:
    return f"{seconds * 1e6:8.0f}"


async def compare(dsn: str, n: int) -> dict[str, dict[str, tuple[list[float], float]]]:
    """Both drivers on the database ``dsn`` (opstatus's schema, empty): rows to read, then
    two rounds, alternating, and the second one reported: the first warms the server's
    caches and the machine for whichever driver happens to go first."""
    conn = await asyncpg.connect(dsn)
    try:
        insert = f"INSERT INTO opstatus_operations ({COLUMNS}) VALUES ({placeholders('')})"
        await conn.executemany(insert, [row(f"k{i}") for i in range(ROWS)])
        await conn.execute("VACUUM ANALYZE opstatus_operations")
    finally:
        await conn.close()
    results: dict[str, dict[str, tuple[list[float], float]]] = {}
    for round_no in range(2):
        for driver, bench in (("psycopg3", bench_psycopg), ("asyncpg", bench_asyncpg)):
            results[driver] = await bench(dsn, n, f"r{round_no}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    with scratch() as home, throwaway_database(args.dsn, "drivers", home) as dsn:
        results = uvloop.run(compare(dsn, args.n))

    versions = f"asyncpg {asyncpg.__version__}, psycopg {psycopg.__version__}"
    print(f"{versions}; one at a time: latency in us; {TASKS} tasks on {POOL} connections: ops/s")
    print(f"{'driver':<10} {'query':<14} {'mean':>8} {'p50':>8} {'p99':>8} {'ops/s':>8}")
    for driver, by_query in results.items():
        for query, (latencies, rate) in by_query.items():
            latencies.sort()
            p99 = latencies[int(len(latencies) * 0.99)]
            print(
                f"{driver:<10} {query:<14} {micro(statistics.fmean(latencies))} "
                f"{micro(statistics.median(latencies))} {micro(p99)} {rate:8.0f}"
            )


if __name__ == "__main__":
    main()

"""The stores' own write limit: opstatus's statements from one tight loop, no HTTP, no service.

One "operation" is what a PUT and a PATCH to Succeeded cost the store: the create transaction
and the update transaction, each committed durably, with the very statements, rows and
connection settings the store uses (imported from it, so they cannot drift apart):

- SQLite: ``BEGIN IMMEDIATE``; read; INSERT; delete any tombstone; ``COMMIT``, then
  ``BEGIN IMMEDIATE``; read; UPDATE; ``COMMIT``, on a connection the store itself opens
  (WAL, ``synchronous=FULL``): two fsyncs of the WAL per operation.
- PostgreSQL: ``BEGIN``; INSERT ... RETURNING pg_notify(...); delete any tombstone;
  ``COMMIT``, then ``BEGIN``; SELECT ... FOR UPDATE; UPDATE ... RETURNING pg_notify(...);
  ``COMMIT``, through psycopg 3 with prepared statements (``synchronous_commit`` as the server
  has it: a commit returns once its WAL is flushed).

Rows are made by the model's own code (a draft, the lifecycle policy, ``apply_update``) in
batches outside the timed part, so the figure is the store's alone.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg

from bench.common import SUB, sqlite_schema
from opstatus.lifecycle import LifecyclePolicy
from opstatus.models import Operation, OperationDraft, OperationUpdate, apply_update, now_text
from opstatus.stores import postgresql_rows as pg
from opstatus.stores import sqlite as lite
from opstatus.stores.postgresql_queries import DELETE_TOMBSTONE

#: Operations made per untimed batch.
BATCH = 100
#: One operation's two writes: the created row, then the same operation Succeeded.
Write = Callable[[Operation, Operation], None]


def operations(prefix: str, n: int) -> list[tuple[Operation, Operation]]:
    """``n`` (created, succeeded) pairs, as opstatus makes them for a PUT and a PATCH."""
    policy, now = LifecyclePolicy(), now_text()
    done = OperationUpdate(status="Succeeded")
    pairs = []
    for i in range(n):
        draft = OperationDraft(SUB, f"{prefix}-{i}", "Microsoft.Cache", "westus")
        created = policy.on_create(draft.to_operation(now), draft.lease_seconds, now)
        finished = policy.on_update(created, created, apply_update(created, done, now), done, now)
        assert finished is not None
        pairs.append((created, finished))
    return pairs


def rate(write: Write, seconds: float, prefix: str) -> float:
    """Operations per second of ``write``, over at least ``seconds`` of timed work."""
    count, spent = 0, 0.0
    while spent < seconds:
        batch = operations(f"{prefix}-{count}", BATCH)
        started = time.perf_counter()
        for created, finished in batch:
            write(created, finished)
        spent += time.perf_counter() - started
        count += len(batch)
    return count / spent


@contextlib.contextmanager
def sqlite_writes(path: Path) -> Iterator[Write]:
    """The SQLite store's two write transactions on a file the store created (its schema)."""
    with contextlib.closing(sqlite_schema(path)._connect()) as conn:

        def transaction(*statements: tuple[str, tuple[Any, ...]]) -> None:
            conn.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                conn.execute(sql, params).fetchone()
            conn.execute("COMMIT")

        def write(created: Operation, finished: Operation) -> None:
            key = (created.subscription_id, created.key)
            changed = tuple(lite._column(finished, name) for name in lite._MUTABLE)
            transaction(
                (lite._SELECT, key),
                (lite._INSERT, lite._to_row(created)),
                (lite._DELETE_TOMBSTONE, key),
            )
            transaction((lite._SELECT, key), (lite._UPDATE, (*changed, *key)))

        yield write


def positional(sql: str) -> Callable[[tuple[Any, ...]], tuple[str, list[Any]]]:
    """asyncpg's ``$n`` statement as psycopg's ``%s`` one; the parameters put in its order."""
    order = [int(n) - 1 for n in re.findall(r"\$(\d+)", sql)]
    text = re.sub(r"\$\d+", "%s", sql)
    return lambda values: (text, [values[i] for i in order])


@contextlib.contextmanager
def postgres_writes(url: str) -> Iterator[Write]:
    """The PostgreSQL store's two write transactions, from one psycopg connection."""
    insert, unbury, lock, update = map(
        positional, (pg.INSERT, DELETE_TOMBSTONE, pg.LOCK, pg.UPDATE)
    )
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:

        def write(created: Operation, finished: Operation) -> None:
            key = (created.subscription_id, created.key)
            with conn.transaction():
                cur.execute(*insert(pg.to_row(created)), prepare=True)
                assert cur.fetchone() is not None, "the operation already existed"
                cur.execute(*unbury(key), prepare=True)
            with conn.transaction():
                cur.execute(*lock(key), prepare=True)
                assert cur.fetchone() is not None
                values = (*key, *(pg.column(finished, name) for name in pg.MUTABLE))
                cur.execute(*update(values), prepare=True)

        yield write


def sqlite_rate(path: Path, seconds: float, prefix: str) -> float:
    with sqlite_writes(path) as write:
        return rate(write, seconds, prefix)


def postgres_rate(url: str, seconds: float, prefix: str) -> float:
    with postgres_writes(url) as write:
        return rate(write, seconds, prefix)

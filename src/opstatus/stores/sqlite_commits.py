"""SQLite writes committed in groups: one durable COMMIT for all the writes waiting.

With ``synchronous=FULL`` a COMMIT waits for the disk, and one writer thread commits at a
time; writes that arrive meanwhile would each wait for a COMMIT of their own. Instead, the
writer thread takes every write waiting (up to ``max_group``) into one transaction, each in
a SAVEPOINT of its own so that one write's error (a conflict, a failed precondition, a full
disk on its INSERT) undoes that write alone, and answers them all after the one COMMIT.

Durability is unchanged: no write is answered before the COMMIT that makes it durable, and
when that COMMIT fails, every write in the group fails with the error and none is applied.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from ..errors import StoreError

Body = Callable[[sqlite3.Connection], Any]


def store_error(exc: BaseException) -> BaseException:
    """What a write's caller sees: database errors as StoreError, domain errors as they are."""
    if isinstance(exc, sqlite3.Error):
        error = StoreError(f"The store could not be written: {exc}")
        error.__cause__ = exc
        return error
    return exc


class CommitGroups:
    def __init__(
        self,
        executor: Executor,
        connection: Callable[[], sqlite3.Connection],
        roll_back: Callable[[sqlite3.Connection], None],
        max_group: int = 64,
    ) -> None:
        self._executor = executor
        self._connection = connection
        self._roll_back = roll_back
        self._max_group = max_group
        self._lock = threading.Lock()
        self._waiting: list[tuple[Body, asyncio.Future[Any]]] = []
        self._draining = False

    async def run(self, body: Body) -> Any:
        """``body(conn)`` in a transaction, durable when this returns."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._waiting.append((body, future))
            start = not self._draining
            self._draining = True
        if start:
            loop.run_in_executor(self._executor, self._drain, loop)
        return await future

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the writer thread: commit groups until no write is waiting."""
        while True:
            with self._lock:
                group = self._waiting[: self._max_group]
                del self._waiting[: self._max_group]
                if not group:
                    self._draining = False
                    return
            outcomes = self._commit(group)
            loop.call_soon_threadsafe(_settle, outcomes)

    def _commit(
        self, group: list[tuple[Body, asyncio.Future[Any]]]
    ) -> list[tuple[asyncio.Future[Any], Any, BaseException | None]]:
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            return [(future, None, store_error(exc)) for _, future in group]
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            if len(group) == 1:  # alone: no savepoint needed, its error ends the transaction
                body, future = group[0]
                outcomes.append((future, body(conn), None))
            else:
                for body, future in group:
                    outcomes.append(_in_savepoint(conn, body, future))
            conn.execute("COMMIT")  # disk full or I/O errors surface here, in WAL mode
        except BaseException as exc:
            self._roll_back(conn)
            error = store_error(exc)
            if len(group) == 1:
                return [(group[0][1], None, error)]
            # The transaction is gone: no write of the group was applied.
            return [(future, None, error) for _, future in group]
        return outcomes


def _in_savepoint(
    conn: sqlite3.Connection, body: Body, future: asyncio.Future[Any]
) -> tuple[asyncio.Future[Any], Any, BaseException | None]:
    conn.execute("SAVEPOINT one_write")
    try:
        result = body(conn)
    except Exception as exc:
        if not conn.in_transaction:  # SQLite rolled the whole transaction back (SQLITE_FULL)
            raise
        conn.execute("ROLLBACK TO one_write")
        conn.execute("RELEASE one_write")
        return future, None, store_error(exc)
    conn.execute("RELEASE one_write")
    return future, result, None


def _settle(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in outcomes:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

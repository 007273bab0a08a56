"""Embedded SQLite store, the default.

Durability: WAL journal with ``synchronous=FULL``, so a commit has reached the disk before
the caller is answered; a ``kill -9`` right after a 2xx cannot lose the write.

Concurrency: all writes run on one dedicated thread with its own connection, each in a
``BEGIN IMMEDIATE`` transaction (which also serialises writers in other processes sharing
the file). Reads run directly on the event loop with a second connection: in WAL mode they
never wait for writers, and a primary-key lookup costs far less than a thread hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from ..errors import OperationNotFound, StoreError
from ..models import Operation
from .base import Change, DeleteCheck
from .records import operation_from_record

log = logging.getLogger("opstatus.store")

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS operations (
    subscription_id     TEXT NOT NULL,
    operation_key       TEXT NOT NULL,
    operation_id        TEXT NOT NULL,
    namespace           TEXT NOT NULL,
    location            TEXT NOT NULL,
    status              TEXT NOT NULL,
    start_time          TEXT,
    end_time            TEXT,
    percent_complete    REAL,
    properties          TEXT,
    error               TEXT,
    etag                TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    create_digest       TEXT NOT NULL,
    http_status_code    INTEGER,
    kind                TEXT,
    cancelable          INTEGER NOT NULL DEFAULT 1,
    cancel_requested_at TEXT,
    lease_seconds       REAL,
    lease_expires_at    TEXT,
    expires_at          TEXT,
    PRIMARY KEY (subscription_id, operation_key)
) WITHOUT ROWID;
"""
#: Operation fields in column order; ``operation_key`` is derived and stored beside them.
FIELDS = tuple(f.name for f in dataclasses.fields(Operation))
_JSON_FIELDS = frozenset({"properties", "error"})
COLUMNS = ", ".join(("operation_key", *FIELDS))
_SELECT = f"SELECT {COLUMNS} FROM operations WHERE subscription_id = ? AND operation_key = ?"
_INSERT = f"INSERT INTO operations ({COLUMNS}) VALUES ({', '.join('?' * (len(FIELDS) + 1))})"
_MUTABLE = tuple(f for f in FIELDS if f not in ("subscription_id", "operation_id"))
_UPDATE = (
    f"UPDATE operations SET {', '.join(f'{f} = ?' for f in _MUTABLE)} "
    "WHERE subscription_id = ? AND operation_key = ?"
)
_DELETE = "DELETE FROM operations WHERE subscription_id = ? AND operation_key = ?"


def _key(op: Operation) -> tuple[str, str]:
    return op.subscription_id, op.key


def _column(op: Operation, name: str) -> Any:
    value = getattr(op, name)
    if name in _JSON_FIELDS and value is not None:
        return orjson.dumps(value).decode()
    return value


def _to_row(op: Operation) -> tuple[Any, ...]:
    return (op.key, *(_column(op, name) for name in FIELDS))


def _from_row(row: tuple[Any, ...]) -> Operation:
    return operation_from_record(dict(zip(FIELDS, row[1:], strict=True)), _JSON_FIELDS)


class SQLiteStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._reader_stale = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opstatus-sqlite")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            await self._write(self._open_writer)
        except StoreError as exc:
            # Read-only storage (a read-only mount, a file the service user may not write):
            # serve reads if the database can be read, refuse writes with 503 until it can be
            # written again.
            await self._write(self._drop_writer)
            self._reader = self._connect_read_only(exc)
            log.error("the database is read-only, serving reads only: %s", exc.message)
            return
        self._reader = self._connect()

    def _connect_read_only(self, cause: StoreError) -> sqlite3.Connection:
        for query in ("mode=ro", "immutable=1"):
            wal = Path(f"{self.path}-wal")
            if query == "immutable=1" and wal.exists() and wal.stat().st_size > 0:
                break  # immutable would ignore committed writes still in the WAL
            try:
                conn = sqlite3.connect(
                    f"{Path(self.path).resolve().as_uri()}?{query}",
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute(_SELECT, ("", "")).fetchone()
                return conn
            except sqlite3.Error:
                continue
        raise cause

    def _open_writer(self) -> None:
        self._writer = self._connect()
        version = self._writer.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The database {self.path} has schema version {version}, newer than this "
                f"opstatus knows ({SCHEMA_VERSION}); upgrade opstatus."
            )
        self._writer.execute("BEGIN IMMEDIATE")
        self._writer.execute(SCHEMA)
        self._writer.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._writer.execute("COMMIT")

    async def close(self) -> None:
        if self._writer is not None:
            await self._write(self._writer.close)
            self._writer = None
        if self._reader is not None:
            self._reader.close()
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        self._read(_SELECT, ("", ""))
        version = self._read("PRAGMA user_version", ())
        if version is None or version[0] != SCHEMA_VERSION:
            raise StoreError(
                f"The database {self.path} has schema version {version and version[0]}; "
                f"this opstatus needs {SCHEMA_VERSION}."
            )

    async def count_by_status(self) -> dict[str, int]:
        def count() -> dict[str, int]:
            with contextlib.closing(self._connect()) as conn:
                rows = conn.execute(
                    "SELECT status, COUNT(*) FROM operations GROUP BY status"
                ).fetchall()
            return {str(status): int(n) for status, n in rows}

        try:
            return await asyncio.to_thread(count)  # a full scan: keep it off the event loop
        except sqlite3.Error as exc:
            raise StoreError(f"The store could not be read: {exc}") from exc

    def _reopen_reader(self) -> None:
        """After read-only storage became writable: a normal reader sees the new writes."""
        try:
            fresh = self._connect()
        except sqlite3.Error as exc:  # keep reading through the old one; try again later
            log.warning("could not reopen the read connection: %s", exc)
            return
        self._reader_stale = False
        stale, self._reader = self._reader, fresh
        if stale is not None:
            stale.close()

    def _read(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if self._reader_stale and self._writer is not None:
            self._reopen_reader()
        if self._reader is None:
            raise StoreError("The store is not open.")
        try:
            row: tuple[Any, ...] | None = self._reader.execute(sql, params).fetchone()
            return row
        except sqlite3.Error as exc:
            raise StoreError(f"The store could not be read: {exc}") from exc

    async def _write(self, work: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, work)

    @staticmethod
    def _guarded(work: Any) -> Any:
        try:
            return work()
        except sqlite3.Error as exc:
            raise StoreError(f"The store could not be written: {exc}") from exc

    def _transaction(self, body: Any) -> Any:
        """Run ``body(conn)`` in BEGIN IMMEDIATE; roll back on any error."""
        conn = self._writer_connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body(conn)
            conn.execute("COMMIT")  # disk full or I/O errors surface here, in WAL mode
        except BaseException:
            self._roll_back(conn)
            raise
        return result

    def _roll_back(self, conn: sqlite3.Connection) -> None:
        """Leave no transaction open: SQLite may already have rolled back (SQLITE_FULL)."""
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.error("rollback failed (%s); reopening the write connection", exc)
        if conn.in_transaction:
            self._drop_writer()

    def _drop_writer(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(sqlite3.Error):
                self._writer.close()
        self._writer = None

    def _writer_connection(self) -> sqlite3.Connection:
        """The write connection; reopened if a failure or read-only storage closed it."""
        if self._writer is None:
            try:
                self._open_writer()
            except sqlite3.Error as exc:
                self._drop_writer()
                raise StoreError(
                    f"The database {self.path} cannot be written ({exc}); writes are refused "
                    "until it can be."
                ) from exc
            self._reader_stale = True  # an immutable fallback reader would miss new writes
        assert self._writer is not None
        return self._writer

    async def create(self, operation: Operation) -> tuple[Operation, bool]:
        def body(conn: sqlite3.Connection) -> tuple[Operation, bool]:
            row = conn.execute(_SELECT, (operation.subscription_id, operation.key)).fetchone()
            if row is not None:
                return _from_row(row), False
            conn.execute(_INSERT, _to_row(operation))
            return operation, True

        result: tuple[Operation, bool] = await self._write(lambda: self._transaction(body))
        return result

    async def get(self, subscription_id: str, operation_key: str) -> Operation | None:
        row = self._read(_SELECT, (subscription_id, operation_key))
        return None if row is None else _from_row(row)

    async def update(self, subscription_id: str, operation_key: str, change: Change) -> Operation:
        def body(conn: sqlite3.Connection) -> Operation:
            row = conn.execute(_SELECT, (subscription_id, operation_key)).fetchone()
            if row is None:
                raise OperationNotFound(f"The operation '{operation_key}' was not found.")
            current = _from_row(row)
            changed = change(current)
            if changed is None:
                return current
            op = changed
            conn.execute(_UPDATE, (*(_column(op, f) for f in _MUTABLE), *_key(op)))
            return op

        result: Operation = await self._write(lambda: self._transaction(body))
        return result

    async def delete(self, subscription_id: str, operation_key: str, check: DeleteCheck) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            row = conn.execute(_SELECT, (subscription_id, operation_key)).fetchone()
            if row is None:
                return False
            check(_from_row(row))
            conn.execute(_DELETE, (subscription_id, operation_key))
            return True

        result: bool = await self._write(lambda: self._transaction(body))
        return result

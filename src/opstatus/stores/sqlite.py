"""Embedded SQLite store, the default.

Durability: WAL journal with ``synchronous=FULL``, so a commit has reached the disk before
the caller is answered; a ``kill -9`` right after a 2xx cannot lose the write.

Schema: ``stores/sql/sqlite/`` (``migrations.py``), its version in ``PRAGMA user_version``.
Opening creates or migrates it, as an embedded default should; ``opstatus migrate`` does the
same without starting a server.

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
import os
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from ..errors import OperationNotFound, SchemaMismatch, StoreError
from ..events import DEFAULT_PROGRESS_KEPT
from ..lifecycle import Tombstone
from ..models import Operation, OperationStatus, now_text
from ..queries import OperationQuery, Tally
from ..webhooks import Callback
from . import sqlite_events as event_log
from .base import Change, DeleteCheck, Key, Removal
from .event_rows import change_event, deletion_event, removal_event
from .migrations import Plan, latest_version, plan
from .notifier import Notifier
from .query_sql import Parameters, counts_sql, find_sql, tallies_sql
from .records import operation_from_record, operation_from_row, status_from_row
from .sqlite_commits import CommitGroups
from .sqlite_events import SQLiteEventLog
from .sqlite_roles import SQLiteRoleAssignments
from .sqlite_snapshots import SharedReads, WalIndex
from .sqlite_webhooks import SQLiteWebhooks, put_callback

log = logging.getLogger("opstatus.store")

#: Other processes may write the same file, and only this process's writes wake its waiters:
#: waiters read again this often.
POLL_SECONDS = 1.0

DIALECT = "sqlite"
#: How much of the file the read connection maps into memory rather than reading it a page
#: at a time. A status read touches B-tree pages that SQLite's own small cache does not hold,
#: more of them the larger the store; each was a pread, and under load those system calls
#: grew with the store: at ten million operations the median read took 1.6-1.9 times as long
#: as at a thousand, and 1.2-1.3 times mapped (bench/growth.py, docs/performance.md). Mapped
#: pages are the kernel's page cache, which the reads filled before as well: shared by every
#: process mapping the file and reclaimable, they count in a server's resident memory (as
#: file pages, not private ones) once read. Past this size SQLite reads as before.
READ_MAP_BYTES = 1 << 30
#: Operation fields in column order; ``operation_key`` is derived and stored beside them.
FIELDS = tuple(f.name for f in dataclasses.fields(Operation))
_JSON_FIELDS = frozenset({"properties", "error"})
COLUMNS = ", ".join(("operation_key", *FIELDS))
_SELECT = f"SELECT {COLUMNS} FROM operations WHERE subscription_id = ? AND operation_key = ?"
#: What a status read needs (OperationStatus's fields), and no more: see statuses_now.
_SELECT_STATUS = (
    f"SELECT {', '.join(OperationStatus._fields)} FROM operations "
    "WHERE subscription_id = ? AND operation_key = ?"
)
_INSERT = f"INSERT INTO operations ({COLUMNS}) VALUES ({', '.join('?' * (len(FIELDS) + 1))})"
_MUTABLE = tuple(f for f in FIELDS if f not in ("subscription_id", "operation_id"))
_UPDATE = (
    f"UPDATE operations SET {', '.join(f'{f} = ?' for f in _MUTABLE)} "
    "WHERE subscription_id = ? AND operation_key = ?"
)
_DELETE = "DELETE FROM operations WHERE subscription_id = ? AND operation_key = ?"
TOMBSTONE_FIELDS = tuple(f.name for f in dataclasses.fields(Tombstone))
_TOMBSTONE_COLUMNS = ", ".join(("operation_key", *TOMBSTONE_FIELDS))
_SELECT_TOMBSTONE = (
    f"SELECT {_TOMBSTONE_COLUMNS} FROM tombstones WHERE subscription_id = ? AND operation_key = ?"
)
_PUT_TOMBSTONE = (
    f"INSERT OR REPLACE INTO tombstones ({_TOMBSTONE_COLUMNS}) "
    f"VALUES ({', '.join('?' * (len(TOMBSTONE_FIELDS) + 1))})"
)
_DELETE_TOMBSTONE = "DELETE FROM tombstones WHERE subscription_id = ? AND operation_key = ?"
_FORGET_TOMBSTONES = (
    "DELETE FROM tombstones WHERE (subscription_id, operation_key) IN "
    "(SELECT subscription_id, operation_key FROM tombstones WHERE forget_at <= ? LIMIT ?)"
)


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
    if len(row) != len(FIELDS) + 1:
        return operation_from_record(dict(zip(FIELDS, row[1:], strict=False)), _JSON_FIELDS)
    return operation_from_row(list(row[1:]), _JSON_FIELDS)


def _statements(sql: str) -> Iterator[str]:
    """Split a schema file into statements (executescript would commit our transaction)."""
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if any(line.strip() and not line.strip().startswith("--") for line in pending.splitlines()):
        raise RuntimeError(f"unterminated SQL statement: {pending.strip()[:80]!r}")


def _apply(conn: sqlite3.Connection, where: str) -> Plan:
    """Migrate to the latest version in one BEGIN IMMEDIATE transaction (one writer at a time)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        steps = plan(DIALECT, conn.execute("PRAGMA user_version").fetchone()[0], where)
        for sql in [steps.schema] if steps.schema is not None else [m.sql for m in steps.steps]:
            for statement in _statements(sql):
                conn.execute(statement)
        if not steps.empty:
            conn.execute(f"PRAGMA user_version={steps.steps[-1].version}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return steps


class SQLiteStore(SQLiteRoleAssignments, SQLiteEventLog, SQLiteWebhooks):
    dialect = DIALECT
    migrates_on_open = True
    progress_events_kept = DEFAULT_PROGRESS_KEPT

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.notifier = Notifier(poll_interval=POLL_SECONDS)
        self._reader: sqlite3.Connection | None = None
        #: The reader's one cursor (see _read_through), which spares making one per read.
        self._cursor: sqlite3.Cursor | None = None
        self._shared: SharedReads | None = None
        self._wal_index: WalIndex | None = None
        self._writer: sqlite3.Connection | None = None
        self._reader_stale = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opstatus-sqlite")
        self._groups = CommitGroups(self._executor, self._writer_connection, self._roll_back)

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
        _create_private(self.path)
        try:
            await self._write(self._open_writer)
        except SchemaMismatch:
            raise  # a schema this opstatus does not know is refused, writable or not
        except StoreError as exc:
            # Read-only storage (a read-only mount, a file the service user may not write):
            # serve reads if the database can be read, refuse writes with 503 until it can be
            # written again.
            await self._write(self._drop_writer)
            self._read_through(self._connect_read_only(exc))
            log.error("the database is read-only, serving reads only: %s", exc.message)
            return
        self._use_reader(self._connect())

    def _use_reader(self, conn: sqlite3.Connection) -> None:
        """Read through ``conn`` from now on, its reads shared within a turn of the loop."""
        if self._shared is not None:
            self._shared.close()
        conn.execute(f"PRAGMA mmap_size={READ_MAP_BYTES}").fetchall()
        self._read_through(conn)
        if self._wal_index is None:
            self._wal_index = WalIndex(f"{self.path}-shm")
        self._shared = SharedReads(conn, self._wal_index)

    def _read_through(self, conn: sqlite3.Connection) -> None:
        """Read through ``conn`` and one cursor of it. Reads run on the event loop's thread
        one at a time and fetch every row they ask for, which finishes each statement
        (CPython steps past the last row), so the kept cursor holds no snapshot."""
        self._reader = conn
        self._cursor = conn.cursor()

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
        writer = self._connect()
        try:
            _apply(writer, self.describe())
        except BaseException:
            writer.close()
            raise
        self._writer = writer

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def describe(self) -> str:
        return f"the SQLite database {self.path}"

    async def schema_version(self) -> int | None:
        if self.path == ":memory:" or not Path(self.path).exists():
            return None
        try:
            uri = f"{Path(self.path).absolute().as_uri()}?mode=ro"
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
                version: int = conn.execute("PRAGMA user_version").fetchone()[0]
                return version
        except sqlite3.Error as exc:
            raise StoreError(f"{self.describe()} could not be read: {exc}") from exc

    async def migrate(self) -> Plan:
        """Migrate without opening the store (``opstatus migrate``); creates the file."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            _create_private(self.path)
            with contextlib.closing(self._connect()) as conn:
                return _apply(conn, self.describe())
        except sqlite3.Error as exc:
            raise StoreError(f"{self.describe()} could not be migrated: {exc}") from exc

    async def close(self) -> None:
        if self._writer is not None:
            await self._write(self._writer.close)
            self._writer = None
        if self._shared is not None:
            self._shared.close()
            self._shared = None
        if self._reader is not None:
            self._reader.close()
        self._executor.shutdown(wait=True)
        if self._wal_index is not None:  # after every connection: see sqlite_snapshots.py
            self._wal_index.close()
            self._wal_index = None

    async def ping(self) -> None:
        self._read(_SELECT, ("", ""))
        version = self._read("PRAGMA user_version", ())
        latest = latest_version(DIALECT)
        if version is None or version[0] != latest:
            raise StoreError(
                f"The database {self.path} has schema version {version and version[0]}; "
                f"this opstatus needs {latest}."
            )

    def _reopen_reader(self) -> None:
        """After read-only storage became writable: a normal reader sees the new writes."""
        try:
            fresh = self._connect()
        except sqlite3.Error as exc:  # keep reading through the old one; try again later
            log.warning("could not reopen the read connection: %s", exc)
            return
        self._reader_stale = False
        stale = self._reader
        self._use_reader(fresh)
        if stale is not None:
            stale.close()

    def _read(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """The one row of a lookup by primary key (or a pragma), or None."""
        rows = self._read_all(sql, params)
        return rows[0] if rows else None

    def _read_all(self, sql: str, params: tuple[Any, ...] | list[Any]) -> list[tuple[Any, ...]]:
        """Every row, in a read that sees every commit made before it."""
        return self._read_each(sql, (params,))[0]

    def _read_each(self, sql: str, each: Sequence[Sequence[Any]]) -> list[list[tuple[Any, ...]]]:
        """Every row of ``sql`` for each of ``each``'s parameters, in one read that sees every
        commit made before it."""
        if self._reader_stale and self._writer is not None:
            self._reopen_reader()
        cursor = self._cursor
        if cursor is None:
            raise StoreError("The store is not open.")
        try:
            if self._shared is not None:
                self._shared.before_read()
            return [cursor.execute(sql, params).fetchall() for params in each]
        except sqlite3.Error as exc:
            if self._shared is not None:
                self._shared.release()
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

    async def _commit(self, body: Any) -> Any:
        """``body(conn)`` in a write transaction, durable on return (committed in groups)."""
        return await self._groups.run(body)

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

    async def create(
        self, operation: Operation, callback: Callback | None = None
    ) -> tuple[Operation, bool]:
        def body(conn: sqlite3.Connection) -> tuple[Operation, bool]:
            row = conn.execute(_SELECT, (operation.subscription_id, operation.key)).fetchone()
            if row is not None:
                return _from_row(row), False
            conn.execute(_INSERT, _to_row(operation))
            conn.execute(_DELETE_TOMBSTONE, _key(operation))
            event_log.forget_operation(conn, *_key(operation))
            put_callback(conn, _key(operation), callback)
            event_log.record(conn, change_event(None, operation), self.progress_events_kept)
            return operation, True

        result: tuple[Operation, bool] = await self._commit(body)
        if result[1]:
            self.notifier.notify(*_key(operation))
        return result

    async def get(self, subscription_id: str, operation_key: str) -> Operation | None:
        """Reads run on the caller's thread: a primary-key lookup takes microseconds, less
        than handing it to a thread would."""
        row = self._read(_SELECT, (subscription_id, operation_key))
        return None if row is None else _from_row(row)

    def statuses_now(self, keys: Sequence[Key]) -> dict[Key, OperationStatus]:
        """A lookup by primary key each, in one read (see ImmediateReads)."""
        found = self._read_each(_SELECT_STATUS, keys)
        return {
            key: status_from_row(list(rows[0]), _JSON_FIELDS)
            for key, rows in zip(keys, found, strict=True)
            if rows
        }

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
            event_log.record(conn, change_event(current, op), self.progress_events_kept)
            return op

        result: Operation = await self._commit(body)
        self.notifier.notify(subscription_id, operation_key)
        return result

    async def delete(self, subscription_id: str, operation_key: str, check: DeleteCheck) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            row = conn.execute(_SELECT, (subscription_id, operation_key)).fetchone()
            if row is None:
                return False
            current = _from_row(row)
            check(current)
            conn.execute(_DELETE, (subscription_id, operation_key))
            event_log.record_last(conn, deletion_event(current, now_text()))
            return True

        result: bool = await self._commit(body)
        if result:
            self.notifier.notify(subscription_id, operation_key)
        return result

    async def find(self, query: OperationQuery) -> list[Operation]:
        p = Parameters(numbered=False)
        sql = find_sql(query, "operations", COLUMNS, p)
        return [_from_row(row) for row in self._read_all(sql, p.values)]

    async def counts(self, query: OperationQuery) -> dict[str, int]:
        p = Parameters(numbered=False)
        sql = counts_sql(query, "operations", p)

        def count() -> dict[str, int]:
            with contextlib.closing(self._connect()) as conn:
                return {str(status): int(n) for status, n in conn.execute(sql, p.values)}

        try:
            return await asyncio.to_thread(count)  # it may scan many rows: off the event loop
        except sqlite3.Error as exc:
            raise StoreError(f"The store could not be read: {exc}") from exc

    async def tallies(
        self, subscription_ids: Collection[str] | None, live_at: str | None = None
    ) -> list[Tally]:
        """Read on the event loop, like get: it reads the groups, not the operations."""
        p = Parameters(numbered=False)
        tables = ("operation_tallies", "operations INDEXED BY operations_by_expiry")
        rows = self._read_all(tallies_sql(subscription_ids, live_at, tables, p), p.values)
        return [Tally(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows]

    async def remove(self, keys: Sequence[tuple[str, str]], decide: Removal) -> list[Tombstone]:
        def body(conn: sqlite3.Connection) -> list[Tombstone]:
            removed = []
            for key in dict.fromkeys(keys):
                row = conn.execute(_SELECT, key).fetchone()
                if row is None:
                    continue
                current = _from_row(row)
                tombstone = decide(current)
                if tombstone is None:
                    continue
                conn.execute(_DELETE, key)
                conn.execute(_PUT_TOMBSTONE, (tombstone.key, *dataclasses.astuple(tombstone)))
                event_log.record_last(conn, removal_event(current, tombstone))
                removed.append(tombstone)
            return removed

        result: list[Tombstone] = await self._commit(body)
        return result

    async def get_tombstone(self, subscription_id: str, operation_key: str) -> Tombstone | None:
        row = self._read(_SELECT_TOMBSTONE, (subscription_id, operation_key))
        if row is None:
            return None
        return Tombstone(**dict(zip(TOMBSTONE_FIELDS, row[1:], strict=True)))

    async def forget_tombstones(self, before: str, limit: int) -> int:
        def body(conn: sqlite3.Connection) -> int:
            event_log.forget_kept(conn, before)
            return conn.execute(_FORGET_TOMBSTONES, (before, limit)).rowcount

        result: int = await self._commit(body)
        return result


def _create_private(path: str) -> None:
    """Create the database file, empty and 0600 whatever the umask, unless it exists (an
    existing file keeps its mode). SQLite would create it 0644 less the umask; it gives its
    ``-wal`` and ``-shm`` files the database file's mode, so they are 0600 too. Operations
    hold producers' properties and errors: as private as the signing key beside them."""
    if path == ":memory:":
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:  # it exists; or it cannot be made, which SQLite's open then reports
        return
    try:
        os.fchmod(fd, 0o600)  # the umask may have taken bits from the 0600 asked for
    finally:
        os.close(fd)

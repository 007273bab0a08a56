"""PostgreSQL store: several stateless opstatus instances on one database.

Driver: asyncpg, with its pool (``bench/drivers.py`` compares it with psycopg 3; README).

Schema: ``stores/sql/postgresql/``, applied by ``opstatus migrate`` (:meth:`migrate`), the
version kept in ``opstatus_schema_migrations``. Opening refuses a database whose schema is
not this version's, with a message naming the command to run.

Atomicity: update and delete run the domain's callback in a transaction that holds the row
(``SELECT ... FOR UPDATE``), so writers on every instance take turns per operation; create is
``INSERT ... ON CONFLICT DO NOTHING`` (and, in the same transaction, the removal of any
tombstone under the key), then a read of whichever create won. Lists, counts, retention and
tombstones are in :mod:`.postgresql_queries`, role assignments in :mod:`.postgresql_roles`.
Durability: the server's default ``synchronous_commit``: a commit is acknowledged once it
is durable.

Waking: every write NOTIFYs ``opstatus_operations`` with ``subscription/key`` from its own
statement, so the notification leaves at commit and never for a rolled-back write; the
writing process also wakes its own waiters as soon as the commit returns, without waiting
for the notification's round trip. Each process keeps one listening connection
(:class:`Listener`) feeding the store's notifier; while it is down, waiters poll, and when
it is back every waiter reads again.

Reads of one operation are gathered (:mod:`.batched_reads`): those that arrive while a
query is in flight share the next query. The server's own status reads come in batches
already, those of one turn of the event loop (:meth:`PostgreSQLStore.statuses`).

Faults: driver errors become StoreError here (HTTP 503 with Retry-After). Connecting,
acquiring and every statement have time limits, so no request hangs on a dead server, and
the pool replaces lost connections on next use: the store recovers by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeAlias
from urllib.parse import unquote, urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from ..errors import OperationNotFound, StoreError, StoreMissing
from ..events import DEFAULT_PROGRESS_KEPT
from ..models import Operation, OperationStatus, now_text
from ..webhooks import Callback
from . import postgresql_events as event_log
from .base import Change, DeleteCheck, Key
from .batched_reads import BatchedReads
from .event_rows import change_event, deletion_event
from .migrations import Plan, migrate_command, plan, redact, require_latest
from .notifier import Notifier
from .postgresql_events import PostgreSQLEventLog
from .postgresql_queries import DELETE_TOMBSTONE, PostgreSQLQueries
from .postgresql_roles import PostgreSQLRoleAssignments
from .postgresql_rows import (
    CHANNEL,
    DELETE,
    INSERT,
    LOCK,
    MUTABLE,
    SELECT,
    SELECT_MANY,
    SELECT_STATUSES,
    UPDATE,
    column,
    from_row,
    status_from_record,
    to_row,
)
from .postgresql_webhooks import PostgreSQLWebhooks, put_callback

DIALECT = "postgresql"
MIGRATIONS_TABLE = "opstatus_schema_migrations"
#: Waiters read again this often while the listening connection is down.
POLL_SECONDS = 1.0
CONNECT_TIMEOUT = 5.0
#: Longest any one statement may take, lock waits included.
COMMAND_TIMEOUT = 10.0
#: Longest a request waits for a pooled connection (all busy, or connecting).
ACQUIRE_TIMEOUT = 10.0
POOL_MIN, POOL_MAX = 2, 10
#: How often the listener checks a quiet connection is still there.
LISTENER_CHECK_SECONDS = 5.0
#: pg_advisory_xact_lock key: two `opstatus migrate` at once take turns.
MIGRATE_LOCK = 0x6F70737461747573  # "opstatus"
SERVER_SETTINGS = {"application_name": "opstatus"}

#: What the driver raises when the server, the network or a time limit fails us.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    TimeoutError,
)
_LISTENER_ERRORS: tuple[type[BaseException], ...] = (*DRIVER_ERRORS, StoreError)

MIGRATIONS_DDL = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


#: A connection of its own, or one lent by the pool (asyncpg's types are not subscriptable
#: at run time, hence the string).
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


async def schema_version(conn: Connection) -> int:
    """The last migration recorded; 0 when the database has no opstatus schema."""
    if await conn.fetchval("SELECT to_regclass($1)::text", MIGRATIONS_TABLE) is None:
        return 0
    version = await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {MIGRATIONS_TABLE}")
    return int(version)


async def apply_plan(conn: Connection, steps: Plan) -> None:
    """Run a plan's SQL and record its migrations, inside the caller's transaction."""
    await conn.execute(MIGRATIONS_DDL)
    for sql in [steps.schema] if steps.schema is not None else [m.sql for m in steps.steps]:
        await conn.execute(sql)
    await conn.executemany(
        f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES ($1, $2)",
        [(m.version, m.name) for m in steps.steps],
    )


class PostgreSQLStore(
    PostgreSQLQueries, PostgreSQLRoleAssignments, PostgreSQLEventLog, PostgreSQLWebhooks
):
    dialect = DIALECT
    migrates_on_open = False
    progress_events_kept = DEFAULT_PROGRESS_KEPT

    def __init__(self, url: str) -> None:
        self.url = url
        self.notifier = Notifier(poll_interval=POLL_SECONDS)
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._listener: Listener | None = None
        self._reads: BatchedReads[asyncpg.Record] = BatchedReads(self._fetch_many)

    def describe(self) -> str:
        return f"the PostgreSQL database {redact(self.url)}"

    async def _connect(self) -> asyncpg.Connection[asyncpg.Record]:
        try:
            return await asyncpg.connect(
                self.url,
                timeout=CONNECT_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT,
                server_settings=SERVER_SETTINGS,
            )
        except asyncpg.InvalidCatalogNameError as exc:
            raise StoreMissing(
                f"{self.describe()} does not exist: {_reason(exc)}",
                create=createdb_command(self.url),
            ) from exc
        except DRIVER_ERRORS as exc:
            raise StoreError(f"Cannot connect to {self.describe()}: {_reason(exc)}") from exc

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=POOL_MIN,
                max_size=POOL_MAX,
                timeout=CONNECT_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT,
                server_settings=SERVER_SETTINGS,
                reset=_keep_session,
            )
        except DRIVER_ERRORS as exc:
            raise StoreError(f"Cannot connect to {self.describe()}: {_reason(exc)}") from exc
        try:
            async with self._connection() as conn:
                version = await schema_version(conn)
            require_latest(DIALECT, version, self.describe(), migrate_command(self.url))
            self._listener = Listener(self._connect, self.notifier)
            await self._listener.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), CONNECT_TIMEOUT)
            except DRIVER_ERRORS:
                pool.terminate()

    async def schema_version(self) -> int | None:
        conn = await self._connect()
        try:
            return await schema_version(conn)
        except DRIVER_ERRORS as exc:
            raise StoreError(f"{self.describe()} could not be read: {_reason(exc)}") from exc
        finally:
            await _close(conn)

    async def migrate(self) -> Plan:
        conn = await self._connect()
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATE_LOCK)
                steps = plan(DIALECT, await schema_version(conn), self.describe())
                await apply_plan(conn, steps)
            return steps
        except DRIVER_ERRORS as exc:
            raise StoreError(f"{self.describe()} could not be migrated: {_reason(exc)}") from exc
        finally:
            await _close(conn)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[PoolConnectionProxy[asyncpg.Record]]:
        """A pooled connection; driver errors inside become StoreError, others pass unchanged."""
        if self._pool is None:
            raise StoreError("The store is not open.")
        pool = self._pool
        try:
            # asyncio.timeout, not acquire(timeout=): asyncpg runs a timed acquire as a task
            # of its own, which costs more than the rest of a status read's acquire.
            async with asyncio.timeout(ACQUIRE_TIMEOUT):
                conn = await pool.acquire()
            try:
                yield conn
            finally:
                await pool.release(conn)
        except DRIVER_ERRORS as exc:
            raise StoreError(f"PostgreSQL did not answer: {_reason(exc)}") from exc

    async def ping(self) -> None:
        async with self._connection() as conn:
            await conn.fetchval("SELECT 1")

    async def create(
        self, operation: Operation, callback: Callback | None = None
    ) -> tuple[Operation, bool]:
        key = (operation.subscription_id, operation.key)
        # Three tries: the winner of a race could be deleted before we read it.
        for _ in range(3):
            async with self._connection() as conn:
                async with conn.transaction():
                    created = await conn.fetchrow(INSERT, *to_row(operation)) is not None
                    if created:
                        # A statement of its own, so it also sees a tombstone that a removal
                        # committed while the insert waited for it.
                        await conn.execute(DELETE_TOMBSTONE, *key)
                        await event_log.forget_operation(conn, *key)
                        await put_callback(conn, key, callback)
                        event = change_event(None, operation)
                        await event_log.record(conn, event, self.progress_events_kept)
                if created:
                    self.notifier.notify(*key)
                    return operation, True
                row = await conn.fetchrow(SELECT, *key)
            if row is not None:
                return from_row(row), False
        raise StoreError(f"The operation '{operation.key}' kept changing; retry the request.")

    async def get(self, subscription_id: str, operation_key: str) -> Operation | None:
        row = await self._reads.get((subscription_id, operation_key))
        return None if row is None else from_row(row)

    async def statuses(self, keys: Sequence[Key]) -> dict[Key, OperationStatus]:
        """The statuses of these operations in one query (see BatchReads)."""
        subscriptions, operation_keys = zip(*keys, strict=True) if keys else ((), ())
        async with self._connection() as conn:
            rows = await conn.fetch(SELECT_STATUSES, list(subscriptions), list(operation_keys))
        return {
            (row["subscription_id"], row["operation_key"]): status_from_record(row) for row in rows
        }

    async def _fetch_many(self, keys: Sequence[tuple[str, str]]) -> dict[Key, asyncpg.Record]:
        """The rows of these operations (the batched reads' one query)."""
        async with self._connection() as conn:
            if len(keys) == 1:
                row = await conn.fetchrow(SELECT, *keys[0])
                rows = [] if row is None else [row]
            else:
                subscriptions, operation_keys = zip(*keys, strict=True)
                rows = await conn.fetch(SELECT_MANY, list(subscriptions), list(operation_keys))
        return {(row["subscription_id"], row["operation_key"]): row for row in rows}

    async def update(self, subscription_id: str, operation_key: str, change: Change) -> Operation:
        async with self._connection() as conn, conn.transaction():
            row = await conn.fetchrow(LOCK, subscription_id, operation_key)
            if row is None:
                raise OperationNotFound(f"The operation '{operation_key}' was not found.")
            current = from_row(row)
            changed = change(current)
            if changed is None:
                return current
            values = (column(changed, name) for name in MUTABLE)
            await conn.execute(UPDATE, subscription_id, operation_key, *values)
            event = change_event(current, changed)
            await event_log.record(conn, event, self.progress_events_kept)
        self.notifier.notify(subscription_id, operation_key)
        return changed

    async def delete(self, subscription_id: str, operation_key: str, check: DeleteCheck) -> bool:
        async with self._connection() as conn, conn.transaction():
            row = await conn.fetchrow(LOCK, subscription_id, operation_key)
            if row is None:
                return False
            current = from_row(row)
            check(current)
            await conn.execute(DELETE, subscription_id, operation_key)
            await event_log.record_last(conn, deletion_event(current, now_text()))
        self.notifier.notify(subscription_id, operation_key)
        return True


async def _keep_session(conn: Connection) -> None:
    """What the pool does to a connection handed back, besides rolling back an open
    transaction: nothing. Pooled connections never LISTEN, SET, hold session locks or
    cursors, so asyncpg's default reset (a round trip per request) would undo nothing."""


async def _close(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Say goodbye if the connection still works; it is closed either way."""
    with contextlib.suppress(*DRIVER_ERRORS):
        await conn.close(timeout=CONNECT_TIMEOUT)
    if not conn.is_closed():
        conn.terminate()


def createdb_command(url: str) -> str:
    """The ``createdb`` command that creates the database ``url`` names (password left out;
    createdb asks for it, or reads PGPASSWORD)."""
    parts = urlsplit(url)
    args = ["createdb"]
    if parts.hostname:
        args += ["-h", parts.hostname]
    if parts.port:
        args += ["-p", str(parts.port)]
    if parts.username:
        args += ["-U", unquote(parts.username)]
    args.append(unquote(parts.path.lstrip("/")) or "opstatus")
    return shlex.join(args)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Listener:
    """One LISTEN connection per process, feeding a notifier; reconnects until stopped.

    While connected, the notifier needs no polling; when the connection drops, waiters poll
    and every one of them reads again, and again once it is back (notifications sent while
    it was away are lost, so anything may have changed).
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection[asyncpg.Record]]],
        notifier: Notifier,
        check_seconds: float = LISTENER_CHECK_SECONDS,
    ) -> None:
        self._connect = connect
        self.notifier = notifier
        self.check_seconds = check_seconds
        self._conn: asyncpg.Connection[asyncpg.Record] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen now (raises StoreError if it cannot), and keep listening in the background."""
        await self._listen()
        self._task = asyncio.create_task(self._run(), name="opstatus-pg-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._conn is not None:
            await _close(self._conn)
        self._lost()

    async def _listen(self) -> None:
        conn = await self._connect()
        try:
            await conn.add_listener(CHANNEL, self._on_notification)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        self.notifier.poll_interval = None
        self.notifier.notify_all()

    def _lost(self) -> None:
        if self._conn is not None:
            if not self._conn.is_closed():
                self._conn.terminate()
            self._conn = None
        self.notifier.poll_interval = POLL_SECONDS
        self.notifier.notify_all()

    def _on_notification(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        subscription_id, _, operation_key = str(payload).partition("/")
        self.notifier.notify(subscription_id, operation_key)

    async def _run(self) -> None:
        delay = 0.05
        while True:
            try:
                if self._conn is None:
                    await self._listen()
                    delay = 0.05
                assert self._conn is not None
                await self._watch(self._conn)
            except _LISTENER_ERRORS:
                pass
            self._lost()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _watch(self, conn: asyncpg.Connection[asyncpg.Record]) -> None:
        """Return when the connection is lost. The server closing it ends this at once; a
        silent network would not, so a quiet connection is asked something now and then."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())
        while not conn.is_closed():
            try:
                async with asyncio.timeout(self.check_seconds):
                    await lost.wait()
                return
            except TimeoutError:
                await conn.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT)

"""What only the PostgreSQL store has: its schema under `opstatus migrate`, NOTIFY-driven
wake-ups across instances, and recovery from lost connections.

The store contract itself (atomicity, finality, round trips, two instances racing) runs over
PostgreSQL in test_contract.py. Every test here has a fresh database (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from opstatus.errors import SchemaMismatch, StoreError, TerminalStatusFinal
from opstatus.lifecycle import Tombstone
from opstatus.models import SUCCEEDED, Operation
from opstatus.service import OperationService
from opstatus.stores import PostgreSQLStore
from opstatus.stores.migrations import latest_version, migrations, redact
from opstatus.stores.postgresql import MIGRATIONS_DDL, MIGRATIONS_TABLE, POLL_SECONDS
from tests import pg
from tests.stores.test_contract import SUB_A, make_op, ref, tombstone_of
from tests.support import free_port

pytestmark = pytest.mark.anyio


def schema_dump(url: str) -> str:
    """pg_dump's schema of a database, without what differs from one dump to the next."""
    dump = subprocess.run(
        [str(pg.bin_dir() / "pg_dump"), "--schema-only", "--no-owner", "--no-privileges", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dump.returncode == 0, dump.stderr
    lines = dump.stdout.splitlines()
    return "\n".join(
        line for line in lines if line and not line.startswith(("--", "\\restrict", "\\unrestrict"))
    )


async def test_schema_file_equals_all_migrations_applied(pg_url: str, pg_empty_url: str) -> None:
    """A new database takes schema.sql; an old one the migrations: both end the same.

    ``pg_url`` is a copy of the session's template, which ``opstatus migrate`` made from
    schema.sql (it was empty); here ``pg_empty_url`` gets every migration in order instead.
    """
    from_migrations = pg_empty_url
    conn = await asyncpg.connect(from_migrations)
    try:
        await conn.execute(MIGRATIONS_DDL)
        for migration in migrations("postgresql"):
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
    finally:
        await conn.close()

    dumped = schema_dump(pg_url)
    assert "CREATE TABLE public.opstatus_operations" in dumped
    assert dumped == schema_dump(from_migrations)
    for url in (pg_url, from_migrations):
        assert await PostgreSQLStore(url).schema_version() == latest_version("postgresql")


async def test_a_store_refuses_a_database_without_the_schema(pg_empty_url: str) -> None:
    store = PostgreSQLStore(pg_empty_url)
    with pytest.raises(SchemaMismatch) as info:
        await store.open()
    assert info.value.message.startswith("The PostgreSQL database postgresql://")
    assert "has no opstatus schema" in info.value.message
    assert f"opstatus migrate --store '{pg_empty_url}'" in info.value.message
    assert await store.schema_version() == 0


async def test_migrate_creates_then_has_nothing_to_do_and_the_store_opens(
    pg_empty_url: str,
) -> None:
    first, second = await asyncio.gather(
        PostgreSQLStore(pg_empty_url).migrate(), PostgreSQLStore(pg_empty_url).migrate()
    )
    assert sorted([first.empty, second.empty]) == [False, True]  # two at once take turns
    assert (await PostgreSQLStore(pg_empty_url).migrate()).empty
    store = PostgreSQLStore(pg_empty_url)
    await store.open()
    try:
        assert (await store.create(make_op()))[1] is True
    finally:
        await store.close()


async def test_a_store_refuses_a_newer_schema(pg_url: str) -> None:
    newer = latest_version("postgresql") + 1
    await pg.admin(f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES ({newer}, 'x')", pg_url)
    with pytest.raises(SchemaMismatch, match=f"version {newer}, newer .* upgrade opstatus"):
        await PostgreSQLStore(pg_url).open()
    with pytest.raises(SchemaMismatch, match="upgrade opstatus"):
        await PostgreSQLStore(pg_url).migrate()


async def test_an_unreachable_server_is_a_store_error_naming_it() -> None:
    url = f"postgresql://postgres:secret@127.0.0.1:{free_port()}/nowhere"
    store = PostgreSQLStore(url)
    start = time.monotonic()
    for attempt in (store.open(), store.schema_version(), store.migrate()):
        with pytest.raises(StoreError) as info:
            await attempt
        assert redact(url) in info.value.message
        assert "secret" not in info.value.message
        assert "Cannot connect" in info.value.message
    assert time.monotonic() - start < 10


def test_redact_hides_only_the_password() -> None:
    assert redact("postgresql://u:pw@h:5/db?x=1") == "postgresql://u:***@h:5/db?x=1"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


@pytest.fixture
async def two_stores(pg_url: str) -> AsyncIterator[tuple[PostgreSQLStore, PostgreSQLStore]]:
    """Two open stores on one database: two instances of opstatus, as far as it can tell."""
    one, two = PostgreSQLStore(pg_url), PostgreSQLStore(pg_url)
    await one.open()
    await two.open()
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


async def test_a_write_on_one_instance_wakes_a_waiter_on_the_other(
    two_stores: tuple[PostgreSQLStore, PostgreSQLStore],
) -> None:
    one, two = two_stores
    assert two.notifier.poll_interval is None  # listening: no polling
    created, _ = await one.create(make_op())
    with two.notifier.watch(SUB_A, created.key) as changed:
        start = time.monotonic()
        await one.update(SUB_A, created.key, lambda cur: cur.evolve(percent_complete=5.0))
        async with asyncio.timeout(2):
            await changed.wait()
        assert time.monotonic() - start < 0.5

    waiting = asyncio.create_task(OperationService(two).wait(ref(created), 30))
    await asyncio.sleep(0.1)
    await one.update(SUB_A, created.key, lambda cur: cur.evolve(status=SUCCEEDED, etag="e3"))
    async with asyncio.timeout(2):
        woken = await waiting
    assert woken.status == SUCCEEDED and woken.etag == "e3"


async def notified_so_far(one: PostgreSQLStore, two: PostgreSQLStore) -> None:
    """Return once ``two`` has had the notifications of every write ``one`` made so far.

    They arrive in commit order, maybe after a watch that a test begins next: once a later
    write's has arrived, theirs have too, and cannot be taken for what the test watches for.
    """
    barrier = make_op("notified-so-far", status=SUCCEEDED)
    with two.notifier.watch(SUB_A, barrier.key) as arrived:
        await one.create(barrier)
        async with asyncio.timeout(2):
            await arrived.wait()


async def test_only_real_writes_notify(
    two_stores: tuple[PostgreSQLStore, PostgreSQLStore],
) -> None:
    """A change that is refused (rolled back) or changes nothing sends no notification."""
    one, two = two_stores
    created, _ = await one.create(make_op())
    await one.create(make_op("other"))
    await notified_so_far(one, two)

    def refuse(current: Operation) -> Operation:
        raise TerminalStatusFinal("no")

    with two.notifier.watch(SUB_A, created.key) as changed:
        with pytest.raises(TerminalStatusFinal):
            await one.update(SUB_A, created.key, refuse)
        await one.update(SUB_A, created.key, lambda current: None)
        with pytest.raises(TerminalStatusFinal):
            await one.delete(SUB_A, created.key, refuse)
        await one.create(make_op())  # a replay
        await one.update(SUB_A, "other", lambda cur: cur.evolve(percent_complete=1.0))
        await asyncio.sleep(0.3)
        assert not changed.is_set()
        await one.delete(SUB_A, created.key, lambda current: None)
        async with asyncio.timeout(2):
            await changed.wait()


async def test_a_removal_wakes_the_waiters_of_what_it_removed(
    two_stores: tuple[PostgreSQLStore, PostgreSQLStore],
) -> None:
    one, two = two_stores
    kept, _ = await one.create(make_op("kept", status=SUCCEEDED))
    gone, _ = await one.create(make_op("gone", status=SUCCEEDED))
    await notified_so_far(one, two)

    def decide(current: Operation) -> Tombstone | None:
        return tombstone_of(current) if current.key == gone.key else None

    with (
        two.notifier.watch(SUB_A, kept.key) as kept_changed,
        two.notifier.watch(SUB_A, gone.key) as gone_changed,
    ):
        assert await one.remove([(SUB_A, kept.key), (SUB_A, gone.key)], decide) == [
            tombstone_of(gone)
        ]
        async with asyncio.timeout(2):
            await gone_changed.wait()
        await asyncio.sleep(0.3)
        assert not kept_changed.is_set()


KILL_OTHERS = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


async def test_lost_connections_are_replaced_and_waiters_read_again(
    two_stores: tuple[PostgreSQLStore, PostgreSQLStore],
    pg_url: str,
) -> None:
    """Every connection of both instances killed: the pools and listeners come back alone."""
    one, two = two_stores
    created, _ = await one.create(make_op())
    with two.notifier.watch(SUB_A, created.key) as changed:
        await pg.admin(KILL_OTHERS, pg_url)
        async with asyncio.timeout(2):
            await changed.wait()  # pushes were lost: every waiter is told to read again
        changed.clear()

        failures = 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                assert await two.get(SUB_A, created.key) == created
                await one.update(SUB_A, created.key, lambda cur: cur.evolve(etag="after"))
                break
            except StoreError:
                failures += 1
                await asyncio.sleep(0.05)
        assert failures <= 2, failures
        async with asyncio.timeout(2):  # and the listener is back: the write woke us
            await changed.wait()
    deadline = time.monotonic() + 3
    while one.notifier.poll_interval is not None or two.notifier.poll_interval is not None:
        assert time.monotonic() < deadline, "a listener did not come back"
        await asyncio.sleep(0.02)


async def test_waiters_poll_while_the_listener_is_down(pg_url: str) -> None:
    store = PostgreSQLStore(pg_url)
    await store.open()
    try:
        assert store._listener is not None
        await store._listener.stop()  # as if its connection could not be made again
        assert store.notifier.poll_interval == POLL_SECONDS
        created, _ = await store.create(make_op())
        writer = PostgreSQLStore(pg_url)
        await writer.open()
        try:
            waiting = asyncio.create_task(OperationService(store).wait(ref(created), 30))
            await asyncio.sleep(0.1)
            await writer.update(SUB_A, created.key, lambda cur: cur.evolve(status=SUCCEEDED))
            start = time.monotonic()
            async with asyncio.timeout(POLL_SECONDS + 2):
                assert (await waiting).status == SUCCEEDED
            assert time.monotonic() - start < POLL_SECONDS + 1
        finally:
            await writer.close()
    finally:
        await store.close()

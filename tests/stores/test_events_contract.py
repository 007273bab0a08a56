"""The event log (``opstatus.stores.base.EventLog``), over every backend.

Each change writes its event in the change's own transaction; these tests hold every store
to the same sequence numbers, types, order, retention and rollback behaviour.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from opstatus.errors import TerminalStatusFinal
from opstatus.events import START, Event, EventScope, Position, parse_position
from opstatus.lifecycle import Tombstone
from opstatus.models import CANCELED, FAILED, SUCCEEDED, default_error
from opstatus.stores import PostgreSQLStore
from opstatus.stores.base import Store
from tests.stores.test_contract import BACKENDS, SUB_A, SUB_B, make_op, opened

pytestmark = pytest.mark.anyio


@pytest.fixture(params=list(BACKENDS))
def make_store(request: pytest.FixtureRequest) -> Callable[[], Store]:
    return BACKENDS[request.param].factory(request)


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    async with opened(make_store) as s:
        yield s


T2 = "2024-05-01T10:10:00.000Z"


async def settled(store: Store) -> None:
    """On PostgreSQL, wait until every event written is visible: readers see only events of
    transactions older than every open one, in the whole cluster (others' tests included)."""
    if not isinstance(store, PostgreSQLStore):
        return
    for _ in range(400):
        async with store._connection() as conn:
            if await conn.fetchval(
                "SELECT coalesce(max(txid), '0') < pg_snapshot_xmin(pg_current_snapshot()) "
                "FROM opstatus_events"
            ):
                return
        await asyncio.sleep(0.025)
    raise AssertionError("events stayed invisible for 10 s")


async def read(store: Store, after: Position = START, limit: int = 1000,
               scope: EventScope | None = None) -> list[Event]:  # fmt: skip
    await settled(store)
    return await store.events(after, limit, scope)


async def all_events(store: Store, scope: EventScope | None = None) -> list[tuple[str, int]]:
    return [(e.type, e.sequence) for e in await read(store, scope=scope)]


async def test_every_visible_change_is_an_event_in_order(store: Store) -> None:
    op = make_op()
    await store.create(op)
    await store.update(SUB_A, op.key, lambda c: c.evolve(percent_complete=10.0, updated_at=T2))
    await store.update(SUB_A, op.key, lambda c: c.evolve(cancel_requested_at=T2))
    await store.update(SUB_A, op.key, lambda c: c.evolve(status="Provisioning"))
    await store.update(SUB_A, op.key, lambda c: c.evolve(lease_expires_at=T2))  # not visible
    await store.update(SUB_A, op.key, lambda c: None)  # nothing changes
    await store.update(
        SUB_A, op.key, lambda c: c.evolve(status=CANCELED, error=default_error(CANCELED))
    )

    events = await read(store)
    assert [(e.type, e.sequence) for e in events] == [
        ("created", 1),
        ("progress", 2),
        ("cancelRequested", 3),
        ("status", 4),
        ("canceled", 5),
    ]
    positions = [e.position for e in events]
    assert positions == sorted(positions) and len(set(positions)) == 5
    assert events[1].data["percentComplete"] == 10.0 and events[1].time == T2
    assert events[-1].terminal and not events[0].terminal
    assert events[-1].body()["operation"]["error"]["code"] == "OperationCanceled"
    assert await store.last_position() == positions[-1]
    # Resuming after any position gives exactly what follows it.
    for i, position in enumerate(positions):
        assert await store.events(position, 100) == events[i + 1 :]
        assert parse_position(str(position)) == position
    assert await store.events(positions[0], 2) == events[1:3]


async def test_failed_is_an_error_event_and_a_refused_change_writes_none(store: Store) -> None:
    op = make_op()
    await store.create(op)
    await store.update(
        SUB_A, op.key, lambda c: c.evolve(status=FAILED, error=default_error(FAILED))
    )

    def refuse(current: object) -> None:
        raise TerminalStatusFinal("final")

    with pytest.raises(TerminalStatusFinal):
        await store.update(SUB_A, op.key, refuse)
    assert await all_events(store) == [("created", 1), ("error", 2)]


async def test_only_the_newest_progress_events_are_kept(store: Store) -> None:
    store.progress_events_kept = 3
    op = make_op()
    await store.create(op)
    for percent in range(1, 11):
        await store.update(SUB_A, op.key, lambda c, p=percent: c.evolve(percent_complete=float(p)))
    await store.update(SUB_A, op.key, lambda c: c.evolve(status=SUCCEEDED))
    events = await read(store)
    assert [(e.type, e.sequence) for e in events] == [
        ("created", 1),
        ("progress", 9),
        ("progress", 10),
        ("progress", 11),
        ("status", 12),
    ]
    assert events[-1].terminal


async def test_removal_keeps_one_expired_event_as_long_as_the_tombstone(store: Store) -> None:
    op = make_op(status=SUCCEEDED, end_time=T2)
    other = make_op("other")
    await store.create(op)
    await store.create(other)
    forget_at = "2024-06-01T00:00:00.000Z"

    def decide(current: object) -> Tombstone:
        return Tombstone(SUB_A, op.operation_id, op.namespace, op.location, SUCCEEDED, T2, T2,
                         "Expired", forget_at)  # fmt: skip

    await store.remove([(SUB_A, op.key)], decide)
    mine = await read(store, scope=EventScope(operation_key=op.key))
    assert [(e.type, e.sequence) for e in mine] == [("expired", 2)]
    assert mine[0].data["reason"] == "Expired" and mine[0].terminal
    await store.forget_tombstones("2024-05-02T00:00:00.000Z", 10)
    assert len(await read(store, scope=EventScope(operation_key=op.key))) == 1
    await store.forget_tombstones(forget_at, 10)
    assert await read(store, scope=EventScope(operation_key=op.key)) == []
    assert await all_events(store) == [("created", 1)]  # the other operation's


async def test_delete_is_an_event_and_a_new_operation_starts_over(store: Store) -> None:
    op = make_op()
    await store.create(op)
    await store.update(SUB_A, op.key, lambda c: c.evolve(percent_complete=5.0))
    await store.delete(SUB_A, op.key, lambda c: None)
    assert await all_events(store) == [("deleted", 3)]
    await store.create(make_op())
    assert await all_events(store) == [("created", 1)]


async def test_scopes_narrow_what_is_read(store: Store) -> None:
    await store.create(make_op("a1"))
    await store.create(make_op("b1", SUB_B))
    await store.create(make_op("a2", location="eastus", namespace="Contoso.Widgets"))
    await store.update(SUB_A, "a1", lambda c: c.evolve(status=SUCCEEDED))

    async def names(scope: EventScope) -> list[tuple[str, str]]:
        return [(e.data["name"], e.type) for e in await read(store, scope=scope)]

    assert await names(EventScope(subscription_id=SUB_B)) == [("b1", "created")]
    assert await names(EventScope(SUB_A, namespace="contoso.widgets")) == [("a2", "created")]
    assert await names(EventScope(SUB_A, location="westus")) == [
        ("a1", "created"),
        ("a1", "status"),
    ]
    assert await names(EventScope(SUB_A, statuses=frozenset({SUCCEEDED}))) == [("a1", "status")]
    assert await names(EventScope(types=frozenset({"status"}))) == [("a1", "status")]


async def test_concurrent_writes_each_get_one_event(store: Store) -> None:
    ops = [make_op(f"c{i}") for i in range(20)]
    await asyncio.gather(*(store.create(op) for op in ops))
    await asyncio.gather(
        *(store.update(SUB_A, op.key, lambda c: c.evolve(percent_complete=1.0)) for op in ops)
    )
    events = await read(store)
    assert len(events) == 40
    assert sorted(e.position for e in events) == [e.position for e in events]
    for op in ops:
        assert [e.sequence for e in events if e.operation_key == op.key] == [1, 2]


async def test_postgresql_readers_never_pass_an_open_transaction(pg_url: str) -> None:
    """An event committed while an older transaction is still open waits for it: the older
    one's events sort first, so a reader that resumes after what it saw misses nothing."""
    async with opened(lambda: PostgreSQLStore(pg_url)) as store:
        await store.create(make_op("first"))
        await settled(store)
        seen = await store.last_position()
        assert seen != START
        older = await asyncpg.connect(pg_url)
        try:
            transaction = older.transaction()
            await transaction.start()
            await older.execute(
                "UPDATE opstatus_operations SET percent_complete = 1 WHERE operation_key = 'first'"
            )
            await store.create(make_op("second"))  # committed, but after the open one began
            assert await store.events(seen, 10) == []
            assert await store.last_position() == seen
            await older.execute(
                "INSERT INTO opstatus_events (subscription_id, operation_key, sequence, type, "
                "namespace, location, status, created_at, data) "
                f"VALUES ('{SUB_A}', 'first', 2, 'progress', 'N', 'westus', 'InProgress', "
                "'2024-05-01T10:00:00.000Z', '{}')"
            )
            await transaction.commit()
        finally:
            await older.close()
        after = await read(store, seen, 10)
        assert [(e.operation_key, e.type) for e in after] == [
            ("first", "progress"),
            ("second", "created"),
        ]
        assert after[0].position.cursor > after[1].position.cursor  # counters lie; txids don't
        assert all(isinstance(e.position, Position) and e.position.group for e in after)


def test_positions_read_back_from_their_text() -> None:
    assert parse_position("42") == Position(0, 42)
    assert parse_position("812-42") == Position(812, 42)
    assert str(Position(812, 42)) == "812-42" and str(Position(0, 42)) == "42"
    for bad in ("", "x", "-1", "1-2-3", "1" * 30):
        with pytest.raises(Exception, match="Last-Event-ID"):
            parse_position(bad)
    assert dataclasses.is_dataclass(Tombstone)

"""The Store contract (``opstatus.stores.base.Store``), run over every backend.

Every backend must pass every test here; that is what keeps the in-memory store from drifting
from the real ones. To add a backend, add an entry to ``BACKENDS``: a factory that, given the
test's fixture request (for ``tmp_path`` or a database), returns a callable building a new
(not yet opened) store on the test's own data. Backends whose
data outlives one store instance, and is shared by instances as by separate processes, are
marked ``persistent`` and also run the reopen and two-instance tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opstatus.errors import (
    OperationNotFound,
    PreconditionFailed,
    ProgressRegression,
    TerminalStatusFinal,
)
from opstatus.lifecycle import Tombstone
from opstatus.models import (
    CANCELED,
    FAILED,
    IN_PROGRESS,
    SUCCEEDED,
    Operation,
    OperationStatus,
    OperationUpdate,
    default_error,
    operation_key,
)
from opstatus.queries import (
    NEWEST_FIRST,
    OperationFilter,
    OperationQuery,
    Order,
    Position,
    position,
)
from opstatus.service import OperationRef, OperationService
from opstatus.stores import MemoryStore, PostgreSQLStore, SQLiteStore
from opstatus.stores.base import BatchReads, ImmediateReads, Store

pytestmark = pytest.mark.anyio

SUB_A = "e7b5a9d2-6b6a-4d2f-9143-20d9a10f5b8f"
SUB_B = "0c3a1f4e-2b7d-4e58-9a61-5d3b2c1e0f99"
NAMESPACE = "Microsoft.Cache"
LOCATION = "westus"
T0 = "2024-05-01T10:00:00.000Z"
T1 = "2024-05-01T10:05:00.123Z"


@dataclass(frozen=True)
class Backend:
    #: Given the test's fixture request, a callable that builds a new store on the test's data.
    factory: Callable[[pytest.FixtureRequest], Callable[[], Store]]
    #: Data outlives a store instance and is shared between instances (as between processes).
    persistent: bool


def sqlite_file(request: pytest.FixtureRequest) -> Path:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    return tmp_path / "db" / "ops.sqlite"


BACKENDS: dict[str, Backend] = {
    "memory": Backend(factory=lambda request: MemoryStore, persistent=False),
    "sqlite": Backend(
        factory=lambda request: functools.partial(SQLiteStore, sqlite_file(request)),
        persistent=True,
    ),
    # A fresh database per test (tests/conftest.py), skipped where no PostgreSQL answers.
    "postgresql": Backend(
        factory=lambda request: functools.partial(
            PostgreSQLStore, request.getfixturevalue("pg_url")
        ),
        persistent=True,
    ),
}
PERSISTENT = [name for name, backend in BACKENDS.items() if backend.persistent]


@pytest.fixture(params=list(BACKENDS))
def make_store(request: pytest.FixtureRequest) -> Callable[[], Store]:
    return BACKENDS[request.param].factory(request)


@contextlib.asynccontextmanager
async def opened(make: Callable[[], Store]) -> AsyncIterator[Store]:
    store = make()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    async with opened(make_store) as s:
        yield s


def make_op(
    operation_id: str = "op-1",
    subscription_id: str = SUB_A,
    status: str = IN_PROGRESS,
    **fields: object,
) -> Operation:
    values: dict[str, object] = {
        "namespace": NAMESPACE,
        "location": LOCATION,
        "start_time": T0,
        "created_at": T0,
        "updated_at": T0,
        "create_digest": "digest-" + operation_key(operation_id),
    }
    values.update(fields)
    return Operation(
        subscription_id=subscription_id,
        operation_id=operation_id,
        status=status,
        **values,  # type: ignore[arg-type]
    )


def ref(op: Operation) -> OperationRef:
    return OperationRef(op.subscription_id, op.namespace, op.location, op.operation_id)


def fail_if_called(current: Operation) -> None:
    raise AssertionError(f"must not be called, got {current!r}")


# --- create ------------------------------------------------------------------------------


async def test_create_then_create_again_returns_existing(store: Store) -> None:
    first = make_op(percent_complete=10.0)
    stored, created = await store.create(first)
    assert created is True
    assert stored == first

    second = make_op(percent_complete=90.0, create_digest="other")
    assert second.etag != first.etag
    again, created_again = await store.create(second)
    assert created_again is False
    assert again == first
    assert await store.get(SUB_A, first.key) == first


async def test_key_is_case_insensitive_on_operation_id(store: Store) -> None:
    op = make_op("Op-MixedCase")
    await store.create(op)

    for spelling in ("Op-MixedCase", "op-mixedcase", "OP-MIXEDCASE"):
        got = await store.get(SUB_A, operation_key(spelling))
        assert got == op
        assert got is not None and got.operation_id == "Op-MixedCase"  # spelling preserved

    existing, created = await store.create(make_op("OP-MIXEDCASE"))
    assert created is False
    assert existing.operation_id == "Op-MixedCase"


async def test_same_operation_id_in_two_subscriptions_is_two_operations(store: Store) -> None:
    in_a = make_op("shared-id", SUB_A, properties={"owner": "a"})
    in_b = make_op("shared-id", SUB_B, properties={"owner": "b"})
    assert (await store.create(in_a))[1] is True
    assert (await store.create(in_b))[1] is True

    assert await store.get(SUB_A, "shared-id") == in_a
    assert await store.get(SUB_B, "shared-id") == in_b

    # Changing or deleting one leaves the other alone.
    await store.update(SUB_A, "shared-id", lambda cur: cur.evolve(status=SUCCEEDED))
    assert (await store.get(SUB_B, "shared-id")).status == IN_PROGRESS  # type: ignore[union-attr]
    assert await store.delete(SUB_B, "shared-id", lambda cur: None) is True
    assert await store.get(SUB_B, "shared-id") is None
    got_a = await store.get(SUB_A, "shared-id")
    assert got_a is not None and got_a.status == SUCCEEDED


async def test_racing_creates_exactly_one_is_told_it_created(store: Store) -> None:
    candidates = [make_op("raced", properties={"n": i}) for i in range(20)]
    results = await asyncio.gather(*(store.create(op) for op in candidates))

    winners = [op for op, created in results if created]
    assert len(winners) == 1
    assert all(op == winners[0] for op, _ in results)
    assert await store.get(SUB_A, "raced") == winners[0]


# --- get ---------------------------------------------------------------------------------


async def test_get_missing_returns_none(store: Store) -> None:
    assert await store.get(SUB_A, "nope") is None
    await store.create(make_op("present"))
    assert await store.get(SUB_A, "nope") is None
    assert await store.get(SUB_B, "present") is None


async def read_statuses(store: Store, keys: list[tuple[str, str]]) -> dict[Any, Any]:
    """The statuses of ``keys`` read together, through whichever of the two reads it has."""
    if isinstance(store, ImmediateReads):
        return store.statuses_now(keys)
    assert isinstance(store, BatchReads)
    return await store.statuses(keys)


async def test_statuses_read_together_show_what_get_returns(store: Store) -> None:
    """Every store reads many statuses in one go, for the server's status reads that arrive
    together: synchronously where its reads never wait (ImmediateReads), else in one round
    trip (BatchReads). Each as a status read shows it, the same values as the whole
    operation, JSON columns decoded alike; missing keys and other subscriptions' operations
    left out."""
    if not isinstance(store, ImmediateReads):
        # One whose reads wait must not offer it: the service would block the loop on it.
        assert not hasattr(store, "statuses_now")
    ops = [
        make_op(
            "failed",
            status=FAILED,
            end_time=T0,
            percent_complete=40,
            error={"code": "Boom", "message": "m", "details": [{"code": "Inner", "message": "i"}]},
            lease_expires_at=None,
            expires_at=T0,
        ),
        make_op("running", properties={"k": [1, 2]}, percent_complete=40, lease_expires_at=T0),
        make_op("other", subscription_id=SUB_B),
    ]
    for op in ops:
        await store.create(op)
    keys = [(SUB_A, "failed"), (SUB_A, "nope"), (SUB_A, "running"), (SUB_A, "other")]
    found = await read_statuses(store, keys)
    assert set(found) == {(SUB_A, "failed"), (SUB_A, "running")}
    for op in ops[:2]:
        stored = await store.get(op.subscription_id, op.key)
        assert stored is not None
        assert found[(op.subscription_id, op.key)] == OperationStatus.of(stored)
    assert await read_statuses(store, []) == {}


# --- update ------------------------------------------------------------------------------


async def test_update_applies_change_and_returns_stored_result(store: Store) -> None:
    op = make_op(percent_complete=10.0)
    await store.create(op)
    seen: list[Operation] = []

    def change(current: Operation) -> Operation:
        seen.append(current)
        return current.evolve(percent_complete=55.5, etag="etag-2", updated_at=T1)

    result = await store.update(SUB_A, op.key, change)
    assert seen == [op]  # called once, with the current operation
    assert result == op.evolve(percent_complete=55.5, etag="etag-2", updated_at=T1)
    assert await store.get(SUB_A, op.key) == result


async def test_update_with_none_change_returns_current_without_writing(store: Store) -> None:
    op = make_op(percent_complete=10.0)
    await store.create(op)

    result = await store.update(SUB_A, op.key, lambda current: None)
    assert result == op
    stored = await store.get(SUB_A, op.key)
    assert stored == op
    assert stored is not None and stored.etag == op.etag and stored.updated_at == T0


async def test_update_missing_raises_operation_not_found(store: Store) -> None:
    with pytest.raises(OperationNotFound):
        await store.update(SUB_A, "missing", fail_if_called)
    await store.create(make_op("elsewhere", SUB_B))
    with pytest.raises(OperationNotFound):
        await store.update(SUB_A, "elsewhere", fail_if_called)
    assert await store.get(SUB_A, "elsewhere") is None


async def test_domain_error_inside_change_aborts_without_writing(store: Store) -> None:
    op = make_op(percent_complete=40.0)
    await store.create(op)
    raised = ProgressRegression("no going back", target="percentComplete")

    def change(current: Operation) -> Operation:
        current.evolve(percent_complete=5.0)  # a change was being built ...
        raise raised  # ... then refused

    with pytest.raises(ProgressRegression) as info:
        await store.update(SUB_A, op.key, change)
    assert info.value is raised  # reaches the caller unchanged
    assert await store.get(SUB_A, op.key) == op

    # The aborted change left the store usable (e.g. no transaction left open).
    result = await store.update(SUB_A, op.key, lambda cur: cur.evolve(percent_complete=60.0))
    assert result.percent_complete == 60.0
    assert await store.get(SUB_A, op.key) == result


async def test_concurrent_updates_lose_nothing(store: Store) -> None:
    op = make_op(properties={"count": 0})
    await store.create(op)

    def increment(current: Operation) -> Operation:
        assert current.properties is not None
        return current.evolve(properties={"count": current.properties["count"] + 1})

    await asyncio.gather(*(store.update(SUB_A, op.key, increment) for _ in range(50)))
    stored = await store.get(SUB_A, op.key)
    assert stored is not None and stored.properties == {"count": 50}


# --- delete ------------------------------------------------------------------------------


async def test_delete_when_check_passes(store: Store) -> None:
    op = make_op()
    await store.create(op)
    checked: list[Operation] = []

    assert await store.delete(SUB_A, operation_key("OP-1"), checked.append) is True
    assert checked == [op]
    assert await store.get(SUB_A, op.key) is None
    # The key is free again.
    assert (await store.create(make_op()))[1] is True


async def test_delete_when_check_raises_keeps_the_operation(store: Store) -> None:
    op = make_op()
    await store.create(op)
    raised = PreconditionFailed("etag mismatch", target="If-Match")

    def check(current: Operation) -> None:
        raise raised

    with pytest.raises(PreconditionFailed) as info:
        await store.delete(SUB_A, op.key, check)
    assert info.value is raised
    assert await store.get(SUB_A, op.key) == op
    # Still usable afterwards.
    assert await store.delete(SUB_A, op.key, lambda cur: None) is True


async def test_delete_missing_returns_false_without_check(store: Store) -> None:
    assert await store.delete(SUB_A, "missing", fail_if_called) is False
    await store.create(make_op("only-in-b", SUB_B))
    assert await store.delete(SUB_A, "only-in-b", fail_if_called) is False
    assert await store.get(SUB_B, "only-in-b") is not None


# --- round trip --------------------------------------------------------------------------

FULL_ERROR = {
    "code": "ResourceQuotaExceeded",
    "message": 'Le quota est dépassé: 東京 🚀 "quoted" \n line two',
    "target": "properties.sku",
    "details": [
        {
            "code": "Inner",
            "message": "inner",
            "details": [{"code": "Innermost", "message": ""}],
            "additionalInfo": [{"type": "Deep", "info": {"k": [1, 2.5, None]}}],
        }
    ],
    "additionalInfo": [
        {"type": "PolicyViolation", "info": {"policy": "p1", "nested": {"a": [True, False]}}},
        {"type": "Empty", "info": {}},
    ],
}
FULL_PROPERTIES = {
    "name": "Zürich – 東京 – 🚀",
    "count": 3,
    "big": 2**53 + 1,
    "negative": -7,
    "ratio": 0.1,
    "whole_float": 1.0,
    "flag": True,
    "nothing": None,
    "empty_list": [],
    "empty_object": {},
    "nested": {"list": [1, "two", None, {"three": 3.25}], "sql": "x' OR '1'='1"},
}


async def test_round_trip_of_every_field(store: Store) -> None:
    op = Operation(
        subscription_id=SUB_A,
        operation_id="Round-Trip_1",
        namespace="Microsoft.Cache",
        location="westus2",
        status=FAILED,
        start_time="2017-01-01T13:13:13.933Z",
        end_time="2017-01-01T14:00:00.001Z",
        percent_complete=33.333333333333336,
        properties=FULL_PROPERTIES,
        error=FULL_ERROR,
        etag="0123456789abcdef",
        created_at="2017-01-01T13:13:14.000Z",
        updated_at="2017-01-01T14:00:00.002Z",
        create_digest="d" * 32,
    )
    await store.create(op)
    got = await store.get(SUB_A, "round-trip_1")
    assert got == op
    assert got is not None
    assert isinstance(got.percent_complete, float)
    assert got.properties is not None
    assert isinstance(got.properties["whole_float"], float)
    assert isinstance(got.properties["count"], int)
    assert got.properties["big"] == 2**53 + 1


@pytest.mark.parametrize("percent", [0.0, 50.0, 100.0, 0.1, 99.99])
async def test_round_trip_of_percent_stays_float(store: Store, percent: float) -> None:
    op = make_op("pct", percent_complete=percent)
    await store.create(op)
    got = await store.get(SUB_A, "pct")
    assert got is not None
    assert got.percent_complete == percent
    assert type(got.percent_complete) is float  # 100.0, not 100, reaches the JSON


async def test_round_trip_of_none_fields_and_custom_status(store: Store) -> None:
    op = make_op("sparse", status="Provisioning", start_time=None)
    assert op.end_time is None and op.percent_complete is None
    assert op.properties is None and op.error is None
    await store.create(op)
    assert await store.get(SUB_A, "sparse") == op


async def test_round_trip_through_update(store: Store) -> None:
    op = make_op("via-update", percent_complete=12.5, properties={"a": 1})
    await store.create(op)
    changed = op.evolve(
        status=CANCELED,
        start_time="2024-05-01T09:59:59.999Z",
        end_time=T1,
        percent_complete=99.99,
        properties=FULL_PROPERTIES,
        error=FULL_ERROR,
        etag="feedfacecafebeef",
        updated_at=T1,
    )
    assert await store.update(SUB_A, op.key, lambda cur: changed) == changed
    assert await store.get(SUB_A, op.key) == changed

    # And back to empty values: None must replace stored values, not be ignored.
    cleared = changed.evolve(
        status=IN_PROGRESS, end_time=None, percent_complete=None, properties=None, error=None
    )
    assert await store.update(SUB_A, op.key, lambda cur: cleared) == cleared
    assert await store.get(SUB_A, op.key) == cleared


# --- persistence (persistent backends only) ----------------------------------------------


@pytest.mark.parametrize("make_store", PERSISTENT, indirect=True)
async def test_data_survives_close_and_reopen(make_store: Callable[[], Store]) -> None:
    op = make_op("durable", properties=FULL_PROPERTIES)
    deleted = make_op("deleted")
    async with opened(make_store) as first:
        await first.create(op)
        await first.create(deleted)
        updated = await first.update(
            SUB_A, op.key, lambda cur: cur.evolve(status=FAILED, error=FULL_ERROR, etag="e2")
        )
        assert await first.delete(SUB_A, deleted.key, lambda cur: None) is True

    async with opened(make_store) as second:
        assert await second.get(SUB_A, "durable") == updated
        assert await second.get(SUB_A, "deleted") is None
        _, created = await second.create(make_op("durable"))
        assert created is False


# --- concurrency through the service -----------------------------------------------------

TERMINALS = (SUCCEEDED, FAILED, CANCELED)


def terminal_update(i: int) -> OperationUpdate:
    """Task i's update: a terminal status, with content unique to the task."""
    status = TERMINALS[i % 3]
    error = {"code": f"Task{i}Failed", "message": f"task {i}"} if status == FAILED else None
    return OperationUpdate(status=status, properties={"task": i}, error=error)


async def race_terminal_updates(services: list[OperationService]) -> Operation:
    """50 tasks race different terminal updates; returns the winner's result."""
    op = make_op("contested", percent_complete=10.0, properties={"task": None})
    created, _ = await services[0].store.create(op)
    target = ref(created)

    results = await asyncio.gather(
        *(services[i % len(services)].update(target, terminal_update(i)) for i in range(50)),
        return_exceptions=True,
    )

    winners = [r for r in results if isinstance(r, Operation)]
    losers = [r for r in results if not isinstance(r, Operation)]
    assert len(winners) == 1, results
    assert len(losers) == 49
    assert all(isinstance(r, TerminalStatusFinal) for r in losers), losers

    winner = winners[0]
    i = winner.properties["task"]  # type: ignore[index]
    assert results[i] is winner
    assert winner.status == TERMINALS[i % 3]
    assert winner.etag != created.etag
    for service in services:
        assert await service.store.get(SUB_A, op.key) == winner
    return winner


def assert_consistent_terminal(op: Operation) -> None:
    i = op.properties["task"]  # type: ignore[index]
    assert op.end_time is not None
    if op.status == SUCCEEDED:
        assert op.percent_complete == 100.0
        assert op.error is None
    else:
        assert op.percent_complete == 10.0
        if op.status == FAILED:
            assert op.error == {"code": f"Task{i}Failed", "message": f"task {i}"}
        else:
            assert op.error == default_error(CANCELED)


async def test_racing_terminal_updates_exactly_one_wins(store: Store) -> None:
    winner = await race_terminal_updates([OperationService(store)])
    assert_consistent_terminal(winner)


@pytest.mark.parametrize("make_store", PERSISTENT, indirect=True)
async def test_two_store_instances_race_terminal_updates(
    make_store: Callable[[], Store],
) -> None:
    """Two instances on the same data, as two server processes: still exactly one winner."""
    async with opened(make_store) as one, opened(make_store) as two:
        winner = await race_terminal_updates([OperationService(one), OperationService(two)])
        assert_consistent_terminal(winner)


@pytest.mark.parametrize("make_store", PERSISTENT, indirect=True)
async def test_two_store_instances_race_creates(make_store: Callable[[], Store]) -> None:
    async with opened(make_store) as one, opened(make_store) as two:
        stores = (one, two)
        results = await asyncio.gather(
            *(stores[i % 2].create(make_op("raced", properties={"n": i})) for i in range(20))
        )
        winners = [op for op, created in results if created]
        assert len(winners) == 1
        assert all(op == winners[0] for op, _ in results)


# --- find and counts: every backend agrees with the domain's definition ----------------------

STATUSES = (IN_PROGRESS, "Provisioning", SUCCEEDED, FAILED, CANCELED)
TIMES = [f"2024-05-0{day}T1{hour}:00:00.000Z" for day in range(1, 4) for hour in range(4)]


def varied_operations(count: int = 90, seed: int = 7) -> list[Operation]:
    """Operations covering every field a query looks at, with ties in ``created_at``."""
    rng = random.Random(seed)
    ops = []
    for i in range(count):
        status = rng.choice(STATUSES)
        terminal = status in (SUCCEEDED, FAILED, CANCELED)
        ops.append(
            make_op(
                f"Op-{i:03d}",
                rng.choice((SUB_A, SUB_A, SUB_B)),
                status,
                namespace=rng.choice((NAMESPACE, "Contoso.Widgets")),
                location=rng.choice((LOCATION, "eastus")),
                created_at=rng.choice(TIMES),  # few distinct values: ties on purpose
                start_time=rng.choice((*TIMES, None)),
                end_time=rng.choice(TIMES) if terminal else None,
                kind=rng.choice((None, "resize", "backup")),
                expires_at=rng.choice((None, *TIMES)) if terminal else None,
                lease_expires_at=None if terminal else rng.choice((None, *TIMES)),
                # Not drawn from rng, so that the other fields stay as they were.
                cancel_requested_at=TIMES[i % len(TIMES)] if i % 4 == 1 else None,
            )
        )
    return ops


QUERIES = {
    "everything": OperationQuery(limit=1000),
    "first-page": OperationQuery(limit=10),
    "subscription": OperationQuery(subscription_id=SUB_A, limit=1000),
    "namespace-any-case": OperationQuery(namespace="microsoft.CACHE", limit=1000),
    "location": OperationQuery(subscription_id=SUB_A, location="eastus", limit=1000),
    "statuses": OperationQuery(
        filter=OperationFilter(statuses=frozenset({"failed", "PROVISIONING"})), limit=1000
    ),
    "kinds": OperationQuery(filter=OperationFilter(kinds=frozenset({"resize"})), limit=1000),
    "started": OperationQuery(
        filter=OperationFilter(started_after=TIMES[2], started_before=TIMES[7]), limit=1000
    ),
    "ended": OperationQuery(
        filter=OperationFilter(ended_after=TIMES[4], ended_before=TIMES[10]), limit=1000
    ),
    "cancel-requested": OperationQuery(filter=OperationFilter(cancel_requested=True), limit=1000),
    "no-cancel-request": OperationQuery(filter=OperationFilter(cancel_requested=False), limit=1000),
    # What a cancel watcher asks: its kinds' running operations that someone asked to cancel.
    "cancel-watcher": OperationQuery(
        subscription_id=SUB_A,
        filter=OperationFilter(
            statuses=frozenset({IN_PROGRESS, "Provisioning"}),
            kinds=frozenset({"resize", "backup"}),
            cancel_requested=True,
        ),
        limit=1000,
    ),
    "terminal": OperationQuery(terminal=True, limit=1000),
    "running": OperationQuery(terminal=False, limit=1000),
    "live": OperationQuery(live_at=TIMES[5], limit=1000),
    "after": OperationQuery(
        subscription_id=SUB_A, after=Position(TIMES[6], SUB_A, "op-050"), limit=1000
    ),
    "after-across-subscriptions": OperationQuery(
        after=Position(TIMES[6], SUB_A, "op-050"), limit=1000
    ),
    "by-start": OperationQuery(subscription_id=SUB_A, order=Order("start_time"), limit=1000),
    "by-start-ascending-first-page": OperationQuery(
        order=Order("start_time", descending=False), limit=10
    ),
    "by-end-ascending-after": OperationQuery(
        subscription_id=SUB_A,
        order=Order("end_time", descending=False),
        after=Position(TIMES[5], SUB_A, "op-040"),
        limit=1000,
    ),
    "by-end-after-across-subscriptions": OperationQuery(
        order=Order("end_time"), after=Position(TIMES[6], SUB_A, "op-050"), limit=1000
    ),
    "id-prefix": OperationQuery(filter=OperationFilter(id_prefix="op-05"), limit=1000),
    "failed-by-end": OperationQuery(
        subscription_id=SUB_A,
        filter=OperationFilter(statuses=frozenset({"FAILED"})),
        order=Order("end_time"),
        limit=5,
    ),
    "everything-at-once": OperationQuery(
        subscription_id=SUB_A,
        namespace=NAMESPACE,
        filter=OperationFilter(statuses=frozenset({SUCCEEDED, FAILED, IN_PROGRESS})),
        live_at=TIMES[3],
        after=Position(TIMES[9], SUB_A, "op-070"),
        limit=5,
    ),
}
SWEEPS = {
    "expired": OperationQuery(expired_at=TIMES[6], ordered=False, limit=1000),
    "expired-batch": OperationQuery(expired_at=TIMES[11], ordered=False, limit=3),
    "lapsed": OperationQuery(lapsed_at=TIMES[6], ordered=False, limit=1000),
    "lapsed-in-scope": OperationQuery(
        subscription_id=SUB_B, lapsed_at=TIMES[11], ordered=False, limit=1000
    ),
}


@pytest.mark.parametrize("name", list(QUERIES))
async def test_find_returns_exactly_what_the_query_selects(store: Store, name: str) -> None:
    ops = varied_operations()
    for op in ops:
        await store.create(op)
    query = QUERIES[name]
    expected = query.select(ops)
    assert expected or name == "everything-at-once", "the data should exercise the query"
    assert await store.find(query) == expected


@pytest.mark.parametrize("name", list(SWEEPS))
async def test_unordered_find_returns_matching_operations(store: Store, name: str) -> None:
    ops = varied_operations()
    for op in ops:
        await store.create(op)
    query = SWEEPS[name]
    matching = {op.key: op for op in ops if query.matches(op)}
    assert matching
    found = await store.find(query)
    assert len(found) == min(query.limit, len(matching))
    assert all(matching[op.key] == op for op in found)


async def test_keyset_pages_return_every_operation_once_newest_first(store: Store) -> None:
    ops = varied_operations(120, seed=11)
    for op in ops:
        await store.create(op)
    query = OperationQuery(subscription_id=SUB_A, limit=7)
    seen: list[Operation] = []
    while True:
        page = await store.find(query)
        seen.extend(page)
        if len(page) < query.limit:
            break
        query = dataclasses.replace(query, after=position(page[-1]))
    in_a = [op for op in ops if op.subscription_id == SUB_A]
    assert len(seen) == len(in_a) == len({op.key for op in seen})
    assert seen == sorted(in_a, key=position, reverse=True)


@pytest.mark.parametrize(
    "order",
    [NEWEST_FIRST, *(Order(f, d) for f in ("start_time", "end_time") for d in (True, False))],
)
async def test_keyset_pages_in_every_order(store: Store, order: Order) -> None:
    ops = varied_operations(120, seed=11)
    for op in ops:
        await store.create(op)
    query = OperationQuery(subscription_id=SUB_A, order=order, limit=7)
    seen: list[Operation] = []
    while True:
        page = await store.find(query)
        seen.extend(page)
        if len(page) < query.limit:
            break
        query = dataclasses.replace(query, after=position(page[-1], order))
    listed = [op for op in ops if op.subscription_id == SUB_A and order.value(op) is not None]
    assert len(seen) == len(listed) == len({op.key for op in seen})
    assert seen == sorted(listed, key=lambda op: position(op, order), reverse=order.descending)


@pytest.mark.parametrize(
    "name",
    [
        "everything",
        "subscription",
        "statuses",
        "live",
        "after",
        "cancel-requested",
        "id-prefix",
    ],
)
async def test_counts_per_status(store: Store, name: str) -> None:
    ops = varied_operations()
    for op in ops:
        await store.create(op)
    query = QUERIES[name]
    unbounded = dataclasses.replace(query, after=None)
    expected = Counter(op.status for op in ops if unbounded.matches(op))
    assert await store.counts(query) == dict(expected)
    assert await store.counts(OperationQuery(subscription_id="no-such")) == {}


# --- remove and tombstones ------------------------------------------------------------------


def tombstone_of(op: Operation, forget_at: str = T1, reason: str = "Expired") -> Tombstone:
    return Tombstone(
        subscription_id=op.subscription_id,
        operation_id=op.operation_id,
        namespace=op.namespace,
        location=op.location,
        status=op.status,
        end_time=op.end_time,
        expired_at=T0,
        reason=reason,  # type: ignore[arg-type]
        forget_at=forget_at,
    )


async def test_remove_replaces_decided_operations_with_tombstones(store: Store) -> None:
    keep = make_op("keep", status=SUCCEEDED, end_time=T0)
    drop = make_op("Drop-Me", status=FAILED, end_time=T0, error={"code": "X", "message": "x"})
    other = make_op("drop-me", SUB_B, status=SUCCEEDED)
    for op in (keep, drop, other):
        await store.create(op)
    seen: list[Operation] = []

    def decide(current: Operation) -> Tombstone | None:
        seen.append(current)
        return tombstone_of(current) if current.key == "drop-me" else None

    keys = [(SUB_A, "keep"), (SUB_A, "drop-me"), (SUB_A, "missing"), (SUB_A, "drop-me")]
    removed = await store.remove(keys, decide)
    assert removed == [tombstone_of(drop)]
    assert sorted(op.key for op in seen) == ["drop-me", "keep"]  # once each, none for missing
    assert await store.get(SUB_A, "drop-me") is None
    assert await store.get(SUB_A, "keep") == keep
    assert await store.get(SUB_B, "drop-me") == other
    assert await store.get_tombstone(SUB_A, "drop-me") == tombstone_of(drop)
    assert await store.get_tombstone(SUB_B, "drop-me") is None
    assert await store.get_tombstone(SUB_A, "keep") is None
    assert await store.find(OperationQuery(subscription_id=SUB_A)) == [keep]


async def test_remove_is_all_or_nothing_when_decide_raises(store: Store) -> None:
    first, second = make_op("first"), make_op("second")
    await store.create(first)
    await store.create(second)
    raised = PreconditionFailed("changed", target="If-Match")

    def decide(current: Operation) -> Tombstone | None:
        if current.key == "second":
            raise raised
        return tombstone_of(current)

    with pytest.raises(PreconditionFailed) as info:
        await store.remove([(SUB_A, "first"), (SUB_A, "second")], decide)
    assert info.value is raised
    assert await store.get(SUB_A, "first") == first
    assert await store.get_tombstone(SUB_A, "first") is None
    assert await store.remove([(SUB_A, "first")], tombstone_of) == [tombstone_of(first)]


async def test_racing_removes_remove_each_operation_once(store: Store) -> None:
    """Batches over the same operations in opposite orders: no deadlock, no double removal."""
    ops = [make_op(f"raced-{i:02d}", status=SUCCEEDED) for i in range(20)]
    for op in ops:
        await store.create(op)
    keys = [(op.subscription_id, op.key) for op in ops]
    batches = [keys, keys[::-1], keys[5:15], keys[::2]] * 2
    results = await asyncio.gather(*(store.remove(batch, tombstone_of) for batch in batches))
    removed = [tombstone for result in results for tombstone in result]
    assert sorted(t.key for t in removed) == sorted(op.key for op in ops)
    for result, batch in zip(results, batches, strict=True):
        order = [key for _, key in batch]
        assert [t.key for t in result] == sorted((t.key for t in result), key=order.index)
    assert await store.find(OperationQuery()) == []


async def test_create_clears_the_tombstone_under_its_key(store: Store) -> None:
    old = make_op("reused", status=SUCCEEDED)
    await store.create(old)
    await store.remove([(SUB_A, "reused")], tombstone_of)
    assert await store.get_tombstone(SUB_A, "reused") is not None

    new = make_op("REUSED", create_digest="new")
    assert await store.create(new) == (new, True)
    assert await store.get_tombstone(SUB_A, "reused") is None
    # A replayed create leaves other keys' tombstones alone.
    gone = make_op("gone", status=SUCCEEDED)
    await store.create(gone)
    await store.remove([(SUB_A, "gone")], tombstone_of)
    await store.create(new)
    assert await store.get_tombstone(SUB_A, "gone") == tombstone_of(gone)


async def test_forget_tombstones_by_time_and_limit(store: Store) -> None:
    times = ["2024-05-01T00:00:00.000Z", "2024-05-02T00:00:00.000Z", "2024-05-03T00:00:00.000Z"]
    for i, forget_at in enumerate(times * 2):
        op = make_op(f"t{i}", status=SUCCEEDED)
        await store.create(op)
        await store.remove([(SUB_A, op.key)], functools.partial(tombstone_of, forget_at=forget_at))

    assert await store.forget_tombstones("2024-04-30T23:59:59.999Z", 10) == 0
    assert await store.forget_tombstones(times[1], 3) == 3  # four are due; the limit holds
    assert await store.forget_tombstones(times[1], 3) == 1
    left = [i for i in range(6) if await store.get_tombstone(SUB_A, f"t{i}") is not None]
    assert left == [2, 5]
    assert await store.forget_tombstones(times[2], 10) == 2


async def test_racing_forgets_forget_each_tombstone_once(store: Store) -> None:
    for i in range(12):
        op = make_op(f"f{i}", status=SUCCEEDED)
        await store.create(op)
        await store.remove([(SUB_A, op.key)], tombstone_of)
    counts = await asyncio.gather(*(store.forget_tombstones(T1, 5) for _ in range(4)))
    assert sum(counts) == 12 and max(counts) <= 5
    assert await store.forget_tombstones(T1, 5) == 0


async def test_round_trip_of_lifecycle_fields(store: Store) -> None:
    op = make_op(
        "lifecycle",
        kind="backup/full",
        cancelable=False,
        cancel_requested_at=T1,
        lease_seconds=90.5,
        lease_expires_at=T1,
        http_status_code=409,
    )
    await store.create(op)
    assert await store.get(SUB_A, op.key) == op
    ended = op.evolve(status=SUCCEEDED, lease_expires_at=None, expires_at=T1, cancelable=True)
    assert await store.update(SUB_A, op.key, lambda cur: ended) == ended
    assert await store.get(SUB_A, op.key) == ended


@pytest.mark.parametrize("make_store", PERSISTENT, indirect=True)
async def test_tombstones_survive_close_and_reopen(make_store: Callable[[], Store]) -> None:
    op = make_op("durable-tombstone", status=SUCCEEDED)
    async with opened(make_store) as first:
        await first.create(op)
        await first.remove([(SUB_A, op.key)], functools.partial(tombstone_of, reason="Purged"))
    async with opened(make_store) as second:
        assert await second.get_tombstone(SUB_A, op.key) == tombstone_of(op, reason="Purged")


async def test_concurrent_reads_each_get_their_own(store: Store) -> None:
    """Reads in flight together (which a store may gather into one query) stay apart."""
    for i in range(40):
        await store.create(make_op(f"op-{i}", status=SUCCEEDED if i % 2 else IN_PROGRESS))
    keys = [f"op-{i % 45}" for i in range(200)]  # repeats, and some that do not exist
    found = await asyncio.gather(*(store.get(SUB_A, key) for key in keys))
    for key, op in zip(keys, found, strict=True):
        if int(key.split("-")[1]) >= 40:
            assert op is None
        else:
            assert op is not None and op.key == key
            assert op.status == (SUCCEEDED if int(key.split("-")[1]) % 2 else IN_PROGRESS)

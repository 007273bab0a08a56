"""The lifecycle rules through the service, with a clock that moves only when told to.

Leases and ProducerLost, retention, expiry and tombstones, cancel requests, lists and purges:
what a reader is told at each moment, whether or not the background sweeps have run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from opstatus.errors import (
    InvalidInput,
    NotCancelable,
    OperationExpired,
    OperationNotFound,
    PreconditionFailed,
    TerminalStatusFinal,
)
from opstatus.lifecycle import (
    DAY,
    LifecyclePolicy,
    add_seconds,
    validate_kind,
    validate_lease_seconds,
)
from opstatus.models import (
    CANCELED,
    FAILED,
    IN_PROGRESS,
    SUCCEEDED,
    OperationDraft,
    OperationUpdate,
)
from opstatus.queries import OperationFilter, OperationQuery
from opstatus.service import OperationRef, OperationService
from opstatus.stores import MemoryStore, SQLiteStore
from opstatus.stores.base import Store
from tests.support import SUB_A, SUB_B, FakeClock

pytestmark = pytest.mark.anyio

NS = "Microsoft.Cache"
T0 = "2030-01-01T00:00:00.000Z"
POLICY = LifecyclePolicy(
    retain_succeeded=2 * DAY,
    retain_failed=10 * DAY,
    retain_canceled=3 * DAY,
    tombstone_seconds=5 * DAY,
    default_lease_seconds=600,
    lease_grace_seconds=60,
)


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "ops.db")
    await s.open()
    yield s
    await s.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def service(store: Store, clock: FakeClock) -> OperationService:
    return OperationService(store, clock, POLICY)


def ref(op_id: str = "op1", sub: str = SUB_A, location: str = "westus") -> OperationRef:
    return OperationRef(sub, NS, location, op_id)


def draft(op_id: str = "op1", sub: str = SUB_A, **fields: object) -> OperationDraft:
    return OperationDraft(sub, op_id, NS, "westus", **fields)  # type: ignore[arg-type]


async def create(service: OperationService, op_id: str = "op1", **fields: object) -> None:
    _, created = await service.create(draft(op_id, **fields))
    assert created


# --- policy -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["retain_succeeded", "retain_failed", "retain_canceled"])
def test_retention_below_24_hours_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be at least 24 hours"):
        LifecyclePolicy(**{name: DAY - 1})  # type: ignore[arg-type]
    LifecyclePolicy(**{name: DAY})  # type: ignore[arg-type]


def test_defaults_keep_a_week_or_a_month_and_lease_a_day() -> None:
    policy = LifecyclePolicy()
    assert policy.retention(SUCCEEDED) == 7 * DAY
    assert policy.retention(FAILED) == 30 * DAY
    assert policy.retention(CANCELED) == 7 * DAY
    assert policy.default_lease_seconds == DAY


def test_add_seconds_keeps_the_stored_form() -> None:
    assert add_seconds(T0, 1.5) == "2030-01-01T00:00:01.500Z"
    assert add_seconds(T0, -DAY) == "2029-12-31T00:00:00.000Z"
    assert add_seconds(T0, 1e12) == "9999-12-31T23:59:59.999Z"


@pytest.mark.parametrize("value", [-1, 0.5, 31 * DAY, "60", True, float("nan"), None])
def test_lease_seconds_bounds(value: object) -> None:
    with pytest.raises(InvalidInput):
        validate_lease_seconds(value)


@pytest.mark.parametrize("value", ["", "-x", "a b", "x" * 129, 7, None])
def test_kind_is_a_plain_label(value: object) -> None:
    with pytest.raises(InvalidInput):
        validate_kind(value)
    assert validate_kind("backup/full:v2.1_x-y") == "backup/full:v2.1_x-y"


# --- leases -----------------------------------------------------------------------------------


async def test_a_new_operation_gets_the_default_lease(service: OperationService) -> None:
    await create(service)
    op = await service.get(ref())
    assert op.lease_seconds == 600
    assert op.lease_expires_at == "2030-01-01T00:10:00.000Z"
    assert service.policy.lease_state(op, T0) == "Active"


async def test_lease_seconds_zero_means_no_lease_and_no_lapse(
    service: OperationService, clock: FakeClock
) -> None:
    await create(service, lease_seconds=0.0)
    clock.advance(days=365)
    op = await service.get(ref())
    assert op.status == IN_PROGRESS
    assert op.lease_seconds is None and op.lease_expires_at is None
    assert service.policy.lease_state(op, clock()) is None
    assert await service.fail_lapsed() == 0


async def test_every_update_renews_the_lease_and_a_heartbeat_keeps_the_etag(
    service: OperationService, clock: FakeClock
) -> None:
    await create(service, lease_seconds=30.0)
    before = await service.get(ref())
    clock.advance(20)
    beat = await service.update(ref(), OperationUpdate())  # a heartbeat: an empty update
    assert beat.lease_expires_at == "2030-01-01T00:00:50.000Z"
    assert beat.etag == before.etag and beat.updated_at == before.updated_at
    clock.advance(20)
    progressed = await service.update(ref(), OperationUpdate(percent_complete=10))
    assert progressed.lease_expires_at == "2030-01-01T00:01:10.000Z"
    assert progressed.etag != before.etag
    clock.advance(20)
    longer = await service.update(ref(), OperationUpdate(lease_seconds=3600))
    assert longer.lease_seconds == 3600
    assert longer.lease_expires_at == "2030-01-01T01:01:00.000Z"
    dropped = await service.update(ref(), OperationUpdate(lease_seconds=0))
    assert dropped.lease_seconds is None and dropped.lease_expires_at is None


async def test_lapsed_lease_shows_then_fails_with_producer_lost_after_grace(
    service: OperationService, clock: FakeClock
) -> None:
    await create(service, lease_seconds=30.0, percent_complete=40.0)
    clock.advance(30)  # the lease expires now
    op = await service.get(ref())
    assert op.status == IN_PROGRESS
    assert service.policy.lease_state(op, clock()) == "Lapsed"

    clock.advance(59.999)  # still within the grace period
    assert (await service.get(ref())).status == IN_PROGRESS
    (shown,) = service.statuses_now([ref()])  # the fast lane's read agrees
    assert shown is not None and shown.status == IN_PROGRESS

    clock.advance(0.001)  # grace over: the read itself tells the truth, and records it
    stored = await service.store.get(SUB_A, "op1")
    assert stored is not None and service.policy.due(stored, clock())
    assert service.statuses_now([ref()]) == [None]  # not a plain read: left to get(), to record
    lost = await service.get(ref())
    assert lost.status == FAILED
    assert lost.error is not None and lost.error["code"] == "ProducerLost"
    assert "2030-01-01T00:00:30.000Z" in lost.error["message"]
    assert lost.end_time == "2030-01-01T00:01:30.000Z"
    assert lost.percent_complete == 40.0
    assert lost.expires_at == add_seconds(lost.end_time, 10 * DAY)
    assert lost.lease_expires_at is None
    assert await service.store.get(SUB_A, "op1") == lost

    # The producer comes back too late: the outcome is final.
    with pytest.raises(TerminalStatusFinal):
        await service.update(ref(), OperationUpdate(status=SUCCEEDED))
    assert (await service.get(ref())) == lost


async def test_the_sweep_fails_lost_producers_without_any_read(
    service: OperationService, clock: FakeClock
) -> None:
    await create(service, "lost-1", lease_seconds=10.0)
    await create(service, "lost-2", lease_seconds=10.0)
    await create(service, "alive", lease_seconds=10.0)
    clock.advance(60)
    await service.update(ref("alive"), OperationUpdate())  # renews: not lost
    clock.advance(10.5)
    assert await service.fail_lapsed(limit=1) == 1  # small batches
    report = await service.maintain()
    assert report.lapsed == 1
    for op_id in ("lost-1", "lost-2"):
        stored = await service.store.get(SUB_A, op_id)
        assert stored is not None and stored.status == FAILED
        assert stored.end_time == "2030-01-01T00:01:10.000Z"  # lease end + grace, not "now"
    alive = await service.store.get(SUB_A, "alive")
    assert alive is not None and alive.status == IN_PROGRESS
    assert await service.fail_lapsed() == 0


async def test_an_update_after_grace_is_refused_even_before_the_sweep(
    service: OperationService, clock: FakeClock
) -> None:
    await create(service, lease_seconds=10.0)
    clock.advance(100)
    with pytest.raises(TerminalStatusFinal):
        await service.update(ref(), OperationUpdate(percent_complete=50))
    # An empty update (a late heartbeat) is answered with the truth, and records it.
    lost = await service.update(ref(), OperationUpdate())
    assert lost.status == FAILED and lost.error is not None
    assert lost.error["code"] == "ProducerLost"


# --- retention and tombstones -------------------------------------------------------------------


@pytest.mark.parametrize(("status", "days"), [(SUCCEEDED, 2), (FAILED, 10), (CANCELED, 3)])
async def test_terminal_operations_expire_per_status(
    service: OperationService, clock: FakeClock, status: str, days: int
) -> None:
    await create(service)
    clock.advance(minutes=5)
    ended = await service.update(ref(), OperationUpdate(status=status))
    assert ended.expires_at == add_seconds(clock(), days * DAY)
    assert ended.lease_expires_at is None
    # Created terminal: the same rule.
    await create(service, "born-terminal", status=status)
    born = await service.get(ref("born-terminal"))
    assert born.expires_at == add_seconds(clock(), days * DAY)


async def test_expiry_then_tombstone_then_nothing(
    service: OperationService, clock: FakeClock
) -> None:
    await create(service, status=SUCCEEDED)  # expires two days from now
    clock.advance(days=2, seconds=-0.001)
    assert (await service.get(ref())).status == SUCCEEDED

    clock.advance(0.001)  # retention over: expired, though the sweep has not run yet
    with pytest.raises(OperationExpired) as before_sweep:
        await service.get(ref())
    assert before_sweep.value.code == "OperationExpired"
    assert "expired at 2030-01-03T00:00:00.000Z" in before_sweep.value.message
    assert isinstance(before_sweep.value, OperationNotFound)  # still a 404 to Azure SDKs
    with pytest.raises(OperationExpired):
        await service.update(ref(), OperationUpdate(status=SUCCEEDED))

    clock.advance(hours=1)
    assert (await service.maintain()).expired == 1
    assert await service.store.get(SUB_A, "op1") is None
    with pytest.raises(OperationExpired) as after_sweep:
        await service.get(ref())
    assert after_sweep.value.message == before_sweep.value.message
    with pytest.raises(OperationExpired):
        await service.update(ref(), OperationUpdate(percent_complete=1))
    with pytest.raises(OperationExpired):
        await service.cancel(ref())
    # The tombstone answers only through the URL the operation had.
    with pytest.raises(OperationNotFound) as elsewhere:
        await service.get(ref(location="eastus"))
    assert elsewhere.value.code == "ResourceNotFound"
    with pytest.raises(OperationNotFound) as other_sub:
        await service.get(ref(sub=SUB_B))
    assert other_sub.value.code == "ResourceNotFound"

    clock.set(add_seconds("2030-01-03T01:00:00.000Z", 5 * DAY))  # the tombstone's period is over
    with pytest.raises(OperationNotFound) as forgotten:
        await service.get(ref())
    assert forgotten.value.code == "ResourceNotFound"
    assert (await service.maintain()).forgotten == 1
    assert await service.store.get_tombstone(SUB_A, "op1") is None


async def test_the_id_of_an_expired_operation_can_be_used_again(
    service: OperationService, clock: FakeClock
) -> None:
    await create(service, status=FAILED)
    clock.advance(days=11)
    again, created = await service.create(draft(percent_complete=5.0))
    assert created and again.status == IN_PROGRESS
    assert await service.store.get_tombstone(SUB_A, "op1") is None  # the new one replaced it
    assert (await service.get(ref())) == again


async def test_expired_sweep_works_in_small_batches(
    service: OperationService, clock: FakeClock
) -> None:
    for i in range(5):
        await create(service, f"done-{i}", status=SUCCEEDED)
    await create(service, "running")
    clock.advance(days=3)
    assert await service.purge_expired(limit=2) == 2
    assert await service.purge_expired(limit=2) == 2
    assert await service.purge_expired(limit=2) == 1
    assert await service.purge_expired(limit=2) == 0
    assert (await service.get(ref("running"))).status == FAILED  # its lease lapsed long ago


# --- cancel -----------------------------------------------------------------------------------


async def test_cancel_is_recorded_once_and_the_producer_decides(
    service: OperationService, clock: FakeClock
) -> None:
    await create(service)
    before = await service.get(ref())
    clock.advance(5)
    asked = await service.cancel(ref())
    assert asked.status == IN_PROGRESS
    assert asked.cancel_requested_at == "2030-01-01T00:00:05.000Z"
    assert asked.etag != before.etag
    clock.advance(5)
    assert await service.cancel(ref()) == asked  # asking again changes nothing
    with pytest.raises(PreconditionFailed):  # the producer's old ETag no longer matches
        await service.update(ref(), OperationUpdate(percent_complete=50), frozenset({before.etag}))

    canceled = await service.update(ref(), OperationUpdate(status=CANCELED))
    assert canceled.error == {"code": "OperationCanceled", "message": "The operation was canceled."}
    assert await service.cancel(ref()) == canceled  # already canceled: fine


async def test_a_producer_may_finish_anyway(service: OperationService) -> None:
    await create(service)
    await service.cancel(ref())
    done = await service.update(ref(), OperationUpdate(status=SUCCEEDED))
    assert done.status == SUCCEEDED
    with pytest.raises(TerminalStatusFinal):
        await service.cancel(ref())


async def test_not_cancelable(service: OperationService) -> None:
    await create(service, cancelable=False)
    with pytest.raises(NotCancelable) as info:
        await service.cancel(ref())
    assert info.value.code == "OperationNotCancelable"
    assert (await service.get(ref())).cancel_requested_at is None


async def test_cancel_of_missing_or_lost_operations(
    service: OperationService, clock: FakeClock
) -> None:
    with pytest.raises(OperationNotFound):
        await service.cancel(ref("nope"))
    await create(service, lease_seconds=10.0)
    clock.advance(120)
    with pytest.raises(TerminalStatusFinal):
        await service.cancel(ref())


# --- lists and purge --------------------------------------------------------------------------


async def test_list_pages_newest_first_and_hides_expired(
    service: OperationService, clock: FakeClock
) -> None:
    for i in range(7):
        await create(service, f"op-{i}", status=SUCCEEDED if i == 0 else IN_PROGRESS)
        clock.advance(1)
    await service.create(draft("other-sub", SUB_B))
    scope = OperationQuery(subscription_id=SUB_A, namespace=NS, limit=3)
    first = await service.list(scope)
    assert [op.operation_id for op in first.operations] == ["op-6", "op-5", "op-4"]
    assert first.next is not None
    second = await service.list(OperationQuery(subscription_id=SUB_A, after=first.next, limit=3))
    third = await service.list(OperationQuery(subscription_id=SUB_A, after=second.next, limit=3))
    assert [op.operation_id for op in second.operations] == ["op-3", "op-2", "op-1"]
    assert [op.operation_id for op in third.operations] == ["op-0"]
    assert third.next is None

    clock.advance(days=2)  # op-0's retention is over; the others' producers are lost
    everything = await service.list(OperationQuery(subscription_id=SUB_A, limit=100))
    assert [op.operation_id for op in everything.operations] == [f"op-{i}" for i in range(6, 0, -1)]
    assert {op.status for op in everything.operations} == {FAILED}
    assert await service.counts(OperationQuery(subscription_id=SUB_A)) == {FAILED: 6}


async def test_list_filters_see_lost_producers_as_failed(
    service: OperationService, clock: FakeClock
) -> None:
    await create(service, "lost", lease_seconds=10.0, kind="resize")
    await create(service, "fine", lease_seconds=0.0, kind="resize")
    clock.advance(minutes=5)
    running = OperationQuery(
        subscription_id=SUB_A, filter=OperationFilter(statuses=frozenset({IN_PROGRESS}))
    )
    assert [op.operation_id for op in (await service.list(running)).operations] == ["fine"]
    assert await service.counts(OperationQuery(subscription_id=SUB_A)) == {
        IN_PROGRESS: 1,
        FAILED: 1,
    }


async def test_purge_removes_matching_terminal_operations_only(
    service: OperationService, clock: FakeClock
) -> None:
    for i in range(5):
        await create(service, f"failed-{i}", status=FAILED, kind="backup")
    await create(service, "succeeded", status=SUCCEEDED, kind="backup")
    await create(service, "running", kind="backup")
    await service.create(draft("failed-b", SUB_B, status=FAILED))
    query = OperationQuery(
        subscription_id=SUB_A,
        filter=OperationFilter(
            statuses=frozenset({FAILED, IN_PROGRESS}), kinds=frozenset({"backup"})
        ),
    )
    assert await service.purge(query, batch=2) == 5
    with pytest.raises(OperationExpired, match="was purged at 2030-01-01T00:00:00.000Z"):
        await service.get(ref("failed-3"))
    assert (await service.get(ref("succeeded"))).status == SUCCEEDED
    assert (await service.get(ref("running"))).status == IN_PROGRESS
    assert (await service.get(ref("failed-b", SUB_B))).status == FAILED
    assert await service.purge(query) == 0

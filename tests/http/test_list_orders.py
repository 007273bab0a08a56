"""The lists' orders (``orderby``), ``idPrefix`` and ``stalled``, on every store: keyset
pages that stay exact across pages, with ties in the sort key, and refusals of bad input."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opstatus.stores import MemoryStore, PostgreSQLStore, SQLiteStore
from opstatus.stores.base import Store
from tests.support import SUB_A, SUB_B, FakeClock, app_client, bearer, status_path

from .conftest import assert_arm_error, collection_path

pytestmark = pytest.mark.anyio

SUBSCRIPTION_LIST = f"/subscriptions/{SUB_A}/operationsStatus?api-version=2025-07-01"
PROVIDER_LIST = (
    f"/subscriptions/{SUB_A}/providers/Microsoft.Cache/operationsStatus?api-version=2025-07-01"
)
#: Few distinct times: many operations share each, so pages split ties.
TIMES = [f"2029-12-0{day}T10:00:00.000Z" for day in range(1, 5)]
LISTS = {
    "location": collection_path(),
    "provider": PROVIDER_LIST,
    "subscription": SUBSCRIPTION_LIST,
}


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryStore()
    if request.param == "sqlite":
        return SQLiteStore(tmp_path / "ops.db")
    return PostgreSQLStore(request.getfixturevalue("pg_url"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(home: Path, store: Store, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(home, store=store, clock=clock, max_page_size=50) as c:
        c.headers.update(bearer(home))
        yield c


async def put(c: httpx.AsyncClient, op_id: str, sub: str = SUB_A, **body: Any) -> None:
    response = await c.put(status_path(sub=sub, op_id=op_id), json=body)
    assert response.status_code == 201, response.text


async def seed_times(c: httpx.AsyncClient, clock: FakeClock) -> list[dict[str, Any]]:
    """40 operations, start and end times drawn from TIMES (ties on purpose); every third
    one still running (no end time). Returns what each was created with."""
    rng = random.Random(5)
    made = []
    for i in range(40):
        body: dict[str, Any] = {"startTime": rng.choice(TIMES[:2])}
        if i % 3:
            body.update(status=rng.choice(["Succeeded", "Failed"]), endTime=rng.choice(TIMES[2:]))
        await put(c, f"Op-{i:02d}", **body)
        made.append({"name": f"Op-{i:02d}", **body})
        clock.advance(1)
    await put(c, "elsewhere", sub=SUB_B, startTime=TIMES[0])
    return made


async def pages(c: httpx.AsyncClient, url: str) -> list[list[str]]:
    found: list[list[str]] = []
    link: str | None = url
    while link:
        response = await c.get(link)
        assert response.status_code == 200, response.text
        body = response.json()
        found.append([item["name"] for item in body["value"]])
        link = body.get("nextLink")
    return found


@pytest.mark.parametrize("where", list(LISTS))
@pytest.mark.parametrize(
    ("orderby", "field", "descending"),
    [
        ("startTime desc", "startTime", True),
        ("startTime asc", "startTime", False),
        ("endTime desc", "endTime", True),
        ("endTime asc", "endTime", False),
    ],
)
async def test_orders_page_every_operation_once_in_order(
    client: httpx.AsyncClient,
    clock: FakeClock,
    where: str,
    orderby: str,
    field: str,
    descending: bool,
) -> None:
    made = await seed_times(client, clock)
    url = f"{LISTS[where]}&orderby={orderby}&maxpagesize=4"
    found = await pages(client, url)
    assert all(len(page) == 4 for page in found[:-1])
    listed = [name for page in found for name in page]
    having = [op for op in made if field in op]
    # Ties broken by the key (the lower-cased id), the same way as the time.
    expected = sorted(having, key=lambda op: (op[field], op["name"].lower()), reverse=descending)
    assert listed == [op["name"] for op in expected]
    if field == "endTime":
        assert len(listed) < len(made)  # running operations are left out


async def test_the_order_is_carried_by_the_next_link_and_must_not_change(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await seed_times(client, clock)
    first = (await client.get(f"{collection_path()}&orderby=endTime asc&maxpagesize=3")).json()
    link = first["nextLink"]
    assert (await client.get(link)).status_code == 200
    same = await client.get(f"{link}&orderby=endTime asc")
    assert same.status_code == 200
    other = await client.get(f"{link}&orderby=startTime asc")
    assert_arm_error(other, 400, "InvalidContinuationToken", target="$skipToken")
    stalled = await client.get(f"{link}&stalled=true")
    assert_arm_error(stalled, 400, "InvalidContinuationToken", target="$skipToken")


@pytest.mark.parametrize(
    "value", ["startTime", "starttime desc", "createdTime desc", "endTime  desc", "", "x" * 300]
)
async def test_a_bad_order_is_a_400(client: httpx.AsyncClient, value: str) -> None:
    response = await client.get(f"{collection_path()}&orderby={value}")
    assert_arm_error(response, 400, "InvalidRequestContent", target="orderby")


async def test_id_prefix_matches_ids_case_insensitively(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    for op_id in ("Build-1", "build-2", "BUILDER", "deploy-1", "rebuild"):
        await put(client, op_id)
        clock.advance(1)
    await put(client, "build-elsewhere", sub=SUB_B)
    for where in LISTS.values():
        found = await pages(client, f"{where}&idPrefix=bUiLd&maxpagesize=2")
        assert [name for page in found for name in page] == ["BUILDER", "build-2", "Build-1"]
        assert await pages(client, f"{where}&idPrefix=build-") == [["build-2", "Build-1"]]
        assert await pages(client, f"{where}&idPrefix=nothing") == [[]]
    for bad in ("-build", "a b", "é", "x" * 257, ""):
        response = await client.get(f"{collection_path()}&idPrefix={bad}")
        assert_arm_error(response, 400, "InvalidRequestContent", target="idPrefix")


async def test_stalled_lists_running_operations_whose_lease_lapsed_within_grace(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await put(client, "quiet", status="InProgress", leaseSeconds=60)
    await put(client, "lost", status="InProgress", leaseSeconds=10)
    await put(client, "renewing", status="InProgress", leaseSeconds=60)
    await put(client, "no-lease", status="InProgress", leaseSeconds=0)
    await put(client, "done", status="Succeeded")
    clock.advance(seconds=30)
    assert await pages(client, f"{collection_path()}&stalled=true") == [["lost"]]
    clock.advance(seconds=285)
    patched = await client.patch(status_path(op_id="renewing"), json={"percentComplete": 5})
    assert patched.status_code == 200
    # 320 s in: quiet's lease (60 s) is over, within the grace period (300 s); lost's (10 s)
    # is past it, so lost is failed before the list answers.
    clock.advance(seconds=5)
    for where in LISTS.values():
        assert await pages(client, f"{where}&stalled=true") == [["quiet"]]
        assert await pages(client, f"{where}&stalled=false&status=Failed") == [["lost"]]
    lost = (await client.get(status_path(op_id="lost"))).json()
    assert lost["status"] == "Failed" and "ProducerLost" in str(lost["error"])
    bad = await client.get(f"{collection_path()}&stalled=yes")
    assert_arm_error(bad, 400, "InvalidRequestContent", target="stalled")

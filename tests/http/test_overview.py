"""The dashboard's overview over HTTP: a subscription's counts, every readable
subscription's, and who the caller is; scoping, refusals, and the counts of a provider read
from the tallies agreeing with the counted ones. On SQLite and the in-memory store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opstatus.stores import MemoryStore, SQLiteStore
from opstatus.stores.base import Store
from tests.support import SUB_A, SUB_B, FakeClock, app_client, bearer, status_path

from .conftest import assert_arm_error

pytestmark = pytest.mark.anyio

API = "api-version=2025-07-01"
SUB_C = "5d7f2a90-1c3b-4e6d-8f0a-9b8c7d6e5f4a"


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "ops.db")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(home: Path, store: Store, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(home, store=store, clock=clock) as c:
        c.headers.update(bearer(home))
        yield c


async def put(c: httpx.AsyncClient, op_id: str, sub: str = SUB_A, **body: Any) -> None:
    location = body.pop("location", "westus")
    namespace = body.pop("namespace", "Microsoft.Cache")
    path = status_path(sub=sub, op_id=op_id, location=location)
    path = path.replace("Microsoft.Cache", namespace)
    response = await c.put(path, json=body)
    assert response.status_code == 201, response.text


async def seed(c: httpx.AsyncClient) -> None:
    await put(c, "a1", status="InProgress")
    await put(c, "a2", status="Succeeded")
    await put(c, "a3", status="Failed", location="eastus")
    await put(c, "a4", status="InProgress", namespace="microsoft.cache", location="eastus")
    await put(c, "b1", sub=SUB_B, status="Failed")


async def test_a_subscriptions_counts_by_provider_and_location(client: httpx.AsyncClient) -> None:
    await seed(client)
    response = await client.get(f"/subscriptions/{SUB_A}/operationsStatusCounts?{API}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "counts": {"Failed": 1, "InProgress": 2, "Succeeded": 1},
        "total": 4,
        "groups": [  # the namespace's spellings are one group, as the provider spells it
            {
                "namespace": "Microsoft.Cache",
                "location": "eastus",
                "counts": {"Failed": 1, "InProgress": 1},
                "total": 2,
            },
            {
                "namespace": "Microsoft.Cache",
                "location": "westus",
                "counts": {"InProgress": 1, "Succeeded": 1},
                "total": 2,
            },
        ],
    }
    empty = await client.get(f"/subscriptions/{SUB_C}/operationsStatusCounts?{API}")
    assert empty.json() == {"counts": {}, "total": 0, "groups": []}


async def test_counts_follow_updates_deletes_and_retention(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await seed(client)
    url = f"/subscriptions/{SUB_A}/operationsStatusCounts?{API}"
    assert (await client.patch(status_path(op_id="a1"), json={"status": "Canceled"})).is_success
    assert (await client.delete(status_path(op_id="a2"))).is_success
    assert (await client.get(url)).json()["counts"] == {"Canceled": 1, "Failed": 1, "InProgress": 1}
    clock.advance(days=40)  # the terminal ones' retention is over, before any sweep ran
    after = (await client.get(url)).json()
    counted = await client.get(
        f"/subscriptions/{SUB_A}/providers/Microsoft.Cache/operationsStatusCounts?{API}"
        "&startedAfter=2000-01-01T00:00:00Z"
    )
    assert after["counts"] == counted.json()["counts"]
    assert "Canceled" not in after["counts"] and "Failed" not in after["counts"]


async def test_provider_counts_from_tallies_agree_with_counting(
    client: httpx.AsyncClient,
) -> None:
    await seed(client)
    base = f"/subscriptions/{SUB_A}/providers/Microsoft.Cache"
    for where in ("", "/locations/eastus", "/locations/westus"):
        for status in ("", "&status=inprogress,Failed"):
            tallied = await client.get(f"{base}{where}/operationsStatusCounts?{API}{status}")
            # A time filter makes the server count the operations themselves.
            counted = await client.get(
                f"{base}{where}/operationsStatusCounts?{API}{status}"
                "&startedAfter=2000-01-01T00:00:00Z"
            )
            assert tallied.status_code == counted.status_code == 200
            assert tallied.json() == counted.json()
    east = await client.get(f"{base}/locations/eastus/operationsStatusCounts?{API}")
    assert east.json() == {"counts": {"Failed": 1, "InProgress": 1}, "total": 2}


async def test_every_subscription_the_caller_may_read(
    client: httpx.AsyncClient, home: Path
) -> None:
    await seed(client)
    everyone = (await client.get(f"/operationsStatusCounts?{API}")).json()
    assert [s["subscriptionId"] for s in everyone["subscriptions"]] == sorted([SUB_A, SUB_B])
    b = next(s for s in everyone["subscriptions"] if s["subscriptionId"] == SUB_B)
    assert b == {
        "subscriptionId": SUB_B,
        "counts": {"Failed": 1},
        "total": 1,
        "groups": [
            {
                "namespace": "Microsoft.Cache",
                "location": "westus",
                "counts": {"Failed": 1},
                "total": 1,
            }
        ],
    }
    reader_a = bearer(home, "Reader", f"/subscriptions/{SUB_A.upper()}")
    scoped = (await client.get(f"/operationsStatusCounts?{API}", headers=reader_a)).json()
    assert [s["subscriptionId"] for s in scoped["subscriptions"]] == [SUB_A]
    assert scoped["subscriptions"][0]["total"] == 4
    forged = await client.get(
        f"/subscriptions/{SUB_B}/operationsStatusCounts?{API}", headers=reader_a
    )
    assert_arm_error(forged, 403, "AuthorizationFailed")
    own = await client.get(f"/subscriptions/{SUB_A}/operationsStatusCounts?{API}", headers=reader_a)
    assert own.json()["total"] == 4
    nobody = bearer(home, "Reader", f"/subscriptions/{SUB_C}")
    assert (await client.get(f"/operationsStatusCounts?{API}", headers=nobody)).json() == {
        "subscriptions": []
    }


async def test_the_principal(client: httpx.AsyncClient, home: Path) -> None:
    reader = bearer(home, "Reader", f"/subscriptions/{SUB_A}", subject="bob")
    response = await client.get(f"/principal?{API}", headers=reader)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "name": "bob",
        "issuer": "opstatus",
        "claim": "oid",
        "id": "bob",
        "local": True,
        "roles": [{"role": "Reader", "scope": f"/subscriptions/{SUB_A}"}],
    }
    owner = (await client.get(f"/principal?{API}")).json()
    assert owner["roles"] == [{"role": "Owner", "scope": "/"}]


@pytest.mark.parametrize(
    "path",
    ["/principal", "/operationsStatusCounts", f"/subscriptions/{SUB_A}/operationsStatusCounts"],
)
async def test_refusals(client: httpx.AsyncClient, path: str) -> None:
    missing = await client.get(path)
    assert_arm_error(missing, 400, "MissingApiVersionParameter", target="api-version")
    unknown = await client.get(f"{path}?api-version=1999-01-01")
    assert_arm_error(unknown, 400, "NoRegisteredProviderFound", target="api-version")
    anonymous = await client.get(f"{path}?{API}", headers={"Authorization": ""})
    assert anonymous.status_code == 401


async def test_a_malformed_subscription_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/subscriptions/not-a-guid/operationsStatusCounts?{API}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidSubscriptionId"

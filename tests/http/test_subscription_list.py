"""``GET /subscriptions/{sub}/operationsStatus``: every provider's operations of one
subscription in one list (the classic form's included), newest first, each in its own
provider's shape, paged like any list; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from opstatus.stores import PostgreSQLStore, SQLiteStore
from opstatus.stores.base import Store
from tests.support import (
    CLASSIC_HEADERS,
    SUB_A,
    SUB_B,
    FakeClock,
    app_client,
    bearer,
    classic_path,
    status_path,
)

from .conftest import assert_arm_error

pytestmark = pytest.mark.anyio

LIST = f"/subscriptions/{SUB_A}/operationsStatus?api-version=2025-07-01"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return SQLiteStore(tmp_path / "ops.db")
    return PostgreSQLStore(request.getfixturevalue("pg_url"))


@pytest.fixture
async def client(home: Path, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    clock = FakeClock()
    async with app_client(home, store=store, clock=clock) as c:
        c.headers.update(bearer(home))
        c.clock = clock  # type: ignore[attr-defined]
        yield c


async def seed(c: httpx.AsyncClient) -> None:
    """Oldest first: Microsoft.Cache in westus, the classic form's, Microsoft.Cache in
    eastus, and one of another subscription."""
    clock: FakeClock = c.clock  # type: ignore[attr-defined]
    puts = [
        (status_path(op_id="cache-west"), {}),
        (classic_path("req-1"), {"percentComplete": 5}),
        (status_path(op_id="cache-east", location="eastus"), {"percentComplete": 5}),
        (status_path(sub=SUB_B, op_id="elsewhere"), {}),
    ]
    for path, body in puts:
        response = await c.put(path, json=body, headers=CLASSIC_HEADERS)
        assert response.status_code == 201, response.text
        clock.advance(1)


async def test_every_provider_of_the_subscription_newest_first(client: httpx.AsyncClient):
    await seed(client)
    response = await client.get(LIST)
    assert response.status_code == 200, response.text
    items = response.json()["value"]
    assert [item["name"] for item in items] == ["cache-east", "req-1", "cache-west"]
    assert items[1]["id"] == (
        f"/subscriptions/{SUB_A}/providers/Opstatus.Classic/locations/global/operationsStatus/req-1"
    )
    assert "percentComplete" in items[1]  # the classic provider's flat shape
    assert "percentComplete" not in items[0]  # Microsoft.Cache's published shape
    await client.patch(
        status_path(op_id="cache-east", location="eastus"), json={"status": "Failed"}
    )
    failed = await client.get(LIST + "&status=Failed")
    assert [item["name"] for item in failed.json()["value"]] == ["cache-east"]


async def test_pages_follow_their_next_link(client: httpx.AsyncClient) -> None:
    await seed(client)
    seen: list[str] = []
    url: str | None = LIST + "&maxpagesize=1"
    while url:
        body = (await client.get(url)).json()
        seen += [item["name"] for item in body["value"]]
        url = body.get("nextLink")
    assert seen == ["cache-east", "req-1", "cache-west"]
    provider_list = f"/subscriptions/{SUB_A}/providers/Microsoft.Cache/operationsStatus?"
    first = (await client.get(LIST + "&maxpagesize=1")).json()["nextLink"]
    token = first.split("$skipToken=")[1]
    response = await client.get(provider_list + f"api-version=2025-07-01&$skipToken={token}")
    assert_arm_error(response, 400, "InvalidContinuationToken", target="$skipToken")


async def test_reading_needs_a_role_over_the_subscription(
    client: httpx.AsyncClient, home: Path
) -> None:
    other = bearer(home, role="Reader", scope=f"/subscriptions/{SUB_B}")
    response = await client.get(LIST, headers=other)
    assert_arm_error(response, 403, "AuthorizationFailed")
    assert (await client.get(LIST, headers={"Authorization": ""})).status_code == 401


async def test_bad_api_version_or_subscription_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/subscriptions/{SUB_A}/operationsStatus?api-version=1999-01-01")
    assert_arm_error(response, 400, "NoRegisteredProviderFound", target="api-version")
    missing = await client.get(f"/subscriptions/{SUB_A}/operationsStatus")
    assert_arm_error(missing, 400, "MissingApiVersionParameter", target="api-version")
    bad = await client.get("/subscriptions/not-a-guid/operationsStatus?api-version=2025-07-01")
    assert bad.status_code == 400

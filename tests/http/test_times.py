"""Times: always RFC 3339 with a four-digit year, never an end before the start.

Stores and list filters compare times as text, which orders them in time only when every one
has the same width: a year below 1000 written as ``999-06-01...`` sorted after ``1000-...``.
Each case runs on the memory, SQLite and PostgreSQL stores.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from opstatus.stores import MemoryStore, PostgreSQLStore
from opstatus.stores.base import Store
from opstatus.stores.sqlite import SQLiteStore
from tests.support import CLASSIC_HEADERS, CLASSIC_NS, app_client, bearer, classic_path, status_path

from .conftest import assert_arm_error, collection_path

pytestmark = pytest.mark.anyio

RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z")


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryStore()
    if request.param == "sqlite":
        return SQLiteStore(tmp_path / "db.sqlite")
    return PostgreSQLStore(request.getfixturevalue("pg_url"))


@pytest.fixture
async def client(store: Store, home: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(home, store=store, maintenance_interval=0) as c:
        c.headers.update(bearer(home))
        yield c


async def names(client: httpx.AsyncClient, **filters: str) -> list[str]:
    query = "".join(f"&{name}={value}" for name, value in filters.items())
    listed = await client.get(collection_path() + query)
    assert listed.status_code == 200, listed.text
    return sorted(item["name"] for item in listed.json()["value"])


async def test_years_below_1000_are_written_with_four_digits_and_filter_in_order(
    client: httpx.AsyncClient,
) -> None:
    for op_id, year in (("y0999", "0999"), ("y1000", "1000")):
        body = {
            "status": "Succeeded",
            "startTime": f"{year}-06-01T00:00:00Z",
            "endTime": f"{year}-06-02T12:00:00+00:00",
        }
        created = await client.put(status_path(op_id=op_id), json=body)
        assert created.status_code == 201, created.text
    read = (await client.get(status_path(op_id="y0999"))).json()
    assert read["startTime"] == "0999-06-01T00:00:00.000Z"
    assert read["endTime"] == "0999-06-02T12:00:00.000Z"
    listed = (await client.get(collection_path())).json()["value"]
    for item in listed:
        assert RFC3339.match(item["startTime"]) and RFC3339.match(item["endTime"]), item

    assert await names(client) == ["y0999", "y1000"]
    assert await names(client, startedAfter="0999-12-31T00:00:00Z") == ["y1000"]
    assert await names(client, startedBefore="1000-01-01T00:00:00Z") == ["y0999"]
    assert await names(client, startedAfter="0500-01-01", startedBefore="0999-07-01") == ["y0999"]
    assert await names(client, endedAfter="0999-06-02T12:00:00Z") == ["y0999", "y1000"]
    assert await names(client, endedAfter="0999-06-02T12:00:01Z") == ["y1000"]
    assert await names(client, endedBefore="1000-06-02T12:00:00Z") == ["y0999"]


@pytest.mark.parametrize(
    "moment",
    [
        "0000-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
        "0001-01-01T00:30:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:30:00-01:00",  # after year 9999 in UTC
    ],
)
async def test_years_outside_0001_to_9999_are_refused(
    client: httpx.AsyncClient, moment: str
) -> None:
    response = await client.put(status_path(), json={"startTime": moment})
    assert_arm_error(response, 400, "InvalidRequestContent", "startTime")
    response = await client.get(collection_path() + f"&startedAfter={moment.replace('+', '%2B')}")
    assert_arm_error(response, 400, "InvalidRequestContent", "startedAfter")


def classic_error(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    root = ET.fromstring(response.content)
    assert root.findtext(f"{{{CLASSIC_NS}}}Code") == "BadRequest"
    return root.findtext(f"{{{CLASSIC_NS}}}Message") or ""


END_BEFORE_START = (
    "'endTime' (2024-01-01T00:00:00.000Z) is before the operation's 'startTime' "
    "(2024-01-02T00:00:00.000Z)."
)


async def test_an_end_before_the_start_is_refused(client: httpx.AsyncClient) -> None:
    body = {
        "status": "Succeeded",
        "startTime": "2024-01-02T00:00:00Z",
        "endTime": "2024-01-01T00:00:00Z",
    }
    response = await client.put(status_path(), json=body)
    error = assert_arm_error(response, 400, "InvalidRequestContent", "endTime")
    assert error["message"] == END_BEFORE_START
    response = await client.post(collection_path(), json=body)
    assert_arm_error(response, 400, "InvalidRequestContent", "endTime")
    response = await client.put(classic_path(), json=body, headers=CLASSIC_HEADERS)
    assert classic_error(response) == END_BEFORE_START
    assert (await client.get(status_path())).status_code == 404
    assert await names(client) == []


async def test_a_patch_setting_the_end_before_the_stored_start_is_refused(
    client: httpx.AsyncClient,
) -> None:
    created = await client.put(
        status_path(), json={"status": "InProgress", "startTime": "2024-01-02T00:00:00Z"}
    )
    assert created.status_code == 201, created.text
    before = (await client.get(status_path())).json()
    end = {"status": "Succeeded", "endTime": "2024-01-01T00:00:00Z"}
    response = await client.patch(status_path(), json=end)
    error = assert_arm_error(response, 400, "InvalidRequestContent", "endTime")
    assert error["message"] == END_BEFORE_START
    response = await client.patch(classic_path(), json=end, headers=CLASSIC_HEADERS)
    assert classic_error(response) == END_BEFORE_START
    assert (await client.get(status_path())).json() == before
    # The same moment is not before it.
    end["endTime"] = "2024-01-02T00:00:00Z"
    response = await client.patch(status_path(), json=end)
    assert response.status_code == 200, response.text
    assert response.json()["endTime"] == response.json()["startTime"]


def later(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def test_a_time_left_out_is_never_on_the_wrong_side_of_the_given_one(
    client: httpx.AsyncClient,
) -> None:
    """A producer's clock may run ahead of the server's: its start, a little in the
    server's future, still gets an end (now) that is not before it, and an end in the past
    given without a start gets a start that is not after it."""
    start = later(1)
    for op_id, body in (
        ("created", {"status": "Succeeded", "startTime": start}),
        ("patched", {"status": "InProgress", "startTime": start}),
    ):
        response = await client.put(status_path(op_id=op_id), json=body)
        assert response.status_code == 201, response.text
    patched = await client.patch(status_path(op_id="patched"), json={"status": "Failed"})
    assert patched.status_code == 200, patched.text
    for op_id in ("created", "patched"):
        read: dict[str, Any] = (await client.get(status_path(op_id=op_id))).json()
        assert read["endTime"] == read["startTime"] == start, read
    body = {"status": "Succeeded", "endTime": "2020-01-01T00:00:00Z"}
    response = await client.put(status_path(op_id="reported"), json=body)
    assert response.status_code == 201, response.text
    assert response.json()["startTime"] == response.json()["endTime"] == "2020-01-01T00:00:00.000Z"

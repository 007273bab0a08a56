"""Faults inside the store, in-process: a full database and damaged rows.

A full disk answers writes with 503 + Retry-After and a clear log line while reads keep
working, and writes work again once there is room. A hand-edited or damaged row is reported
(log line naming the operation and column, 503 naming the operation), never a 500, and the
rest of the store is served as usual. The same faults with real processes, a real full
file system and read-only storage are in tests/e2e/test_faults.py.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opstatus.errors import CorruptRecord
from opstatus.stores.sqlite import SQLiteStore
from tests.support import app_client, bearer, status_path

pytestmark = pytest.mark.anyio


@pytest.fixture
def store(home: Path) -> SQLiteStore:
    return SQLiteStore(home / "opstatus.db")


@pytest.fixture
async def client(home: Path, store: SQLiteStore) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(home, store=store) as c:
        c.headers.update(bearer(home))
        yield c


def edit(home: Path, sql: str, *params: Any) -> None:
    """What an operator with the sqlite3 shell does, behind the server's back."""
    with contextlib.closing(sqlite3.connect(home / "opstatus.db")) as conn:
        conn.execute(sql, params)
        conn.commit()


async def limit_pages(store: SQLiteStore, pages: int | None) -> None:
    """Cap the database at its current size (or lift the cap): SQLite's own 'disk full'."""

    def cap() -> None:
        conn = store._writer
        assert conn is not None
        if pages is None:
            conn.execute("PRAGMA max_page_count=1073741823")
        else:
            current = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count={current + pages}")

    await store._write(cap)


async def test_a_full_database_refuses_writes_with_503_and_keeps_serving_reads(
    client: httpx.AsyncClient, store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await client.put(status_path(op_id="before"), json={})).status_code == 201
    await limit_pages(store, 0)
    big = {"properties": {"blob": "x" * 20_000}}
    with caplog.at_level(logging.ERROR, logger="opstatus"):
        refused = [await client.put(status_path(op_id=f"new-{i}"), json=big) for i in range(3)]
    for response in refused:
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"]["code"] == "ServiceUnavailable"
        assert "disk is full" not in response.text  # the details are for the log
    assert any("database or disk is full" in r.getMessage() for r in caplog.records)
    read = await client.get(status_path(op_id="before"))
    assert read.status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["writes"] == "failing"
    assert (await client.get(status_path(op_id="new-0"))).status_code == 404  # nothing half-written

    await limit_pages(store, None)
    assert (await client.put(status_path(op_id="new-0"), json=big)).status_code == 201
    patched = await client.patch(status_path(op_id="before"), json={"percentComplete": 5})
    assert patched.status_code == 200
    assert "writes" not in (await client.get("/readyz")).json()


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("error", "{not json", "is not valid JSON"),
        ("error", "[1, 2]", "is not a JSON object"),
        ("properties", "42", "is not a JSON object"),
        ("status", "banana!", "not a status"),
        ("status", "", "not a status"),
        ("percent_complete", "abc", "is not a number"),
        ("percent_complete", 250, "out of 0..100"),
        ("start_time", b"\x00", "is not text"),
        ("cancelable", 7, "is not 0 or 1"),
    ],
)
async def test_a_damaged_row_is_reported_not_crashed_on(
    client: httpx.AsyncClient,
    home: Path,
    caplog: pytest.LogCaptureFixture,
    column: str,
    value: object,
    problem: str,
) -> None:
    body = {"status": "Failed", "error": {"code": "Boom", "message": "m"}}
    assert (await client.put(status_path(op_id="bad"), json=body)).status_code == 201
    assert (await client.put(status_path(op_id="good"), json={})).status_code == 201
    edit(home, f"UPDATE operations SET {column} = ? WHERE operation_key = 'bad'", value)
    with caplog.at_level(logging.ERROR, logger="opstatus"):
        answers = [
            await client.get(status_path(op_id="bad")),
            await client.patch(status_path(op_id="bad"), json={"percentComplete": 1}),
            await client.put(status_path(op_id="bad"), json=body),
            await client.delete(status_path(op_id="bad")),
        ]
    for response in answers:
        assert response.status_code == 503, response.text
        assert "'bad'" in response.json()["error"]["message"]
        assert "Traceback" not in response.text
    logged = [r.getMessage() for r in caplog.records if "corrupt record" in r.getMessage()]
    assert logged, caplog.text
    assert all(f"column '{column}'" in line and problem in line for line in logged), logged
    assert (await client.get(status_path(op_id="good"))).status_code == 200
    assert (await client.get("/readyz")).status_code == 200  # one bad row is not an outage


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("error", "{not json", "is not valid JSON"),
        ("error", '{"message": "no code"}', "has no error code"),
        ("properties", "42", "is not a JSON object"),
        ("status", "banana!", "not a status"),
        ("percent_complete", 250, "out of 0..100"),
        ("etag", b"\x00", "is not text"),
        ("lease_expires_at", b"\x00", "is not text"),
    ],
)
async def test_the_status_read_names_a_damaged_column_too(
    home: Path, store: SQLiteStore, column: str, value: object, problem: str
) -> None:
    """The protocol lane reads statuses together (statuses_now); a damaged row stops that
    read as it stops a whole read, so that the ordinary path answers each and reports it."""
    async with app_client(home, store=store) as c:
        await c.put(status_path(op_id="x1"), json={}, headers=bearer(home))
        edit(home, f"UPDATE operations SET {column} = ? WHERE operation_key = 'x1'", value)
        with pytest.raises(CorruptRecord) as caught:
            store.statuses_now([("e7b5a9d2-6b6a-4d2f-9143-20d9a10f5b8f", "x1")])
    assert caught.value.operation_id == "x1"
    assert f"column '{column}'" in caught.value.message and problem in caught.value.message


async def test_a_hand_written_lowercase_terminal_status_is_still_final(
    client: httpx.AsyncClient, home: Path
) -> None:
    assert (await client.put(status_path(op_id="done"), json={})).status_code == 201
    edit(home, "UPDATE operations SET status = 'succeeded' WHERE operation_key = 'done'")
    read = await client.get(status_path(op_id="done"))
    assert read.status_code == 200 and read.json()["status"] == "Succeeded"
    patched = await client.patch(status_path(op_id="done"), json={"status": "InProgress"})
    assert patched.status_code == 409
    assert patched.json()["error"]["code"] == "OperationAlreadyTerminal"


async def test_the_store_names_the_operation_and_column(home: Path, store: SQLiteStore) -> None:
    async with app_client(home, store=store) as c:
        await c.put(status_path(op_id="x1"), json={}, headers=bearer(home))
        edit(home, "UPDATE operations SET properties = 'nope' WHERE operation_key = 'x1'")
        with pytest.raises(CorruptRecord) as caught:
            await store.get("e7b5a9d2-6b6a-4d2f-9143-20d9a10f5b8f", "x1")
    assert caught.value.operation_id == "x1"
    assert "column 'properties' is not valid JSON" in caught.value.message

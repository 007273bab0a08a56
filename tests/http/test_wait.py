"""``Prefer: wait=N`` on the status GET (RFC 7240): held until the operation changes.

The GET reads, and while the operation runs with the ETag it had, waits for a write to wake
it, for it to end, or for N seconds (capped by ``max_wait``); then it answers as a normal GET,
with ``Preference-Applied: wait=N``. Without the preference nothing is held.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from opstatus.stores import MemoryStore, SQLiteStore
from tests.support import SUB_A, app_client, bearer, status_path

from .conftest import assert_arm_error

pytestmark = pytest.mark.anyio

WAIT = {"Prefer": "wait=5"}


async def create(client: httpx.AsyncClient, op_id: str = "op1", **body: object) -> str:
    response = await client.put(status_path(op_id=op_id), json=body or {})
    assert response.status_code == 201, response.text
    return response.headers["etag"]


async def patch_later(
    client: httpx.AsyncClient, delay: float, body: dict[str, object], op_id: str = "op1"
) -> httpx.Response:
    await asyncio.sleep(delay)
    return await client.patch(status_path(op_id=op_id), json=body)


async def timed_get(
    client: httpx.AsyncClient, headers: dict[str, str], op_id: str = "op1"
) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = await client.get(status_path(op_id=op_id), headers=headers)
    return response, time.monotonic() - start


async def test_a_write_wakes_the_waiter_with_the_new_state(client: httpx.AsyncClient) -> None:
    etag = await create(client, percentComplete=10)
    (response, elapsed), patched = await asyncio.gather(
        timed_get(client, {"Prefer": "wait=5, opstatus-detail=full"}),
        patch_later(client, 0.2, {"percentComplete": 40}),
    )
    assert patched.status_code == 200
    assert response.status_code == 200, response.text
    assert 0.15 < elapsed < 2
    assert response.headers["etag"] == patched.headers["etag"] != etag
    assert response.json()["percentComplete"] == 40
    assert response.headers["preference-applied"] == "opstatus-detail=full, wait=5"
    assert response.headers["retry-after"] == "10"  # still running: a normal GET's headers


async def test_finishing_wakes_the_waiter(client: httpx.AsyncClient) -> None:
    await create(client)
    (response, elapsed), _ = await asyncio.gather(
        timed_get(client, WAIT), patch_later(client, 0.2, {"status": "Succeeded"})
    )
    assert elapsed < 2
    assert response.json()["status"] == "Succeeded"
    assert "retry-after" not in response.headers


async def test_a_terminal_operation_answers_at_once(client: httpx.AsyncClient) -> None:
    await create(client, status="Failed")
    response, elapsed = await timed_get(client, {"Prefer": "wait=30"})
    assert elapsed < 0.5
    assert response.status_code == 200
    assert response.json()["status"] == "Failed"
    assert response.headers["preference-applied"] == "wait=30"


async def test_without_a_change_it_answers_when_the_wait_runs_out(
    client: httpx.AsyncClient,
) -> None:
    etag = await create(client)
    response, elapsed = await timed_get(client, {"Prefer": "wait=1"})
    assert 0.9 < elapsed < 2
    assert response.status_code == 200
    assert response.headers["etag"] == etag
    assert response.headers["preference-applied"] == "wait=1"


async def test_the_wait_is_capped_by_max_wait(home: Path) -> None:
    async with app_client(home, store=MemoryStore(), max_wait=1) as client:
        client.headers.update(bearer(home))
        await create(client)
        response, elapsed = await timed_get(client, {"Prefer": "wait=600"})
    assert 0.9 < elapsed < 2
    assert response.headers["preference-applied"] == "wait=1"


async def test_max_wait_zero_turns_waiting_off(home: Path) -> None:
    async with app_client(home, store=MemoryStore(), max_wait=0) as client:
        client.headers.update(bearer(home))
        await create(client)
        response, elapsed = await timed_get(client, {"Prefer": "wait=5"})
    assert elapsed < 0.5
    assert response.status_code == 200
    assert "preference-applied" not in response.headers


@pytest.mark.parametrize(
    "prefer",
    ["wait=abc", "wait=-1", "wait=1.5", "wait=", "wait=0", "wait=\xb2", "respond-async"],
)
async def test_malformed_or_zero_wait_is_ignored(client: httpx.AsyncClient, prefer: str) -> None:
    await create(client)
    start = time.monotonic()  # "\xb2" (a superscript two) is a digit to str.isdigit()
    response = await client.get(status_path(), headers={"Prefer": prefer.encode("latin-1")})
    elapsed = time.monotonic() - start
    assert elapsed < 0.5
    assert response.status_code == 200
    assert "preference-applied" not in response.headers


async def test_preference_parsing_follows_rfc_7240(client: httpx.AsyncClient) -> None:
    await create(client, status="Succeeded")
    # Case-insensitive names, parameters after ';', quoted values, several headers.
    for headers in (
        [("Prefer", "WAIT=3; foo=bar")],
        [("Prefer", 'wait="3"')],
        [("Prefer", "return=minimal"), ("Prefer", "wait=3")],
        [("Prefer", "wait=3, wait=9")],  # the first of a name wins
    ):
        response = await client.get(status_path(), headers=headers)
        assert response.headers["preference-applied"] == "wait=3", headers


async def test_if_none_match_names_the_version_the_caller_has(
    client: httpx.AsyncClient,
) -> None:
    """A caller that saw version 1 while version 2 exists is answered at once, not held."""
    first = await create(client)
    second = (await client.patch(status_path(), json={"percentComplete": 5})).headers["etag"]

    behind, elapsed = await timed_get(client, {"Prefer": "wait=5", "If-None-Match": first})
    assert elapsed < 0.5
    assert behind.status_code == 200 and behind.headers["etag"] == second
    assert behind.headers["preference-applied"] == "wait=5"

    (current, elapsed), patched = await asyncio.gather(
        timed_get(client, {"Prefer": "wait=5", "If-None-Match": f'W/{second}, "other"'}),
        patch_later(client, 0.2, {"percentComplete": 9}),
    )
    assert 0.15 < elapsed < 2
    assert current.headers["etag"] == patched.headers["etag"]

    # "*" says nothing about a version: the first read is the baseline, as without it.
    latest = patched.headers["etag"]
    star, elapsed = await timed_get(client, {"Prefer": "wait=1", "If-None-Match": "*"})
    assert elapsed > 0.9 and star.headers["etag"] == latest
    # Without Prefer: wait, If-None-Match changes nothing (no 304).
    plain, elapsed = await timed_get(client, {"If-None-Match": latest})
    assert plain.status_code == 200 and elapsed < 0.5


async def test_a_quoted_star_in_if_none_match_is_a_version_the_caller_has(
    client: httpx.AsyncClient,
) -> None:
    """Not the bare ``*``: it names the version ``*``, which the operation is not at, so the
    caller is behind and is answered at once."""
    etag = await create(client)
    response, elapsed = await timed_get(client, {"Prefer": "wait=5", "If-None-Match": '"*"'})
    assert elapsed < 0.5
    assert response.headers["etag"] == etag


async def test_without_prefer_nothing_is_held_or_announced(client: httpx.AsyncClient) -> None:
    await create(client)
    response, elapsed = await timed_get(client, {})
    assert elapsed < 0.5
    assert "preference-applied" not in response.headers


async def test_a_missing_operation_is_404_at_once(client: httpx.AsyncClient) -> None:
    response, elapsed = await timed_get(client, WAIT, op_id="nope")
    assert elapsed < 0.5
    assert_arm_error(response, 404, "ResourceNotFound", target="operationId")


async def test_deleting_while_waiting_answers_404(client: httpx.AsyncClient) -> None:
    await create(client)

    async def delete_later() -> httpx.Response:
        await asyncio.sleep(0.2)
        return await client.delete(status_path())

    (response, elapsed), deleted = await asyncio.gather(timed_get(client, WAIT), delete_later())
    assert deleted.status_code == 200
    assert elapsed < 2
    assert_arm_error(response, 404, "ResourceNotFound", target="operationId")


async def test_a_write_to_another_operation_does_not_end_the_wait(
    client: httpx.AsyncClient,
) -> None:
    etag = await create(client)
    await create(client, "other")
    (response, elapsed), _ = await asyncio.gather(
        timed_get(client, {"Prefer": "wait=1"}),
        patch_later(client, 0.1, {"percentComplete": 50}, op_id="other"),
    )
    assert elapsed > 0.9
    assert response.headers["etag"] == etag


async def test_a_reader_may_wait(client: httpx.AsyncClient, home: Path) -> None:
    await create(client)
    reader = {**bearer(home, "Reader", f"/subscriptions/{SUB_A}"), **WAIT}
    (response, _), _ = await asyncio.gather(
        timed_get(client, reader), patch_later(client, 0.1, {"status": "Canceled"})
    )
    assert response.json()["status"] == "Canceled"


async def test_closing_the_notifier_answers_every_waiter_at_once(home: Path) -> None:
    """What `opstatus serve` does on shutdown: held GETs answer instead of holding it up."""
    store = MemoryStore()
    async with app_client(home, store=store) as client:
        client.headers.update(bearer(home))
        etag = await create(client)

        async def close_later() -> None:
            await asyncio.sleep(0.2)
            store.notifier.close()

        results = await asyncio.gather(
            *(timed_get(client, {"Prefer": "wait=30"}) for _ in range(5)), close_later()
        )
        for response, elapsed in results[:5]:  # type: ignore[misc]
            assert elapsed < 2
            assert response.status_code == 200
            assert response.headers["etag"] == etag
        # New waits do not hold either.
        assert (await timed_get(client, {"Prefer": "wait=30"}))[1] < 0.5


@pytest.fixture
async def sqlite_pair(home: Path) -> AsyncIterator[tuple[httpx.AsyncClient, SQLiteStore]]:
    """The app on SQLite, plus a second store on the same file (as another process)."""
    path = home / "opstatus.db"
    async with app_client(home, store=SQLiteStore(path)) as client:
        client.headers.update(bearer(home))
        other = SQLiteStore(path)
        await other.open()
        try:
            yield client, other
        finally:
            await other.close()


async def test_sqlite_waiters_in_the_same_process_wake_at_once(
    sqlite_pair: tuple[httpx.AsyncClient, SQLiteStore],
) -> None:
    client, _ = sqlite_pair
    await create(client)
    (response, elapsed), _ = await asyncio.gather(
        timed_get(client, WAIT), patch_later(client, 0.1, {"percentComplete": 5})
    )
    # Well under the one-second poll: the write woke the waiter.
    assert elapsed < 0.6
    assert response.json()["status"] == "InProgress"


async def test_sqlite_waiters_see_another_process_write_by_polling(
    sqlite_pair: tuple[httpx.AsyncClient, SQLiteStore],
) -> None:
    client, other = sqlite_pair
    etag = await create(client)

    async def write_elsewhere() -> None:
        await asyncio.sleep(0.1)
        await other.update(SUB_A, "op1", lambda cur: cur.evolve(status="Succeeded", etag="e2"))

    (response, elapsed), _ = await asyncio.gather(timed_get(client, WAIT), write_elsewhere())
    assert elapsed < 2.5  # the next poll (every second) found it
    assert response.headers["etag"] != etag
    assert response.json()["status"] == "Succeeded"

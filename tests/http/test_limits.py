"""Limits that keep one caller from knocking the service over: rate, body size and time,
long-poll waiters. Request head size and time belong to the protocol: see
tests/e2e/test_hardening.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from opstatus.http.limits import RateLimiter, WaiterSlots
from opstatus.security import SecuritySettings
from opstatus.stores import MemoryStore, PostgreSQLStore, SQLiteStore
from opstatus.stores.base import Store
from tests.support import SUB_A, app_client, bearer, status_path

from .conftest import JSON, assert_arm_error

pytestmark = pytest.mark.anyio


def limited(**overrides: object) -> SecuritySettings:
    values: dict[str, object] = {"rate_limit": 1.0, "rate_burst": 3, "reject_delay": 0.0}
    values.update(overrides)
    return SecuritySettings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def client(home: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(home, store=MemoryStore(), security=limited()) as c:
        yield c


def assert_429(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "TooManyRequests"
    assert "more than 1 requests per second" in error["message"]
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) >= 1
    assert response.headers["x-ms-request-id"]
    return int(retry_after)


async def test_over_the_rate_is_429_with_retry_after_in_arms_envelope(
    client: httpx.AsyncClient, home: Path
) -> None:
    alice = bearer(home, "Reader", subject="alice")
    answers = [(await client.get(status_path(), headers=alice)).status_code for _ in range(3)]
    assert answers == [404, 404, 404]  # the burst
    assert_429(await client.get(status_path(), headers=alice))
    await asyncio.sleep(1.1)  # one token back at 1/s
    assert (await client.get(status_path(), headers=alice)).status_code == 404
    assert_429(await client.get(status_path(), headers=alice))


async def test_writes_are_limited_too_and_change_nothing(
    client: httpx.AsyncClient, home: Path
) -> None:
    writer = bearer(home, "Contributor", subject="writer")
    for _ in range(3):
        await client.get(status_path(), headers=writer)
    response = await client.put(status_path(), headers=writer, json={})
    assert_429(response)
    assert (
        await client.get(status_path(), headers=bearer(home, subject="admin"))
    ).status_code == 404


async def test_one_principal_over_its_limit_leaves_another_untouched(
    client: httpx.AsyncClient, home: Path
) -> None:
    noisy, quiet = bearer(home, subject="noisy"), bearer(home, subject="quiet")
    flood = await asyncio.gather(*(client.get(status_path(), headers=noisy) for _ in range(30)))
    # The burst of 3 passes; the rest is refused (a slow machine may refill a token or two).
    assert 25 <= sum(r.status_code == 429 for r in flood) <= 27
    quiet_answers = [(await client.get(status_path(), headers=quiet)).status_code for _ in range(3)]
    assert quiet_answers == [404, 404, 404]


async def test_callers_without_a_valid_token_share_their_address_bucket(
    client: httpx.AsyncClient, home: Path
) -> None:
    for _ in range(3):
        assert (await client.get(status_path())).status_code == 401
    assert_429(await client.get(status_path()))
    assert_429(await client.get(status_path(), headers={"Authorization": "Bearer forged"}))
    # A principal with a valid token has its own bucket, even from that address.
    assert (await client.get(status_path(), headers=bearer(home))).status_code == 404


async def test_429s_are_held_back_so_a_flood_costs_little(home: Path) -> None:
    async with app_client(home, store=MemoryStore(), security=limited(reject_delay=0.3)) as c:
        alice = bearer(home, subject="alice")
        for _ in range(3):
            await c.get(status_path(), headers=alice)
        started = time.monotonic()
        assert_429(await c.get(status_path(), headers=alice))
        assert time.monotonic() - started >= 0.15  # the delay, jittered by 0.5x to 1.5x


async def test_only_so_many_429s_are_held_at_once(home: Path) -> None:
    security = limited(rate_burst=1, reject_delay=5.0, max_held_rejections=0)
    async with app_client(home, store=MemoryStore(), security=security) as c:
        await c.get(status_path(), headers=bearer(home))
        started = time.monotonic()
        assert_429(await c.get(status_path(), headers=bearer(home)))
        assert time.monotonic() - started < 2


async def test_rate_limit_zero_turns_it_off(home: Path) -> None:
    async with app_client(home, store=MemoryStore(), security=limited(rate_limit=0)) as c:
        answers = {
            (await c.get(status_path(), headers=bearer(home))).status_code for _ in range(20)
        }
        assert answers == {404}


def test_bucket_refills_at_the_rate_up_to_the_burst() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=10.0, burst=2, clock=lambda: now[0])
    assert [limiter.take("a"), limiter.take("a")] == [0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.1)
    now[0] = 0.05
    assert limiter.take("a") == pytest.approx(0.05)  # half a token back, not enough
    now[0] = 10.0  # long idle: back to the burst, not beyond
    assert [limiter.take("a"), limiter.take("a")] == [0.0, 0.0]
    assert limiter.take("a") > 0
    assert limiter.take("b") == 0.0


def test_idle_buckets_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("opstatus.http.limits.MAX_BUCKETS", 3)
    now = [0.0]
    limiter = RateLimiter(rate=1.0, burst=1, clock=lambda: now[0])
    for key in "abc":
        limiter.take(key)
    now[0] = 5.0
    limiter.take("d")
    assert set(limiter._buckets) == {"d"}


# -- body size and time ----------------------------------------------------------------------


@pytest.fixture
async def small_body_client(home: Path) -> AsyncIterator[httpx.AsyncClient]:
    security = SecuritySettings(body_timeout=0.3)
    async with app_client(home, store=MemoryStore(), max_body_bytes=1000, security=security) as c:
        c.headers.update(bearer(home))
        yield c


TOO_LARGE = "The request body is larger than the limit of 1000 bytes."


@pytest.mark.parametrize("method", ["PUT", "PATCH", "GET", "DELETE"])
async def test_declared_body_over_the_limit_is_413_on_any_route(
    small_body_client: httpx.AsyncClient, method: str
) -> None:
    body = b'{"properties": {"x": "' + b"y" * 2000 + b'"}}'
    response = await small_body_client.request(method, status_path(), content=body, headers=JSON)
    assert_arm_error(response, 413, "RequestEntityTooLarge", message=TOO_LARGE)
    assert (await small_body_client.get(status_path())).status_code == 404


async def test_chunked_body_over_the_limit_is_413(small_body_client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 200

    response = await small_body_client.put(status_path(), content=chunks(), headers=JSON)
    assert_arm_error(response, 413, "RequestEntityTooLarge", message=TOO_LARGE)


async def test_a_body_sent_too_slowly_is_408(small_body_client: httpx.AsyncClient) -> None:
    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"status": '
        await asyncio.sleep(1.0)
        yield b'"InProgress"}'

    started = time.monotonic()
    response = await small_body_client.put(status_path(), content=trickle(), headers=JSON)
    assert_arm_error(
        response,
        408,
        "RequestTimeout",
        message="The request body was not received within 0.3 seconds.",
    )
    assert time.monotonic() - started < 1.0
    assert (await small_body_client.get(status_path())).status_code == 404


async def test_a_body_within_limits_is_fine(small_body_client: httpx.AsyncClient) -> None:
    response = await small_body_client.put(status_path(), json={"percentComplete": 5})
    assert response.status_code == 201, response.text
    patched = await small_body_client.patch(status_path(), json={"status": "Succeeded"})
    assert patched.status_code == 200, patched.text


# -- long-poll waiters -----------------------------------------------------------------------


def test_waiter_slots_bound_the_total_and_each_principal() -> None:
    slots = WaiterSlots(limit=3, per_principal=2)
    assert [slots.acquire("a"), slots.acquire("a"), slots.acquire("a")] == [True, True, False]
    assert slots.acquire("b") is True
    assert slots.acquire("c") is False  # the total is reached
    slots.release("a")
    assert slots.acquire("c") is True
    with slots.slot("d") as granted:
        assert granted is False
    slots.release("b")
    with slots.slot("d") as granted:
        assert granted is True
        assert slots.waiting == 3
    assert slots.waiting == 2


async def test_the_app_carries_the_configured_waiter_slots(home: Path) -> None:
    security = SecuritySettings(max_waiters=7, max_waiters_per_principal=2)
    async with app_client(home, store=MemoryStore(), security=security) as c:
        transport = c._transport
        assert isinstance(transport, httpx.ASGITransport)
        ctx = transport.app.app.state.ctx  # type: ignore[attr-defined]
        assert (ctx.waiters.limit, ctx.waiters.per_principal) == (7, 2)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryStore()
    if request.param == "sqlite":
        return SQLiteStore(tmp_path / "db.sqlite")
    return PostgreSQLStore(request.getfixturevalue("pg_url"))


async def active_waiters(client: httpx.AsyncClient) -> float:
    text = (await client.get("/metrics")).text
    [value] = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "opstatus_active_waiters"
    ]
    return value


async def until_waiters(client: httpx.AsyncClient, count: int) -> None:
    """Until ``opstatus_active_waiters`` shows ``count``; fails after 10 s."""
    deadline = time.monotonic() + 10
    while (seen := await active_waiters(client)) != count:
        assert time.monotonic() < deadline, f"{seen} waiters, not {count}"
        await asyncio.sleep(0.02)


def held_get(
    client: httpx.AsyncClient, headers: dict[str, str], wait: int = 30
) -> asyncio.Task[httpx.Response]:
    return asyncio.create_task(
        client.get(status_path(), headers={**headers, "Prefer": f"wait={wait}"})
    )


async def test_a_principal_holds_at_most_100_waiters_the_rest_answer_at_once(
    home: Path, store: Store
) -> None:
    """The default limits: a Reader's 101st to 103rd long-polls are plain GETs, at once,
    while another principal may still wait; a write answers the held ones and frees them."""
    async with app_client(home, store=store, security=SecuritySettings(rate_limit=0)) as c:
        writer = bearer(home, "Contributor", subject="writer")
        assert (await c.put(status_path(), headers=writer, json={})).status_code == 201
        reader = bearer(home, "Reader", f"/subscriptions/{SUB_A}", subject="reader")
        flood = [held_get(c, reader) for _ in range(103)]
        done, pending = await asyncio.wait(flood, timeout=5, return_when=asyncio.ALL_COMPLETED)
        assert (len(done), len(pending)) == (3, 100)
        for answered in done:
            response = answered.result()
            assert response.status_code == 200, response.text
            assert "preference-applied" not in response.headers  # a plain GET
            assert response.json()["status"] == "InProgress"
        await until_waiters(c, 100)
        other = held_get(c, bearer(home, "Reader", subject="other"))
        await until_waiters(c, 101)
        assert not other.done()

        patched = await c.patch(status_path(), headers=writer, json={"status": "Succeeded"})
        assert patched.status_code == 200, patched.text
        for response in await asyncio.gather(*pending, other):
            assert response.headers["preference-applied"] == "wait=30"
            assert response.json()["status"] == "Succeeded"
        assert await active_waiters(c) == 0


async def test_the_total_of_waiters_is_bounded_across_principals(home: Path) -> None:
    security = SecuritySettings(rate_limit=0, max_waiters=3, max_waiters_per_principal=2)
    async with app_client(home, store=MemoryStore(), security=security) as c:
        await c.put(status_path(), headers=bearer(home), json={})
        alice, bob = bearer(home, subject="alice"), bearer(home, subject="bob")
        held = [held_get(c, alice), held_get(c, alice), held_get(c, bob)]
        await until_waiters(c, 3)
        started = time.monotonic()
        refused = await c.get(status_path(), headers={**bob, "Prefer": "wait=30"})
        assert time.monotonic() - started < 2
        assert refused.status_code == 200 and "preference-applied" not in refused.headers
        assert not any(task.done() for task in held)
        await c.patch(status_path(), headers=bearer(home), json={"percentComplete": 1})
        await asyncio.gather(*held)
        await until_waiters(c, 0)


async def test_a_wait_that_runs_out_frees_its_slot(home: Path) -> None:
    security = SecuritySettings(rate_limit=0, max_waiters_per_principal=1)
    async with app_client(home, store=MemoryStore(), security=security) as c:
        await c.put(status_path(), headers=bearer(home), json={})
        alice = bearer(home, subject="alice")
        first = held_get(c, alice, wait=1)
        await until_waiters(c, 1)
        assert "preference-applied" not in (await held_get(c, alice, wait=1)).headers
        assert (await first).headers["preference-applied"] == "wait=1"
        assert await active_waiters(c) == 0
        again = held_get(c, alice, wait=1)
        await until_waiters(c, 1)
        assert (await again).headers["preference-applied"] == "wait=1"


async def test_a_wait_that_fails_frees_its_slot(home: Path) -> None:
    """Deleted while held: the 404 ends the wait, and the slot with it."""
    security = SecuritySettings(rate_limit=0, max_waiters_per_principal=1)
    async with app_client(home, store=MemoryStore(), security=security) as c:
        await c.put(status_path(), headers=bearer(home), json={})
        held = held_get(c, bearer(home))
        await until_waiters(c, 1)
        assert (await c.delete(status_path(), headers=bearer(home))).status_code == 200
        assert_arm_error(await held, 404, "ResourceNotFound", target="operationId")
        assert await active_waiters(c) == 0


async def test_the_classic_path_is_refused_in_the_classic_form(home: Path) -> None:
    """Orchestrator and the legacy SDK parse only the classic XML error, 429 and 413 too."""
    classic = f"/{SUB_A}/operations/op1"
    headers = {**bearer(home, "Owner", "/"), "x-ms-version": "2014-10-01"}
    async with app_client(home, store=MemoryStore(), security=limited(rate_burst=1)) as c:
        await c.get(classic, headers=headers)
        throttled = await c.get(classic, headers=headers)
        too_large = await c.put(
            classic,
            headers={**headers, "Content-Type": "application/json", "Content-Length": "999999"},
            content=b"{}",
        )
    assert throttled.status_code == 429
    assert throttled.headers["content-type"].startswith("application/xml")
    assert "<Code>TooManyRequests</Code>" in throttled.text
    assert throttled.headers["retry-after"].isdigit()
    assert too_large.status_code in (413, 429)
    assert too_large.headers["content-type"].startswith("application/xml")

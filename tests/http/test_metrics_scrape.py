"""What a ``/metrics`` scrape costs and who may scrape.

The operation counts are read from the store in the background, at most once per interval
however many scrape, so that a scrape costs the same at a thousand operations as at ten
million (``bench/metrics_scrape.py`` measures it); ``--metrics-token`` closes the metrics
to anyone without that bearer token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from opstatus.queries import OperationQuery
from opstatus.security import SecuritySettings
from opstatus.stores import MemoryStore, PostgreSQLStore, SQLiteStore
from opstatus.stores.base import Store
from tests.support import app_client, bearer, status_path

from .conftest import assert_arm_error

pytestmark = pytest.mark.anyio

INTERVAL = 2.0


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return SQLiteStore(tmp_path / "db.sqlite")
    return PostgreSQLStore(request.getfixturevalue("pg_url"))


@pytest.fixture
def counting_queries(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """When each counting query of ``store`` began (its real ``counts``, noted on the way)."""
    began: list[float] = []
    count = store.counts

    async def noted(query: OperationQuery) -> dict[str, int]:
        began.append(time.monotonic())
        return await count(query)

    monkeypatch.setattr(store, "counts", noted)
    monkeypatch.setattr("opstatus.metrics.COUNTS_INTERVAL", INTERVAL, raising=False)
    return began


def operations(text: str) -> dict[str, float]:
    return {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "opstatus_operations"
    }


async def until_counted(client: httpx.AsyncClient, expected: dict[str, float]) -> None:
    deadline = time.monotonic() + 10
    while (seen := operations((await client.get("/metrics")).text)) != expected:
        assert time.monotonic() < deadline, seen
        await asyncio.sleep(0.01)


async def test_scrapes_in_one_interval_make_at_most_one_counting_query(
    home: Path, store: Store, counting_queries: list[float]
) -> None:
    async with app_client(home, store=store) as client:
        client.headers.update(bearer(home))
        for op_id, status in (("a", "InProgress"), ("b", "InProgress"), ("c", "Succeeded")):
            assert (await client.put(status_path(op_id=op_id), json={"status": status})).is_success

        async def scraper() -> None:
            for _ in range(5):
                assert (await client.get("/metrics")).status_code == 200

        started = time.monotonic()
        await asyncio.gather(*(scraper() for _ in range(8)))  # 40 scrapes from 8 scrapers
        assert time.monotonic() - started < INTERVAL, "the scrapes did not fit in one interval"
        assert len(counting_queries) == 1
        await until_counted(client, {"InProgress": 2, "Succeeded": 1})
        assert len(counting_queries) == 1

        # The next interval: one more count, which sees the new write.
        await client.put(status_path(op_id="d"), json={"status": "Failed"})
        await asyncio.sleep(counting_queries[0] + INTERVAL - time.monotonic())
        await until_counted(client, {"InProgress": 2, "Succeeded": 1, "Failed": 1})
        assert len(counting_queries) == 2
        assert counting_queries[1] - counting_queries[0] >= INTERVAL


async def test_a_scrape_does_not_wait_for_the_count(
    home: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However long counting takes (here: until released), scrapes answer meanwhile, and no
    second count starts while one runs."""
    release = asyncio.Event()
    began: list[float] = []
    count = store.counts

    async def slow(query: OperationQuery) -> dict[str, int]:
        began.append(time.monotonic())
        await release.wait()
        return await count(query)

    monkeypatch.setattr(store, "counts", slow)
    monkeypatch.setattr("opstatus.metrics.COUNTS_INTERVAL", 0.0, raising=False)
    async with app_client(home, store=store) as client:
        client.headers.update(bearer(home))
        await client.put(status_path(), json={})
        try:
            async with asyncio.timeout(2):
                await client.get("/metrics")
            await asyncio.sleep(0.1)  # the count has begun, and waits
            assert len(began) == 1
            for _ in range(3):
                async with asyncio.timeout(2):
                    response = await client.get("/metrics")
                assert response.status_code == 200
                assert operations(response.text) == {}  # nothing counted yet
            assert len(began) == 1
        finally:
            release.set()
        await until_counted(client, {"InProgress": 1})


async def test_a_long_count_is_followed_by_a_longer_pause(
    home: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A count that takes 0.2 s (a store far larger than this one) is not followed by
    another for 9 times that, however short the interval: counting takes at most a tenth
    of the time."""
    ended: list[float] = []
    count = store.counts

    async def slow(query: OperationQuery) -> dict[str, int]:
        await asyncio.sleep(0.2)
        try:
            return await count(query)
        finally:
            ended.append(time.monotonic())

    monkeypatch.setattr(store, "counts", slow)
    monkeypatch.setattr("opstatus.metrics.COUNTS_INTERVAL", 0.0, raising=False)
    async with app_client(home, store=store) as client:
        client.headers.update(bearer(home))
        await client.put(status_path(), json={})
        await until_counted(client, {"InProgress": 1})
        while time.monotonic() < ended[0] + 1.2:  # well inside the 1.8 s pause
            await client.get("/metrics")
            await asyncio.sleep(0.02)
        assert len(ended) == 1
        await client.put(status_path(op_id="b"), json={})
        await asyncio.sleep(ended[0] + 1.9 - time.monotonic())
        await until_counted(client, {"InProgress": 2})
        assert len(ended) == 2


# -- --metrics-token ---------------------------------------------------------------------------

TOKEN = "metrics-7f3a9c1e"


@pytest.fixture
async def guarded(home: Path) -> AsyncIterator[httpx.AsyncClient]:
    security = SecuritySettings(metrics_token=TOKEN)
    async with app_client(home, store=MemoryStore(), security=security) as client:
        yield client


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer ",
        "Bearer \xe9",
    ],
)
async def test_a_metrics_token_refuses_any_other_authorization(
    guarded: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization.encode("latin-1")}
    response = await guarded.get("/metrics", headers=headers)
    error = assert_arm_error(response, 401, "AuthenticationFailed")
    assert response.headers["www-authenticate"] == 'Bearer realm="metrics"'
    assert TOKEN not in error["message"] and "opstatus_" not in response.text


async def test_a_metrics_token_admits_its_bearer_and_no_api_token(
    guarded: httpx.AsyncClient, home: Path
) -> None:
    for scheme in ("Bearer", "bearer"):
        response = await guarded.get("/metrics", headers={"Authorization": f"{scheme} {TOKEN}"})
        assert response.status_code == 200
        assert "opstatus_http_requests_total" in response.text
    owner = await guarded.get("/metrics", headers=bearer(home))  # an API token is not it
    assert_arm_error(owner, 401, "AuthenticationFailed")
    # The other operability routes stay open.
    assert (await guarded.get("/healthz")).status_code == 200


@pytest.mark.parametrize("token", ["", "two words", "tab\there", "caf\xe9"])
def test_a_metrics_token_must_be_printable_ascii_without_spaces(token: str) -> None:
    with pytest.raises(ValueError, match="--metrics-token"):
        SecuritySettings(metrics_token=token).check()

"""Lists of operations over HTTP: ARM's list shape, filters, keyset paging with signed
continuation tokens, counts by status, and purge by filter (Owners only)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest

from opstatus.errors import InvalidInput
from opstatus.http import continuation
from opstatus.models import OperationDraft
from opstatus.queries import OperationFilter, Position
from opstatus.service import OperationService
from opstatus.stores import MemoryStore, SQLiteStore
from tests.support import SUB_A, SUB_B, FakeClock, app_client, bearer, status_path

from .conftest import JSON, assert_arm_error, collection_path

pytestmark = pytest.mark.anyio

API = "api-version=2025-07-01"
PROVIDER = f"/subscriptions/{SUB_A}/providers/Microsoft.Cache"


def counts_path(location: str | None = "westus") -> str:
    where = f"/locations/{location}" if location else ""
    return f"{PROVIDER}{where}/operationsStatusCounts?{API}"


def purge_path(location: str | None = "westus", sub: str = SUB_A) -> str:
    where = f"/locations/{location}" if location else ""
    return f"/subscriptions/{sub}/providers/Microsoft.Cache{where}/operationsStatus/purge?{API}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(
    home: Path, owner: dict[str, str], clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(home, store=MemoryStore(), clock=clock, max_page_size=50) as c:
        c.headers.update(owner)
        yield c


async def seed(
    c: httpx.AsyncClient,
    clock: FakeClock,
    op_id: str,
    location: str = "westus",
    sub: str = SUB_A,
    **body: Any,
) -> None:
    response = await c.put(status_path(sub=sub, op_id=op_id, location=location), json=body)
    assert response.status_code == 201, response.text
    clock.advance(1)


def names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["value"]]


async def list_all(c: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    next_link: str | None = url
    while next_link:
        response = await c.get(next_link)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) <= {"value", "nextLink"}
        items.extend(body["value"])
        next_link = body.get("nextLink")
    return items


# --- the list shape -----------------------------------------------------------------------------


async def test_list_is_arms_list_shape_newest_first(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    for i in range(3):
        await seed(client, clock, f"op-{i}", percentComplete=i * 10)
    await seed(client, clock, "elsewhere", location="eastus")
    await seed(client, clock, "other-sub", sub=SUB_B)
    response = await client.get(collection_path())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "retry-after" not in response.headers
    body = response.json()
    assert list(body) == ["value"]  # no nextLink on the last page
    assert [item["name"] for item in body["value"]] == ["op-2", "op-1", "op-0"]
    # Each item is exactly what a GET of the operation answers (the provider's shape).
    single = await client.get(status_path(op_id="op-1"))
    assert body["value"][1] == single.json()


async def test_subscription_level_list_spans_locations_of_one_provider(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await seed(client, clock, "west")
    await seed(client, clock, "east", location="East US")
    await seed(client, clock, "other-sub", sub=SUB_B)
    response = await client.get(f"{PROVIDER}/operationsStatus?{API}")
    assert names(response) == ["east", "west"]
    assert response.json()["value"][0]["id"].endswith("/locations/eastus/operationsStatus/east")


async def test_full_detail_list_shows_lifecycle_fields(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await seed(client, clock, "job", kind="backup", leaseSeconds=60)
    response = await client.get(collection_path(), headers={"Prefer": "opstatus-detail=full"})
    assert response.headers["preference-applied"] == "opstatus-detail=full"
    (item,) = response.json()["value"]
    assert item["kind"] == "backup"
    assert item["leaseSeconds"] == 60 and item["leaseState"] == "Active"


# --- filters ------------------------------------------------------------------------------------


async def test_filters_on_status_kind_and_time(client: httpx.AsyncClient, clock: FakeClock) -> None:
    await seed(client, clock, "a", status="Succeeded", kind="resize")
    await seed(client, clock, "b", status="Failed", kind="backup")
    await seed(client, clock, "c", kind="backup", startTime="2029-06-01T00:00:00Z")
    await seed(client, clock, "d", status="Running", kind="resize")
    base = collection_path()
    assert names(await client.get(f"{base}&status=failed,RUNNING")) == ["d", "b"]
    assert names(await client.get(f"{base}&status=Succeeded&status=Failed")) == ["b", "a"]
    assert names(await client.get(f"{base}&kind=backup")) == ["c", "b"]
    assert names(await client.get(f"{base}&kind=backup&status=InProgress")) == ["c"]
    assert names(await client.get(f"{base}&startedBefore=2030-01-01T00:00:00Z")) == ["c"]
    assert names(await client.get(f"{base}&STARTEDAFTER=2030-01-01T00:00:01Z")) == ["d", "b"]
    assert names(await client.get(f"{base}&endedAfter=2030-01-01")) == ["b", "a"]
    assert names(await client.get(f"{base}&endedBefore=2030-01-01T00:00:01Z")) == ["a"]


async def test_filter_on_a_cancel_request(client: httpx.AsyncClient, clock: FakeClock) -> None:
    for i in range(7):
        await seed(client, clock, f"op-{i}", kind="resize" if i % 2 else "backup")
    for i in (1, 2, 5):
        cancel = await client.post(status_path(op_id=f"op-{i}").replace("?", "/cancel?"))
        assert cancel.status_code == 202, cancel.text
    base = collection_path()
    assert names(await client.get(f"{base}&cancelRequested=true")) == ["op-5", "op-2", "op-1"]
    assert names(await client.get(f"{base}&cancelRequested=false")) == [
        "op-6",
        "op-4",
        "op-3",
        "op-0",
    ]
    watched = f"{base}&status=InProgress&kind=resize&CANCELREQUESTED=true"
    assert names(await client.get(watched)) == ["op-5", "op-1"]
    paged = await list_all(client, f"{base}&cancelRequested=true&maxpagesize=1")
    assert [item["name"] for item in paged] == ["op-5", "op-2", "op-1"]  # the token keeps it
    first = (await client.get(f"{base}&cancelRequested=true&maxpagesize=1")).json()
    response = await client.get(first["nextLink"] + "&cancelRequested=false")
    assert_arm_error(response, 400, "InvalidContinuationToken", target="$skipToken")
    counts = (await client.get(f"{counts_path()}&cancelRequested=true")).json()
    assert counts == {"counts": {"InProgress": 3}, "total": 3}


@pytest.mark.parametrize(
    ("query", "target"),
    [
        ("cancelRequested=yes", "cancelRequested"),
        ("cancelRequested=True", "cancelRequested"),
        ("cancelRequested=", "cancelRequested"),
        ("status=Cancelled", "status"),
        ("status=not%20a%20word", "status"),
        ("kind=a%20b", "kind"),
        ("startedAfter=yesterday", "startedAfter"),
        ("maxpagesize=0", "maxpagesize"),
        ("maxpagesize=ten", "maxpagesize"),
    ],
)
async def test_bad_filters_are_400(client: httpx.AsyncClient, query: str, target: str) -> None:
    response = await client.get(f"{collection_path()}&{query}")
    assert_arm_error(response, 400, "InvalidRequestContent", target=target)


# --- paging -------------------------------------------------------------------------------------


async def test_pages_follow_next_links_with_filters_kept(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    for i in range(25):
        await seed(client, clock, f"op-{i:02d}", status="Failed" if i % 2 else "InProgress")
    first = await client.get(f"{collection_path()}&maxpagesize=4&status=Failed")
    body = first.json()
    assert len(body["value"]) == 4
    link = urlsplit(body["nextLink"])
    assert (link.scheme, link.netloc) == ("http", "testserver")  # absolute
    assert link.path == f"{PROVIDER}/locations/westus/operationsStatus"
    query = parse_qs(link.query)
    assert query["api-version"] == ["2025-07-01"]
    assert set(query) == {"api-version", "$skipToken"}
    everything = await list_all(client, f"{collection_path()}&maxpagesize=4&status=Failed")
    expected = [f"op-{i:02d}" for i in range(23, 0, -2)]
    assert [item["name"] for item in everything] == expected


async def test_page_size_is_capped_by_the_server(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    for i in range(60):
        await seed(client, clock, f"op-{i:02d}")
    response = await client.get(f"{collection_path()}&maxpagesize=100000")
    assert len(response.json()["value"]) == 50  # the server's max_page_size
    default = await client.get(collection_path())
    assert len(default.json()["value"]) == 50  # default 100, capped too
    assert len(await list_all(client, collection_path())) == 60


async def next_link_of(client: httpx.AsyncClient, clock: FakeClock) -> str:
    for i in range(3):
        await seed(client, clock, f"op-{i}")
    response = await client.get(f"{collection_path()}&maxpagesize=1&kind=")
    link: str = response.json()["nextLink"]
    return link


def tamper(link: str, change: Any) -> str:
    base, token = link.split("$skipToken=")
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    change(raw)
    return base + "$skipToken=" + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def _flip_position(raw: bytearray) -> None:
    raw[raw.index(b"op-2")] = ord("O")


def _flip_tag(raw: bytearray) -> None:
    raw[-1] ^= 1


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda link: tamper(link, _flip_position), id="changed-position"),
        pytest.param(lambda link: tamper(link, _flip_tag), id="changed-signature"),
        pytest.param(lambda link: link[:-10], id="truncated"),
        pytest.param(lambda link: link + "%%%", id="not-base64"),
        pytest.param(lambda link: link.split("$skipToken=")[0] + "$skipToken=", id="empty"),
        pytest.param(lambda link: link.split("$skipToken=")[0] + "$skipToken=e30", id="forged"),
        pytest.param(lambda link: link + "&status=Failed", id="other-filters"),
        pytest.param(lambda link: link.replace("/locations/westus", ""), id="other-scope"),
        pytest.param(lambda link: link.replace("westus", "eastus"), id="other-location"),
    ],
)
async def test_a_tampered_or_misused_continuation_token_is_400(
    client: httpx.AsyncClient, clock: FakeClock, change: Any
) -> None:
    link = await next_link_of(client, clock)
    assert (await client.get(link)).status_code == 200
    response = await client.get(change(link))
    assert_arm_error(response, 400, "InvalidContinuationToken", target="$skipToken")


async def test_a_token_from_another_subscription_is_refused(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    link = await next_link_of(client, clock)
    response = await client.get(link.replace(SUB_A, SUB_B))
    assert_arm_error(response, 400, "InvalidContinuationToken", target="$skipToken")


async def test_a_token_works_with_the_same_filters_repeated(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    for i in range(3):
        await seed(client, clock, f"op-{i}", status="Failed")
    first = await client.get(f"{collection_path()}&status=Failed&maxpagesize=2")
    link = first.json()["nextLink"]
    response = await client.get(f"{link}&status=failed&maxpagesize=5")
    assert names(response) == ["op-0"]


async def test_tokens_survive_a_restart_with_the_same_key(
    home: Path, owner: dict[str, str], clock: FakeClock, tmp_path: Path
) -> None:
    store_url = f"sqlite:///{tmp_path / 'ops.db'}"
    async with app_client(home, clock=clock, store_url=store_url) as c:
        c.headers.update(owner)
        for i in range(3):
            await seed(c, clock, f"op-{i}")
        link = (await c.get(f"{collection_path()}&maxpagesize=2")).json()["nextLink"]
    async with app_client(home, clock=clock, store_url=store_url) as c:
        c.headers.update(owner)
        assert names(await c.get(link)) == ["op-0"]


async def test_paging_over_10000_operations_while_more_are_created(
    home: Path, owner: dict[str, str], tmp_path: Path
) -> None:
    """Every operation existing when the list starts is returned exactly once, however many
    are created meanwhile; the real store (SQLite), its index and the HTTP layer together."""
    store = SQLiteStore(tmp_path / "ops.db")
    async with app_client(home, store=store, max_page_size=1000) as c:
        c.headers.update(owner)
        service = OperationService(store)
        seeded = set()
        for i in range(10_000):
            op_id = f"seed-{i:05d}"
            await service.create(OperationDraft(SUB_A, op_id, "Microsoft.Cache", "westus"))
            seeded.add(op_id)
        created_meanwhile: list[str] = []
        stop = asyncio.Event()

        async def create_more() -> None:
            n = 0
            while not stop.is_set():
                response = await c.post(collection_path(), json={}, headers=JSON)
                assert response.status_code == 201, response.text
                created_meanwhile.append(response.json()["name"])
                n += 1
                await asyncio.sleep(0)

        creator = asyncio.create_task(create_more())
        seen: list[str] = []
        pages = 0
        next_link: str | None = f"{collection_path()}&maxpagesize=1000"
        while next_link:
            response = await c.get(next_link)
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["value"]) <= 1000
            seen.extend(item["name"] for item in body["value"])
            next_link = body.get("nextLink")
            pages += 1
            await asyncio.sleep(0.01)  # let creates land between pages
        stop.set()
        await creator

    assert created_meanwhile, "operations should have been created while paging"
    assert len(seen) == len(set(seen)), "an operation was returned twice"
    assert seeded <= set(seen), f"missing: {sorted(seeded - set(seen))[:5]}"
    assert set(seen) <= seeded | set(created_meanwhile)
    assert pages >= 10


# --- counts -------------------------------------------------------------------------------------


async def test_counts_by_status(client: httpx.AsyncClient, clock: FakeClock) -> None:
    await seed(client, clock, "a", status="Succeeded")
    await seed(client, clock, "b", status="Failed", kind="backup")
    await seed(client, clock, "c", kind="backup")
    await seed(client, clock, "d", location="eastus")
    response = await client.get(counts_path())
    assert response.status_code == 200
    assert response.json() == {
        "counts": {"Failed": 1, "InProgress": 1, "Succeeded": 1},
        "total": 3,
    }
    everywhere = await client.get(counts_path(location=None))
    assert everywhere.json()["total"] == 4
    backups = await client.get(counts_path() + "&kind=backup")
    assert backups.json() == {"counts": {"Failed": 1, "InProgress": 1}, "total": 2}


# --- purge --------------------------------------------------------------------------------------


async def test_purge_is_for_owners(home: Path, client: httpx.AsyncClient) -> None:
    contributor = bearer(home, "Contributor", f"/subscriptions/{SUB_A}")
    response = await client.post(purge_path(), headers=contributor)
    assert_arm_error(response, 403, "AuthorizationFailed")
    assert "Microsoft.Cache/locations/operationsStatus/purge/action" in response.text
    owner_elsewhere = bearer(home, "Owner", f"/subscriptions/{SUB_B}")
    response = await client.post(purge_path(), headers=owner_elsewhere)
    assert_arm_error(response, 403, "AuthorizationFailed")


async def test_purge_by_filter_leaves_expired_answers(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await seed(client, clock, "old-failure", status="Failed")
    await seed(client, clock, "old-success", status="Succeeded")
    await seed(client, clock, "running")
    await seed(client, clock, "east-failure", location="eastus", status="Failed")
    clock.advance(3600)
    await seed(client, clock, "new-failure", status="Failed")
    response = await client.post(
        purge_path() + "&endedBefore=2030-01-01T00:30:00Z&status=Failed,InProgress"
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"purged": 1}
    gone = await client.get(status_path(op_id="old-failure"))
    error = assert_arm_error(gone, 404, "OperationExpired", target="operationId")
    assert "purged" in error["message"]
    for kept in ("old-success", "running", "new-failure"):
        assert (await client.get(status_path(op_id=kept))).status_code == 200
    everything = await client.post(purge_path(location=None))
    assert everything.json() == {"purged": 3}  # every terminal one, in every location
    assert (await client.get(status_path(op_id="running"))).status_code == 200


async def test_an_operation_may_still_be_called_purge(client: httpx.AsyncClient) -> None:
    assert (await client.put(status_path(op_id="purge"), json={})).status_code == 201
    assert (await client.get(status_path(op_id="purge"))).json()["name"] == "purge"
    response = await client.get(purge_path(location=None))
    assert_arm_error(response, 405, "MethodNotAllowed")
    assert response.headers["allow"] == "POST"


# --- who may list -------------------------------------------------------------------------------


async def test_readers_list_and_count_their_subscription_only(
    home: Path, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await seed(client, clock, "op")
    reader = bearer(home, "Reader", f"/subscriptions/{SUB_A}")
    assert names(await client.get(collection_path(), headers=reader)) == ["op"]
    assert (await client.get(counts_path(), headers=reader)).status_code == 200
    response = await client.get(collection_path(sub=SUB_B), headers=reader)
    assert_arm_error(response, 403, "AuthorizationFailed")
    anonymous = await client.get(collection_path(), headers={"Authorization": ""})
    assert anonymous.status_code == 401
    missing_version = await client.get(collection_path(api_version=None))
    assert_arm_error(missing_version, 400, "MissingApiVersionParameter", target="api-version")


async def test_tokens_carry_the_cancel_filter_and_older_tokens_still_read() -> None:
    key = continuation.paging_key(b"k" * 32)
    after = Position("2024-05-01T10:00:00.000Z", SUB_A, "op-1")
    scope = (SUB_A, "microsoft.cache", "westus")
    token = continuation.Continuation(scope, OperationFilter(cancel_requested=False), 10, after)
    assert continuation.decode(key, continuation.encode(key, token)) == token

    def signed(filters: list[Any]) -> str:
        payload = orjson.dumps([1, list(scope), filters, 10, list(dataclasses.astuple(after))])
        tag = hmac.new(key, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(payload + tag).rstrip(b"=").decode()

    six = [[], ["resize"], None, None, None, None]  # a token issued before cancelRequested
    old = continuation.decode(key, signed(six))
    assert old.filter == OperationFilter(kinds=frozenset({"resize"}))
    seven = [*six, True]  # a token issued before idPrefix
    assert continuation.decode(key, signed(seven)).filter.cancel_requested is True
    for bad in ([*six, "yes"], [*six, 1], [*seven, 5], [*seven, None, None]):
        with pytest.raises(InvalidInput):
            continuation.decode(key, signed(bad))

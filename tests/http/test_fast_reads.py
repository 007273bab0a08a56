"""Fast reads (http/fast_reads.py) answer exactly as the app does, or not at all.

Each case sends the same GET both ways: through the ASGI app (middlewares, router, handler)
and to the protocol lane, whose raw HTTP response is parsed here. The two must agree on the
status, the body and every header but the two that differ per response (x-ms-request-id,
and Date, which may cross a second). The lane must decline (None) whatever it does not
answer itself, so that the app answers it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opstatus.http.app import OpstatusApp
from opstatus.http.headers import ArmHeadersMiddleware
from opstatus.security import SecuritySettings
from opstatus.server import build_app
from opstatus.server.fast_lane import _http_response
from opstatus.settings import Settings
from opstatus.stores import MemoryStore, PostgreSQLStore
from opstatus.stores.base import Store
from opstatus.stores.sqlite import SQLiteStore
from tests.support import SUB_A, SUB_B, FakeClock, status_path, token

pytestmark = pytest.mark.anyio

PROVIDERS = """
[[provider]]
namespace = "Contoso.Flat"
api_versions = ["2024-01-01"]
error_shape = "flat"
"""
PER_RESPONSE = {"x-ms-request-id", "date"}
#: What uvicorn's scope says of the connection, as httpx's ASGITransport does for the app.
CONNECTION = {"scheme": "http", "server": ("testserver", 80)}


def raw_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """The request's headers as uvicorn passes them: Host first (``testserver`` unless
    ``headers`` names another)."""
    raw = [(b"host", headers.get("Host", "testserver").encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items() if k != "Host"]
    return raw


class Both:
    """One app, reached the ordinary way (middlewares, router, handler), through its ASGI
    lane, and through its protocol lane."""

    def __init__(self, app: OpstatusApp, client: httpx.AsyncClient, home: Path) -> None:
        self.app, self.client, self.home = app, client, home
        assert app.fast_reads is not None
        self.reads = app.fast_reads
        ordinary = httpx.ASGITransport(app=ArmHeadersMiddleware(app.app))
        self.ordinary = httpx.AsyncClient(transport=ordinary, base_url="http://testserver")
        self.reader = token(home, "Reader", f"/subscriptions/{SUB_A}", "reader")
        # As a first request through the app would: the lane serves only tokens seen before.
        app.app.state.ctx.verifier.authenticate(f"Bearer {self.reader}")

    async def put(self, path: str, body: dict[str, Any]) -> None:
        owner = {"Authorization": f"Bearer {token(self.home)}"}
        response = await self.client.put(path, json=body, headers=owner)
        assert response.status_code in (200, 201), response.text

    async def via_app(self, path: str, headers: dict[str, str]) -> httpx.Response:
        """The ordinary way: the router's handler."""
        return await self.ordinary.get(path, headers=headers)

    async def via_lane(self, path: str, headers: dict[str, str]) -> httpx.Response | None:
        """The ASGI lane, or None when it leaves the request to the app."""
        raw = raw_headers(headers)
        path, _, query = path.partition("?")
        scope = {"type": "http", "method": "GET", "path": path, "query_string": query.encode()}
        scope.update(CONNECTION)
        messages: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)

        if not await self.reads.serve({**scope, "headers": raw}, send):  # type: ignore[arg-type]
            assert messages == []
            return None
        start, body = messages
        return httpx.Response(start["status"], headers=start["headers"], content=body["body"])

    async def protocol_lane(
        self, path: str, headers: dict[str, str], keep_alive: bool = True
    ) -> bytes | None:
        """The protocol's lane (server/fast_lane.py): the status read at once on a
        store that reads without waiting, else in a batch; None when it leaves the request
        to the app."""
        raw = raw_headers(headers)
        lane = self.reads
        path, _, query = path.partition("?")
        scope = {"path": path, "query_string": query.encode(), "headers": raw, **CONNECTION}
        admitted = lane.admit(scope)  # type: ignore[arg-type]
        if admitted is None:
            return None
        if lane.immediate:
            (status,) = lane.statuses_now([admitted])
        else:
            (status,) = await lane.statuses([admitted])
        answer = lane.respond(admitted, status, raw, time.perf_counter())
        return None if answer is None else _http_response(*answer, keep_alive)

    def bearer(self, value: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {value or self.reader}"}


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    assert status_line == "HTTP/1.1 200 OK"
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(": ")
        assert name == name.lower() and name not in headers
        headers[name] = value
    assert int(headers["content-length"]) == len(body)
    return 200, headers, body


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """Memory and SQLite read each status at once; PostgreSQL reads them in batches."""
    if request.param == "memory":
        return MemoryStore()
    if request.param == "sqlite":
        return SQLiteStore(tmp_path / "db.sqlite")
    return PostgreSQLStore(request.getfixturevalue("pg_url"))


@pytest.fixture
async def both(store: Store, tmp_path: Path) -> AsyncIterator[Both]:
    (tmp_path / "providers.toml").write_text(PROVIDERS)
    settings = Settings(
        home=tmp_path,
        providers_file=tmp_path / "providers.toml",
        security=SecuritySettings(rate_limit=0),
        maintenance_interval=0,
    )
    app = build_app(settings, store=store, clock=FakeClock())
    async with app.app.router.lifespan_context(app.app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Both(app, client, tmp_path)


BODIES: list[dict[str, Any]] = [
    {"status": "InProgress"},
    {"status": "InProgress", "percentComplete": 40, "startTime": "2030-01-01T00:00:00Z"},
    {"status": "Succeeded", "properties": {"size": 3}},
    {"status": "Failed", "error": {"code": "Boom", "message": "it broke", "target": "x"}},
    {"status": "Canceled"},
]
ECHO = {
    "x-ms-correlation-request-id": "corr-1",
    "x-ms-client-request-id": "client-1",
    "x-ms-return-client-request-id": "true",
}


@pytest.mark.parametrize("body", BODIES, ids=lambda b: b["status"])
@pytest.mark.parametrize("namespace", ["Microsoft.Cache", "Contoso.Flat"])
@pytest.mark.parametrize("echo", [False, True])
async def test_the_same_answer_both_ways(
    both: Both, body: dict[str, Any], namespace: str, echo: bool
) -> None:
    api = "2025-07-01" if namespace == "Microsoft.Cache" else "2024-01-01"
    path = status_path(op_id="Op-1", namespace=namespace, api_version=api)
    await both.put(path, body)
    headers = {**both.bearer(), **(ECHO if echo else {})}
    expected = await both.via_app(path, headers)
    assert expected.status_code == 200
    raw = await both.protocol_lane(path, headers)
    assert raw is not None
    _, got, content = parse(raw)
    assert content == expected.content
    per_response = PER_RESPONSE if echo else {*PER_RESPONSE, "x-ms-correlation-request-id"}
    want = {k: v for k, v in expected.headers.items() if k not in per_response}
    assert {k: v for k, v in got.items() if k not in per_response} == want
    if not echo:  # a correlation id of its own: the request's id, as the app makes it
        assert got["x-ms-correlation-request-id"] == got["x-ms-request-id"]
        assert (
            expected.headers["x-ms-correlation-request-id"] == expected.headers["x-ms-request-id"]
        )
    assert got["x-ms-request-id"] != expected.headers["x-ms-request-id"]
    assert len(got["x-ms-request-id"]) == 36 and got["x-ms-request-id"][14] == "4"
    lane = await both.via_lane(path, headers)
    assert lane is not None and lane.content == expected.content
    lane_headers = {k: v for k, v in lane.headers.items() if k not in per_response}
    assert lane_headers == want
    assert (await both.client.get(path, headers=headers)).content == expected.content
    # Another spelling of the same address (ARM compares these case-insensitively).
    other = path.replace("operationsStatus", "OPERATIONSSTATUS").replace("Op-1", "op-1")
    assert parse(await both.protocol_lane(other, headers) or b"")[2] == content


async def test_a_connection_that_closes_says_so(both: Both) -> None:
    await both.put(status_path(), {"status": "InProgress"})
    raw = await both.protocol_lane(status_path(), both.bearer(), keep_alive=False)
    assert raw is not None and parse(raw)[1]["connection"] == "close"
    raw = await both.protocol_lane(status_path(), both.bearer())
    assert raw is not None and "connection" not in parse(raw)[1]


async def test_declines_what_the_app_must_answer(both: Both) -> None:
    await both.put(status_path(), {"status": "InProgress"})
    await both.put(status_path(op_id="old"), {"status": "Succeeded"})
    assert (await both.via_app(status_path(), both.bearer())).status_code == 200
    unseen = token(both.home, "Reader", f"/subscriptions/{SUB_A}", "someone-new")
    cases: dict[str, tuple[str, dict[str, str]]] = {
        "token never verified": (status_path(), both.bearer(unseen)),
        "no token": (status_path(), {}),
        "not a bearer token": (status_path(), {"Authorization": "Basic abc"}),
        "another subscription (403)": (status_path(sub=SUB_B), both.bearer()),
        "no such operation (404)": (status_path(op_id="nope"), both.bearer()),
        "no api-version": (status_path(api_version=None), both.bearer()),
        "unknown api-version": (status_path(api_version="1999-01-01"), both.bearer()),
        "more than an api-version": (status_path() + "&x=1", both.bearer()),
        "wrong location": (status_path(location="eastus"), both.bearer()),
        "percent-escaped": (status_path(location="West%20US"), both.bearer()),
        "Prefer: wait": (status_path(), {**both.bearer(), "Prefer": "wait=1"}),
        "Prefer: full detail": (
            status_path(),
            {**both.bearer(), "Prefer": "opstatus-detail=full"},
        ),
        "a body": (status_path(), {**both.bearer(), "Content-Length": "2"}),
        "another route": (status_path().replace("op1?", "op1/cancel?"), both.bearer()),
    }
    for name, (path, headers) in cases.items():
        assert await both.protocol_lane(path, headers) is None, name
        if name not in ("no such operation (404)", "wrong location"):  # 404s: see below
            assert await both.via_lane(path, headers) is None, name
    # The ASGI lane answers a 404 itself (one lookup, not two), exactly as the app does.
    lane = await both.via_lane(status_path(op_id="nope"), both.bearer())
    app = await both.via_app(status_path(op_id="nope"), both.bearer())
    assert lane is not None and (lane.status_code, lane.content) == (404, app.content)
    drop = {*PER_RESPONSE, "x-ms-correlation-request-id"}
    assert {k: v for k, v in lane.headers.items() if k not in drop} == {
        k: v for k, v in app.headers.items() if k not in drop
    }
    # The app, which answers them instead, is unchanged by the lane's having looked.
    assert (await both.via_app(status_path(sub=SUB_B), both.bearer())).status_code == 403
    assert (await both.via_app(status_path(op_id="nope"), both.bearer())).status_code == 404


async def test_declines_expired_and_lapsed_operations(both: Both) -> None:
    clock = both.app.app.state.ctx.service.clock
    await both.put(status_path(op_id="done"), {"status": "Succeeded"})
    await both.put(status_path(op_id="leased"), {"status": "InProgress", "leaseSeconds": 60})
    assert await both.protocol_lane(status_path(op_id="done"), both.bearer()) is not None
    assert await both.protocol_lane(status_path(op_id="leased"), both.bearer()) is not None
    clock.advance(days=400)
    assert await both.protocol_lane(status_path(op_id="done"), both.bearer()) is None
    assert await both.protocol_lane(status_path(op_id="leased"), both.bearer()) is None
    lapsed = await both.via_app(status_path(op_id="leased"), both.bearer())
    assert lapsed.json()["status"] == "Failed"  # the app records the lapse
    expired = await both.via_app(status_path(op_id="done"), both.bearer())
    assert expired.json()["error"]["code"] == "OperationExpired"


async def test_counts_in_the_metrics_like_the_app(both: Both) -> None:
    await both.put(status_path(), {"status": "InProgress"})
    await both.via_app(status_path(), both.bearer())
    for _ in range(3):
        assert await both.protocol_lane(status_path(), both.bearer()) is not None
    metrics = both.app.app.state.metrics
    route = both.reads.template
    assert metrics.requests.value((route, "GET", "200")) == 4


def test_the_protocol_reads_each_store_the_way_it_can(tmp_path: Path) -> None:
    """At once where reads do not wait (SQLite, memory), in batches on PostgreSQL, and not
    at all on a store that offers neither (the ASGI lane still answers there)."""
    settings = Settings(home=tmp_path, maintenance_interval=0)
    postgres = build_app(settings, store=PostgreSQLStore("postgresql://postgres@127.0.0.1:1/x"))
    assert postgres.fast_reads is not None
    assert postgres.fast_reads.batched and not postgres.fast_reads.immediate
    memory = build_app(settings, store=MemoryStore())
    assert memory.fast_reads is not None and memory.fast_reads.immediate

    class PlainStore(MemoryStore):
        statuses_now = None  # type: ignore[assignment]

    plain = build_app(settings, store=PlainStore())
    assert plain.fast_reads is not None
    assert not plain.fast_reads.immediate and not plain.fast_reads.batched


async def test_fast_reads_off_leaves_every_read_to_the_app(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, maintenance_interval=0, fast_reads=False)
    app = build_app(settings, store=MemoryStore())
    assert app.fast_reads is None


async def test_a_foreign_host_gets_the_apps_400_from_every_lane(both: Both) -> None:
    """Neither lane answers a status read naming a Host the server does not answer for
    (http/hosts.py): the app refuses it, whichever lane it reached first."""
    await both.put(status_path(), {"status": "InProgress"})
    foreign = {**both.bearer(), "Host": "evil.example"}
    assert await both.protocol_lane(status_path(), foreign) is None
    assert await both.via_lane(status_path(), foreign) is None
    assert await both.via_lane(status_path(op_id="nope"), foreign) is None  # not even a 404
    for response in (
        await both.via_app(status_path(), foreign),
        await both.client.get(status_path(), headers=foreign),
    ):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "HostNotAllowed"
    # The loopback names on the server's port are the server's own: answered by the lane.
    for host in ("localhost", "127.0.0.1:80", "TESTSERVER"):
        raw = await both.protocol_lane(status_path(), {**both.bearer(), "Host": host})
        assert raw is not None, host
        assert parse(raw)[0] == 200

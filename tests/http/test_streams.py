"""Server-Sent Events (``http/streams.py``, ``event_tail.py``) in-process: the wire format,
catching up with ``Last-Event-ID``, scopes and filters, errors, limits, heartbeats, a stream
that falls behind, shutdown, and one reader of the log for many streams.

httpx's ASGITransport answers only once the app has finished, so a stream is driven here by
:class:`Stream`, a minimal ASGI client that hands each body chunk over as it is sent and can
stop reading (its ``send`` blocks) or disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from opstatus.events import EventScope, Position
from opstatus.security import SecuritySettings
from opstatus.server.wiring import build_app
from opstatus.settings import Settings
from opstatus.stores import MemoryStore, PostgreSQLStore, SQLiteStore
from opstatus.stores.base import Store
from tests.support import SUB_A, SUB_B, bearer, status_path

from .conftest import collection_path

pytestmark = pytest.mark.anyio

SSE = {"Accept": "text/event-stream"}


class Stream:
    """One GET driven through the app by hand: its start, then its body as it comes."""

    def __init__(self, app: Any, path: str, headers: dict[str, str]) -> None:
        parts = urlsplit(path)
        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": parts.path,
            "raw_path": parts.path.encode(),
            "query_string": parts.query.encode(),
            "root_path": "",
            "headers": [(b"host", b"testserver")]
            + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        self.app = app
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.gone = asyncio.Event()
        self.reading = asyncio.Event()
        self.reading.set()
        self.asked = False
        self.status = 0
        self.headers: dict[str, str] = {}
        self.text = ""
        self.ended = False
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Stream:
        self.task = asyncio.create_task(self.app(self.scope, self._receive, self._send))
        start = await asyncio.wait_for(self.messages.get(), 10)
        assert start["type"] == "http.response.start"
        self.status = start["status"]
        self.headers = {k.decode(): v.decode() for k, v in start["headers"]}
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.gone.set()
        self.reading.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)

    async def _receive(self) -> dict[str, Any]:
        if not self.asked:
            self.asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        await self.reading.wait()  # a client that stops reading holds the sender here
        await self.messages.put(message)

    async def read_more(self, timeout: float = 10) -> bool:
        """Take the next body chunk; False when the answer has ended."""
        if self.ended:
            return False
        message = await asyncio.wait_for(self.messages.get(), timeout)
        self.text += message.get("body", b"").decode()
        if not message.get("more_body", False):
            self.ended = True
        return True

    def blocks(self) -> list[dict[str, str]]:
        """The SSE blocks read so far (comments as ``{"comment": ...}``)."""
        found = []
        for block in self.text.split("\n\n")[:-1]:
            fields: dict[str, str] = {}
            for line in block.split("\n"):
                name, _, value = line.partition(":")
                fields[name or "comment"] = value.removeprefix(" ")
            found.append(fields)
        return found

    def events(self) -> list[dict[str, str]]:
        return [b for b in self.blocks() if "data" in b]

    async def until_events(self, count: int, timeout: float = 10) -> list[dict[str, str]]:
        while len(self.events()) < count:
            assert await self.read_more(timeout), self.text
        return self.events()

    async def until_end(self, timeout: float = 10) -> None:
        while await self.read_more(timeout):
            pass

    async def error(self) -> dict[str, Any]:
        await self.until_end()
        body: dict[str, Any] = orjson.loads(self.text)
        return body


def name_of(event: dict[str, str]) -> str:
    name: str = orjson.loads(event["data"])["operation"]["name"]
    return name


class Env:
    def __init__(self, app: Any, client: httpx.AsyncClient, store: Store, home: Path) -> None:
        self.app = app
        self.client = client
        self.store = store
        self.home = home

    def stream(self, path: str, headers: dict[str, str] | None = None, **auth: str) -> Stream:
        given = {**SSE, **bearer(self.home, **auth), **(headers or {})}
        return Stream(self.app, path, given)

    async def put(self, op_id: str = "op1", **body: Any) -> None:
        location = body.pop("location", "westus")
        response = await self.client.put(status_path(op_id=op_id, location=location), json=body)
        assert response.status_code == 201, response.text

    async def patch(self, op_id: str = "op1", **body: Any) -> None:
        response = await self.client.patch(status_path(op_id=op_id), json=body)
        assert response.status_code == 200, response.text


@contextlib.asynccontextmanager
async def environment(home: Path, store: Store, **settings: Any) -> AsyncIterator[Env]:
    security = settings.pop("security", SecuritySettings(rate_limit=0))
    app = build_app(Settings(home=home, security=security, **settings), store=store)
    inner = app.app
    async with inner.router.lifespan_context(inner):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            c.headers.update(bearer(home))
            yield Env(app, c, store, home)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryStore()
    if request.param == "sqlite":
        return SQLiteStore(tmp_path / "db.sqlite")
    return PostgreSQLStore(request.getfixturevalue("pg_url"))


@pytest.fixture
async def env(home: Path, store: Store) -> AsyncIterator[Env]:
    async with environment(home, store) as e:
        yield e


@pytest.fixture
async def mem(home: Path) -> AsyncIterator[Env]:
    async with environment(home, MemoryStore()) as e:
        yield e


async def test_an_operation_stream_replays_its_events_then_streams_until_terminal(
    env: Env,
) -> None:
    await env.put(percentComplete=10)
    await env.patch(percentComplete=20)
    async with env.stream(status_path()) as stream:
        assert stream.status == 200
        assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert stream.headers["cache-control"] == "no-store"
        assert "x-ms-request-id" in stream.headers
        first = await stream.until_events(2)
        assert [e["event"] for e in first] == ["operation.created", "operation.progress"]
        await env.patch(percentComplete=60)
        await env.patch(status="Succeeded")
        await stream.until_end()
    events = stream.events()
    assert [e["event"] for e in events] == [
        "operation.created",
        "operation.progress",
        "operation.progress",
        "operation.status",
    ]
    bodies = [orjson.loads(e["data"]) for e in events]
    assert [b["sequence"] for b in bodies] == [1, 2, 3, 4]
    assert [e["id"] for e in events] == [b["id"] for b in bodies]
    last = bodies[-1]
    assert set(last) == {
        "id", "type", "sequence", "time", "subscriptionId", "provider", "location", "operation"
    }  # fmt: skip
    assert last["type"] == "operation.status" and last["subscriptionId"] == SUB_A
    assert last["operation"]["status"] == "Succeeded"
    assert last["operation"]["name"] == "op1"
    # Ids are store-wide positions, increasing.
    positions = [tuple(int(p) for p in e["id"].split("-")) for e in events]
    assert positions == sorted(positions) and len(set(positions)) == 4


async def test_last_event_id_resumes_after_it_and_a_terminal_operation_ends_at_once(
    env: Env,
) -> None:
    await env.put()
    await env.patch(percentComplete=50)
    await env.patch(status="Failed", error={"code": "Boom", "message": "broke"})
    async with env.stream(status_path()) as whole:
        await whole.until_end()
    ids = [e["id"] for e in whole.events()]
    assert [e["event"] for e in whole.events()] == [
        "operation.created",
        "operation.progress",
        "operation.error",
    ]
    async with env.stream(status_path(), {"Last-Event-ID": ids[0]}) as resumed:
        await resumed.until_end()
    assert [e["id"] for e in resumed.events()] == ids[1:]
    async with env.stream(status_path(), {"Last-Event-ID": ids[-1]}) as after_end:
        await after_end.until_end()
    assert after_end.events() == []


async def test_a_scope_stream_sees_every_change_in_its_scope_only(env: Env) -> None:
    await env.put("before")
    path = collection_path(location="westus") + "&status=Succeeded,InProgress"
    async with env.stream(path) as stream:
        await stream.read_more()
        [start] = stream.blocks()
        assert set(start) == {"id"}  # where it starts: a reconnect from here misses nothing
        await env.put("other-place", location="eastus")
        await env.put("op1")
        await env.patch("op1", status="Failed")  # filtered out by status
        await env.put("op2")
        await env.patch("op2", status="Succeeded")
        # On PostgreSQL an event committed just before the stream opened can still be
        # unreadable when it starts (an older transaction open); it then comes after the
        # start id, as a resume from that id would give it too.
        while len([e for e in stream.events() if name_of(e) != "before"]) < 3:
            assert await stream.read_more(), stream.text
        events = stream.events()
    names = [(name_of(e), e["event"]) for e in events if name_of(e) != "before"]
    assert names == [
        ("op1", "operation.created"),
        ("op2", "operation.created"),
        ("op2", "operation.status"),
    ]
    # Resuming from the start id gives the same events from the log.
    async with env.stream(path, {"Last-Event-ID": start["id"]}) as resumed:
        again = await resumed.until_events(len(events))
    assert [e["id"] for e in again] == [e["id"] for e in events]


async def test_a_provider_wide_stream_and_a_subscription_stream_with_filters(env: Env) -> None:
    provider_path = (
        f"/subscriptions/{SUB_A}/providers/Microsoft.Cache/operationsStatus?api-version=2025-07-01"
    )
    sub_path = (
        f"/subscriptions/{SUB_A}/operationsStatusEvents?provider=microsoft.cache"
        "&location=EastUS&status=Succeeded"
    )
    async with env.stream(provider_path) as provider, env.stream(sub_path) as sub:
        await env.put("w1")
        await env.put("e1", location="eastus")
        response = await env.client.patch(
            status_path(op_id="e1", location="eastus"), json={"status": "Succeeded"}
        )
        assert response.status_code == 200
        by_provider = await provider.until_events(3)
        by_sub = await sub.until_events(1)
    assert [orjson.loads(e["data"])["operation"]["name"] for e in by_provider] == [
        "w1",
        "e1",
        "e1",
    ]
    [only] = by_sub
    assert only["event"] == "operation.status"
    assert orjson.loads(only["data"])["location"] == "eastus"


async def test_a_json_get_is_unchanged_and_head_starts_no_stream(mem: Env) -> None:
    await mem.put()
    plain = await mem.client.get(status_path())
    assert plain.status_code == 200 and plain.json()["name"] == "op1"
    either = await mem.client.get(
        status_path(), headers={"Accept": "text/event-stream, application/json"}
    )
    assert either.headers["content-type"] == "application/json"
    head = await mem.client.head(status_path(), headers=SSE)
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/event-stream")
    assert mem.app.app.state.ctx.streams.waiting == 0


@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [
        (status_path(op_id="nope"), {}, 404, "ResourceNotFound"),
        (status_path(), {"Last-Event-ID": "yesterday"}, 400, "InvalidRequestContent"),
        (collection_path() + "&since=1", {}, 400, "InvalidRequestContent"),
        (f"/subscriptions/{SUB_A}/operationsStatusEvents?foo=1", {}, 400, "InvalidRequestContent"),
        (f"/subscriptions/{SUB_A}/operationsStatusEvents?status=cancelled", {}, 400, None),
        (status_path(api_version="1999-01-01"), {}, 400, None),
        ("/subscriptions/not-a-guid/operationsStatusEvents", {}, 400, None),
    ],
)
async def test_bad_requests_get_arms_envelope(
    mem: Env, path: str, headers: dict[str, str], status: int, code: str | None
) -> None:
    await mem.put()
    async with mem.stream(path, headers) as stream:
        body = await stream.error()
    assert stream.status == status, body
    assert stream.headers["content-type"] == "application/json"
    assert set(body) == {"error"} and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    assert mem.app.app.state.ctx.streams.waiting == 0


async def test_the_subscription_stream_wants_its_media_type(mem: Env) -> None:
    path = f"/subscriptions/{SUB_A}/operationsStatusEvents"
    response = await mem.client.get(path)
    assert response.status_code == 406, response.text
    assert response.json()["error"]["code"] == "NotAcceptable"


async def test_streams_are_authorized_as_reads(mem: Env) -> None:
    await mem.put()
    paths = [
        status_path(),
        collection_path(),
        f"/subscriptions/{SUB_A}/operationsStatusEvents",
    ]
    for path in paths:
        async with Stream(mem.app, path, SSE) as anonymous:
            await anonymous.error()
        assert anonymous.status == 401
        scope = f"/subscriptions/{SUB_B}"
        async with mem.stream(path, role="Reader", scope=scope) as elsewhere:
            body = await elsewhere.error()
        assert elsewhere.status == 403 and body["error"]["code"] == "AuthorizationFailed"
        async with mem.stream(path, role="Reader", scope=f"/subscriptions/{SUB_A}") as reader:
            assert reader.status == 200


async def test_the_stream_limits_answer_429_and_503_and_free_on_disconnect(home: Path) -> None:
    async with environment(home, MemoryStore(), max_streams=2, max_streams_per_principal=1) as e:
        await e.put()
        path = collection_path()
        async with e.stream(path) as first:
            assert first.status == 200
            async with e.stream(path) as second:
                body = await second.error()
            assert second.status == 429 and body["error"]["code"] == "TooManyRequests"
            async with e.stream(path, subject="bob") as bobs:
                assert bobs.status == 200
                async with e.stream(path, subject="carol") as carols:
                    body = await carols.error()
                assert carols.status == 503 and body["error"]["code"] == "ServerBusy"
                assert carols.headers["retry-after"] == "5"
        # Both clients left: their slots are free again.
        assert e.app.app.state.ctx.streams.waiting == 0
        assert "opstatus_open_streams 0.0" in (await e.client.get("/metrics")).text
        async with e.stream(path) as again:
            assert again.status == 200


async def test_rate_limits_apply_to_streams(home: Path) -> None:
    security = SecuritySettings(rate_limit=0.001, rate_burst=1, reject_delay=0)
    async with environment(home, MemoryStore(), security=security) as e:
        async with e.stream(collection_path()) as first:
            assert first.status == 200
            async with e.stream(collection_path()) as second:
                body = await second.error()
        assert second.status == 429 and body["error"]["code"] == "TooManyRequests"


async def test_an_idle_stream_gets_heartbeats(home: Path) -> None:
    async with (
        environment(home, MemoryStore(), stream_heartbeat=0.05) as e,
        e.stream(collection_path()) as stream,
    ):
        await stream.read_more()
        await stream.read_more()
        await stream.read_more()
    assert stream.blocks()[1:3] == [{"comment": "heartbeat"}, {"comment": "heartbeat"}]


async def test_a_stream_too_far_behind_ends_and_its_client_resumes_from_the_log(
    home: Path,
) -> None:
    async with environment(home, MemoryStore(), stream_queue=2) as e:
        async with e.stream(collection_path()) as stream:
            await stream.read_more()
            start = stream.blocks()[0]["id"]
            await e.put("op0")
            await stream.until_events(1)
            stream.reading.clear()  # the client stops reading
            for n in range(1, 6):
                await e.put(f"op{n}")
            await asyncio.sleep(0.1)
            stream.reading.set()
            await stream.until_end()
        seen = [orjson.loads(x["data"])["operation"]["name"] for x in stream.events()]
        assert stream.blocks()[-1] == {"comment": "too far behind; reconnect with Last-Event-ID"}
        assert len(seen) < 6
        async with e.stream(collection_path(), {"Last-Event-ID": start}) as resumed:
            events = await resumed.until_events(6)
        assert [orjson.loads(x["data"])["operation"]["name"] for x in events] == [
            f"op{n}" for n in range(6)
        ]


async def test_shutdown_ends_streams_cleanly(mem: Env) -> None:
    await mem.put()
    async with mem.stream(collection_path()) as scope, mem.stream(status_path()) as one:
        await scope.read_more()
        await one.until_events(1)
        mem.store.notifier.close()
        await scope.until_end(5)
        await one.until_end(5)
    reason = {"comment": "server shutting down; reconnect with Last-Event-ID"}
    assert scope.blocks()[-1] == reason
    assert one.blocks()[-1] == reason
    assert mem.app.app.state.ctx.streams.waiting == 0


class CountingStore(MemoryStore):
    """Counts the event log's reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def events(
        self, after: Position, limit: int, scope: EventScope | None = None
    ) -> list[Any]:
        self.reads += 1
        return await super().events(after, limit, scope)


async def test_one_reader_of_the_log_feeds_every_stream(home: Path) -> None:
    store = CountingStore()
    async with environment(home, store) as e:
        streams = [e.stream(collection_path()) for _ in range(40)]
        async with contextlib.AsyncExitStack() as stack:
            for stream in streams:
                await stack.enter_async_context(stream)
                await stream.read_more()
            await asyncio.sleep(0.7)  # the reader's re-reads after its start are over
            before = store.reads
            await e.put("shared")
            for stream in streams:
                await stream.until_events(1)
            reads = store.reads - before
        assert 1 <= reads <= 6, reads  # one read, and its few re-reads; never one per stream

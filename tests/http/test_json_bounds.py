"""Free-form JSON (``properties``, ``error`` with its ``additionalInfo``) is bounded where it
comes in, so that whatever is accepted can be read back and listed by everyone.

orjson writes at most 254 levels, and every answer wraps a stored value in a few more (the
operation, the nested error shape, a list's ``value``): a body nested 252 levels deep used to
be accepted and then fail every list of its location with a 500. Now any write deeper than
64 levels is a 400, in ARM's envelope or the classic XML, and the store is left as it was.
Values stored before the bound existed are still served, cut at 64 levels.

Each case runs on the memory, SQLite and PostgreSQL stores, and reads through every path a
read can take: the app's handler, its ASGI lane, the protocol's lane, the list, the
operationResults URL and the classic form.
"""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from opstatus.models import Operation
from opstatus.security import SecuritySettings
from opstatus.server import build_app
from opstatus.settings import Settings
from opstatus.stores import MemoryStore, PostgreSQLStore
from opstatus.stores.base import Store
from opstatus.stores.sqlite import SQLiteStore
from tests.support import (
    CLASSIC_HEADERS,
    CLASSIC_NS,
    SUB_A,
    app_client,
    bearer,
    classic_path,
    status_path,
    token,
)

from .conftest import JSON, assert_arm_error, collection_path
from .test_fast_reads import Both, parse

pytestmark = pytest.mark.anyio

#: The deepest a write may nest a free-form value (written out, not imported).
LIMIT = 64
LIST = collection_path()
RESULT = status_path().replace("/operationsStatus/", "/operationResults/")


def nested_text(depth: int) -> str:
    """A JSON object nested ``depth`` levels (``{}`` is one), as text: orjson cannot write
    the deepest ones, and the stdlib's encoder needs no Python stack for text."""
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


def nested(depth: int) -> dict[str, Any]:
    """``nested_text(depth)`` as a value."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def depth_of(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryStore()
    if request.param == "sqlite":
        return SQLiteStore(tmp_path / "db.sqlite")
    return PostgreSQLStore(request.getfixturevalue("pg_url"))


@pytest.fixture
async def both(store: Store, tmp_path: Path) -> AsyncIterator[Both]:
    settings = Settings(
        home=tmp_path,
        security=SecuritySettings(rate_limit=0),
        maintenance_interval=0,
        max_body_bytes=4 * 1024 * 1024,
    )
    app = build_app(settings, store=store)
    async with app.app.router.lifespan_context(app.app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.headers["Authorization"] = f"Bearer {token(tmp_path)}"
            yield Both(app, client, tmp_path)


def classic_error(response: httpx.Response, status: int, code: str) -> str:
    """The classic error body's message, once its status and code are checked."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    root = ET.fromstring(response.content)
    assert root.tag == f"{{{CLASSIC_NS}}}Error"
    assert root.findtext(f"{{{CLASSIC_NS}}}Code") == code
    return root.findtext(f"{{{CLASSIC_NS}}}Message") or ""


async def read_everywhere(both: Both, op_id: str = "op1") -> dict[str, Any]:
    """GET by every path (the same body each way), the list and the classic form: all 200.
    Returns the operation as the list and GET (full detail) show it."""
    path = status_path(op_id=op_id)
    reader = both.bearer()
    ordinary = await both.via_app(path, reader)
    assert ordinary.status_code == 200, ordinary.text
    lane = await both.via_lane(path, reader)
    assert lane is not None and lane.content == ordinary.content
    raw = await both.protocol_lane(path, reader)
    assert raw is not None and parse(raw)[2] == ordinary.content
    full = await both.client.get(path, headers={"Prefer": "opstatus-detail=full"})
    assert full.status_code == 200, full.text
    for prefer in ({}, {"Prefer": "opstatus-detail=full"}):
        listed = await both.client.get(LIST, headers=prefer)
        assert listed.status_code == 200, listed.text
        assert op_id in [item["name"] for item in listed.json()["value"]]
    classic = await both.client.get(classic_path(op_id), headers=CLASSIC_HEADERS)
    assert classic.status_code == 200, classic.text
    body: dict[str, Any] = full.json()
    return body


def writes(deep: str) -> list[tuple[str, str, str, dict[str, str]]]:
    """(method, path, body, headers) of every write that can carry a free-form value."""
    props = f'{{"status": "Succeeded", "properties": {deep}}}'
    info = (
        '{"status": "Failed", "error": {"code": "Boom", "message": "m", '
        f'"additionalInfo": [{{"type": "t", "info": {deep}}}]}}}}'
    )
    classic = {**CLASSIC_HEADERS, **JSON}
    return [
        ("PUT", status_path(op_id="new1"), props, JSON),
        ("PUT", status_path(op_id="new1"), info, JSON),
        ("POST", LIST, props, JSON),
        ("PATCH", status_path(), props, JSON),
        ("PATCH", status_path(), info, JSON),
        ("PUT", classic_path("new1"), props, classic),
        ("PUT", classic_path("new1"), info, classic),
        ("PATCH", classic_path("op1"), props, classic),
        ("PATCH", classic_path("op1"), info, classic),
    ]


@pytest.mark.parametrize("depth", [252, 253, 254, 1000])
async def test_deep_free_form_values_are_refused_and_reads_go_on(both: Both, depth: int) -> None:
    await both.put(status_path(), {"status": "InProgress", "properties": {"a": 1}})
    before = await read_everywhere(both)
    for method, path, body, headers in writes(nested_text(depth)):
        response = await both.client.request(method, path, content=body, headers=headers)
        where = "properties" if "properties" in body else "error"
        if path.startswith(f"/{SUB_A}/"):
            message = classic_error(response, 400, "BadRequest")
        else:
            message = assert_arm_error(response, 400, "InvalidRequestContent", where)["message"]
        assert message == f"'{where}' is nested more than {LIMIT} levels deep.", (method, path)
        assert await read_everywhere(both) == before, (method, path)
    listed = await both.client.get(LIST)
    assert [item["name"] for item in listed.json()["value"]] == ["op1"]
    assert (await both.client.get(status_path(op_id="new1"))).status_code == 404


async def test_a_value_at_the_limit_is_accepted_and_shown_whole(both: Both) -> None:
    deepest = nested(LIMIT)
    assert depth_of(deepest) == LIMIT
    created = await both.client.put(
        status_path(), json={"status": "InProgress", "properties": deepest}
    )
    assert created.status_code == 201, created.text
    patched = await both.client.patch(
        status_path(), json={"status": "Succeeded", "properties": {"b": deepest}}
    )
    assert_arm_error(patched, 400, "InvalidRequestContent", "properties")
    patched = await both.client.patch(
        status_path(), json={"status": "Succeeded", "properties": {"b": nested(LIMIT - 1)}}
    )
    assert patched.status_code == 200, patched.text
    assert (await read_everywhere(both))["properties"] == {"b": nested(LIMIT - 1)}
    result = await both.client.get(RESULT)
    assert result.status_code == 200 and result.json() == {"b": nested(LIMIT - 1)}

    # An error is one free-form value, additionalInfo included: 64 levels in all.
    info_depth = LIMIT - 3  # the error, its additionalInfo list, the item, then info
    error = {"code": "Boom", "message": "m", "additionalInfo": [{"info": nested(info_depth)}]}
    assert depth_of(error) == LIMIT
    for op_id, info in (("deep", nested(info_depth + 1)), ("op2", nested(info_depth))):
        wrapped = {**error, "additionalInfo": [{"info": info}]}
        response = await both.client.put(
            status_path(op_id=op_id), json={"status": "Failed", "error": wrapped}
        )
        if op_id == "deep":
            assert_arm_error(response, 400, "InvalidRequestContent", "error")
        else:
            assert response.status_code == 201, response.text
    shown = await read_everywhere(both, "op2")
    assert shown["error"] == {"error": error}  # Microsoft.Cache's nested error shape
    result = await both.client.get(RESULT.replace("/op1", "/op2"))
    assert result.status_code == 500 and result.json() == {"error": error}


async def test_a_large_value_is_refused_even_under_the_body_limit(both: Both) -> None:
    big = {"blob": "x" * (1024 * 1024)}
    response = await both.client.put(status_path(), json={"properties": big})
    error = assert_arm_error(response, 400, "InvalidRequestContent", "properties")
    assert error["message"] == "'properties' is larger than 1048576 bytes as JSON."
    fits = {"blob": "x" * (1024 * 1024 - 20)}
    response = await both.client.put(status_path(), json={"properties": fits})
    assert response.status_code == 201, response.text
    await read_everywhere(both)


def stored_long_ago(op_id: str, **values: Any) -> Operation:
    """An operation as an older opstatus, which bounded nothing, may have stored it."""
    now = "2030-01-01T00:00:00.000Z"
    return Operation(
        subscription_id=SUB_A,
        operation_id=op_id,
        namespace="Microsoft.Cache",
        location="westus",
        start_time=now,
        end_time=now,
        created_at=now,
        updated_at=now,
        **values,
    )


async def test_values_stored_too_deep_before_the_bound_are_served_cut(both: Both) -> None:
    """The deepest the store could write (254 levels), wrapped in an answer, is past what the
    encoder writes: that answer shows the first 64 levels and null below them. An answer
    that can carry the value as it is (operationResults' body is the properties) shows it
    whole."""
    store: Store = both.app.app.state.ctx.store
    deep_info = {"code": "Boom", "message": "m", "additionalInfo": [{"info": nested(251)}]}
    await store.create(stored_long_ago("props", status="Succeeded", properties=nested(254)))
    await store.create(stored_long_ago("info", status="Failed", error=deep_info))
    props = await read_everywhere(both, "props")
    assert props["properties"] == _cut(LIMIT)
    info = await read_everywhere(both, "info")
    shown = info["error"]["error"]
    assert shown["code"] == "Boom" and depth_of(shown) == LIMIT
    assert shown["additionalInfo"][0]["info"] == _cut(LIMIT - 3)
    result = await both.client.get(RESULT.replace("/op1", "/props"))
    assert result.status_code == 200 and result.json() == nested(254)
    result = await both.client.get(RESULT.replace("/op1", "/info"))
    assert result.status_code == 500 and depth_of(result.json()["error"]) == LIMIT


def _cut(levels: int) -> dict[str, Any]:
    """``levels`` objects of ``{"a": ...}``, the innermost holding null."""
    value: dict[str, Any] = {"a": None}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_nested_text_is_what_it_says() -> None:
    assert json.loads(nested_text(3)) == {"a": {"a": {}}} == nested(3)
    assert depth_of(json.loads(nested_text(200))) == 200
    assert depth_of(_cut(3)) == 3


# -- any accepted body can be read back and listed ------------------------------------------

LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
JSON_VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)
#: How many objects or arrays to wrap a value in: anywhere up to past what orjson writes,
#: and often right at the bound.
LAYERS = st.integers(0, 300) | st.sampled_from([60, 61, 62, 63, 64, 65, 250, 251, 252, 253])


@st.composite
def free_form(draw: st.DrawFn) -> Any:
    value = draw(JSON_VALUES)
    layers = draw(LAYERS)
    for as_list in draw(st.lists(st.booleans(), min_size=layers, max_size=layers)):
        value = [value] if as_list else {"k": value}
    return value


@pytest.mark.parametrize("store_name", ["memory", "sqlite", "postgresql"])
def test_any_accepted_body_can_be_read_back_and_listed(
    store_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """PUT bodies with free-form values of any depth: each is refused (400, exactly when
    deeper than the bound) or accepted, and then GET, the list, operationResults and the
    classic form all answer it, showing the value as it was given."""
    stores = {
        "memory": MemoryStore,
        "sqlite": lambda: SQLiteStore(tmp_path / "db.sqlite"),
        "postgresql": lambda: PostgreSQLStore(request.getfixturevalue("pg_url")),
    }
    loop = asyncio.new_event_loop()
    client = app_client(
        tmp_path,
        store=stores[store_name](),
        maintenance_interval=0,
        security=SecuritySettings(rate_limit=0),
    )
    http = loop.run_until_complete(client.__aenter__())
    http.headers.update(bearer(tmp_path))
    count = iter(range(1_000_000))

    def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        return loop.run_until_complete(http.request(method, path, **kwargs))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(value=free_form(), in_error=st.booleans())
    def check(value: Any, in_error: bool) -> None:
        op_id = f"p{next(count)}"
        if in_error:
            error = {"code": "Boom", "message": "m", "additionalInfo": [{"info": {"v": value}}]}
            body, depth = {"status": "Failed", "error": error}, depth_of(error)
        else:
            body, depth = {"status": "Succeeded", "properties": {"v": value}}, 1 + depth_of(value)
        path = status_path(op_id=op_id)
        created = call("PUT", path, content=json.dumps(body), headers=JSON)
        if depth > LIMIT:
            assert_arm_error(
                created, 400, "InvalidRequestContent", "error" if in_error else "properties"
            )
            return
        assert created.status_code == 201, created.text
        shown = "error" if in_error else "properties"
        full = {"Prefer": "opstatus-detail=full"}  # Microsoft.Cache shows properties so
        got = call("GET", path, headers=full)
        assert got.status_code == 200, got.text
        want = {"error": body["error"]} if in_error else body["properties"]
        assert got.json()[shown] == want
        listed = call("GET", LIST, headers=full)
        assert listed.status_code == 200, listed.text
        (item,) = [item for item in listed.json()["value"] if item["name"] == op_id]
        assert item[shown] == want
        result = call("GET", RESULT.replace("/op1", f"/{op_id}"))
        assert (result.status_code, result.json()) == ((500, want) if in_error else (200, want))
        classic = call("GET", classic_path(op_id), headers=CLASSIC_HEADERS)
        assert classic.status_code == 200, classic.text
        assert call("DELETE", path).status_code == 200

    try:
        check()
    finally:
        loop.run_until_complete(client.__aexit__(None, None, None))
        loop.close()

"""Bad input: every refusal is an exact status and code in ARM's error envelope, and a refused
write leaves the store exactly as it was.

Writes run against the default SQLite store; "nothing was written" is checked twice: through
the API (the seeded operation reads back identical, ETag included; the new id is 404) and in
the database file itself (every row unchanged, so POST, whose id the server would choose,
is covered too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from opstatus.providers import MICROSOFT_CACHE_API_VERSIONS
from tests.support import SUB_A, status_path

from .conftest import JSON, assert_arm_error, collection_path, db_rows

pytestmark = pytest.mark.anyio

INVALID = "InvalidRequestContent"
FAILED_ERROR = {"code": "DiskFull", "message": "No space left."}


async def seed(client: httpx.AsyncClient, home: Path) -> tuple[Any, ...]:
    """Create op1 (InProgress, 40 %); return its state as the API and the database show it."""
    created = await client.put(status_path(), json={"status": "InProgress", "percentComplete": 40})
    assert created.status_code == 201, created.text
    return await state(client, home)


async def state(client: httpx.AsyncClient, home: Path) -> tuple[Any, ...]:
    read = await client.get(status_path())
    new = await client.get(status_path(op_id="new1"))
    return read.status_code, read.json(), read.headers.get("etag"), new.status_code, db_rows(home)


def write_url(method: str) -> str:
    """PUT creates new1, PATCH changes the seeded op1, POST creates with a server id."""
    return {
        "PUT": status_path(op_id="new1"),
        "PATCH": status_path(),
        "POST": collection_path(),
    }[method]


WRITES = pytest.mark.parametrize("method", ["PUT", "PATCH", "POST"])


# -- request bodies ---------------------------------------------------------------------------


def raw(text: str) -> bytes:
    return text.encode()


def js(value: object) -> bytes:
    return orjson.dumps(value)


BAD_BODIES = [
    # (body, target); every one is 400 InvalidRequestContent.
    pytest.param(raw('{"status": "InProgress",'), None, id="malformed-json"),
    pytest.param(raw("{'status': 'InProgress'}"), None, id="single-quoted-json"),
    pytest.param(raw("[]"), None, id="json-array"),
    pytest.param(raw('[{"status": "InProgress"}]'), None, id="json-array-of-object"),
    pytest.param(raw('"InProgress"'), None, id="json-string"),
    pytest.param(raw("42"), None, id="json-number"),
    pytest.param(raw("null"), None, id="json-null"),
    pytest.param(js({"status": 5}), "status", id="status-number"),
    pytest.param(js({"status": None}), "status", id="status-null"),
    pytest.param(js({"status": ["Succeeded"]}), "status", id="status-list"),
    pytest.param(js({"percentComplete": "x"}), "percentComplete", id="percent-string"),
    pytest.param(js({"percentComplete": True}), "percentComplete", id="percent-true"),
    pytest.param(js({"percentComplete": None}), "percentComplete", id="percent-null"),
    pytest.param(js({"percentComplete": 250}), "percentComplete", id="percent-250"),
    pytest.param(js({"percentComplete": -1}), "percentComplete", id="percent-minus-1"),
    pytest.param(js({"percentComplete": 100.5}), "percentComplete", id="percent-100.5"),
    pytest.param(js({"startTime": 12}), "startTime", id="startTime-number"),
    pytest.param(js({"startTime": "yesterday"}), "startTime", id="startTime-not-iso"),
    pytest.param(js({"status": "Succeeded", "endTime": 12}), "endTime", id="endTime-number"),
    pytest.param(js({"properties": []}), "properties", id="properties-list"),
    pytest.param(js({"properties": "x"}), "properties", id="properties-string"),
    pytest.param(js({"status": "Failed", "error": "x"}), "error", id="error-string"),
    pytest.param(js({"status": "Failed", "error": []}), "error", id="error-list"),
    pytest.param(
        js({"status": "Failed", "error": {"message": "m"}}), "error.code", id="error-without-code"
    ),
    pytest.param(
        js({"status": "Failed", "error": {"code": 7, "message": "m"}}),
        "error.code",
        id="error-code-number",
    ),
    pytest.param(js({"percentcomplete": 50}), "percentcomplete", id="unknown-field-typo"),
    pytest.param(js({"status": "InProgress", "owner": "bob"}), "owner", id="unknown-field"),
    pytest.param(js({"Status": "InProgress"}), "Status", id="unknown-field-case"),
    pytest.param(
        js({"status": "Failed", "error": {**FAILED_ERROR, "severity": "high"}}),
        "error.severity",
        id="unknown-field-in-error",
    ),
    pytest.param(js({"resetProgress": "yes"}), "resetProgress", id="resetProgress-string"),
    *(
        pytest.param(js({"httpStatusCode": v}), "httpStatusCode", id=f"httpStatusCode-{v!r}")
        for v in (99, 600, "200", 200.5, True, None)
    ),
    pytest.param(js({"status": "Cancelled"}), "status", id="status-Cancelled"),
    pytest.param(js({"status": "cancelled"}), "status", id="status-cancelled-lower"),
    pytest.param(js({"status": "in progress"}), "status", id="status-not-a-word"),
    pytest.param(js({"status": "x' OR '1'='1"}), "status", id="status-sql"),
    pytest.param(
        js({"status": "InProgress", "error": FAILED_ERROR}), "error", id="error-with-InProgress"
    ),
    pytest.param(
        js({"status": "Succeeded", "error": FAILED_ERROR}), "error", id="error-with-Succeeded"
    ),
    pytest.param(js({"error": FAILED_ERROR}), "error", id="error-without-status"),
    pytest.param(
        js({"status": "InProgress", "endTime": "2024-05-01T10:00:00Z"}),
        "endTime",
        id="endTime-with-InProgress",
    ),
    pytest.param(
        js({"percentComplete": 60, "status": "Cancelled"}),
        "status",
        id="valid-field-then-invalid-field",
    ),
    *(
        pytest.param(
            js({"status": "Failed", "error": {"code": "Bad", "message": f"a{c}b"}}),
            "error.message",
            id=f"control-char-in-error.message-U+{ord(c):04X}",
        )
        for c in ("\x00", "\x1b", "\x07", "\x7f", "\x9b")
    ),
    pytest.param(
        js({"status": "Failed", "error": {**FAILED_ERROR, "target": "disk\x00"}}),
        "error.target",
        id="control-char-in-error.target",
    ),
    pytest.param(
        js(
            {
                "status": "Failed",
                "error": {**FAILED_ERROR, "details": [{"code": "Inner", "message": "x\x1b[31m"}]},
            }
        ),
        "error.details[0].message",
        id="control-char-in-error.details",
    ),
]


@WRITES
@pytest.mark.parametrize(("body", "target"), BAD_BODIES)
async def test_bad_body_is_refused_and_nothing_is_written(
    sqlite_client: httpx.AsyncClient, home: Path, method: str, body: bytes, target: str | None
) -> None:
    before = await seed(sqlite_client, home)
    response = await sqlite_client.request(method, write_url(method), content=body, headers=JSON)
    if target is None:
        assert_arm_error(response, 400, INVALID)
    else:
        assert_arm_error(response, 400, INVALID, target=target)
    assert await state(sqlite_client, home) == before


@WRITES
async def test_unknown_field_is_named_in_the_message(
    client: httpx.AsyncClient, method: str
) -> None:
    if method == "PATCH":
        assert (await client.put(status_path(), json={})).status_code == 201
    response = await client.request(method, write_url(method), json={"percentcomplete": 5})
    error = assert_arm_error(response, 400, INVALID, target="percentcomplete")
    assert "'percentcomplete'" in error["message"]


async def test_cancelled_is_refused_with_the_right_spelling_in_the_message(
    client: httpx.AsyncClient,
) -> None:
    response = await client.put(status_path(), json={"status": "Cancelled"})
    error = assert_arm_error(response, 400, INVALID, target="status")
    assert "'Canceled'" in error["message"]
    assert (await client.get(status_path())).status_code == 404


@WRITES
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ],
)
async def test_non_json_content_type_is_415(
    sqlite_client: httpx.AsyncClient, home: Path, method: str, content_type: str
) -> None:
    before = await seed(sqlite_client, home)
    response = await sqlite_client.request(
        method,
        write_url(method),
        content=js({"status": "Succeeded"}),
        headers={"Content-Type": content_type},
    )
    assert_arm_error(response, 415, "UnsupportedMediaType")
    assert await state(sqlite_client, home) == before


async def test_the_415_does_not_echo_the_content_type(client: httpx.AsyncClient) -> None:
    """Header values are never repeated back in an error (the README's promise)."""
    marker = "text/x-secret-a1b2c3; token=s3cr3t"
    response = await client.put(status_path(), content=b"{}", headers={"Content-Type": marker})
    error = assert_arm_error(response, 415, "UnsupportedMediaType")
    assert error["message"] == (
        "The request's content type is not supported; send application/json."
    )
    assert "secret" not in response.text and "s3cr3t" not in response.text


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "text/json"])
async def test_json_content_types_are_accepted(
    client: httpx.AsyncClient, content_type: str
) -> None:
    response = await client.put(
        status_path(), content=js({"status": "InProgress"}), headers={"Content-Type": content_type}
    )
    assert response.status_code == 201, response.text


TEN_MB = 10 * 1024 * 1024


def ten_mb_body() -> bytes:
    body = js({"status": "Succeeded", "properties": {"blob": "x" * TEN_MB}})
    assert len(body) > TEN_MB
    return body


@WRITES
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_10_mb_body_is_413(
    sqlite_client: httpx.AsyncClient, home: Path, method: str, chunked: bool
) -> None:
    before = await seed(sqlite_client, home)
    body = ten_mb_body()
    if chunked:

        async def chunks() -> Any:
            for start in range(0, len(body), 1 << 20):
                yield body[start : start + (1 << 20)]

        response = await sqlite_client.request(
            method, write_url(method), content=chunks(), headers=JSON
        )
    else:
        response = await sqlite_client.request(
            method, write_url(method), content=body, headers=JSON
        )
    assert_arm_error(response, 413, "RequestEntityTooLarge")
    assert await state(sqlite_client, home) == before


async def test_declared_oversize_body_is_refused_before_it_is_read(
    client: httpx.AsyncClient,
) -> None:
    pulled: list[int] = []

    async def chunks() -> Any:
        for i in range(10):
            pulled.append(i)
            yield b"x" * (1 << 20)

    response = await client.put(
        status_path(), content=chunks(), headers={**JSON, "Content-Length": str(TEN_MB)}
    )
    assert_arm_error(response, 413, "RequestEntityTooLarge")
    assert pulled == []
    assert (await client.get(status_path())).status_code == 404


async def test_sql_in_the_body_is_stored_as_plain_data(sqlite_client: httpx.AsyncClient) -> None:
    evil = "x'); DROP TABLE operations; --"
    body = {"status": "Failed", "error": {"code": "Bad", "message": evil, "target": "' OR 1=1"}}
    assert (await sqlite_client.put(status_path(), json=body)).status_code == 201
    read = await sqlite_client.get(status_path())
    assert read.status_code == 200
    assert read.json()["error"] == {"error": {"code": "Bad", "message": evil, "target": "' OR 1=1"}}


# -- the URL ---------------------------------------------------------------------------------

SQL_QUOTE = "x'%20OR%20'1'='1"
SQL_DROP = "1;DROP%20TABLE%20operations"
BAD_SUB_MESSAGE = "The provided subscription identifier '{}' is malformed or invalid."
MISSING_API_VERSION = (
    "The api-version query parameter (?api-version=) is required for all requests."
)

# (path kwargs, code, target, exact message or None)
BAD_PATHS = [
    pytest.param(
        {"op_id": "a" * 5000}, "InvalidOperationId", "operationId", None, id="id-5000-chars"
    ),
    pytest.param(
        {"op_id": "a" * 257}, "InvalidOperationId", "operationId", None, id="id-257-chars"
    ),
    pytest.param({"op_id": "op%00"}, "InvalidOperationId", "operationId", None, id="id-NUL"),
    pytest.param({"op_id": "op%0A"}, "InvalidOperationId", "operationId", None, id="id-LF"),
    pytest.param(
        {"op_id": "op1%0A"}, "InvalidOperationId", "operationId", None, id="id-existing-plus-LF"
    ),
    pytest.param({"op_id": "%1B%5B31m"}, "InvalidOperationId", "operationId", None, id="id-ESC"),
    pytest.param({"op_id": SQL_QUOTE}, "InvalidOperationId", "operationId", None, id="id-sql-or"),
    pytest.param({"op_id": SQL_DROP}, "InvalidOperationId", "operationId", None, id="id-sql-drop"),
    pytest.param(
        {"op_id": "-op1"}, "InvalidOperationId", "operationId", None, id="id-leading-dash"
    ),
    pytest.param(
        {"sub": "not-a-guid"},
        "InvalidSubscriptionId",
        "subscriptionId",
        BAD_SUB_MESSAGE.format("not-a-guid"),
        id="sub-not-a-guid",
    ),
    pytest.param(
        {"sub": SUB_A + "0"},
        "InvalidSubscriptionId",
        "subscriptionId",
        BAD_SUB_MESSAGE.format(SUB_A + "0"),
        id="sub-too-long",
    ),
    pytest.param(
        {"sub": SUB_A.replace("-", "")},
        "InvalidSubscriptionId",
        "subscriptionId",
        BAD_SUB_MESSAGE.format(SUB_A.replace("-", "")),
        id="sub-no-dashes",
    ),
    pytest.param(
        {"sub": SQL_QUOTE},
        "InvalidSubscriptionId",
        "subscriptionId",
        BAD_SUB_MESSAGE.format("x' OR '1'='1"),
        id="sub-sql",
    ),
    pytest.param(
        {"sub": SUB_A + "%0A"},
        "InvalidSubscriptionId",
        "subscriptionId",
        BAD_SUB_MESSAGE.format(SUB_A + "?"),
        id="sub-plus-LF",
    ),
    pytest.param(
        {"api_version": None},
        "MissingApiVersionParameter",
        "api-version",
        MISSING_API_VERSION,
        id="api-version-missing",
    ),
    pytest.param(
        {"api_version": ""},
        "MissingApiVersionParameter",
        "api-version",
        MISSING_API_VERSION,
        id="api-version-empty",
    ),
    pytest.param(
        {"api_version": "2019-01-01"},
        "NoRegisteredProviderFound",
        "api-version",
        None,
        id="api-version-unsupported",
    ),
    pytest.param(
        {"api_version": "2025-07-01'%20OR%20'1'='1"},
        "NoRegisteredProviderFound",
        "api-version",
        None,
        id="api-version-sql",
    ),
    pytest.param(
        {"namespace": "Microsoft.Nope"},
        "NoRegisteredProviderFound",
        "namespace",
        None,
        id="namespace-unknown",
    ),
    pytest.param(
        {"namespace": "Microsoft.Cache2"},
        "NoRegisteredProviderFound",
        "namespace",
        None,
        id="namespace-near-miss",
    ),
    pytest.param(
        {"namespace": SQL_DROP}, "NoRegisteredProviderFound", "namespace", None, id="namespace-sql"
    ),
    pytest.param({"location": "west-us"}, "InvalidLocation", "location", None, id="location-dash"),
    pytest.param(
        {"location": "west_us!"}, "InvalidLocation", "location", None, id="location-punctuation"
    ),
    pytest.param(
        {"location": "w" * 65}, "InvalidLocation", "location", None, id="location-65-chars"
    ),
    pytest.param({"location": "%20"}, "InvalidLocation", "location", None, id="location-blank"),
    pytest.param({"location": "west%00us"}, "InvalidLocation", "location", None, id="location-NUL"),
    pytest.param({"location": SQL_QUOTE}, "InvalidLocation", "location", None, id="location-sql"),
]


def bad_url_cases() -> list[Any]:
    """Every bad path for GET, PUT, PATCH and DELETE; those without an id for POST too."""
    cases = []
    for case in BAD_PATHS:
        kwargs, code, target, message = case.values
        for method in ("GET", "PUT", "PATCH", "DELETE", "POST"):
            if method == "POST" and "op_id" in kwargs:
                continue
            url = collection_path(**kwargs) if method == "POST" else status_path(**kwargs)
            cases.append(pytest.param(method, url, code, target, message, id=f"{case.id}-{method}"))
    return cases


@pytest.mark.parametrize(("method", "url", "code", "target", "message"), bad_url_cases())
async def test_bad_url_is_400_and_nothing_is_written(
    sqlite_client: httpx.AsyncClient,
    home: Path,
    method: str,
    url: str,
    code: str,
    target: str,
    message: str | None,
) -> None:
    before = await seed(sqlite_client, home)
    body = js({"status": "Succeeded"}) if method in ("PUT", "PATCH", "POST") else None
    response = await sqlite_client.request(method, url, content=body, headers=JSON)
    assert_arm_error(response, 400, code, target=target, message=message)
    assert await state(sqlite_client, home) == before


async def test_unsupported_api_version_lists_the_supported_ones(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(status_path(api_version="2019-01-01"))
    error = assert_arm_error(response, 400, "NoRegisteredProviderFound", target="api-version")
    assert error["message"].startswith(
        "No registered resource provider found for location 'westus' and API version "
        "'2019-01-01' for type 'locations/operationsStatus'. The supported api-versions are '"
    ), error["message"]
    for version in MICROSOFT_CACHE_API_VERSIONS:
        assert version in error["message"]


async def test_unknown_namespace_names_the_registered_ones(client: httpx.AsyncClient) -> None:
    response = await client.get(status_path(namespace="Microsoft.Nope"))
    error = assert_arm_error(response, 400, "NoRegisteredProviderFound", target="namespace")
    assert "'Microsoft.Nope'" in error["message"]
    assert "Microsoft.Cache" in error["message"]


async def test_control_characters_are_not_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get(status_path(op_id="op%1B%5B2J%00"))
    error = assert_arm_error(response, 400, "InvalidOperationId", target="operationId")
    assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in error["message"]), error
    assert response.content.isascii()


async def test_store_survives_sql_in_every_segment(
    sqlite_client: httpx.AsyncClient, home: Path
) -> None:
    await seed(sqlite_client, home)
    for kwargs in (
        {"op_id": SQL_DROP},
        {"op_id": SQL_QUOTE},
        {"sub": SQL_QUOTE},
        {"namespace": SQL_DROP},
        {"location": SQL_QUOTE},
        {"api_version": "1';DROP%20TABLE%20operations;--"},
    ):
        for method in ("GET", "PUT", "DELETE"):
            response = await sqlite_client.request(method, status_path(**kwargs), json={})
            assert response.status_code == 400, (kwargs, method, response.text)
    # The table is there, with exactly the seeded row, and still takes writes.
    assert [row[2] for row in db_rows(home)] == ["op1"]
    assert (await sqlite_client.put(status_path(op_id="op2"), json={})).status_code == 201
    assert [row[2] for row in db_rows(home)] == ["op1", "op2"]


# -- routing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        pytest.param("POST", status_path(), id="POST-operation"),
        pytest.param("PUT", collection_path(), id="PUT-collection"),
        pytest.param("PATCH", collection_path(), id="PATCH-collection"),
        pytest.param("GET", status_path(op_id="op1/cancel"), id="GET-cancel"),
        pytest.param(
            "PUT",
            f"/subscriptions/{SUB_A}/providers/Microsoft.Cache/locations/westus/operationResults"
            "/op1?api-version=2025-07-01",
            id="PUT-result",
        ),
        pytest.param("DELETE", collection_path(), id="DELETE-collection"),
        pytest.param("DELETE", "/healthz", id="DELETE-healthz"),
        pytest.param("POST", "/healthz", id="POST-healthz"),
    ],
)
async def test_wrong_method_is_405_in_the_envelope(
    client: httpx.AsyncClient, method: str, url: str
) -> None:
    response = await client.request(method, url, content=b"{}", headers=JSON)
    assert_arm_error(
        response,
        405,
        "MethodNotAllowed",
        message=f"The HTTP method '{method}' is not supported for this resource.",
    )
    assert response.headers.get("allow"), response.headers


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/nope",
        "/subscriptions",
        f"/subscriptions/{SUB_A}",
        f"/subscriptions/{SUB_A}/providers/Microsoft.Cache/locations/westus/operationResult/op1"
        "?api-version=2025-07-01",
        f"/subscriptions/{SUB_A}/providers/Microsoft.Cache/locations/westus/operationsStatus/op1"
        "/extra?api-version=2025-07-01",
        f"/subscriptions/{SUB_A}/providers/Microsoft.Cache/locations//operationsStatus/op1"
        "?api-version=2025-07-01",
        f"/subscriptions/{SUB_A}/resourceGroups/rg/providers/Microsoft.Cache/locations/westus"
        "/operationsStatus/op1?api-version=2025-07-01",
    ],
)
@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_unknown_path_is_404_in_the_envelope(
    client: httpx.AsyncClient, url: str, method: str
) -> None:
    response = await client.request(method, url, content=b"{}", headers=JSON)
    assert_arm_error(response, 404, "NotFound", message="The requested path does not exist.")

"""The served OpenAPI document says what the server does, no more and no less.

A client generated from the document must agree with the server: each body, header and
method below is judged by the document's own schema and by the server, and the two
verdicts must be the same. (tests/e2e/test_fuzz.py has schemathesis do the same at large.)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from opstatus.http.openapi import openapi_document
from tests.support import CLASSIC_HEADERS, app_client, bearer, classic_path, status_path

pytestmark = pytest.mark.anyio

DOC = openapi_document()
ITEM = "/subscriptions/{subscriptionId}/providers/Microsoft.Cache/locations/{location}"
ITEM += "/operationsStatus"
CLASSIC = "/{subscriptionId}/operations/{requestId}"
LATER = "2030-01-01T00:00:00Z"


@pytest.fixture
async def client(home: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(home) as c:  # SQLite, the default store
        c.headers.update(bearer(home))
        yield c


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    """``schema`` with the document's components beside it, for its $refs."""
    text = json.dumps({**schema, "$defs": DOC["components"]["schemas"]})
    text = text.replace("#/components/schemas/", "#/$defs/")
    return Draft202012Validator(json.loads(text), format_checker=FormatChecker())


def nested_error(depth: int) -> dict[str, Any]:
    error: dict[str, Any] = {"code": f"Level{depth}"}
    for level in range(depth - 1, -1, -1):
        error = {"code": f"Level{level}", "details": [error]}
    return error


#: Bodies a producer may send, some the server takes and some it refuses.
BODIES: list[dict[str, Any]] = [
    {},
    {"status": "failed"},
    {"status": "CANCELED"},
    {"status": "Running"},
    {"status": "Cancelled"},
    {"status": "cancelled"},
    {"status": "running"},
    {"status": "Running", "error": {"code": "Boom"}},
    {"error": {"code": "Boom"}},
    {"status": "Failed", "error": {"code": "Boom"}},
    {"status": "canceled", "error": {"error": {"code": "Boom", "message": "nested"}}},
    {"status": "Running", "endTime": LATER},
    {"endTime": LATER},
    {"status": "succeeded", "endTime": LATER},
    {"status": "Failed", "httpStatusCode": 409.0},
    {"status": "Failed", "httpStatusCode": 409.5},
    {"status": "Failed", "httpStatusCode": 99},
    {"leaseSeconds": 0},
    {"leaseSeconds": 0.5},
    {"leaseSeconds": 30 * 86400},
    {"leaseSeconds": 30 * 86400 + 1},
    {"status": "Failed", "error": nested_error(8)},
    {"status": "Failed", "error": nested_error(9)},
    {"status": "Failed", "error": {"code": "X", "message": "a\x07b"}},
    {"status": "Failed", "error": {"code": "X", "additionalInfo": [{"type": "t", "info": {}}]}},
    {"status": "Failed", "error": {"code": "X", "additionalInfo": [{"other": 1}]}},
]
CREATE_ONLY: list[dict[str, Any]] = [
    {"kind": "deploy/vm"},
    {"kind": "/deploy"},
    {"cancelable": False},
    {"resetProgress": True},
]
UPDATE_ONLY: list[dict[str, Any]] = [
    {"resetProgress": True, "percentComplete": 1},
    {"kind": "deploy/vm"},
    {"cancelable": False},
]


def is_valid(schema_name: str, body: dict[str, Any]) -> bool:
    return validator({"$ref": f"#/components/schemas/{schema_name}"}).is_valid(body)


async def test_create_bodies_are_judged_alike(client: httpx.AsyncClient) -> None:
    for i, body in enumerate(BODIES + CREATE_ONLY):
        arm = await client.put(status_path(op_id=f"arm{i}"), json=body)
        classic = await client.put(classic_path(f"classic{i}"), json=body, headers=CLASSIC_HEADERS)
        documented = is_valid("OperationCreate", body)
        assert arm.is_success == documented, (body, arm.text)
        assert classic.is_success == documented, (body, classic.text)


async def test_update_bodies_are_judged_alike(client: httpx.AsyncClient) -> None:
    for i, body in enumerate(BODIES + UPDATE_ONLY):
        running = {"status": "InProgress", "percentComplete": 50}
        assert (await client.put(status_path(op_id=f"u{i}"), json=running)).is_success
        arm = await client.patch(status_path(op_id=f"u{i}"), json=body)
        documented = is_valid("OperationUpdate", body)
        assert arm.is_success == documented, (body, arm.text)


def parameter(name: str) -> dict[str, Any]:
    found: dict[str, Any] = DOC["components"]["parameters"][name]
    return found


async def test_any_preference_is_taken_and_unknown_ones_ignored(
    client: httpx.AsyncClient,
) -> None:
    """RFC 7240: a server ignores preferences it does not know."""
    prefer = validator(parameter("PreferParameter")["schema"])
    await client.put(status_path(), json={"status": "InProgress"})
    for value in ("opstatus-detail=full", "respond-async", "wait=abc", "x; y=1, ,", "AAA"):
        assert prefer.is_valid(value)
        response = await client.get(status_path(), headers={"Prefer": value})
        assert response.status_code == 200, (value, response.text)


async def test_if_match_is_any_string_and_412_is_documented_where_it_is_taken(
    client: httpx.AsyncClient,
) -> None:
    if_match = validator(parameter("IfMatchParameter")["schema"])
    long_tag = '"' + "x" * 1000 + '"'
    assert if_match.is_valid(long_tag)
    await client.put(status_path(), json={"status": "InProgress"})
    patched = await client.patch(status_path(), json={}, headers={"If-Match": long_tag})
    assert patched.status_code == 412, patched.text
    deleted = await client.delete(status_path(), headers={"If-Match": long_tag})
    assert deleted.status_code == 412, deleted.text
    for item in DOC["paths"].values():
        for method, operation in item.items():
            if method == "parameters":
                continue
            refs = [p.get("$ref", "") for p in operation.get("parameters", [])]
            takes = any(ref.endswith("/IfMatchParameter") for ref in refs)
            assert takes == ("412" in operation["responses"]), (method, operation["operationId"])


async def test_a_405_allows_exactly_the_documented_methods(client: httpx.AsyncClient) -> None:
    paths = {
        f"{ITEM}/{{operationId}}": status_path(),
        ITEM: status_path().replace("/op1?", "?"),
        CLASSIC: classic_path(),
    }
    for template, path in paths.items():
        documented = {m.upper() for m in DOC["paths"][template] if m != "parameters"}
        response = await client.request("OPTIONS", path, headers=CLASSIC_HEADERS)
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert allowed - {"HEAD"} == documented, template


async def test_the_classic_form_is_described(client: httpx.AsyncClient) -> None:
    item = DOC["paths"][CLASSIC]
    assert {"get", "put", "patch", "delete"} <= set(item)
    version = parameter("VersionParameter")
    assert version["in"] == "header" and version["required"] is True
    check = validator(version["schema"])
    for value in ("2009-10-01", "2014-10-01", "2009-09-30", "2014-02-30", "2014-10-1", "x"):
        headers = {"x-ms-version": value}
        answer = await client.get(classic_path("nope"), headers=headers)
        # 404: the version was taken; 400: it was not.
        assert (answer.status_code == 404) == check.is_valid(value), (value, answer.text)
    ok = item["get"]["responses"]["200"]["content"]
    assert set(ok) == {"application/xml"}
    await client.put(classic_path(), json={"status": "InProgress"}, headers=CLASSIC_HEADERS)
    read = await client.get(classic_path(), headers=CLASSIC_HEADERS)
    assert read.headers["content-type"].startswith("application/xml")
    errors = item["get"]["responses"]["default"]["content"]
    assert set(errors) == {"application/xml"}


async def test_the_cancel_requested_filter_is_judged_alike(client: httpx.AsyncClient) -> None:
    documented = validator(parameter("CancelRequestedParameter")["schema"])
    list_get = DOC["paths"][ITEM]["get"]
    refs = [p.get("$ref", "") for p in list_get["parameters"]]
    assert "#/components/parameters/CancelRequestedParameter" in refs
    collection = status_path().replace("/op1?", "?")
    for value in ("true", "false", "True", "FALSE", "1", "yes", ""):
        response = await client.get(f"{collection}&cancelRequested={value}")
        assert response.is_success == documented.is_valid(value), (value, response.text)

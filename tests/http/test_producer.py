"""The producer API and what readers see: create, read, update, delete, in both wire shapes.

Microsoft.Cache speaks the published swagger (``error`` nested as an ErrorResponse, no
percentComplete/properties); a provider registered from a TOML file with ``error_shape =
"flat"`` speaks the RPC operation resource (flat error, percentComplete, properties once
Succeeded).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from opstatus.models import Operation
from opstatus.providers import MICROSOFT_CACHE_API_VERSIONS
from opstatus.stores import MemoryStore
from tests.support import SUB_A, app_client, bearer, status_path

from .conftest import assert_arm_error, collection_path, widget_path

pytestmark = pytest.mark.anyio

#: The keys the swagger's OperationStatus defines; a Microsoft.Cache body has no others.
OPERATION_STATUS_KEYS = frozenset({"id", "name", "startTime", "endTime", "status", "error"})
ISO_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z")
T0 = "2024-05-01T10:00:00.000Z"
T1 = "2024-05-01T10:05:00.123Z"


def op_id_path(
    sub: str = SUB_A,
    op_id: str = "op1",
    location: str = "westus",
    namespace: str = "Microsoft.Cache",
) -> str:
    """The ``id`` a body must carry."""
    return (
        f"/subscriptions/{sub}/providers/{namespace}/locations/{location}/operationsStatus/{op_id}"
    )


def iso(text: str) -> datetime:
    assert ISO_MS.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def put(
    c: httpx.AsyncClient, body: dict[str, Any], url: str | None = None, expect: int = 201
) -> httpx.Response:
    response = await c.put(url or status_path(), json=body)
    assert response.status_code == expect, response.text
    return response


async def patch(
    c: httpx.AsyncClient,
    body: dict[str, Any],
    url: str | None = None,
    expect: int = 200,
    **headers: str,
) -> httpx.Response:
    response = await c.patch(url or status_path(), json=body, headers=headers)
    assert response.status_code == expect, response.text
    return response


async def read(c: httpx.AsyncClient, url: str | None = None) -> httpx.Response:
    response = await c.get(url or status_path())
    assert response.status_code == 200, response.text
    return response


# -- create and read -------------------------------------------------------------------------


async def test_create_and_read_round_trip(sqlite_client: httpx.AsyncClient) -> None:
    created = await put(
        sqlite_client, {"status": "InProgress", "startTime": "2024-05-01T10:00:00Z"}
    )
    expected = {"id": op_id_path(), "name": "op1", "startTime": T0, "status": "InProgress"}
    assert created.json() == expected
    got = await read(sqlite_client)
    assert got.json() == expected
    assert list(got.json()) == ["id", "name", "startTime", "status"]


async def test_create_without_a_body_starts_in_progress_now(client: httpx.AsyncClient) -> None:
    created = await client.put(status_path())
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"id", "name", "startTime", "status"}
    assert body["status"] == "InProgress"
    assert (
        abs((datetime.now(iso(body["startTime"]).tzinfo) - iso(body["startTime"])).total_seconds())
        < 60
    )


async def test_the_published_example_is_reproduced(client: httpx.AsyncClient) -> None:
    """OperationsStatusGet.json (2025-07-01): request 'West US', body exactly as published."""
    sub = "e7b5a9d2-6b6a-4d2f-9143-20d9a10f5b8f"
    example = {
        "id": f"/subscriptions/{sub}/providers/Microsoft.Cache/locations/westus"
        "/operationsStatus/testoperationid",
        "name": "testoperationid",
        "startTime": "2017-01-01T13:13:13.933Z",
        "endTime": "2017-01-01T16:13:13.933Z",
        "status": "Succeeded",
    }
    url = status_path(sub=sub, op_id="testoperationid", location="West%20US")
    await put(
        client,
        {"status": "Succeeded", "startTime": example["startTime"], "endTime": example["endTime"]},
        url,
    )
    got = await read(client, url)
    assert got.json() == example
    assert list(got.json()) == list(example)
    assert got.headers["content-type"] == "application/json"


@pytest.mark.parametrize("status", ["succeeded", "SUCCEEDED", "Succeeded"])
async def test_status_words_are_normalised(client: httpx.AsyncClient, status: str) -> None:
    assert (await put(client, {"status": status})).json()["status"] == "Succeeded"


async def test_custom_pascal_case_status_is_kept(client: httpx.AsyncClient) -> None:
    assert (await put(client, {"status": "Provisioning"})).json()["status"] == "Provisioning"
    body = (await read(client)).json()
    assert body["status"] == "Provisioning"
    assert "endTime" not in body


@pytest.mark.parametrize("location", ["West%20US", "West US", "westus", "WestUS", "WESTUS"])
async def test_location_spellings_are_one_operation(
    client: httpx.AsyncClient, location: str
) -> None:
    created = await put(client, {}, status_path(location="West%20US"))
    assert created.json()["id"] == op_id_path(location="westus")
    got = await read(client, status_path(location=location))
    assert got.json() == created.json()
    replay = await put(client, {}, status_path(location=location), expect=200)
    assert replay.json() == created.json()


async def test_namespace_and_literal_segments_ignore_case(client: httpx.AsyncClient) -> None:
    created = await put(client, {"status": "Succeeded"})
    for path in (
        f"/subscriptions/{SUB_A}/providers/microsoft.cache/locations/westus/operationsStatus/op1",
        f"/subscriptions/{SUB_A}/providers/MICROSOFT.CACHE/locations/westus/OPERATIONSSTATUS/op1",
        f"/SUBSCRIPTIONS/{SUB_A}/Providers/Microsoft.Cache/LOCATIONS/westus/operationsstatus/op1",
    ):
        got = await read(client, path + "?api-version=2025-07-01")
        assert got.json() == created.json()
        assert got.json()["id"] == op_id_path()


async def test_subscription_ignores_case(client: httpx.AsyncClient) -> None:
    created = await put(client, {}, status_path(sub=SUB_A.upper()))
    assert created.json()["id"] == op_id_path(sub=SUB_A)
    assert (await read(client, status_path(sub=SUB_A))).json() == created.json()


async def test_operation_id_ignores_case(client: httpx.AsyncClient) -> None:
    created = await put(client, {"status": "InProgress"}, status_path(op_id="OP1"))
    assert created.json()["name"] == "OP1"
    assert created.json()["id"] == op_id_path(op_id="OP1")
    assert (await read(client, status_path(op_id="op1"))).json() == created.json()
    # Same id in another case: a replay of the create, not a second operation.
    await put(client, {"status": "InProgress"}, status_path(op_id="op1"), expect=200)
    patched = await patch(client, {"status": "Succeeded"}, status_path(op_id="Op1"))
    assert patched.json()["name"] == "OP1"
    assert (await client.delete(status_path(op_id="oP1"))).status_code == 200
    assert (await client.get(status_path(op_id="OP1"))).status_code == 404


async def test_an_operation_is_reachable_only_under_its_own_location_and_namespace(
    flat_client: httpx.AsyncClient,
) -> None:
    created = await put(flat_client, {"status": "InProgress"})
    elsewhere = [
        status_path(location="eastus"),
        status_path(namespace="Contoso.Widgets", api_version="2024-01-01"),
    ]
    for url in elsewhere:
        assert_arm_error(await flat_client.get(url), 404, "ResourceNotFound", target="operationId")
        assert_arm_error(
            await flat_client.patch(url, json={"status": "Succeeded"}),
            404,
            "ResourceNotFound",
            target="operationId",
        )
        assert (await flat_client.delete(url)).status_code == 204
    got = await read(flat_client)
    assert got.json() == created.json()
    assert got.headers["etag"] == created.headers["etag"]


async def test_every_microsoft_cache_api_version_is_accepted(client: httpx.AsyncClient) -> None:
    created = await put(client, {"status": "InProgress"})
    assert len(MICROSOFT_CACHE_API_VERSIONS) == 23
    for version in MICROSOFT_CACHE_API_VERSIONS:
        got = await client.get(status_path(api_version=version))
        assert got.status_code == 200, (version, got.text)
        assert got.json() == created.json()
        op_id = f"v-{version}"
        made = await client.put(status_path(op_id=op_id, api_version=version), json={})
        assert made.status_code == 201, (version, made.text)
        posted = await client.post(collection_path(api_version=version), json={})
        assert posted.status_code == 201, (version, posted.text)
        assert posted.headers["azure-asyncoperation"].endswith(f"?api-version={version}")


# -- PUT idempotency -------------------------------------------------------------------------


async def test_put_replay_is_200_and_changes_nothing(client: httpx.AsyncClient) -> None:
    body = {"status": "InProgress", "startTime": T0, "percentComplete": 10}
    created = await put(client, body)
    replay = await put(client, body, expect=200)
    assert replay.json() == created.json()
    assert replay.headers["etag"] == created.headers["etag"]
    assert (await read(client)).headers["etag"] == created.headers["etag"]


async def test_put_replay_after_a_patch_does_not_undo_it(client: httpx.AsyncClient) -> None:
    body = {"status": "InProgress"}
    await put(client, body)
    patched = await patch(client, {"status": "Succeeded"})
    replay = await put(client, body, expect=200)
    assert replay.json() == patched.json()
    assert replay.json()["status"] == "Succeeded"
    assert replay.headers["etag"] == patched.headers["etag"]


@pytest.mark.parametrize(
    "second",
    [
        {"status": "Succeeded"},
        {"status": "InProgress", "startTime": T1},
        {"status": "InProgress", "percentComplete": 20},
        {"status": "InProgress", "properties": {"a": 1}},
        {},
    ],
)
async def test_put_with_a_different_body_is_409(
    client: httpx.AsyncClient, second: dict[str, Any]
) -> None:
    created = await put(client, {"status": "InProgress", "startTime": T0})
    response = await client.put(status_path(), json=second)
    assert_arm_error(response, 409, "OperationAlreadyExists")
    got = await read(client)
    assert got.json() == created.json()
    assert got.headers["etag"] == created.headers["etag"]


# -- PATCH -----------------------------------------------------------------------------------


async def test_patch_progress_up_down_and_reset(flat_client: httpx.AsyncClient) -> None:
    await put(flat_client, {"status": "InProgress", "percentComplete": 10}, widget_path())
    up = await patch(flat_client, {"percentComplete": 50}, widget_path())
    assert up.json()["percentComplete"] == 50
    assert up.json()["status"] == "InProgress"
    down = await flat_client.patch(widget_path(), json={"percentComplete": 20})
    error = assert_arm_error(down, 409, "PercentCompleteRegression", target="percentComplete")
    assert "50" in error["message"] and "20" in error["message"]
    got = await read(flat_client, widget_path())
    assert got.json() == up.json()
    assert got.headers["etag"] == up.headers["etag"]
    no_reset = await flat_client.patch(
        widget_path(), json={"percentComplete": 20, "resetProgress": False}
    )
    assert_arm_error(no_reset, 409, "PercentCompleteRegression", target="percentComplete")
    reset = await patch(flat_client, {"percentComplete": 20, "resetProgress": True}, widget_path())
    assert reset.json()["percentComplete"] == 20
    assert reset.headers["etag"] != up.headers["etag"]
    assert (await read(flat_client, widget_path())).json()["percentComplete"] == 20


async def test_patch_progress_regression_on_microsoft_cache(client: httpx.AsyncClient) -> None:
    await put(client, {"percentComplete": 60})
    response = await client.patch(status_path(), json={"percentComplete": 59.5})
    assert_arm_error(response, 409, "PercentCompleteRegression", target="percentComplete")
    same = await patch(client, {"percentComplete": 60})
    assert "percentComplete" not in same.json()


@pytest.mark.parametrize(
    ("final", "error"),
    [
        ({"status": "Succeeded"}, None),
        (
            {"status": "Failed", "error": {"code": "DiskFull", "message": "No space left."}},
            {"code": "DiskFull", "message": "No space left."},
        ),
        ({"status": "Failed"}, {"code": "OperationFailed", "message": "The operation failed."}),
        (
            {"status": "Canceled"},
            {"code": "OperationCanceled", "message": "The operation was canceled."},
        ),
    ],
    ids=["Succeeded", "Failed-with-error", "Failed-without-error", "Canceled"],
)
async def test_terminal_patch_sets_end_time_and_is_final(
    client: httpx.AsyncClient, final: dict[str, Any], error: dict[str, Any] | None
) -> None:
    created = await put(client, {"status": "InProgress", "startTime": T0})
    assert "endTime" not in created.json()
    done = await patch(client, final)
    body = done.json()
    assert body["status"] == final["status"]
    assert iso(body["endTime"]) >= iso(body["startTime"])
    assert (
        abs((datetime.now(iso(body["endTime"]).tzinfo) - iso(body["endTime"])).total_seconds()) < 60
    )
    if error is None:
        assert "error" not in body
    else:
        assert body["error"] == {"error": error}
    assert set(body) <= OPERATION_STATUS_KEYS
    # Replaying the same terminal PATCH is a no-op: 200, nothing changes.
    replay = await patch(client, final)
    assert replay.json() == body
    assert replay.headers["etag"] == done.headers["etag"]
    # Anything else is refused: the terminal status is final.
    others = [
        {"status": "InProgress"},
        {"status": "Succeeded" if final["status"] != "Succeeded" else "Failed"},
        {"status": "Canceled" if final["status"] != "Canceled" else "Failed"},
        {"percentComplete": 1} if final["status"] != "Succeeded" else {"percentComplete": 99},
        {"properties": {"late": True}},
    ]
    for other in others:
        response = await client.patch(status_path(), json=other)
        assert_arm_error(response, 409, "OperationAlreadyTerminal")
    got = await read(client)
    assert got.json() == body
    assert got.headers["etag"] == done.headers["etag"]


async def test_terminal_patch_keeps_a_given_end_time(client: httpx.AsyncClient) -> None:
    await put(client, {"startTime": T0})
    done = await patch(client, {"status": "Succeeded", "endTime": "2024-05-01T10:05:00.123+00:00"})
    assert done.json()["endTime"] == T1


async def test_failed_create_without_error_gets_operation_failed(
    client: httpx.AsyncClient,
) -> None:
    created = await put(client, {"status": "Failed", "startTime": T0})
    body = created.json()
    assert body["error"] == {
        "error": {"code": "OperationFailed", "message": "The operation failed."}
    }
    assert iso(body["endTime"]) >= iso(T0)


async def test_error_is_nested_on_the_wire_for_microsoft_cache(client: httpx.AsyncClient) -> None:
    detail = {
        "code": "DiskFull",
        "message": "No space left on /data.",
        "target": "disk0",
        "details": [{"code": "Inner", "message": "quota 100 GB"}],
        "additionalInfo": [{"type": "PolicyViolation", "info": {"policy": "p1"}}],
    }
    created = await put(
        client, {"status": "Failed", "error": detail, "percentComplete": 30, "properties": {"x": 1}}
    )
    body = (await read(client)).json()
    assert body == created.json()
    assert body["error"] == {"error": detail}
    assert set(body) == {"id", "name", "startTime", "endTime", "status", "error"}


async def test_nested_error_input_is_accepted_as_is(client: httpx.AsyncClient) -> None:
    await put(client, {})
    done = await patch(
        client, {"status": "Failed", "error": {"error": {"code": "Bad", "message": "m"}}}
    )
    assert done.json()["error"] == {"error": {"code": "Bad", "message": "m"}}
    replay = await patch(client, {"status": "Failed", "error": {"code": "Bad", "message": "m"}})
    assert replay.headers["etag"] == done.headers["etag"]


async def test_microsoft_cache_never_shows_percent_or_properties(
    client: httpx.AsyncClient,
) -> None:
    await put(client, {"status": "InProgress", "percentComplete": 10, "properties": {"a": 1}})
    await patch(client, {"percentComplete": 70})
    body = (await patch(client, {"status": "Succeeded", "properties": {"a": 2}})).json()
    assert set(body) == {"id", "name", "startTime", "endTime", "status"}
    assert set((await read(client)).json()) <= OPERATION_STATUS_KEYS


async def test_http_status_code_is_stored_but_in_no_published_arm_shape(
    client: httpx.AsyncClient, flat_client: httpx.AsyncClient
) -> None:
    """The producer reports it for the classic form; ARM bodies show it only on request."""
    full = {"Prefer": "opstatus-detail=full"}
    await put(client, {"status": "InProgress", "httpStatusCode": 202})
    done = await patch(client, {"status": "Failed", "httpStatusCode": 409})
    assert set(done.json()) == {"id", "name", "startTime", "endTime", "status", "error"}
    assert (await client.get(status_path(), headers=full)).json()["httpStatusCode"] == 409
    assert (await patch(client, {"httpStatusCode": 409})).headers["etag"] == done.headers["etag"]
    changed = await client.patch(status_path(), json={"httpStatusCode": 500})
    assert_arm_error(changed, 409, "OperationAlreadyTerminal")
    await put(flat_client, {"status": "Succeeded", "httpStatusCode": 201}, url=widget_path())
    flat = (await flat_client.get(widget_path())).json()
    assert "httpStatusCode" not in flat and flat["status"] == "Succeeded"
    shown = await flat_client.get(widget_path(), headers=full)
    assert shown.json()["httpStatusCode"] == 201


async def test_full_detail_shows_a_running_operations_properties(
    client: httpx.AsyncClient, flat_client: httpx.AsyncClient
) -> None:
    """Progress detail (a Celery task's message) reaches opstatus's own readers while the
    operation runs; the published shapes still show properties only as a result."""
    full = {"Prefer": "opstatus-detail=full"}
    await put(client, {"status": "InProgress", "properties": {"message": "copying"}})
    assert (await client.get(status_path(), headers=full)).json()["properties"] == {
        "message": "copying"
    }
    assert "properties" not in (await read(client)).json()
    await put(flat_client, {"status": "InProgress", "properties": {"a": 1}}, url=widget_path())
    assert "properties" not in (await flat_client.get(widget_path())).json()
    await patch(client, {"status": "Failed", "error": {"code": "Bad", "message": "m"}})
    assert "properties" not in (await client.get(status_path(), headers=full)).json()


# -- a provider registered from a file: the flat RPC shape ------------------------------------


async def test_toml_provider_answers_in_the_flat_shape(flat_client: httpx.AsyncClient) -> None:
    created = await put(
        flat_client,
        {
            "status": "InProgress",
            "percentComplete": 25,
            "properties": {"rows": 10},
            "startTime": T0,
        },
        widget_path(),
    )
    assert created.json() == {
        "id": op_id_path(op_id="w1", namespace="Contoso.Widgets"),
        "name": "w1",
        "startTime": T0,
        "status": "InProgress",
        "percentComplete": 25,
    }
    done = await patch(
        flat_client, {"status": "Succeeded", "properties": {"rows": 42}}, widget_path()
    )
    body = done.json()
    assert body["percentComplete"] == 100
    assert body["properties"] == {"rows": 42}
    assert "error" not in body
    assert (await read(flat_client, widget_path())).json() == body


async def test_toml_provider_error_is_flat_and_properties_hidden_unless_succeeded(
    flat_client: httpx.AsyncClient,
) -> None:
    await put(
        flat_client,
        {"status": "InProgress", "percentComplete": 40, "properties": {"rows": 10}},
        widget_path(),
    )
    failed = await patch(
        flat_client,
        {"status": "Failed", "error": {"code": "Bad", "message": "boom"}},
        widget_path(),
    )
    body = failed.json()
    assert body["error"] == {"code": "Bad", "message": "boom"}
    assert body["percentComplete"] == 40
    assert "properties" not in body
    canceled = await put(
        flat_client, {"status": "Canceled", "properties": {"a": 1}}, widget_path("w2")
    )
    assert canceled.json()["error"] == {
        "code": "OperationCanceled",
        "message": "The operation was canceled.",
    }
    assert "properties" not in canceled.json()
    assert "percentComplete" not in canceled.json()


async def test_toml_provider_keeps_its_own_api_versions(flat_client: httpx.AsyncClient) -> None:
    await put(flat_client, {}, widget_path())
    wrong = await flat_client.get(widget_path(api_version="2025-07-01"))
    error = assert_arm_error(wrong, 400, "NoRegisteredProviderFound", target="api-version")
    assert "'2024-01-01'" in error["message"]
    # Microsoft.Cache stays registered beside it, with its own versions.
    assert (await flat_client.put(status_path(), json={})).status_code == 201
    other = await flat_client.get(status_path(api_version="2024-01-01"))
    assert_arm_error(other, 400, "NoRegisteredProviderFound", target="api-version")
    namespace = await flat_client.get(widget_path().replace("Contoso.Widgets", "contoso.WIDGETS"))
    assert namespace.status_code == 200
    assert namespace.json()["id"] == op_id_path(op_id="w1", namespace="Contoso.Widgets")


async def test_toml_provider_round_trips_through_sqlite(home: Path, providers_file: Path) -> None:
    async with app_client(home, providers_file=providers_file) as c:
        c.headers.update(bearer(home))
        props = {"nested": {"list": [1, 2.5, "three", None, True]}, "unicode": "Zürich ☃"}
        await put(c, {"status": "InProgress", "percentComplete": 12.5}, widget_path())
        done = await patch(c, {"status": "Succeeded", "properties": props}, widget_path())
    async with app_client(home, providers_file=providers_file) as c:
        c.headers.update(bearer(home))
        got = await read(c, widget_path())
        assert got.json() == done.json()
        assert got.json()["properties"] == props
        assert got.headers["etag"] == done.headers["etag"]


# -- If-Match --------------------------------------------------------------------------------


async def test_if_match_happy_paths(client: httpx.AsyncClient) -> None:
    etag = (await put(client, {})).headers["etag"]
    first = await patch(client, {"percentComplete": 10}, **{"If-Match": etag})
    assert first.headers["etag"] != etag
    weak = await patch(
        client, {"percentComplete": 20}, **{"If-Match": f"W/{first.headers['etag']}"}
    )
    listed = await patch(
        client, {"percentComplete": 30}, **{"If-Match": f'"other", {weak.headers["etag"]}'}
    )
    anything = await patch(client, {"percentComplete": 40}, **{"If-Match": "*"})
    assert (
        len(
            {
                etag,
                first.headers["etag"],
                weak.headers["etag"],
                listed.headers["etag"],
                anything.headers["etag"],
            }
        )
        == 5
    )


@pytest.mark.parametrize("header", ['"*"', 'W/"*"', '"*", "other"'])
async def test_a_quoted_star_is_an_etag_not_the_wildcard(
    client: httpx.AsyncClient, header: str
) -> None:
    """Only the bare ``*`` means any version (RFC 9110); ``"*"`` names the ETag ``*``,
    which no operation here has: 412, on update and on delete, and nothing changes."""
    etag = (await put(client, {})).headers["etag"]
    patched = await client.patch(
        status_path(), json={"percentComplete": 5}, headers={"If-Match": header}
    )
    assert_arm_error(patched, 412, "PreconditionFailed", target="If-Match")
    deleted = await client.delete(status_path(), headers={"If-Match": header})
    assert_arm_error(deleted, 412, "PreconditionFailed", target="If-Match")
    assert (await client.get(status_path())).headers["etag"] == etag
    bare = await client.patch(
        status_path(), json={"percentComplete": 5}, headers={"If-Match": '*, "other"'}
    )
    assert bare.status_code == 200, bare.text


async def test_a_quoted_star_matches_an_operation_whose_etag_is_star(home: Path) -> None:
    store = MemoryStore()
    star = Operation(
        subscription_id=SUB_A,
        operation_id="op1",
        namespace="Microsoft.Cache",
        location="westus",
        status="InProgress",
        start_time="2030-01-01T00:00:00.000Z",
        etag="*",
    )
    await store.create(star)
    async with app_client(home, store=store) as c:
        c.headers.update(bearer(home))
        response = await c.patch(
            status_path(), json={"percentComplete": 5}, headers={"If-Match": '"*"'}
        )
    assert response.status_code == 200, response.text


async def test_if_match_stale_is_412_and_changes_nothing(client: httpx.AsyncClient) -> None:
    stale = (await put(client, {})).headers["etag"]
    current = await patch(client, {"percentComplete": 10})
    response = await client.patch(
        status_path(), json={"status": "Succeeded"}, headers={"If-Match": stale}
    )
    assert_arm_error(response, 412, "PreconditionFailed", target="If-Match")
    got = await read(client)
    assert got.json() == current.json()
    assert got.headers["etag"] == current.headers["etag"]
    delete = await client.delete(status_path(), headers={"If-Match": stale})
    assert_arm_error(delete, 412, "PreconditionFailed", target="If-Match")
    assert (await read(client)).headers["etag"] == current.headers["etag"]
    deleted = await client.delete(status_path(), headers={"If-Match": current.headers["etag"]})
    assert deleted.status_code == 200


# -- DELETE ----------------------------------------------------------------------------------


async def test_delete_then_get_is_404(client: httpx.AsyncClient) -> None:
    await put(client, {"status": "Succeeded"})
    deleted = await client.delete(status_path())
    assert deleted.status_code == 200
    assert deleted.content == b""
    missing = await client.get(status_path())
    assert_arm_error(missing, 404, "ResourceNotFound", target="operationId")
    assert "'op1'" in missing.json()["error"]["message"]
    again = await client.delete(status_path())
    assert again.status_code == 204
    assert again.content == b""
    assert_arm_error(
        await client.patch(status_path(), json={}), 404, "ResourceNotFound", target="operationId"
    )
    # The id is free again: a new create is a new operation.
    recreated = await put(client, {"status": "InProgress"})
    assert recreated.json()["status"] == "InProgress"


# -- POST: the server chooses the id ---------------------------------------------------------


async def test_post_creates_and_links_an_absolute_status_url(client: httpx.AsyncClient) -> None:
    posted = await client.post(
        collection_path(location="West%20US", namespace="microsoft.cache"),
        json={"status": "InProgress", "startTime": T0},
    )
    assert posted.status_code == 201, posted.text
    body = posted.json()
    name = body["name"]
    assert uuid.UUID(name).version == 7
    assert body == {
        "id": op_id_path(op_id=name),
        "name": name,
        "startTime": T0,
        "status": "InProgress",
    }
    link = posted.headers["azure-asyncoperation"]
    assert link == f"http://testserver{op_id_path(op_id=name)}?api-version=2025-07-01"
    fetched = await client.get(link)
    assert fetched.status_code == 200
    assert fetched.json() == body
    assert fetched.headers["etag"] == posted.headers["etag"]
    other = await client.post(collection_path(), json={})
    assert other.json()["name"] != name


async def test_post_link_uses_the_public_url(home: Path) -> None:
    async with app_client(home, store=MemoryStore(), public_url="https://ops.example.com/") as c:
        posted = await c.post(collection_path(), headers=bearer(home), json={})
        assert posted.status_code == 201, posted.text
        name = posted.json()["name"]
        assert posted.headers["azure-asyncoperation"] == (
            f"https://ops.example.com{op_id_path(op_id=name)}?api-version=2025-07-01"
        )


# -- healthz ---------------------------------------------------------------------------------


async def test_healthz_needs_no_token(bare_client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer garbage"}):
        response = await bare_client.get("/healthz", headers=headers)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert response.headers["content-type"] == "application/json"

"""The lifecycle over HTTP, with a controllable clock: cancel, the Location half of ARM's
pattern (operationResults), leases lapsing to ProducerLost, expiry and tombstones, and the
background sweeps running inside the app's lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opstatus.stores import MemoryStore
from tests.support import SUB_A, FakeClock, app_client, bearer, status_path

from .conftest import assert_arm_error, db_rows, widget_path

pytestmark = pytest.mark.anyio

FULL = {"Prefer": "opstatus-detail=full"}


def result_path(
    op_id: str = "op1", namespace: str = "Microsoft.Cache", api: str = "2025-07-01"
) -> str:
    return status_path(op_id=op_id, namespace=namespace, api_version=api).replace(
        "/operationsStatus/", "/operationResults/"
    )


def cancel_path(op_id: str = "op1") -> str:
    return status_path(op_id=f"{op_id}/cancel")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(
    home: Path, owner: dict[str, str], clock: FakeClock, providers_file: Path
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(
        home, store=MemoryStore(), clock=clock, retry_after=7, providers_file=providers_file
    ) as c:
        c.headers.update(owner)
        yield c


async def put(c: httpx.AsyncClient, body: dict[str, Any], url: str | None = None) -> httpx.Response:
    response = await c.put(url or status_path(), json=body)
    assert response.status_code == 201, response.text
    return response


async def patch(
    c: httpx.AsyncClient, body: dict[str, Any], url: str | None = None
) -> httpx.Response:
    response = await c.patch(url or status_path(), json=body, headers=FULL)
    assert response.status_code == 200, response.text
    return response


# --- the producer-set fields ------------------------------------------------------------------


async def test_full_detail_shows_kind_lease_cancel_and_expiry(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await put(client, {"kind": "resize", "leaseSeconds": 120, "cancelable": False})
    body = (await client.get(status_path(), headers=FULL)).json()
    assert body["kind"] == "resize"
    assert body["cancelable"] is False
    assert body["leaseSeconds"] == 120
    assert body["leaseExpiresAt"] == "2030-01-01T00:02:00.000Z"
    assert body["leaseState"] == "Active"
    assert "expiresAt" not in body and "cancelRequestedAt" not in body
    plain = (await client.get(status_path())).json()
    assert set(plain) == {"id", "name", "startTime", "status"}  # the swagger's keys only

    clock.advance(60)
    done = (await patch(client, {"status": "Succeeded", "httpStatusCode": 200})).json()
    assert done["expiresAt"] == "2030-01-08T00:01:00.000Z"  # the default week
    assert done["httpStatusCode"] == 200
    assert not {"leaseSeconds", "leaseExpiresAt", "leaseState"} & set(done)


async def test_the_default_lease_is_a_day_and_zero_means_none(client: httpx.AsyncClient) -> None:
    await put(client, {})
    body = (await client.get(status_path(), headers=FULL)).json()
    assert body["leaseSeconds"] == 86400
    await put(client, {"leaseSeconds": 0}, status_path(op_id="forever"))
    forever = (await client.get(status_path(op_id="forever"), headers=FULL)).json()
    assert "leaseSeconds" not in forever and "leaseState" not in forever


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({"leaseSeconds": -5}, "leaseSeconds"),
        ({"leaseSeconds": "60"}, "leaseSeconds"),
        ({"kind": "has space"}, "kind"),
        ({"kind": 3}, "kind"),
        ({"cancelable": "no"}, "cancelable"),
        ({"httpStatusCode": 99}, "httpStatusCode"),
        ({"httpStatusCode": 404.5}, "httpStatusCode"),
    ],
)
async def test_bad_lifecycle_fields_are_400(
    client: httpx.AsyncClient, body: dict[str, Any], target: str
) -> None:
    response = await client.put(status_path(), json=body)
    assert_arm_error(response, 400, "InvalidRequestContent", target=target)


async def test_kind_and_cancelable_cannot_be_patched(client: httpx.AsyncClient) -> None:
    await put(client, {})
    for field in ("kind", "cancelable"):
        response = await client.patch(status_path(), json={field: "x"})
        assert_arm_error(response, 400, "InvalidRequestContent", target=field)


# --- cancel -----------------------------------------------------------------------------------


async def test_cancel_records_the_request_for_the_producer(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await put(client, {"percentComplete": 10})
    clock.advance(3)
    response = await client.post(cancel_path())
    assert response.status_code == 202
    assert response.headers["azure-asyncoperation"] == "http://testserver" + status_path()
    assert response.headers["location"] == "http://testserver" + result_path()
    assert response.headers["retry-after"] == "7"
    assert response.json()["status"] == "InProgress"
    # The producer sees it on its next read or update ...
    seen = (await patch(client, {"percentComplete": 20})).json()
    assert seen["cancelRequestedAt"] == "2030-01-01T00:00:03.000Z"
    # ... and moves the operation to Canceled.
    canceled = (await patch(client, {"status": "Canceled"})).json()
    assert canceled["error"] == {
        "error": {"code": "OperationCanceled", "message": "The operation was canceled."}
    }
    again = await client.post(cancel_path())
    assert again.status_code == 200 and again.json()["status"] == "Canceled"
    assert "retry-after" not in again.headers


async def test_cancel_refusals(home: Path, client: httpx.AsyncClient) -> None:
    await put(client, {"cancelable": False})
    assert_arm_error(await client.post(cancel_path()), 409, "OperationNotCancelable")
    await put(client, {"status": "Succeeded"}, status_path(op_id="done"))
    assert_arm_error(await client.post(cancel_path("done")), 409, "OperationAlreadyTerminal")
    response = await client.post(cancel_path("nope"))
    assert_arm_error(response, 404, "ResourceNotFound", target="operationId")
    reader = bearer(home, "Reader", f"/subscriptions/{SUB_A}")
    response = await client.post(cancel_path(), headers=reader)
    assert_arm_error(response, 403, "AuthorizationFailed")
    assert "operationsStatus/cancel/action" in response.text


# --- the Location half: operationResults -------------------------------------------------------


async def test_results_are_202_without_a_body_while_running(client: httpx.AsyncClient) -> None:
    await put(client, {"status": "Running"})
    response = await client.get(result_path())
    assert response.status_code == 202
    assert response.content == b""
    assert response.headers["location"] == "http://testserver" + result_path()
    assert response.headers["retry-after"] == "7"


async def test_results_of_success_are_the_properties_or_204(client: httpx.AsyncClient) -> None:
    await put(client, {"status": "Succeeded", "properties": {"size": 3, "name": "w"}})
    response = await client.get(result_path())
    assert response.status_code == 200
    assert response.json() == {"size": 3, "name": "w"}
    assert "retry-after" not in response.headers
    await put(client, {"status": "Succeeded"}, status_path(op_id="empty"))
    empty = await client.get(result_path("empty"))
    assert empty.status_code == 204 and empty.content == b""


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {
                "status": "Failed",
                "error": {"code": "Conflict", "message": "m"},
                "httpStatusCode": 409,
            },
            409,
            "Conflict",
        ),
        ({"status": "Failed", "error": {"code": "DiskFull", "message": "m"}}, 500, "DiskFull"),
        ({"status": "Failed", "httpStatusCode": 200}, 500, "OperationFailed"),
        ({"status": "Canceled"}, 500, "OperationCanceled"),
        ({"status": "Canceled", "httpStatusCode": 400}, 400, "OperationCanceled"),
    ],
)
async def test_results_of_failure_are_the_error_with_the_reported_status(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, code: str
) -> None:
    await put(client, body)
    response = await client.get(result_path())
    error = assert_arm_error(response, status, code)
    assert error["message"]


async def test_results_keep_the_error_details(client: httpx.AsyncClient) -> None:
    error = {
        "code": "Quota",
        "message": "Over quota.",
        "target": "sku",
        "details": [{"code": "Inner", "message": "inner"}],
    }
    await put(client, {"status": "Failed", "error": error, "httpStatusCode": 429})
    response = await client.get(result_path())
    assert response.status_code == 429
    assert response.json() == {"error": error}


async def test_results_for_a_flat_provider_and_unknown_ids(client: httpx.AsyncClient) -> None:
    await put(client, {"status": "Succeeded", "properties": {"a": 1}}, widget_path("w1"))
    response = await client.get(result_path("w1", "Contoso.Widgets", "2024-01-01"))
    assert response.json() == {"a": 1}
    response = await client.get(result_path("nope"))
    assert_arm_error(response, 404, "ResourceNotFound", target="operationId")
    response = await client.get(result_path(api="1999-01-01"))
    assert_arm_error(response, 400, "NoRegisteredProviderFound", target="api-version")


# --- leases lapse -----------------------------------------------------------------------------


async def test_a_lapsed_lease_shows_then_producer_lost(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await put(client, {"leaseSeconds": 30, "percentComplete": 5}, widget_path("w1"))
    clock.advance(20)
    await patch(client, {}, widget_path("w1"))  # a heartbeat: renewed until 00:00:50
    clock.advance(31)
    lapsed = (await client.get(widget_path("w1"), headers=FULL)).json()
    assert lapsed["status"] == "InProgress" and lapsed["leaseState"] == "Lapsed"
    clock.advance(300)  # the default grace
    response = await client.get(widget_path("w1"))
    assert "retry-after" not in response.headers
    body = response.json()
    assert body["status"] == "Failed"
    assert body["endTime"] == "2030-01-01T00:05:50.000Z"
    assert body["error"]["code"] == "ProducerLost"
    late = await client.patch(widget_path("w1"), json={"status": "Succeeded"})
    assert_arm_error(late, 409, "OperationAlreadyTerminal")


# --- expiry and tombstones --------------------------------------------------------------------


async def test_expired_reads_are_a_distinct_404(
    home: Path, owner: dict[str, str], clock: FakeClock
) -> None:
    async with app_client(home, clock=clock, maintenance_interval=0) as c:  # SQLite
        c.headers.update(owner)
        await put(c, {"status": "Failed", "error": {"code": "E", "message": "m"}})
        clock.advance(days=30, seconds=-1)
        assert (await c.get(status_path())).status_code == 200
        clock.advance(1)
        for url in (status_path(), result_path()):
            error = assert_arm_error(
                await c.get(url), 404, "OperationExpired", target="operationId"
            )
            assert (
                "ended with status 'Failed' and expired at 2030-01-31T00:00:00.000Z"
                in error["message"]
            )
        never = await c.get(status_path(op_id="never-existed"))
        assert_arm_error(never, 404, "ResourceNotFound", target="operationId")


async def test_the_sweep_runs_inside_the_server(
    home: Path, owner: dict[str, str], clock: FakeClock
) -> None:
    """No cron: the app's lifespan sweeps every maintenance_interval seconds."""
    async with app_client(home, clock=clock, maintenance_interval=0.02) as c:
        c.headers.update(owner)
        await put(c, {"status": "Succeeded"})
        await put(c, {"leaseSeconds": 10}, status_path(op_id="lost"))
        clock.advance(days=8)
        for _ in range(200):
            if not any(row[1] == "op1" for row in db_rows(home)):
                break
            await asyncio.sleep(0.02)
        rows = {row[1]: row for row in db_rows(home)}  # by operation_key
        assert "op1" not in rows  # removed, a tombstone left
        assert rows["lost"][5] == "Failed"  # status column: the sweep failed it, no read needed
        assert_arm_error(await c.get(status_path()), 404, "OperationExpired", target="operationId")
        clock.advance(days=31)  # the tombstone's own period
        for _ in range(200):
            response = await c.get(status_path())
            if response.status_code == 404 and "ResourceNotFound" in response.text:
                break
            await asyncio.sleep(0.02)
        assert_arm_error(response, 404, "ResourceNotFound", target="operationId")

"""The real Azure SDK client (azure-mgmt-redisenterprise 3.1.0) against a real server process.

Operations are seeded over HTTP by a producer; the SDK reads them as a consumer would, with
``operations_status.get(location, operation_id, enforce_https=False)`` (plain-http loopback).
Every 200 body is also fetched raw and validated against the transcribed OperationStatus schema.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.core.pipeline.policies import HeadersPolicy
from azure.mgmt.redisenterprise import RedisEnterpriseManagementClient
from azure.mgmt.redisenterprise.models import OperationStatus

from tests.support import SUB_A, SUB_B, ServerProcess, status_path, token

pytestmark = pytest.mark.e2e

ARM_SCOPE = "https://management.azure.com/.default"


class StaticCredential:
    """A TokenCredential that hands out one fixed bearer token and records the scopes asked."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.value, int(time.time()) + 3600)


ClientFactory = Callable[..., RedisEnterpriseManagementClient]


@pytest.fixture
def make_client(server: ServerProcess) -> Iterator[ClientFactory]:
    """Build SDK clients for subscription A against the server; all are closed afterwards."""
    clients: list[RedisEnterpriseManagementClient] = []

    def make(credential: Any, **kwargs: Any) -> RedisEnterpriseManagementClient:
        client = RedisEnterpriseManagementClient(
            credential=credential, subscription_id=SUB_A, base_url=server.url, **kwargs
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def reader_credential(server: ServerProcess) -> StaticCredential:
    return StaticCredential(server.token("Reader", f"/subscriptions/{SUB_A}"))


@pytest.fixture
def sdk(
    make_client: ClientFactory, reader_credential: StaticCredential
) -> RedisEnterpriseManagementClient:
    return make_client(reader_credential)


@pytest.fixture
def raw_get(reader: httpx.Client, check_status_body: Callable[[Any], None]) -> Callable[..., Any]:
    """GET an operation over plain HTTP, expect 200, validate the body against the schema."""

    def get(op_id: str) -> dict[str, Any]:
        response = reader.get(status_path(op_id=op_id, location="West%20US"))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].split(";")[0].strip() == "application/json"
        body: dict[str, Any] = response.json()
        check_status_body(body)
        return body

    return get


def expected_id(op_id: str) -> str:
    return (
        f"/subscriptions/{SUB_A}/providers/Microsoft.Cache/locations/westus"
        f"/operationsStatus/{op_id}"
    )


def sdk_get(client: RedisEnterpriseManagementClient, op_id: str) -> OperationStatus:
    result = client.operations_status.get("West US", op_id, enforce_https=False)
    assert isinstance(result, OperationStatus)
    return result


def assert_matches_raw(result: OperationStatus, body: dict[str, Any]) -> None:
    """The SDK model and the raw body agree field by field."""
    assert result.id == body["id"]
    assert result.name == body["name"]
    assert result.status == body["status"]
    assert result.start_time == body.get("startTime")
    assert result.end_time == body.get("endTime")
    assert result.additional_properties == {}


# --- reading operations ---------------------------------------------------------------------


def test_in_progress(
    seed: Callable[..., httpx.Response],
    sdk: RedisEnterpriseManagementClient,
    reader_credential: StaticCredential,
    raw_get: Callable[..., Any],
) -> None:
    seed("op-running", {"status": "InProgress", "startTime": "2024-05-01T10:00:00Z"})

    result = sdk_get(sdk, "op-running")

    assert result.id == expected_id("op-running")
    assert result.name == "op-running"
    assert result.status == "InProgress"
    assert result.start_time == "2024-05-01T10:00:00.000Z"
    assert result.end_time is None
    assert result.error is None
    assert reader_credential.scopes == [(ARM_SCOPE,)]
    body = raw_get("op-running")
    assert body == {
        "id": expected_id("op-running"),
        "name": "op-running",
        "startTime": "2024-05-01T10:00:00.000Z",
        "status": "InProgress",
    }
    assert_matches_raw(result, body)


def test_in_progress_without_start_time_gets_one(
    seed: Callable[..., httpx.Response],
    sdk: RedisEnterpriseManagementClient,
    raw_get: Callable[..., Any],
) -> None:
    seed("op-nostart", {})

    result = sdk_get(sdk, "op-nostart")

    assert result.status == "InProgress"
    assert result.end_time is None
    assert isinstance(result.start_time, str)
    assert result.start_time.endswith("Z")
    assert_matches_raw(result, raw_get("op-nostart"))


def test_succeeded(
    seed: Callable[..., httpx.Response],
    producer: httpx.Client,
    sdk: RedisEnterpriseManagementClient,
    raw_get: Callable[..., Any],
) -> None:
    seed("op-ok", {"status": "InProgress", "startTime": "2024-05-01T10:00:00.000Z"})
    done = producer.patch(
        status_path(op_id="op-ok"),
        json={"status": "Succeeded", "endTime": "2024-05-01T10:05:30.250Z"},
    )
    assert done.status_code == 200, done.text

    result = sdk_get(sdk, "op-ok")

    assert result.id == expected_id("op-ok")
    assert result.name == "op-ok"
    assert result.status == "Succeeded"
    assert result.start_time == "2024-05-01T10:00:00.000Z"
    assert result.end_time == "2024-05-01T10:05:30.250Z"
    assert result.error is None
    body = raw_get("op-ok")
    assert body == done.json()
    assert_matches_raw(result, body)


def test_succeeded_without_end_time_gets_one(
    seed: Callable[..., httpx.Response],
    producer: httpx.Client,
    sdk: RedisEnterpriseManagementClient,
    raw_get: Callable[..., Any],
) -> None:
    seed("op-ok2", {"status": "InProgress"})
    done = producer.patch(status_path(op_id="op-ok2"), json={"status": "Succeeded"})
    assert done.status_code == 200, done.text

    result = sdk_get(sdk, "op-ok2")

    assert result.status == "Succeeded"
    assert isinstance(result.end_time, str)
    assert isinstance(result.start_time, str)
    assert result.end_time >= result.start_time  # same fixed-width UTC format: sorts by time
    assert result.error is None
    assert_matches_raw(result, raw_get("op-ok2"))


FULL_ERROR = {
    "code": "ProvisioningFailed",
    "message": "The cache could not be provisioned: quota exceeded in West US.",
    "target": "properties.sku",
    "details": [{"code": "QuotaExceeded", "message": "Core quota is 10; 12 requested."}],
    "additionalInfo": [{"type": "PolicyViolation", "info": {"policy": "cores", "limit": 10}}],
}


def test_failed_error_read_through_sdk_model(
    seed: Callable[..., httpx.Response],
    producer: httpx.Client,
    sdk: RedisEnterpriseManagementClient,
    raw_get: Callable[..., Any],
) -> None:
    seed("op-bad", {"status": "InProgress", "startTime": "2024-05-01T10:00:00Z"})
    done = producer.patch(
        status_path(op_id="op-bad"), json={"status": "Failed", "error": FULL_ERROR}
    )
    assert done.status_code == 200, done.text

    result = sdk_get(sdk, "op-bad")

    assert result.status == "Failed"
    assert result.end_time is not None
    assert result.error is not None
    assert result.error.additional_properties == {}
    detail = result.error.error
    assert detail is not None, "error must be the nested ErrorResponse {'error': {...}}"
    assert detail.code == "ProvisioningFailed"
    assert detail.message == "The cache could not be provisioned: quota exceeded in West US."
    assert detail.target == "properties.sku"
    assert detail.details is not None
    assert [(d.code, d.message) for d in detail.details] == [
        ("QuotaExceeded", "Core quota is 10; 12 requested.")
    ]
    assert detail.additional_info is not None
    assert [(i.type, i.info) for i in detail.additional_info] == [
        ("PolicyViolation", {"policy": "cores", "limit": 10})
    ]
    body = raw_get("op-bad")
    assert body["error"] == {"error": FULL_ERROR}
    assert_matches_raw(result, body)


def test_failed_created_directly_with_nested_error(
    seed: Callable[..., httpx.Response],
    sdk: RedisEnterpriseManagementClient,
    raw_get: Callable[..., Any],
) -> None:
    """A producer copying the swagger's nested shape gets the same result as the flat one."""
    seed(
        "op-bad2",
        {"status": "Failed", "error": {"error": {"code": "Timeout", "message": "Took too long."}}},
    )

    result = sdk_get(sdk, "op-bad2")

    assert result.status == "Failed"
    assert result.error is not None
    assert result.error.error is not None
    assert result.error.error.code == "Timeout"
    assert result.error.error.message == "Took too long."
    body = raw_get("op-bad2")
    assert body["error"] == {"error": {"code": "Timeout", "message": "Took too long."}}


def test_canceled_carries_error_code(
    seed: Callable[..., httpx.Response],
    producer: httpx.Client,
    sdk: RedisEnterpriseManagementClient,
    raw_get: Callable[..., Any],
) -> None:
    """RPC: error.code is required when status is Canceled (single l)."""
    seed("op-cancel", {"status": "InProgress"})
    done = producer.patch(
        status_path(op_id="op-cancel"),
        json={"status": "Canceled", "error": {"code": "CanceledByUser", "message": "Stopped."}},
    )
    assert done.status_code == 200, done.text

    result = sdk_get(sdk, "op-cancel")

    assert result.status == "Canceled"
    assert result.end_time is not None
    assert result.error is not None
    assert result.error.error is not None
    assert result.error.error.code == "CanceledByUser"
    assert result.error.error.message == "Stopped."
    assert_matches_raw(result, raw_get("op-cancel"))


# --- errors the SDK raises ------------------------------------------------------------------


def test_unknown_operation_raises_resource_not_found(
    seed: Callable[..., httpx.Response], sdk: RedisEnterpriseManagementClient
) -> None:
    seed("op-exists", {"status": "InProgress"})

    with pytest.raises(ResourceNotFoundError) as info:
        sdk_get(sdk, "op-never-created")

    assert info.value.status_code == 404
    assert info.value.error is not None
    assert info.value.error.code == "ResourceNotFound"
    assert info.value.error.message
    assert "retry-after" not in info.value.response.headers


def test_missing_token_raises_client_authentication_error(make_client: ClientFactory) -> None:
    # An authentication policy that adds no Authorization header at all; the credential is
    # required by the client but never asked. (enforce_https is an option of the bearer
    # policy only; without one it must not be passed.)
    unused = StaticCredential("never-sent")
    client = make_client(unused, authentication_policy=HeadersPolicy(), retry_total=0)

    with pytest.raises(ClientAuthenticationError) as info:
        client.operations_status.get("West US", "op1")

    assert info.value.status_code == 401
    assert info.value.error is not None
    assert info.value.error.code == "AuthenticationFailed"
    assert "retry-after" not in info.value.response.headers
    assert info.value.response.headers["www-authenticate"].startswith("Bearer ")
    assert unused.scopes == []


def _other_key_token(tmp_path: Path) -> str:
    other_home = tmp_path / "other-home"
    return token(other_home, "Owner", "/")


@pytest.mark.parametrize(
    "bad_token",
    [
        pytest.param(lambda server, tmp_path: "garbage-not-a-jwt", id="garbage"),
        pytest.param(lambda server, tmp_path: _other_key_token(tmp_path), id="signed-by-other-key"),
        pytest.param(
            lambda server, tmp_path: token(server.home, "Owner", "/", expires_in=-3600),
            id="expired",
        ),
    ],
)
def test_invalid_token_raises_client_authentication_error(
    server: ServerProcess,
    make_client: ClientFactory,
    seed: Callable[..., httpx.Response],
    tmp_path: Path,
    bad_token: Callable[[ServerProcess, Path], str],
) -> None:
    seed("op-secret", {"status": "InProgress"})
    client = make_client(StaticCredential(bad_token(server, tmp_path)), retry_total=0)

    with pytest.raises(ClientAuthenticationError) as info:
        sdk_get(client, "op-secret")

    assert info.value.status_code == 401
    assert info.value.error is not None
    assert info.value.error.code == "InvalidAuthenticationToken"
    assert "retry-after" not in info.value.response.headers


@pytest.mark.parametrize("op_id", ["op-secret", "op-never-created"])
def test_token_for_another_subscription_is_forbidden(
    server: ServerProcess,
    make_client: ClientFactory,
    seed: Callable[..., httpx.Response],
    op_id: str,
) -> None:
    """403 whether or not the operation exists: a caller cannot probe another subscription."""
    seed("op-secret", {"status": "Succeeded"})
    credential = StaticCredential(server.token("Owner", f"/subscriptions/{SUB_B}"))
    client = make_client(credential, retry_total=0)

    with pytest.raises(HttpResponseError) as info:
        sdk_get(client, op_id)

    assert not isinstance(info.value, ClientAuthenticationError | ResourceNotFoundError)
    assert info.value.status_code == 403
    assert info.value.error is not None
    assert info.value.error.code == "AuthorizationFailed"
    assert SUB_A in info.value.error.message
    assert "retry-after" not in info.value.response.headers

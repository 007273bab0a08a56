"""The real legacy client (azure-servicemanagement-legacy 0.20.8) against a real server process.

``ServiceManagementService`` authenticates through an injected ``requests.Session`` (which
carries the bearer token) and is pointed at plain-http loopback, as its own code allows:
``host='127.0.0.1:PORT'`` and ``_httpclient.protocol = 'http'``. Operations are seeded over
the ARM producer API, so each test also shows one operation read in both forms. One
server serves the module; every test uses its own request ids.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests
from azure.common import AzureHttpError, AzureMissingResourceHttpError
from azure.servicemanagement import ServiceManagementService
from azure.servicemanagement.models import AzureAsyncOperationHttpError

from tests.support import SUB_A, SUB_B, ServerProcess, status_path

pytestmark = pytest.mark.e2e

LegacyFactory = Callable[..., ServiceManagementService]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("legacy") / "home"
    home.mkdir()
    proc = ServerProcess(home, "--retry-after", "0").start()
    yield proc
    proc.stop()


@pytest.fixture
def make_legacy(server: ServerProcess) -> Iterator[LegacyFactory]:
    sessions: list[requests.Session] = []

    def make(token: str | None = None, subscription_id: str = SUB_A) -> ServiceManagementService:
        session = requests.Session()
        sessions.append(session)
        if token is not None:
            session.headers["Authorization"] = f"Bearer {token}"
        sms = ServiceManagementService(
            subscription_id=subscription_id,
            request_session=session,
            host=f"127.0.0.1:{server.port}",
        )
        sms._httpclient.protocol = "http"
        return sms

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def legacy(server: ServerProcess, make_legacy: LegacyFactory) -> ServiceManagementService:
    """A classic caller holding a Reader token on subscription A."""
    return make_legacy(server.token("Reader", f"/subscriptions/{SUB_A}"))


@pytest.mark.parametrize(
    ("body", "status", "http_status_code", "error"),
    [
        pytest.param({"percentComplete": 30}, "InProgress", "", None, id="InProgress"),
        pytest.param({"status": "Succeeded"}, "Succeeded", "200", None, id="Succeeded"),
        pytest.param(
            {"status": "Failed", "error": {"code": "DiskFull", "message": "No space left."}},
            "Failed",
            "500",
            ("DiskFull", "No space left."),
            id="Failed",
        ),
        pytest.param(
            {
                "status": "Failed",
                "httpStatusCode": 409,
                "error": {"code": "Conflict", "message": 'Name <taken> & "gone" é.'},
            },
            "Failed",
            "409",
            ("Conflict", 'Name <taken> & "gone" é.'),
            id="Failed-reported-409",
        ),
        pytest.param(
            {"status": "Canceled"},
            "Failed",
            "500",
            ("OperationCanceled", "The operation was canceled."),
            id="Canceled",
        ),
    ],
)
def test_get_operation_status_reads_every_status(
    legacy: ServiceManagementService,
    seed: Callable[..., httpx.Response],
    body: dict[str, Any],
    status: str,
    http_status_code: str,
    error: tuple[str, str] | None,
) -> None:
    request_id = f"req-{uuid.uuid4()}"
    seed(request_id, body)
    result = legacy.get_operation_status(request_id)
    assert result.status == status
    assert result.http_status_code == http_status_code
    if error is None:
        assert result.error is None
    else:
        assert (result.error.code, result.error.message) == error
    # The SDK reads <Id>, the documentation says <ID>: we follow the documentation, so the
    # SDK's id stays empty (the caller holds the request id anyway).
    assert result.id == ""


def test_wait_for_operation_status_returns_when_the_operation_succeeds(
    legacy: ServiceManagementService,
    seed: Callable[..., httpx.Response],
    producer: httpx.Client,
) -> None:
    seed("req-2", {"percentComplete": 0})

    def finish() -> None:
        time.sleep(0.6)
        response = producer.patch(status_path(op_id="req-2"), json={"status": "Succeeded"})
        assert response.status_code == 200, response.text

    thread = threading.Thread(target=finish)
    started = time.monotonic()
    thread.start()
    result = legacy.wait_for_operation_status(
        "req-2", timeout=20, sleep_interval=0.1, progress_callback=None, success_callback=None
    )
    thread.join()
    assert 0.5 < time.monotonic() - started < 15
    assert (result.status, result.http_status_code, result.error) == ("Succeeded", "200", None)


def test_wait_for_operation_status_raises_when_the_operation_fails(
    legacy: ServiceManagementService, seed: Callable[..., httpx.Response]
) -> None:
    seed("req-3", {"status": "Canceled"})
    # The SDK's default failure callback raises (after printing the result).
    with pytest.raises(AzureAsyncOperationHttpError) as info:
        legacy.wait_for_operation_status(
            "req-3", timeout=5, sleep_interval=0.1, progress_callback=None
        )
    assert info.value.result.status == "Failed"
    assert info.value.result.error.code == "OperationCanceled"


def test_unknown_request_id_raises_missing_resource(legacy: ServiceManagementService) -> None:
    with pytest.raises(AzureMissingResourceHttpError) as info:
        legacy.get_operation_status("never-created")
    assert info.value.status_code == 404
    assert "<Code>ResourceNotFound</Code>" in str(info.value)


def test_another_subscription_is_403_and_no_token_is_403(
    server: ServerProcess, make_legacy: LegacyFactory, seed: Callable[..., httpx.Response]
) -> None:
    seed("req-4", {"status": "Succeeded"})
    elsewhere = make_legacy(server.token("Reader", f"/subscriptions/{SUB_A}"), SUB_B)
    with pytest.raises(AzureHttpError) as info:
        elsewhere.get_operation_status("req-4")
    assert info.value.status_code == 403
    assert "<Code>AuthenticationFailed</Code>" in str(info.value)
    with pytest.raises(AzureHttpError) as info:
        make_legacy(None).get_operation_status("req-4")
    assert info.value.status_code == 403

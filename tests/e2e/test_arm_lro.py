"""ARM's asynchronous pattern end to end, with the Azure SDK's own poller.

Two real server processes on loopback: ``opstatus serve`` (``--retry-after 0``, Contoso.Widgets
registered with the flat RPC shape) and the example provider ``docs/examples/provider_app.py``,
which answers each write 201/202 with ``Azure-AsyncOperation`` and ``Location`` (built with
``opstatus.Client.accept``) and works inside an opstatus producer block.

The client is azure-core's ``LROPoller`` with azure-mgmt-core's ``ARMPolling`` at a polling
interval of 0 (its ``timeout`` argument; mgmt clients pass ``polling_interval`` there), as a
management SDK's ``begin_*`` builds it. Authorization goes in a ``HeadersPolicy`` (PROTOCOL
4.5: a bearer credential policy would refuse plain http unless ``enforce_https=False``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core import PipelineClient
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.policies import HeadersPolicy, RequestIdPolicy, RetryPolicy
from azure.core.polling import LROPoller
from azure.core.polling.base_polling import LocationPolling
from azure.core.rest import HttpRequest
from azure.mgmt.core.polling.arm_polling import ARMPolling

from opstatus import Client
from tests.support import SUB_A, ServerProcess, free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
POLLING_INTERVAL = 0
WIDGETS = f"/subscriptions/{SUB_A}/resourceGroups/rg1/providers/Contoso.Widgets/widgets"
API = "?api-version=2024-01-01"
LONG = 100_000  # steps of work: far more than a test waits for; only a cancel ends them


class ProviderProcess:
    """The example provider app as its README runs it."""

    def __init__(self, opstatus: ServerProcess, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(
            os.environ,
            OPSTATUS_ENDPOINT=opstatus.url,
            OPSTATUS_TOKEN=opstatus.token("Contributor", f"/subscriptions/{SUB_A}", "widgets"),
            WIDGETS_STEP_SECONDS="0.01",
        )
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "docs/examples/provider_app.py"),
                    "--port",
                    str(self.port),
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"provider exited: {log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"provider did not start: {log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# The two processes serve the whole module; every test works on widgets of its own.


@pytest.fixture(scope="module")
def opstatus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("lro") / "home"
    home.mkdir()
    providers = ROOT / "docs/examples/providers.toml"
    proc = ServerProcess(home, "--retry-after", "0", "--providers", str(providers)).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def provider(opstatus_server: ServerProcess) -> Iterator[ProviderProcess]:
    proc = ProviderProcess(opstatus_server, opstatus_server.home.parent / "provider.log")
    yield proc
    proc.stop()


@pytest.fixture
def widget(request: pytest.FixtureRequest) -> str:
    """A widget path of this test's own."""
    return f"{WIDGETS}/{request.node.name.removeprefix('test_')[:60]}"


@pytest.fixture(scope="module")
def arm(opstatus_server: ServerProcess, provider: ProviderProcess) -> Iterator[PipelineClient]:
    """What ARM and a management SDK put between the caller and both services."""
    token = opstatus_server.token("Reader", f"/subscriptions/{SUB_A}", "arm-caller")
    client: PipelineClient = PipelineClient(
        provider.url,
        policies=[
            RequestIdPolicy(),
            HeadersPolicy({"Authorization": f"Bearer {token}"}),
            RetryPolicy(retry_total=0),
        ],
    )
    with client:
        yield client


@pytest.fixture(scope="module")
def canceler(opstatus_server: ServerProcess) -> Iterator[Client]:
    with Client(opstatus_server.url, opstatus_server.token("Contributor", "/", "ops")) as c:
        yield c


def deserialize(pipeline_response: Any) -> Any:
    response = pipeline_response.http_response
    return response.json() if response.text() else None


def read(arm: PipelineClient, path: str) -> Any:
    return arm.send_request(HttpRequest("GET", arm.format_url(f"{path}{API}")))


def start(arm: PipelineClient, method: str, path: str, body: Any = None) -> Any:
    request = HttpRequest(method, arm.format_url(f"{path}{API}"), json=body)
    initial = arm.send_request(request, _return_pipeline_response=True)
    assert initial.http_response.status_code in (201, 202), initial.http_response.text()
    return initial


def poll(arm: PipelineClient, initial: Any, **polling: Any) -> Any:
    poller: LROPoller[Any] = LROPoller(
        arm, initial, deserialize, ARMPolling(POLLING_INTERVAL, **polling)
    )
    return poller.result(timeout=60)


def begin(arm: PipelineClient, method: str, path: str, body: Any = None) -> Any:
    return poll(arm, start(arm, method, path, body))


def cancel_soon(canceler: Client, initial: Any) -> None:
    canceler.cancel(initial.http_response.headers["Azure-AsyncOperation"])


# --- what a start looks like -------------------------------------------------------------------


def test_the_initial_response_carries_absolute_links_and_retry_after(
    arm: PipelineClient, opstatus_server: ServerProcess, widget: str
) -> None:
    initial = start(arm, "PUT", widget, {"location": "westus", "properties": {}})
    response = initial.http_response
    assert response.status_code == 201
    assert response.json()["properties"]["provisioningState"] == "Accepted"
    status_url = response.headers["Azure-AsyncOperation"]
    location = response.headers["Location"]
    prefix = (
        f"{opstatus_server.url}/subscriptions/{SUB_A}/providers/Contoso.Widgets/locations/westus"
    )
    assert status_url.startswith(f"{prefix}/operationsStatus/")
    assert location == status_url.replace("/operationsStatus/", "/operationResults/")
    assert status_url.endswith("?api-version=2024-01-01")
    assert response.headers["Retry-After"] == "0"
    poll(arm, initial)


# --- Succeeded ----------------------------------------------------------------------------------


def test_put_succeeds_and_returns_the_resource(arm: PipelineClient, widget: str) -> None:
    result = begin(arm, "PUT", widget, {"location": "westus", "properties": {"size": 2}})
    assert result["properties"] == {"size": 2, "provisioningState": "Succeeded"}
    assert result["id"] == widget


def test_patch_succeeds_and_returns_the_resource(arm: PipelineClient, widget: str) -> None:
    begin(arm, "PUT", widget, {"location": "westus", "properties": {"size": 1}})
    result = begin(arm, "PATCH", widget, {"properties": {"size": 3, "color": "red"}})
    assert result["properties"]["size"] == 3
    assert result["properties"]["color"] == "red"
    assert result["properties"]["provisioningState"] == "Succeeded"


def test_delete_succeeds(arm: PipelineClient, widget: str) -> None:
    begin(arm, "PUT", widget, {"location": "westus", "properties": {"size": 1}})
    begin(arm, "DELETE", widget)
    gone = read(arm, widget)
    assert gone.status_code == 404


def test_post_succeeds_with_the_result_from_the_location(arm: PipelineClient, widget: str) -> None:
    """ARMPolling reads the result of a POST from the Location URL: operationResults."""
    begin(arm, "PUT", widget, {"location": "westus", "properties": {"size": 1}})
    assert begin(arm, "POST", f"{widget}/polish", {"rounds": 2}) == {"shine": 2}
    assert begin(arm, "POST", f"{widget}/polish", {"rounds": 1}) == {"shine": 3}


# --- Failed -------------------------------------------------------------------------------------


def assert_failed(error: pytest.ExceptionInfo[HttpResponseError], code: str, message: str) -> None:
    assert error.value.error is not None
    assert error.value.error.code == code
    assert error.value.error.message == message
    assert f"Code: {code}" in str(error.value)


def test_put_fails_with_the_producers_error(arm: PipelineClient, widget: str) -> None:
    with pytest.raises(HttpResponseError) as info:
        begin(arm, "PUT", widget, {"location": "westus", "properties": {"color": "plaid"}})
    assert_failed(info, "UnsupportedColor", "Widgets do not come in plaid.")


def test_patch_fails_with_the_producers_error(arm: PipelineClient, widget: str) -> None:
    begin(arm, "PUT", widget, {"location": "westus", "properties": {"size": 1}})
    with pytest.raises(HttpResponseError) as info:
        begin(arm, "PATCH", widget, {"properties": {"color": "plaid"}})
    assert_failed(info, "UnsupportedColor", "Widgets do not come in plaid.")


def test_delete_fails_with_the_producers_error(arm: PipelineClient, widget: str) -> None:
    body = {"location": "westus", "properties": {"size": 1, "locked": True}}
    begin(arm, "PUT", widget, body)
    with pytest.raises(HttpResponseError) as info:
        begin(arm, "DELETE", widget)
    assert_failed(info, "WidgetLocked", "The widget is locked; unlock it first.")
    assert read(arm, widget).status_code == 200


def test_post_fails_with_the_producers_error(arm: PipelineClient, widget: str) -> None:
    begin(arm, "PUT", widget, {"location": "westus", "properties": {"size": 1}})
    with pytest.raises(HttpResponseError) as info:
        begin(arm, "POST", f"{widget}/polish", {"compound": "sandpaper"})
    assert_failed(info, "UnsupportedCompound", "Sandpaper would scratch the widget.")


# --- Canceled -----------------------------------------------------------------------------------

CANCELED = ("OperationCanceled", "The operation was canceled.")


def test_put_is_canceled(arm: PipelineClient, canceler: Client, widget: str) -> None:
    initial = start(arm, "PUT", widget, {"location": "westus", "properties": {"size": LONG}})
    cancel_soon(canceler, initial)
    with pytest.raises(HttpResponseError) as info:
        poll(arm, initial)
    assert_failed(info, *CANCELED)
    left = read(arm, widget).json()
    assert left["properties"]["provisioningState"] == "Canceled"


def test_patch_is_canceled(arm: PipelineClient, canceler: Client, widget: str) -> None:
    begin(arm, "PUT", widget, {"location": "westus", "properties": {"size": 1}})
    initial = start(arm, "PATCH", widget, {"properties": {"size": LONG}})
    cancel_soon(canceler, initial)
    with pytest.raises(HttpResponseError) as info:
        poll(arm, initial)
    assert_failed(info, *CANCELED)


def test_delete_is_canceled(arm: PipelineClient, canceler: Client, widget: str) -> None:
    # A big widget, left behind (Canceled) by a canceled PUT, as ARM resources are.
    initial = start(arm, "PUT", widget, {"location": "westus", "properties": {"size": LONG}})
    cancel_soon(canceler, initial)
    with pytest.raises(HttpResponseError):
        poll(arm, initial)
    initial = start(arm, "DELETE", widget)
    cancel_soon(canceler, initial)
    with pytest.raises(HttpResponseError) as info:
        poll(arm, initial)
    assert_failed(info, *CANCELED)
    assert read(arm, widget).status_code == 200


def test_post_is_canceled(arm: PipelineClient, canceler: Client, widget: str) -> None:
    begin(arm, "PUT", widget, {"location": "westus", "properties": {"size": 1}})
    initial = start(arm, "POST", f"{widget}/polish", {"rounds": LONG})
    cancel_soon(canceler, initial)
    with pytest.raises(HttpResponseError) as info:
        poll(arm, initial)
    assert_failed(info, *CANCELED)


# --- the Location half alone --------------------------------------------------------------------


def test_location_polling_alone_reads_202_then_the_result(arm: PipelineClient, widget: str) -> None:
    """A client that follows only Location (azure-core's LocationPolling): 202 while running,
    then 200 with the result; a failure is an error status with the producer's error."""
    begin(arm, "PUT", widget, {"location": "westus", "properties": {"size": 1}})
    initial = start(arm, "POST", f"{widget}/polish", {"rounds": 3})
    assert poll(arm, initial, lro_algorithms=[LocationPolling()]) == {"shine": 3}

    initial = start(arm, "POST", f"{widget}/polish", {"compound": "sandpaper"})
    with pytest.raises(HttpResponseError) as info:
        poll(arm, initial, lro_algorithms=[LocationPolling()])
    assert info.value.status_code == 500  # the producer reported no HTTP status
    assert_failed(info, "UnsupportedCompound", "Sandpaper would scratch the widget.")

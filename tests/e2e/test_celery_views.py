"""opstatus.celery's answers from Flask and Django views (``flask_response``,
``django_response``), each view driven by its framework's own test client, against a real
``opstatus serve`` process and a real worker; the Azure SDK's ``LROPoller`` with
``ARMPolling`` then completes each operation from the view's 202, as
tests/e2e/test_celery_lro.py does for Starlette."""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from azure.core import PipelineClient
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline import PipelineContext, PipelineResponse
from azure.core.pipeline.policies import HeadersPolicy, RequestIdPolicy, RetryPolicy
from azure.core.polling import LROPoller
from azure.core.rest import HttpRequest
from azure.core.rest._http_response_impl import HttpResponseImpl
from azure.core.utils import case_insensitive_dict
from azure.mgmt.core.polling.arm_polling import ARMPolling
from celery import Celery

from opstatus import Client
from opstatus.celery import Tracker, accept_task, django_response, flask_response
from tests import celery_support as cs
from tests.celery_app import create_app
from tests.support import SUB_A, ServerProcess

pytestmark = pytest.mark.e2e

WIDGET = f"/subscriptions/{SUB_A}/resourceGroups/rg1/providers/Contoso.Widgets/widgets"
TEST_HOST = "http://testserver"  # what both test clients call the app


@dataclass
class Stack:
    server: ServerProcess
    app: Celery
    tracker: Tracker
    client: Client
    arm: PipelineClient

    def add(self, name: str, body: dict[str, Any], method: str) -> Any:
        """What both views do: accept a tracked task, answering ARM's 202 (201 for PUT)."""
        resource = {"name": name, "properties": {"state": "Updating"}} if method == "PUT" else None
        task = self.app.tasks["tests.add" if "x" in body else "tests.fail"]
        args = (body["x"], body["y"]) if "x" in body else (body["message"],)
        return accept_task(self.tracker, task, args, method=method, resource=resource)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    cs.check_redis()
    folder = tmp_path_factory.mktemp("celery-views")
    home = folder / "home"
    home.mkdir()
    # Contoso.Widgets answers in ARM's flat error shape, the one azure-core's poller reads.
    providers = str(cs.ROOT / "docs" / "examples" / "providers.toml")
    server = ServerProcess(home, "--retry-after", "0", "--providers", providers).start()
    queue = cs.run_name()
    env = {
        **os.environ,
        "OPSTATUS_ENDPOINT": server.url,
        "OPSTATUS_TOKEN": server.token("Contributor", f"/subscriptions/{SUB_A}", "views"),
        "OPSTATUS_TEST_SUBSCRIPTION": SUB_A,
        "OPSTATUS_TEST_BROKER": cs.redis_url(),
        "OPSTATUS_TEST_BACKEND": cs.redis_url(),
        "OPSTATUS_TEST_QUEUE": queue,
        "OPSTATUS_TEST_NAMESPACE": "Contoso.Widgets",
        "OPSTATUS_TEST_API_VERSION": "2024-01-01",
    }
    worker = cs.Worker(env, folder / "worker.log")
    app, tracker = create_app(env)
    client = Client(
        server.url,
        server.token("Owner", "/", "tester"),
        namespace="Contoso.Widgets",
        api_version="2024-01-01",
    )
    reader = server.token("Reader", f"/subscriptions/{SUB_A}", "arm-caller")
    arm: PipelineClient = PipelineClient(
        server.url,
        policies=[
            RequestIdPolicy(),
            HeadersPolicy({"Authorization": f"Bearer {reader}"}),
            RetryPolicy(retry_total=0),
        ],
    )
    try:
        worker.start()
        with arm:
            yield Stack(server, app, tracker, client, arm)
    finally:
        worker.stop()
        tracker.close(timeout=2)
        client.close()
        server.stop()


# --- the two frameworks -------------------------------------------------------------------------


@dataclass
class Answer:
    """A test client's response, whatever the framework."""

    status: int
    headers: dict[str, str]
    body: bytes
    response: Any


def flask_post(stack: Stack, path: str, body: dict[str, Any], method: str = "POST") -> Answer:
    from flask import Flask, request

    web = Flask("widgets")

    @web.route(f"{WIDGET}/<name>/add", methods=["POST", "PUT"])
    def add(name: str) -> Any:
        return flask_response(stack.add(name, request.get_json(), request.method))

    response = web.test_client().open(path, method=method, json=body)
    return Answer(response.status_code, dict(response.headers), response.get_data(), response)


class _Urls:
    """A Django URLconf of one view, given to the settings as an object."""

    def __init__(self, stack: Stack) -> None:
        from django.http import HttpRequest as DjangoRequest
        from django.urls import path

        def add(request: DjangoRequest, name: str) -> Any:
            return django_response(stack.add(name, json.loads(request.body), str(request.method)))

        self.urlpatterns = [path(f"{WIDGET.lstrip('/')}/<str:name>/add", add)]


def django_post(stack: Stack, path: str, body: dict[str, Any], method: str = "POST") -> Answer:
    import django
    from django.conf import settings
    from django.test import Client as DjangoClient
    from django.urls import clear_url_caches

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="opstatus-tests",
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF=None,
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
        )
        django.setup()
    settings.ROOT_URLCONF = _Urls(stack)
    clear_url_caches()
    client = DjangoClient()
    send = client.put if method == "PUT" else client.post
    response = send(path, data=json.dumps(body), content_type="application/json")
    return Answer(response.status_code, dict(response.headers), response.content, response)


VIEWS = {"flask": flask_post, "django": django_post}


def begin(stack: Stack, answer: Answer, path: str) -> LROPoller[Any]:
    """The SDK's poller, started from the view's answer as if it had come over the wire."""
    # The request the SDK would have sent: its RequestIdPolicy names every request.
    request = HttpRequest(
        "POST", f"{TEST_HOST}{path}", headers={"x-ms-client-request-id": str(uuid.uuid4())}
    )
    headers = case_insensitive_dict(answer.headers)
    response = HttpResponseImpl(
        request=request,
        internal_response=io.BytesIO(answer.body),
        status_code=answer.status,
        reason="Accepted",
        content_type=headers.get("Content-Type"),
        headers=headers,
        stream_download_generator=None,
    )
    response._content = answer.body
    initial = PipelineResponse(request, response, PipelineContext(None))
    return LROPoller(stack.arm, initial, deserialize, ARMPolling(0))


def deserialize(pipeline_response: Any) -> Any:
    response = pipeline_response.http_response
    return response.json() if response.text() else None


def check_accepted(stack: Stack, answer: Answer) -> str:
    assert answer.status == 202, answer.body
    assert answer.body == b""
    status_url = answer.headers["Azure-AsyncOperation"]
    assert status_url.startswith(f"{stack.server.url}/subscriptions/{SUB_A}/")
    assert "/operationsStatus/" in status_url
    assert "/operationResults/" in answer.headers["Location"]
    assert answer.headers["Retry-After"] == "0"
    return status_url


@pytest.mark.parametrize("framework", list(VIEWS))
def test_a_views_202_is_completed_by_the_sdks_poller(stack: Stack, framework: str) -> None:
    path = f"{WIDGET}/w1/add"
    answer = VIEWS[framework](stack, path, {"x": 2, "y": 3})
    status_url = check_accepted(stack, answer)
    assert begin(stack, answer, path).result(timeout=60) == {"sum": 5}
    op = stack.client.get(status_url)
    assert (op.status, op.kind) == ("Succeeded", "tests.add")


@pytest.mark.parametrize("framework", list(VIEWS))
def test_the_sdks_poller_raises_the_tasks_error(stack: Stack, framework: str) -> None:
    path = f"{WIDGET}/w2/add"
    answer = VIEWS[framework](stack, path, {"message": "No space left."})
    check_accepted(stack, answer)
    with pytest.raises(HttpResponseError) as error:
        begin(stack, answer, path).result(timeout=60)
    assert error.value.error is not None and error.value.error.code == "DiskFull"


@pytest.mark.parametrize("framework", list(VIEWS))
def test_a_put_answers_201_with_the_resource(stack: Stack, framework: str) -> None:
    answer = VIEWS[framework](stack, f"{WIDGET}/w3/add", {"x": 1, "y": 1}, method="PUT")
    assert answer.status == 201, answer.body
    assert answer.headers["Content-Type"] == "application/json"
    assert json.loads(answer.body) == {"name": "w3", "properties": {"state": "Updating"}}
    if framework == "django":
        from django.http import JsonResponse

        assert isinstance(answer.response, JsonResponse)
    op = stack.client.wait(answer.headers["Azure-AsyncOperation"], timeout=30)
    assert (op.status, op.properties) == ("Succeeded", {"sum": 2})

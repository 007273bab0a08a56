"""The example web API on Celery (docs/examples/celery_web.py and celery_app.py), completed by
the Azure SDK's own ``LROPoller`` with ``ARMPolling``: real opstatus, worker and web processes.
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
from azure.core.rest import HttpRequest
from azure.mgmt.core.polling.arm_polling import ARMPolling

from tests import celery_support as cs
from tests.support import SUB_A, ServerProcess, free_port

pytestmark = pytest.mark.e2e

EXAMPLES = cs.ROOT / "docs" / "examples"
RESIZE = f"/subscriptions/{SUB_A}/resourceGroups/rg1/providers/Contoso.Widgets/widgets"


class WebProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.url = f"http://127.0.0.1:{(port := free_port())}"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "celery_web.py", "--port", str(port)],
                env=env,
                cwd=EXAMPLES,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"web API exited: {log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"web API did not start: {log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineClient]:
    """opstatus, a worker of the example app and the example web API, and the client a
    management SDK builds in front of them."""
    cs.check_redis()
    folder = tmp_path_factory.mktemp("celery-lro")
    home = folder / "home"
    home.mkdir()
    providers = str(EXAMPLES / "providers.toml")
    server = ServerProcess(home, "--retry-after", "0", "--providers", providers).start()
    queue = cs.run_name()
    env = {
        **os.environ,
        "OPSTATUS_ENDPOINT": server.url,
        "OPSTATUS_TOKEN": server.token("Contributor", f"/subscriptions/{SUB_A}", "widgets"),
        "WIDGETS_SUBSCRIPTION": SUB_A,
        "WIDGETS_STEP_SECONDS": "0.01",
        "CELERY_BROKER_URL": cs.redis_url(),
        "CELERY_QUEUE": queue,
        "OPSTATUS_TEST_QUEUE": queue,
        "PYTHONPATH": str(cs.ROOT),
    }
    worker = cs.Worker(env, folder / "worker.log", app="celery_app", cwd=EXAMPLES)
    web: WebProcess | None = None
    try:
        worker.start()
        web = WebProcess(env, folder / "web.log")
        token = server.token("Reader", f"/subscriptions/{SUB_A}", "arm-caller")
        client: PipelineClient = PipelineClient(
            web.url,
            policies=[
                RequestIdPolicy(),
                HeadersPolicy({"Authorization": f"Bearer {token}"}),
                RetryPolicy(retry_total=0),
            ],
        )
        with client:
            yield client
    finally:
        if web is not None:
            web.stop()
        worker.stop()
        server.stop()


def deserialize(pipeline_response: Any) -> Any:
    response = pipeline_response.http_response
    return response.json() if response.text() else None


def begin_resize(arm: PipelineClient, name: str, size: int) -> LROPoller[Any]:
    url = arm.format_url(f"{RESIZE}/{name}/resize?api-version=2024-01-01")
    initial = arm.send_request(
        HttpRequest("POST", url, json={"size": size}), _return_pipeline_response=True
    )
    response = initial.http_response
    assert response.status_code == 202, response.text()
    assert response.headers["Azure-AsyncOperation"].startswith("http://127.0.0.1:")
    assert "/operationResults/" in response.headers["Location"]
    assert response.headers["Retry-After"] == "0"
    return LROPoller(arm, initial, deserialize, ARMPolling(0))


def test_lro_poller_completes_with_the_tasks_result(arm: PipelineClient) -> None:
    assert begin_resize(arm, "w1", 5).result(timeout=60) == {"name": "w1", "size": 5}


def test_lro_poller_raises_the_tasks_error(arm: PipelineClient) -> None:
    with pytest.raises(HttpResponseError) as error:
        begin_resize(arm, "w2", 101).result(timeout=60)
    assert error.value.error is not None and error.value.error.code == "UnsupportedSize"
    assert "up to 100" in str(error.value.error.message)

"""``opstatus serve --workers N``: several processes on one port, one store between them."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.support import ServerProcess, status_path

pytestmark = pytest.mark.e2e


def workers_of(server: ServerProcess) -> set[int]:
    assert server.proc is not None
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text()
    return {int(pid) for pid in children.split()}


def metrics_scrapes(metrics: str) -> float:
    """How many /metrics GETs the worker that answered has counted (this one included)."""
    for line in metrics.splitlines():
        if line.startswith("opstatus_http_requests_total{") and 'route="/metrics"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_workers_share_the_port_and_the_store(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "home", "--workers", "2").start()
    try:
        first = workers_of(server)
        assert len(first) == 2
        owner = {"Authorization": f"Bearer {server.token()}"}
        scrapes: list[float] = []
        for i in range(40):  # a new connection each time: the kernel spreads them
            path = status_path(op_id=f"op{i}")
            body = {"status": "Succeeded" if i % 2 else "InProgress"}
            assert httpx.put(server.url + path, json=body, headers=owner).status_code == 201
            read = httpx.get(server.url + path, headers=owner)  # maybe the other worker
            assert read.status_code == 200 and read.json()["status"] == body["status"]
            scrapes.append(metrics_scrapes(httpx.get(server.url + "/metrics").text))
        # Each worker counts its own scrapes: one worker alone would have counted to 40.
        assert max(scrapes) < 40, "every connection went to one worker"

        # A worker that dies is replaced; the port keeps answering meanwhile.
        os.kill(min(first), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while len(workers_of(server) - first) < 1 and time.monotonic() < deadline:
            assert httpx.get(server.url + status_path(op_id="op1"), headers=owner).is_success
            time.sleep(0.05)
        assert len(workers_of(server)) == 2 and max(first) in workers_of(server)
    finally:
        assert server.proc is not None
        server.proc.terminate()
        assert server.proc.wait(20) == 0  # every worker drained and exited

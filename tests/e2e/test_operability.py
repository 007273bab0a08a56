"""Operability of a real ``opstatus serve``: JSON log lines that carry the request id, and
metrics, readiness and liveness on the wire."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.support import SUB_A, ServerProcess, status_path

from .conftest import bearer

pytestmark = pytest.mark.e2e


def counted_metrics(client: httpx.Client) -> str:
    """A scrape that shows the operation counts, which the first scrape starts counting."""
    deadline = time.monotonic() + 10
    while "opstatus_operations{" not in (text := client.get("/metrics").text):
        assert time.monotonic() < deadline, text
        time.sleep(0.02)
    return text


def test_metrics_token_is_enforced_by_a_real_server(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSTATUS_METRICS_TOKEN", "scrape-me-0123")  # what serve --help advises
    server = ServerProcess(home).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            refused = client.get("/metrics")
            wrong = client.get("/metrics", headers=bearer("scrape-me-0124"))
            admitted = client.get("/metrics", headers=bearer("scrape-me-0123"))
    finally:
        server.stop()
    assert refused.status_code == wrong.status_code == 401
    assert refused.json()["error"]["code"] == "AuthenticationFailed"
    assert admitted.status_code == 200 and "opstatus_http_requests_total" in admitted.text


def test_json_logs_name_the_request_that_met_a_damaged_row(home: Path) -> None:
    server = ServerProcess(home, "--log-format", "json").start()
    try:
        headers = bearer(server.token("Contributor", f"/subscriptions/{SUB_A}"))
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
            assert client.put(status_path(op_id="hurt"), json={}).status_code == 201
            with contextlib.closing(sqlite3.connect(home / "opstatus.db")) as conn:
                conn.execute(
                    "UPDATE operations SET properties = '{oops' WHERE operation_id = 'hurt'"
                )
                conn.commit()
            response = client.get(status_path(op_id="hurt"))
            metrics = counted_metrics(client)
            live, ready = client.get("/healthz"), client.get("/readyz")
    finally:
        server.stop()
    assert response.status_code == 503
    lines = [line for line in server.log.read_text().splitlines() if line.startswith("{")]
    entries = [json.loads(line) for line in lines]
    # The audit lines (one per write, their own shape) share the log; these are the log's own.
    [entry] = [e for e in entries if "corrupt record" in e.get("message", "")]
    assert entry["request_id"] == response.headers["x-ms-request-id"]
    assert entry["level"] == "ERROR" and entry["logger"] == "opstatus.http"
    assert "column 'properties' is not valid JSON" in entry["message"]
    assert 'opstatus_http_requests_total{method="GET",route=' in metrics
    assert 'status="503"' in metrics
    assert 'opstatus_operations{status="InProgress"} 1.0' in metrics
    assert live.json() == {"status": "ok"}
    assert ready.json()["status"] == "ready"

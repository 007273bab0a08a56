"""The access log of a real ``opstatus serve --access-log``: one JSON line per request, status
reads included, in the audit log's form, and never a token or a query string."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import httpx
import pytest

from tests.support import SUB_A, ServerProcess, status_path

pytestmark = pytest.mark.e2e


def lines_of(path: Path, count: int) -> list[dict]:
    deadline = time.monotonic() + 10
    while True:
        text = path.read_text() if path.exists() else ""
        found = [json.loads(line) for line in text.splitlines() if line.strip()]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_every_request_is_one_line_reads_and_refusals_included(home: Path, tmp_path: Path):
    log = tmp_path / "access.log"
    server = ServerProcess(home, "--access-log", str(log)).start()
    token = server.token()
    auth = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            created = client.put(status_path(op_id="a1"), json={}, headers=auth)
            reads = [client.get(status_path(op_id="a1"), headers=auth) for _ in range(3)]
            refused = client.get(status_path(op_id="a1"), headers={"Authorization": "Bearer x"})
            listed = client.get(  # a bad continuation token: 400
                f"/subscriptions/{SUB_A}/providers/Microsoft.Cache/operationsStatus"
                "?api-version=2025-07-01&$skipToken=secret-ish",
                headers=auth,
            )
    finally:
        server.stop()
    assert created.status_code == 201 and refused.status_code == 401
    assert listed.status_code == 400
    assert all(r.status_code == 200 for r in reads)
    found = [line for line in lines_of(log, 6) if line["path"] != "/healthz"]
    assert [(line["method"], line["status"]) for line in found] == [
        ("PUT", 201), ("GET", 200), ("GET", 200), ("GET", 200), ("GET", 401), ("GET", 400),
    ]  # fmt: skip
    first = found[0]
    assert set(first) == {
        "time", "method", "path", "apiVersion", "status", "durationMs", "principal",
        "requestId", "client",
    }  # fmt: skip
    assert first["path"] == status_path(op_id="a1").split("?")[0]
    assert first["apiVersion"] == "2025-07-01"
    assert first["principal"] == "alice"  # keyed as the audit log keys it
    assert [line["requestId"] for line in found[1:4]] == [
        r.headers["x-ms-request-id"] for r in reads
    ]
    assert found[4]["principal"] is None
    assert isinstance(first["durationMs"], float)
    text = log.read_text()
    assert token not in text and "secret-ish" not in text and "skipToken" not in text
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_the_access_log_is_off_by_default(home: Path, tmp_path: Path) -> None:
    server = ServerProcess(home).start()
    try:
        httpx.get(server.url + status_path(op_id="nope"), headers={"Authorization": "Bearer x"})
    finally:
        server.stop()
    assert '"durationMs"' not in server.log.read_text()

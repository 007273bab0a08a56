"""Acknowledged writes survive a crash (SIGKILL) of the server process.

Each test drives writes over HTTP, records every 2xx answer (body and ETag), kills the server
with SIGKILL right after an acknowledgement, starts a new server on the same home, and checks
that every acknowledged write is there with the acknowledged content.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import SUB_A, ServerProcess, status_path

from .conftest import bearer

pytestmark = pytest.mark.e2e


@dataclass
class Acked:
    """The last acknowledged state of one operation: its 2xx body and ETag, or deleted."""

    body: dict[str, Any] | None
    etag: str | None

    @property
    def deleted(self) -> bool:
        return self.body is None


@dataclass
class Ledger:
    acked: dict[str, Acked] = field(default_factory=dict)
    writes: int = 0

    def record(self, op_id: str, response: httpx.Response, expect: int) -> None:
        assert response.status_code == expect, (op_id, response.status_code, response.text)
        self.writes += 1
        if response.request.method == "DELETE":
            self.acked[op_id] = Acked(None, None)
        else:
            self.acked[op_id] = Acked(response.json(), response.headers["etag"])


@pytest.fixture
def restart(home: Path) -> Iterator[Any]:
    """Start a fresh server on the crashed one's home; stopped at the end of the test."""
    started: list[ServerProcess] = []

    def start() -> ServerProcess:
        proc = ServerProcess(home, "--retry-after", "0").start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def read_back(server: ServerProcess, op_ids: list[str]) -> dict[str, httpx.Response]:
    headers = bearer(server.token("Reader", f"/subscriptions/{SUB_A}"))
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        return {op_id: client.get(status_path(op_id=op_id)) for op_id in op_ids}


def assert_acked_state(op_id: str, acked: Acked, response: httpx.Response) -> None:
    if acked.deleted:
        assert response.status_code == 404, (op_id, response.text)
        assert response.json()["error"]["code"] == "ResourceNotFound"
        return
    assert response.status_code == 200, (op_id, response.text)
    assert response.headers["etag"] == acked.etag, op_id
    assert response.json() == acked.body, op_id


def test_sequential_acknowledged_writes_survive_sigkill(
    server: ServerProcess, restart: Any
) -> None:
    """~200 creates, updates and deletes, one at a time; SIGKILL right after the last 2xx."""
    ledger = Ledger()
    ops = [f"dur-{i:03d}" for i in range(50)]
    headers = bearer(server.token("Contributor", f"/subscriptions/{SUB_A}"))
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:

        def write(method: str, op_id: str, body: dict[str, Any] | None, expect: int) -> None:
            response = client.request(method, status_path(op_id=op_id), json=body)
            ledger.record(op_id, response, expect)

        for i, op_id in enumerate(ops):  # 50 creates, every fifth already finished
            if i % 5 == 0:
                write("PUT", op_id, {"status": "Succeeded", "properties": {"n": i}}, 201)
            else:
                write("PUT", op_id, {"status": "InProgress", "percentComplete": 1}, 201)
        running = [op for i, op in enumerate(ops) if i % 5]
        for percent in (25, 50, 75):  # 120 progress updates, interleaved across operations
            for op_id in running:
                write("PATCH", op_id, {"percentComplete": percent}, 200)
        deleted = ops[1:10:2]
        for op_id in deleted:  # 5 deletes of running operations
            write("DELETE", op_id, None, 200)
        for j, op_id in enumerate(op for op in running if op not in deleted):
            if j >= 26:
                break  # leave 9 running
            if j % 3 == 0:
                body: dict[str, Any] = {"status": "Succeeded"}
            elif j % 3 == 1:
                body = {"status": "Failed", "error": {"code": f"Err{j}", "message": f"m{j}"}}
            else:
                body = {"status": "Canceled"}
            write("PATCH", op_id, body, 200)
        server.kill()  # immediately after the last acknowledgement

    assert ledger.writes >= 200
    assert sum(1 for a in ledger.acked.values() if a.deleted) == 5
    statuses = {a.body["status"] for a in ledger.acked.values() if a.body}
    assert statuses == {"InProgress", "Succeeded", "Failed", "Canceled"}

    revived = restart()
    answers = read_back(revived, ops)
    for op_id in ops:
        assert_acked_state(op_id, ledger.acked[op_id], answers[op_id])


@dataclass
class Pending:
    """A write that was sent but not (yet) answered when the server died."""

    method: str
    status: str


class Producers:
    """Producers writing concurrently, each owning its operations and writing them one request
    at a time (create, progress, finish), until the server goes away."""

    def __init__(self, server: ServerProcess, count: int, signal_after: int) -> None:
        self.url = server.url
        self.headers = bearer(server.token("Contributor", f"/subscriptions/{SUB_A}"))
        self.signal_after = signal_after
        self.lock = threading.Lock()
        self.ledger = Ledger()
        self.pending: dict[str, Pending] = {}
        self.enough = threading.Event()
        self.failures: list[BaseException] = []
        self.threads = [threading.Thread(target=self._run, args=(p,)) for p in range(count)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(30)

    def _run(self, p: int) -> None:
        try:
            with httpx.Client(base_url=self.url, headers=self.headers, timeout=10) as client:
                for n in range(10_000):
                    if not self._write_one(client, f"fly-{p}-{n}", n):
                        return
        except BaseException as exc:  # reported by the test
            self.failures.append(exc)
            self.enough.set()

    def _write_one(self, client: httpx.Client, op_id: str, n: int) -> bool:
        final = ("Succeeded", "Failed", "Canceled")[n % 3]
        steps: list[tuple[str, dict[str, Any], int, str]] = [
            ("PUT", {"status": "InProgress"}, 201, "InProgress"),
            ("PATCH", {"percentComplete": 50}, 200, "InProgress"),
            ("PATCH", {"status": final}, 200, final),
        ]
        for method, body, expect, status in steps:
            with self.lock:
                self.pending[op_id] = Pending(method, status)
            try:
                response = client.request(method, status_path(op_id=op_id), json=body)
            except httpx.TransportError:
                return False  # the server is gone; this write stays unanswered
            with self.lock:
                self.ledger.record(op_id, response, expect)
                del self.pending[op_id]
                if self.ledger.writes >= self.signal_after:
                    self.enough.set()
        return True


def assert_acked_or_pending(
    op_id: str, acked: Acked | None, unanswered: Pending, response: httpx.Response
) -> None:
    """An operation with an unanswered write: its acknowledged state, or that write's result."""
    if acked is None:  # only the create was sent: absent, or present as created
        assert unanswered.method == "PUT"
        assert response.status_code in (200, 404), (op_id, response.text)
        if response.status_code == 200:
            assert response.json()["status"] == "InProgress"
        return
    assert acked.body is not None
    assert response.status_code == 200, (op_id, response.text)
    if response.headers["etag"] == acked.etag:
        assert response.json() == acked.body, op_id
    else:  # the unanswered write landed: it is the only other state allowed
        assert response.json()["status"] == unanswered.status, op_id
        assert response.json()["startTime"] == acked.body["startTime"], op_id


def test_acknowledged_writes_survive_sigkill_with_writes_in_flight(
    server: ServerProcess, restart: Any
) -> None:
    """8 producers write concurrently; SIGKILL lands right after an ack, mid-stream.

    An operation has at most one unanswered write at the crash. Operations with none must be
    exactly as acknowledged; one with an unanswered write may show either its acknowledged
    state or that write's result (never anything else, never losing an acknowledged write).
    """
    count, kill_after = 8, 160
    producers = Producers(server, count, kill_after)
    producers.start()
    assert producers.enough.wait(30), "producers did not reach the kill point"
    server.kill()  # right after the kill_after-th acknowledgement, with writes in flight
    producers.join()
    assert not producers.failures, producers.failures
    ledger, pending = producers.ledger, producers.pending
    assert ledger.writes >= kill_after

    revived = restart()
    op_ids = sorted(set(ledger.acked) | set(pending))
    answers = read_back(revived, op_ids)
    exact = 0
    for op_id in op_ids:
        if op_id in pending:
            assert_acked_or_pending(op_id, ledger.acked.get(op_id), pending[op_id], answers[op_id])
        else:
            assert_acked_state(op_id, ledger.acked[op_id], answers[op_id])
            exact += 1
    # Each operation takes 3 writes and at most one per producer is unanswered.
    assert exact >= kill_after // 3 - count

"""Webhooks end to end: real servers, a real receiver process on loopback that verifies every
delivery with the ``standardwebhooks`` package (tests/webhook_receiver.py), SQLite and
PostgreSQL. Retry delays are short here (``--webhook-retry-base``), so outages can be too.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opstatus.webhooks import new_secret
from tests.support import SUB_A, ServerProcess, free_port, status_path

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
#: The receiver outage of the long test, in seconds.
OUTAGE = 30.0
FAST_RETRIES = (
    "--webhook-allow-http",
    "--webhook-allow-network",
    "127.0.0.0/8",
    "--webhook-retry-base",
    "0.2s",
    "--webhook-retry-max",
    "1s",
    "--webhook-timeout",
    "1s",
)


class Receiver:
    """tests/webhook_receiver.py as a process; what it received, from its log."""

    def __init__(self, tmp_path: Path, *secrets: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log = tmp_path / f"received-{self.port}.jsonl"
        self.secrets = secrets
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, path: str = "/ok") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.webhook_receiver", str(self.port), str(self.log),
             *self.secrets],
            cwd=ROOT,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("the receiver did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def entries(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def delivered(self) -> list[dict[str, Any]]:
        return [e for e in self.entries() if e["answered"] == 200]


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_args(request: pytest.FixtureRequest) -> tuple[str, ...]:
    if request.param == "postgresql":
        return ("--store", request.getfixturevalue("pg_url"))
    return ()


@pytest.fixture
def callback_secret() -> str:
    return new_secret()


@pytest.fixture
def start_server(home: Path, callback_secret: str) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(*extra: str) -> ServerProcess:
        server = ServerProcess(
            home, "--webhook-secret", callback_secret, *FAST_RETRIES, *extra
        ).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.stop()


def client(server: ServerProcess) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.token()}"}, timeout=10
    )


def create(http: httpx.Client, op_id: str, **body: Any) -> None:
    response = http.put(status_path(op_id=op_id), json=body)
    assert response.status_code == 201, response.text


def run_to_end(http: httpx.Client, op_id: str) -> None:
    for percent in (25, 50):
        assert http.patch(status_path(op_id=op_id), json={"percentComplete": percent}).is_success
    assert http.patch(status_path(op_id=op_id), json={"status": "Succeeded"}).is_success


LIFE = ["operation.created", "operation.progress", "operation.progress", "operation.status"]


def by_operation(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        grouped.setdefault(entry["operation"], []).append(entry)
    return grouped


def test_callbacks_and_subscriptions_are_signed_and_arrive_in_order(
    store_args: tuple[str, ...],
    start_server: Callable[..., ServerProcess],
    receivers: list[Receiver],
    tmp_path: Path,
    callback_secret: str,
) -> None:
    server = start_server(*store_args)
    with client(server) as http:
        hook_receiver_port = free_port()
        made = http.post(
            f"/subscriptions/{SUB_A}/webhookSubscriptions",
            json={
                "url": f"http://127.0.0.1:{hook_receiver_port}/ok",
                "provider": "microsoft.cache",
                "events": ["status", "operation.created"],
            },
        )
        assert made.status_code == 201, made.text
        hook = made.json()
        assert hook["secret"].startswith("whsec_") and hook["provider"] == "Microsoft.Cache"
        assert "secret" not in http.get(f"/subscriptions/{SUB_A}/webhookSubscriptions").text
        callbacks = Receiver(tmp_path, callback_secret).start()
        subscribed = Receiver(tmp_path, hook["secret"], port=hook_receiver_port).start()
        receivers += [callbacks, subscribed]

        for op_id in ("a", "b", "c"):
            create(http, op_id, callbackUrl=callbacks.url())
            run_to_end(http, op_id)
        create(http, "quiet")  # no callback: only the subscription hears of it

        wait_for(lambda: len(callbacks.delivered()) == 12, 15, "the callbacks")
        wait_for(lambda: len(subscribed.delivered()) == 7, 15, "the subscription's deliveries")
        for op_id, got in by_operation(callbacks.delivered()).items():
            assert [e["type"] for e in got] == LIFE, op_id
            assert [e["sequence"] for e in got] == [1, 2, 3, 4]
        unverified = [e for e in callbacks.entries() + subscribed.entries() if not e["verified"]]
        assert unverified == []
        heard = by_operation(subscribed.delivered())
        assert {op: [e["type"] for e in got] for op, got in heard.items()} == {
            op: ["operation.created", "operation.status"] for op in ("a", "b", "c")
        } | {"quiet": ["operation.created"]}

        path = status_path(op_id="a").replace("?", "/notifications?")

        def recorded() -> bool:  # the receiver has them; the server records its answers next
            return all(n["state"] == "delivered" for n in http.get(path).json()["value"])

        wait_for(recorded, 5, "the outcomes")
        shown = http.get(path).json()["value"]
        assert len(shown) == 6  # four to the callback, two to the subscription
        assert all(n["state"] == "delivered" and n["lastHttpStatus"] == 200 for n in shown)
        assert {n["endpoint"] for n in shown} == {"callback", hook["id"]}
        history = http.get(f"/subscriptions/{SUB_A}/webhookSubscriptions/{hook['id']}/deliveries")
        assert len(history.json()["value"]) == 7


def test_a_receiver_answering_500_then_200_gets_the_same_webhook_id_again(
    start_server: Callable[..., ServerProcess],
    receivers: list[Receiver],
    tmp_path: Path,
    callback_secret: str,
) -> None:
    server = start_server()
    receiver = Receiver(tmp_path, callback_secret).start()
    receivers.append(receiver)
    with client(server) as http:
        create(http, "flaky", callbackUrl=receiver.url("/flaky"))
        assert http.patch(status_path(op_id="flaky"), json={"status": "Succeeded"}).is_success
        wait_for(lambda: len(receiver.delivered()) == 2, 15, "both events")
        entries = receiver.entries()
        assert [(e["type"], e["answered"]) for e in entries] == [
            ("operation.created", 500),
            ("operation.created", 200),
            ("operation.status", 500),
            ("operation.status", 200),
        ]
        assert entries[0]["id"] == entries[1]["id"] != entries[2]["id"] == entries[3]["id"]
        path = status_path(op_id="flaky").replace("?", "/notifications?")

        def recorded() -> bool:
            shown = http.get(path).json()["value"]
            return [(n["attempts"], n["lastHttpStatus"]) for n in shown] == [(2, 200)] * 2

        wait_for(recorded, 5, "two attempts each, the last one answered 200")


def test_a_hanging_receiver_times_out_is_retried_then_failed_and_delays_no_one(
    start_server: Callable[..., ServerProcess],
    receivers: list[Receiver],
    tmp_path: Path,
    callback_secret: str,
) -> None:
    server = start_server("--webhook-max-attempts", "2")
    receiver = Receiver(tmp_path, callback_secret).start()
    receivers.append(receiver)
    with client(server) as http:
        create(http, "stuck", callbackUrl=receiver.url("/hang"))
        time.sleep(0.2)  # its first attempt is hanging now
        started = time.monotonic()
        for i in range(10):
            create(http, f"fine{i}", callbackUrl=receiver.url("/ok"))
        wait_for(lambda: len(receiver.delivered()) == 10, 5, "the other deliveries")
        assert time.monotonic() - started < 0.9  # sooner than the hung attempt's time limit
        path = status_path(op_id="stuck").replace("?", "/notifications?")

        def failed() -> bool:
            return http.get(path).json()["value"][0]["state"] == "failed"

        wait_for(failed, 10, "the hung delivery to fail")
        (shown,) = http.get(path).json()["value"]
        assert shown["attempts"] == 2 and "no answer within 1 seconds" in shown["lastError"]
        assert [e["operation"] for e in receiver.entries()].count("stuck") == 2
        hook_free = http.get(status_path(op_id="stuck")).json()
        assert hook_free["status"] == "InProgress"  # reads answer meanwhile


def test_a_receiver_down_for_a_while_gets_every_event_in_order(
    start_server: Callable[..., ServerProcess],
    receivers: list[Receiver],
    tmp_path: Path,
    callback_secret: str,
) -> None:
    server = start_server("--webhook-max-attempts", "100")  # retries every second at most
    receiver = Receiver(tmp_path, callback_secret)
    receivers.append(receiver)
    with client(server) as http:
        started = time.monotonic()
        for op_id in ("x", "y", "z"):
            create(http, op_id, callbackUrl=receiver.url())
        for op_id in ("x", "y", "z"):
            run_to_end(http, op_id)
        path = status_path(op_id="x").replace("?", "/notifications?")
        wait_for(lambda: len(http.get(path).json()["value"]) == 4, 10, "the deliveries")
        shown = http.get(path).json()["value"]
        waiting = {n["webhookId"] for n in shown}
        assert len(waiting) == 4 and all(n["state"] == "pending" for n in shown)
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - started)))
        receiver.start()
        wait_for(lambda: len(receiver.delivered()) == 12, 15, "every event after the outage")
        for op_id, got in by_operation(receiver.delivered()).items():
            assert [e["type"] for e in got] == LIFE, op_id
        assert {e["id"] for e in receiver.delivered() if e["operation"] == "x"} == waiting


def test_kill_9_between_commit_and_delivery_then_the_event_is_delivered(
    store_args: tuple[str, ...],
    start_server: Callable[..., ServerProcess],
    receivers: list[Receiver],
    tmp_path: Path,
    callback_secret: str,
) -> None:
    receiver = Receiver(tmp_path, callback_secret)
    receivers.append(receiver)
    server = start_server(*store_args)
    with client(server) as http:
        create(http, "durable", callbackUrl=receiver.url())
        path = status_path(op_id="durable").replace("?", "/notifications?")
        wait_for(lambda: len(http.get(path).json()["value"]) == 1, 10, "the delivery")
        (pending,) = http.get(path).json()["value"]
    server.kill()  # the receiver is down: the event is committed, not delivered
    receiver.start()
    again = start_server(*store_args)
    wait_for(lambda: len(receiver.delivered()) == 1, 20, "the delivery after the restart")
    (got,) = receiver.delivered()
    assert got["id"] == pending["webhookId"] and got["type"] == "operation.created"
    again.stop()


def test_two_instances_on_postgresql_deliver_each_event_once(
    pg_url: str,
    start_server: Callable[..., ServerProcess],
    receivers: list[Receiver],
    tmp_path: Path,
    callback_secret: str,
) -> None:
    receiver = Receiver(tmp_path, callback_secret).start()
    receivers.append(receiver)
    first, second = start_server("--store", pg_url), start_server("--store", pg_url)
    with client(first) as a, client(second) as b:
        for i in range(40):
            create(a if i % 2 else b, f"op{i}", callbackUrl=receiver.url())
            run_to_end(b if i % 2 else a, f"op{i}")
        wait_for(lambda: len(receiver.delivered()) >= 160, 30, "every event")
        time.sleep(1.0)  # time for any duplicate to show
    ids = [e["id"] for e in receiver.entries()]
    assert len(ids) == len(set(ids)) == 160
    for op_id, got in by_operation(receiver.delivered()).items():
        assert [e["type"] for e in got] == LIFE, op_id

"""The Celery integration's sender (opstatus.celery.sender) against a real ``opstatus serve``
process that is frozen (SIGSTOP: connections wait unanswered), stopped (connections refused)
and started again: the bounded table of pending updates, the retries of an outcome with
backoff, and the give-up after ``give_up_after`` seconds."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opstatus import Client
from opstatus.celery import Sender
from opstatus.celery.sender import Target
from opstatus.models import format_time
from tests.support import SUB_A, ServerProcess

pytestmark = pytest.mark.e2e

LOCATION = "westus"


def until(predicate: Callable[[], Any], timeout: float, interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout} s")


class Producer:
    """A sender of its own, and what it needs to name operations on ``server``."""

    def __init__(self, server: ServerProcess, **options: Any) -> None:
        self.server = server
        self.token = server.token("Contributor", f"/subscriptions/{SUB_A}", "worker")
        self.reader = Client(server.url, server.token("Owner", "/", "tester"), timeout=10)
        self.sender = Sender(self.new_client, **options)

    def new_client(self) -> Client:
        return Client(self.server.url, self.token, timeout=30)

    def url(self, op_id: str) -> str:
        return self.reader.status_url(SUB_A, LOCATION, op_id)

    def create(self, *op_ids: str) -> None:
        for op_id in op_ids:
            self.reader.create(SUB_A, LOCATION, op_id, status="InProgress", percent_complete=0)

    def submit(self, op_id: str, **fields: Any) -> None:
        self.sender.submit(self.url(op_id), Target(SUB_A, LOCATION, op_id), **fields)

    def get(self, op_id: str) -> Any:
        return self.reader.get(self.url(op_id))


@pytest.fixture
def producer(server: ServerProcess) -> Iterator[Callable[..., Producer]]:
    made: list[Producer] = []

    def make(**options: Any) -> Producer:
        made.append(Producer(server, **options))
        return made[-1]

    yield make
    if server.proc is not None and server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGCONT)  # whatever a failed test left frozen
    for p in made:
        p.sender.close(timeout=2)
        p.reader.close()


def in_flight(p: Producer) -> Callable[[], bool]:
    """Whether the sender has taken an update out of its table (the sender's own state: a
    frozen server tells nothing)."""
    return lambda: bool(p.sender._in_flight)


def errors(caplog: pytest.LogCaptureFixture, level: int = logging.ERROR) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "opstatus.celery" and r.levelno == level
    ]


def test_a_full_table_drops_progress_and_makes_an_outcome_wait_for_room(
    server: ServerProcess, producer: Callable[..., Producer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "opstatus.celery")
    p = producer(threads=1, linger=0.0, max_pending=2, block_for=30)
    p.create("op-a", "op-b", "op-c", "op-d")
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)  # the one sender thread's request hangs
    p.submit("op-a", percent_complete=10)
    until(in_flight(p), timeout=5)  # the sender thread took op-a, and its request hangs
    p.submit("op-b", percent_complete=20)
    p.submit("op-c", percent_complete=30)
    assert p.sender.pending == 3  # op-a in flight, op-b and op-c in the table, which is full

    p.submit("op-d", percent_complete=40)
    assert p.sender.stats.dropped == 1
    dropped = errors(caplog, logging.WARNING)
    assert len(dropped) == 1 and "progress of op-d dropped" in dropped[0], dropped
    p.submit("op-b", percent_complete=25)  # merged into op-b's entry: nothing dropped
    assert p.sender.stats.dropped == 1

    outcome = threading.Thread(target=p.submit, args=("op-d",), kwargs={"status": "Succeeded"})
    outcome.start()
    time.sleep(0.5)
    assert outcome.is_alive(), "an outcome waits for room instead of being dropped"
    assert p.sender.stats.dropped == 1

    os.kill(server.proc.pid, signal.SIGCONT)
    outcome.join(10)
    assert not outcome.is_alive()
    assert p.sender.flush(10)
    assert (p.get("op-d").status, p.get("op-d").percent_complete) == ("Succeeded", 100)
    assert [p.get(op).percent_complete for op in ("op-a", "op-b", "op-c")] == [10, 25, 30]
    assert (p.sender.stats.dropped, p.sender.stats.gave_up) == (1, 0)
    assert not errors(caplog)


def test_an_outcome_that_finds_no_room_in_time_is_dropped_with_an_error(
    server: ServerProcess, producer: Callable[..., Producer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "opstatus.celery")
    p = producer(threads=1, linger=0.0, max_pending=1, block_for=0.3)
    p.create("op-a", "op-b", "op-c")
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)
    p.submit("op-a", percent_complete=10)
    until(in_flight(p), timeout=5)  # op-a's request hangs
    p.submit("op-b", percent_complete=20)  # the table's one place
    assert p.sender.pending == 2
    started = time.monotonic()
    p.submit("op-c", status="Failed", error={"code": "DiskFull", "message": "Disk full."})
    assert time.monotonic() - started >= 0.3
    assert p.sender.stats.dropped == 1
    [line] = errors(caplog)
    assert "gave up on recording Failed of operation op-c" in line, line
    os.kill(server.proc.pid, signal.SIGCONT)
    assert p.sender.flush(10)
    assert p.get("op-c").status == "InProgress"  # the dropped outcome never arrived
    assert p.get("op-b").percent_complete == 20


def test_an_outcome_is_retried_with_backoff_until_opstatus_answers(
    server: ServerProcess, producer: Callable[..., Producer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "opstatus.celery")
    p = producer(linger=0.0, max_backoff=0.4)
    p.create("op-x")
    server.stop()
    ended = datetime.now(UTC)  # the outcome's moment, seconds before it can be sent
    p.submit("op-x", status="Succeeded", properties={"done": True}, end_time=format_time(ended))
    time.sleep(2.0)
    attempts = p.sender.stats.failed_attempts
    # 50 ms doubling to 0.4 s: 0.05 + 0.1 + 0.2 + 0.4 + 0.4 + 0.4 + 0.4 + ... in 2 s
    assert 4 <= attempts <= 12, attempts
    assert p.sender.pending == 1
    assert any("opstatus unreachable" in line for line in errors(caplog, logging.WARNING))
    server.start()
    assert p.sender.flush(10)
    op = p.get("op-x")
    assert (op.status, op.properties) == ("Succeeded", {"done": True})
    assert op.end_time is not None
    assert format_time(op.end_time) == format_time(ended)  # when it ended, not when it arrived
    assert (p.sender.stats.sent, p.sender.stats.gave_up) == (1, 0)
    assert not errors(caplog)


def test_giving_up_logs_one_error_naming_the_operation(
    server: ServerProcess, producer: Callable[..., Producer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "opstatus.celery")
    p = producer(linger=0.0, max_backoff=0.1, give_up_after=0.5)
    p.create("op-y", "op-z")
    server.stop()
    p.submit("op-y", status="Failed", error={"code": "DiskFull", "message": "Disk full."})
    until(lambda: p.sender.stats.gave_up == 1, timeout=5)
    time.sleep(0.5)  # nothing more is tried, nothing more is logged
    [line] = errors(caplog)
    assert "gave up on recording Failed of operation op-y after" in line, line
    assert "ConnectError" in line
    assert (p.sender.pending, p.sender.stats.gave_up) == (0, 1)
    server.start()
    p.submit("op-z", percent_complete=50)  # the sender still works once opstatus is back
    assert p.sender.flush(10)
    assert p.get("op-z").percent_complete == 50
    assert p.get("op-y").status == "InProgress"
    assert len(errors(caplog)) == 1


def test_an_end_time_the_server_refuses_gives_way_to_the_servers_clock(
    server: ServerProcess, producer: Callable[..., Producer], caplog: pytest.LogCaptureFixture
) -> None:
    """A worker's clock behind the server's: the outcome is recorded, stamped by the server."""
    caplog.set_level(logging.WARNING, "opstatus.celery")
    p = producer(linger=0.0)
    later = format_time(datetime.now(UTC) + timedelta(hours=1))
    p.reader.create(SUB_A, LOCATION, "op-s", status="InProgress", start_time=later)
    p.submit("op-s", status="Succeeded", end_time=format_time(datetime.now(UTC)))
    assert p.sender.flush(10)
    op = p.get("op-s")
    assert op.start_time is not None and op.end_time is not None
    shown = (op.status, format_time(op.start_time), format_time(op.end_time))
    assert shown == ("Succeeded", later, later)
    [warning] = errors(caplog, logging.WARNING)
    assert "op-s" in warning and "endTime" in warning, warning
    assert not errors(caplog)

"""Celery tasks tracked as operations, end to end: a real ``celery worker`` process on the
machine's Redis (and RabbitMQ), a real ``opstatus serve`` process, and the test publishing
tasks as an application would (``tests/celery_app.py`` is the app on both sides)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from opstatus import Client, OperationStatus
from opstatus.celery import Tracker
from opstatus.models import format_time
from tests import celery_support as cs
from tests.celery_app import create_app
from tests.support import SUB_A, ServerProcess

pytestmark = pytest.mark.e2e


@dataclass
class Stack:
    """One opstatus server, one worker, and the app and tracker the test publishes with."""

    server: ServerProcess
    worker: cs.Worker
    app: Celery
    tracker: Tracker
    client: Client

    def task(self, name: str) -> Any:
        return self.app.tasks[f"tests.{name}"]

    def url(self, task_id: str) -> str:
        return self.tracker.status_url(task_id)

    def wait(self, task_id: str, timeout: float = 30) -> OperationStatus:
        return self.client.wait(self.url(task_id), timeout=timeout)

    def get(self, task_id: str) -> OperationStatus:
        return self.client.get(self.url(task_id))

    def classic(self, task_id: str) -> OperationStatus:
        return self.client.get_classic(self.client.classic_url(SUB_A, task_id))


def environment(server: ServerProcess, broker: str, queue: str) -> dict[str, str]:
    return {
        **os.environ,
        "OPSTATUS_ENDPOINT": server.url,
        "OPSTATUS_TOKEN": server.token("Contributor", f"/subscriptions/{SUB_A}", "celery"),
        "OPSTATUS_TEST_SUBSCRIPTION": SUB_A,
        "OPSTATUS_TEST_BROKER": broker,
        "OPSTATUS_TEST_BACKEND": cs.redis_url(),
        "OPSTATUS_TEST_QUEUE": queue,
    }


@contextlib.contextmanager
def stack(
    folder: Path, broker: str = "redis", pool: str = "threads", concurrency: int = 4
) -> Iterator[Stack]:
    cs.check_redis()  # the result backend, whatever the broker
    if broker == "amqp":
        cs.check_rabbitmq()
    home = folder / "home"
    home.mkdir()
    server = ServerProcess(home, "--retry-after", "0", "--lease-grace", "0s").start()
    queue = cs.run_name()
    env = environment(server, cs.redis_url() if broker == "redis" else cs.AMQP, queue)
    worker = cs.Worker(env, folder / "worker.log", pool, concurrency)
    app, tracker = create_app(env)
    client = Client(server.url, server.token("Owner", "/", "tester"))
    try:
        worker.start()
        yield Stack(server, worker, app, tracker, client)
    finally:
        worker.stop()
        tracker.close(timeout=2)
        client.close()
        server.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A server and a threads-pool worker on Redis for the tests that disturb neither."""
    with stack(tmp_path_factory.mktemp("celery")) as s:
        yield s


@pytest.fixture
def own(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """A server and a worker of this test's own (``own(broker=..., pool=...)``)."""
    with contextlib.ExitStack() as exits:
        yield lambda **options: exits.enter_context(stack(tmp_path, **options))


def until(predicate: Callable[[], Any], timeout: float = 15, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout} s")


# --- publishing and the outcomes ----------------------------------------------------------------


def test_a_published_task_is_an_operation_before_any_worker_runs_it(shared: Stack) -> None:
    nobody = cs.run_name()  # a queue no worker consumes
    try:
        result = shared.task("add").apply_async((1, 2), queue=nobody)
        op = shared.get(result.id)
        assert (op.name, op.status, op.percent_complete) == (result.id, "InProgress", 0)
        assert op.kind == "tests.add"
        assert op.url == shared.url(result.id)
    finally:
        import redis

        redis.Redis.from_url(cs.redis_url()).delete(nobody)


def test_success_publishes_the_result_as_properties(shared: Stack) -> None:
    result = shared.task("add").delay(2, 3)
    op = shared.wait(result.id)
    assert (op.status, op.properties, op.percent_complete) == ("Succeeded", {"sum": 5}, 100)
    assert result.get(timeout=10) == {"sum": 5}
    assert shared.classic(result.id).status == "Succeeded"


def test_failure_has_the_exceptions_type_and_message_and_no_traceback(shared: Stack) -> None:
    result = shared.task("fail").delay("No space left on /data.")
    op = shared.wait(result.id)
    assert (op.status, op.error_code, op.error_message) == (
        "Failed",
        "DiskFull",
        "No space left on /data.",
    )
    assert "traceback" not in (op.properties or {})
    classic = shared.classic(result.id)
    assert (classic.status, classic.error_code) == ("Failed", "DiskFull")


def test_progress_shows_in_the_arm_and_the_classic_reads(shared: Stack) -> None:
    result = shared.task("steps").delay(30, 0.1)

    def moved() -> OperationStatus | None:
        op = shared.get(result.id)
        return op if (op.percent_complete or 0) >= 10 else None

    op = until(moved)
    assert op.status == "InProgress"
    assert (op.properties or {}).get("message", "").startswith("step ")
    assert op.lease_state == "Active" and op.lease_seconds == 60
    assert shared.classic(result.id).status == "InProgress"
    final = shared.wait(result.id)
    assert (final.status, final.percent_complete, final.properties) == (
        "Succeeded",
        100,
        {"steps": 30},
    )


def test_a_retried_task_stays_one_operation(shared: Stack) -> None:
    result = shared.task("flaky").delay(2)
    op = shared.wait(result.id)
    assert (op.status, op.properties) == ("Succeeded", {"attempts": 3})
    same_kind = list(shared.client.list(SUB_A, "westus", kind="tests.flaky"))
    assert [o.name for o in same_kind] == [result.id]


# --- leases -------------------------------------------------------------------------------------


def started(s: Stack, task_id: str) -> OperationStatus:
    """The operation once a worker has started its task (the producer lease is set)."""
    return until(lambda: (op := s.get(task_id)).lease_seconds and op)


def test_a_worker_killed_with_sigkill_leaves_producer_lost(own: Callable[..., Stack]) -> None:
    s = own()
    result = s.task("silent").delay(60)
    op = started(s, result.id)
    assert (op.lease_seconds, op.lease_state) == (2, "Active")
    time.sleep(3)  # longer than the lease: the heartbeat renews it
    assert (s.get(result.id).status, s.get(result.id).lease_state) == ("InProgress", "Active")
    s.worker.kill()
    op = s.wait(result.id, timeout=15)
    assert (op.status, op.error_code) == ("Failed", "ProducerLost")


def recorded_at(result: Any) -> str:
    """When Celery's result backend recorded the task's outcome, as opstatus writes times."""
    done = result.date_done
    moment = datetime.fromisoformat(done) if isinstance(done, str) else done
    return format_time(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def test_no_outcome_is_lost_while_opstatus_restarts(own: Callable[..., Stack]) -> None:
    s = own()
    results = [s.task("steps").delay(5, 0.2) for _ in range(8)]
    s.server.stop()
    for result in results:
        assert result.get(timeout=30) == {"steps": 5}  # all ended while opstatus was down
    time.sleep(0.1)
    restarted = format_time(datetime.now(UTC))
    s.server.start()
    for result in results:
        op = s.wait(result.id, timeout=20)
        assert (op.status, op.properties) == ("Succeeded", {"steps": 5})
        # endTime is when the task ended, not when its outcome reached opstatus.
        assert op.start_time is not None and op.end_time is not None
        start, end = format_time(op.start_time), format_time(op.end_time)
        assert start <= end < restarted
        recorded = recorded_at(result)
        assert recorded <= end, (recorded, end)
        gap = op.end_time - datetime.fromisoformat(recorded.replace("Z", "+00:00"))
        assert gap.total_seconds() < 1, (recorded, end)


# --- cancel -------------------------------------------------------------------------------------


def test_cancel_stops_a_running_task_at_its_next_report(shared: Stack) -> None:
    result = shared.task("steps").delay(200, 0.05)
    until(lambda: (shared.get(result.id).percent_complete or 0) >= 2)
    shared.client.cancel(shared.url(result.id))
    op = shared.wait(result.id)
    assert (op.status, op.error_code) == ("Canceled", "OperationCanceled")
    assert (op.percent_complete or 0) < 50


def test_cancel_revokes_a_queued_task(own: Callable[..., Stack]) -> None:
    s = own()
    later = cs.run_name()  # a queue the worker starts consuming only after the cancel
    queued = s.task("add").apply_async((1, 1), queue=later)
    s.client.cancel(s.url(queued.id))
    until(lambda: "Tasks flagged as revoked: " + queued.id in s.worker.log.read_text())
    s.app.control.add_consumer(later, reply=True, timeout=5)
    op = s.wait(queued.id)
    assert (op.status, op.error_code) == ("Canceled", "OperationCanceled")
    assert op.error_message == "The task was revoked."
    assert queued.state == "REVOKED"  # the worker discarded it unrun


def test_cancel_terminates_a_task_configured_so(own: Callable[..., Stack]) -> None:
    s = own(pool="prefork", concurrency=1)
    result = s.task("stubborn").delay(60)
    started(s, result.id)
    s.client.cancel(s.url(result.id))
    op = s.wait(result.id, timeout=20)
    assert (op.status, op.error_code) == ("Canceled", "OperationCanceled")
    assert "terminated" in (op.error_message or "")


# --- RabbitMQ -----------------------------------------------------------------------------------


def test_rabbitmq_as_the_broker(own: Callable[..., Stack]) -> None:
    s = own(broker="amqp")
    ok, bad = s.task("add").delay(4, 5), s.task("fail").delay("Disk full.")
    assert s.wait(ok.id).properties == {"sum": 9}
    assert (s.wait(bad.id).status, s.wait(bad.id).error_code) == ("Failed", "DiskFull")
    running = s.task("steps").delay(200, 0.05)
    started(s, running.id)
    s.client.cancel(s.url(running.id))
    assert s.wait(running.id).status == "Canceled"

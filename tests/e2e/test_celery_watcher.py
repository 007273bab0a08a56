"""The cancel watcher (opstatus.celery.cancel) asks a real ``opstatus serve`` process for the
running operations that someone asked to cancel, and only for those: a poll costs one list
request whatever else runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from celery import Celery

from opstatus import Client
from opstatus.celery import Tracker
from opstatus.celery.cancel import CancelWatcher
from tests import celery_support as cs
from tests.celery_app import create_app
from tests.support import SUB_A, ServerProcess

pytestmark = pytest.mark.e2e


class ListCounting(httpx.HTTPTransport):
    """A real transport that also counts the list requests and the operations they return."""

    def __init__(self) -> None:
        super().__init__()
        self.lists = 0
        self.listed = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "GET" and request.url.path.endswith("/operationsStatus"):
            response.read()
            self.lists += 1
            self.listed += len(response.json()["value"])
        return response


@dataclass
class Watched:
    """The tracker as the watcher sees it, its client on a counting transport."""

    tracker: Tracker
    transport: ListCounting = field(default_factory=ListCounting)

    @property
    def app(self) -> Celery:
        return self.tracker.app

    @property
    def subscription_id(self) -> str:
        return self.tracker.subscription_id

    @property
    def location(self) -> str:
        return self.tracker.location

    def new_client(self) -> Client:
        t = self.tracker
        return Client(t.endpoint, t.token, namespace=t.namespace, transport=self.transport)

    def tracks(self, name: str | None) -> bool:
        return self.tracker.tracks(name)

    def tracked_names(self) -> list[str]:
        return self.tracker.tracked_names()


@pytest.fixture
def tracked(home: Path) -> Iterator[tuple[Tracker, Client]]:
    cs.check_redis()  # revokes go out on the app's broker
    server = ServerProcess(home, "--retry-after", "0").start()
    env = {
        **os.environ,
        "OPSTATUS_ENDPOINT": server.url,
        "OPSTATUS_TOKEN": server.token("Contributor", f"/subscriptions/{SUB_A}", "celery"),
        "OPSTATUS_TEST_SUBSCRIPTION": SUB_A,
        "OPSTATUS_TEST_BROKER": cs.redis_url(),
        "OPSTATUS_TEST_BACKEND": cs.redis_url(),
        "OPSTATUS_TEST_QUEUE": cs.run_name(),
    }
    _, tracker = create_app(env)
    client = Client(server.url, server.token("Owner", "/", "tester"))
    try:
        yield tracker, client
    finally:
        tracker.close(timeout=2)
        client.close()
        server.stop()


def test_a_poll_lists_only_the_operations_with_a_cancel_request(
    tracked: tuple[Tracker, Client],
) -> None:
    tracker, client = tracked
    for i in range(30):
        kind = "tests.steps" if i % 10 else "someone.else"  # 0, 10, 20: a kind not tracked
        client.create(SUB_A, "westus", f"task-{i:02d}", status="InProgress", kind=kind)
    for i in (3, 10, 17):
        client.cancel(client.status_url(SUB_A, "westus", f"task-{i:02d}"))
    client.create(SUB_A, "westus", "ended", status="InProgress", kind="tests.steps")
    client.cancel(client.status_url(SUB_A, "westus", "ended"))
    client.update(client.status_url(SUB_A, "westus", "ended"), status="Canceled")

    watched = Watched(tracker)
    with watched.transport:
        watcher = CancelWatcher(watched, interval=1.0)  # polled here, its thread not started
        assert watcher.poll() == 2  # task-03 and task-17; task-10's kind is not tracked
        assert (watched.transport.lists, watched.transport.listed) == (1, 2)
        assert watcher.poll() == 0  # each task is revoked once
        assert (watched.transport.lists, watched.transport.listed) == (2, 4)

"""Two ``opstatus serve`` processes on one PostgreSQL database, as behind a load balancer.

Whatever instance a request reaches, the answers are those of one service: an operation
created on one is read and waited on through the other; a waiter on one wakes when the
other writes; racing writers spread over both still see exactly one terminal winner and
exactly one create; If-Match holds across them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import SUB_A, ServerProcess, status_path

from .conftest import bearer
from .test_concurrency import WRITERS, Outcome, expected_error, terminal_bodies

pytestmark = pytest.mark.e2e


@pytest.fixture
def instances(pg_url: str, home: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two servers on one database, sharing a home (so a token from one is valid on both)."""
    started: list[ServerProcess] = []
    try:
        for _ in range(2):
            started.append(ServerProcess(home, "--store", pg_url, "--retry-after", "0").start())
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


def client(server: ServerProcess, role: str = "Contributor") -> httpx.Client:
    headers = bearer(server.token(role, f"/subscriptions/{SUB_A}"))
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def test_create_on_one_read_on_the_other(instances: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = instances
    with client(a) as on_a, client(b, "Reader") as on_b:
        created = on_a.put(status_path(op_id="job-1"), json={"percentComplete": 10})
        assert created.status_code == 201, created.text
        read = on_b.get(status_path(op_id="JOB-1"))
        assert read.status_code == 200, read.text
        assert read.json() == created.json()
        assert read.headers["etag"] == created.headers["etag"]


def test_a_waiter_on_one_instance_wakes_on_a_write_through_the_other(
    instances: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = instances
    with client(a) as on_a, client(b, "Reader") as on_b:
        created = on_a.put(status_path(op_id="job-2"), json={})
        assert created.status_code == 201

        answers: list[tuple[httpx.Response, float]] = []

        def wait_on_b() -> None:
            start = time.monotonic()
            response = on_b.get(status_path(op_id="job-2"), headers={"Prefer": "wait=20"})
            answers.append((response, time.monotonic() - start))

        waiter = threading.Thread(target=wait_on_b)
        waiter.start()
        time.sleep(0.5)  # the waiter is held on B by now
        patched = on_a.patch(status_path(op_id="job-2"), json={"status": "Succeeded"})
        assert patched.status_code == 200
        waiter.join(25)

    (response, elapsed), *_ = answers
    assert response.status_code == 200, response.text
    assert elapsed < 15  # woken by the write, long before the 20 s wait ran out
    assert response.headers["preference-applied"] == "wait=20"
    assert response.headers["etag"] == patched.headers["etag"]
    assert response.json()["status"] == "Succeeded"


def race_over(
    servers: tuple[ServerProcess, ...], method: str, path: str, bodies: list[dict[str, Any]]
) -> list[Outcome]:
    """One request per body, each from its own thread, alternating servers, released together."""
    barrier = threading.Barrier(len(bodies))
    outcomes: list[Outcome | None] = [None] * len(bodies)
    failures: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            with client(servers[index % len(servers)]) as http:
                assert http.get("/healthz").status_code == 200
                barrier.wait(timeout=30)
                response = http.request(method, path, json=bodies[index])
                outcomes[index] = Outcome(
                    index,
                    bodies[index],
                    response.status_code,
                    response.json(),
                    response.headers.get("etag"),
                )
        except BaseException as exc:  # reported in the main thread
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    return [o for o in outcomes if o is not None]


def test_racing_terminal_updates_over_two_instances_exactly_one_wins(
    instances: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = instances
    with client(a) as on_a:
        assert on_a.put(status_path(op_id="race"), json={}).status_code == 201

    outcomes = race_over(instances, "PATCH", status_path(op_id="race"), terminal_bodies(0))

    codes = Counter(o.status_code for o in outcomes)
    assert codes == {200: 1, 409: WRITERS - 1}, codes
    (winner,) = [o for o in outcomes if o.status_code == 200]
    assert winner.body.get("error") == expected_error(winner.sent)
    for server in instances:
        with client(server, "Reader") as reader:
            final = reader.get(status_path(op_id="race"))
        assert final.headers["etag"] == winner.etag
        assert final.json() == winner.body


def test_racing_identical_creates_over_two_instances_make_one(
    instances: tuple[ServerProcess, ServerProcess],
) -> None:
    body = {"status": "InProgress", "startTime": "2024-05-01T10:00:00Z", "percentComplete": 5}
    outcomes = race_over(instances, "PUT", status_path(op_id="same"), [body] * WRITERS)
    codes = Counter(o.status_code for o in outcomes)
    assert codes == {201: 1, 200: WRITERS - 1}, codes
    assert len({o.etag for o in outcomes}) == 1


def test_if_match_holds_across_instances(instances: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = instances
    with client(a) as on_a, client(b) as on_b:
        first = on_a.put(status_path(op_id="im"), json={})
        changed = on_b.patch(
            status_path(op_id="im"),
            json={"percentComplete": 20},
            headers={"If-Match": first.headers["etag"]},
        )
        assert changed.status_code == 200, changed.text
        stale = on_a.patch(
            status_path(op_id="im"),
            json={"percentComplete": 30},
            headers={"If-Match": first.headers["etag"]},
        )
        assert stale.status_code == 412, stale.text
        assert stale.json()["error"]["code"] == "PreconditionFailed"
        full = {"Prefer": "opstatus-detail=full"}
        final = on_b.get(status_path(op_id="im"), headers=full)
        assert final.headers["etag"] == changed.headers["etag"]
        assert final.json()["percentComplete"] == 20

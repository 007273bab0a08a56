"""Server-Sent Events against real ``opstatus serve`` processes: a dropped connection resumed
with Last-Event-ID misses nothing; the Python client reconnects through a server restart
(whose shutdown ends its streams at once); a stream on one instance sees a write made on
another (PostgreSQL); ``opstatus watch`` follows an operation to its end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opstatus.client import Client, OperationEvent
from tests.support import SUB_A, ServerProcess, status_path

from .conftest import bearer

pytestmark = pytest.mark.e2e

SSE = {"Accept": "text/event-stream"}
SUBSCRIPTION_STREAM = f"/subscriptions/{SUB_A}/operationsStatusEvents"


def writer(server: ServerProcess) -> httpx.Client:
    headers = bearer(server.token("Contributor", f"/subscriptions/{SUB_A}"))
    return httpx.Client(base_url=server.url, headers=headers, timeout=10)


def read_events(lines: Iterator[str], count: int) -> tuple[list[dict[str, object]], str]:
    """``count`` events' documents from a stream's lines, and the last id seen."""
    found: list[dict[str, object]] = []
    last = ""
    data = None
    for line in lines:
        if line.startswith("id: "):
            last = line[4:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and data is not None:
            found.append(data)
            data = None
            if len(found) == count:
                break
    return found, last


def test_resume_with_last_event_id_after_a_dropped_connection_misses_nothing(
    server: ServerProcess,
) -> None:
    headers = {**SSE, **bearer(server.token("Reader", f"/subscriptions/{SUB_A}"))}
    written: list[tuple[str, int]] = []
    with writer(server) as w, httpx.Client(base_url=server.url, timeout=10) as reader:
        with reader.stream("GET", SUBSCRIPTION_STREAM, headers=headers) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            start = next(lines).removeprefix("id: ")
            for n in range(3):
                assert w.put(status_path(op_id=f"job-{n}"), json={}).status_code == 201
                written.append((f"job-{n}", 1))
            first, last = read_events(lines, 2)
        # The connection is gone; changes go on meanwhile.
        for n in range(3):
            response = w.patch(status_path(op_id=f"job-{n}"), json={"status": "Succeeded"})
            assert response.status_code == 200
            written.append((f"job-{n}", 2))
        with reader.stream(
            "GET", SUBSCRIPTION_STREAM, headers={**headers, "Last-Event-ID": last}
        ) as again:
            rest, _ = read_events(again.iter_lines(), len(written) - 2)
    got = [(str(e["operation"]["name"]), int(e["sequence"])) for e in first + rest]  # type: ignore[index, call-overload]
    assert got == written
    assert start  # the stream began with the position it started after


def test_the_client_reconnects_through_a_server_restart_and_misses_nothing(home: Path) -> None:
    first = ServerProcess(home, "--retry-after", "0").start()
    second: ServerProcess | None = None
    events: list[OperationEvent] = []
    errors: list[BaseException] = []
    try:
        with writer(first) as w:
            assert w.put(status_path(op_id="long"), json={"percentComplete": 0}).status_code == 201
        client = Client(first.url, first.token("Reader", f"/subscriptions/{SUB_A}"))
        url = client.status_url(SUB_A, "westus", "long")

        def follow() -> None:
            try:
                for event in client.events(url, backoff=0.1, max_backoff=0.5):
                    events.append(event)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)

        reader = threading.Thread(target=follow)
        reader.start()
        with writer(first) as w:
            for percent in (10, 20):
                assert (
                    w.patch(
                        status_path(op_id="long"), json={"percentComplete": percent}
                    ).status_code
                    == 200
                )
        deadline = time.monotonic() + 10
        while len(events) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(events) == 3, events
        started = time.monotonic()
        first.stop()  # SIGTERM: the open stream ends at once, the server exits
        assert time.monotonic() - started < 5
        second = ServerProcess(home, "--retry-after", "0")
        second.port, second.url = first.port, first.url
        with writer(second.start()) as w:
            for percent in (30, 40):
                assert (
                    w.patch(
                        status_path(op_id="long"), json={"percentComplete": percent}
                    ).status_code
                    == 200
                )
            assert (
                w.patch(status_path(op_id="long"), json={"status": "Succeeded"}).status_code == 200
            )
        reader.join(20)
        assert not reader.is_alive() and not errors, errors
        client.close()
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert [e.sequence for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e.type for e in events][-1] == "operation.status"
    assert events[-1].operation.succeeded and events[-1].terminal
    assert [e.operation.percent_complete for e in events[:5]] == [0, 10, 20, 30, 40]


def test_a_stream_on_one_instance_sees_a_write_on_the_other(pg_url: str, home: Path) -> None:
    a = ServerProcess(home, "--store", pg_url, "--retry-after", "0").start()
    b = ServerProcess(home, "--store", pg_url, "--retry-after", "0").start()
    try:
        headers = {**SSE, **bearer(b.token("Reader", f"/subscriptions/{SUB_A}"))}
        with (
            httpx.Client(base_url=b.url, timeout=10) as on_b,
            writer(a) as on_a,
            on_b.stream("GET", SUBSCRIPTION_STREAM, headers=headers) as stream,
        ):
            lines = stream.iter_lines()
            assert next(lines).startswith("id: ")
            started = time.monotonic()
            assert on_a.put(status_path(op_id="cross"), json={}).status_code == 201
            [event], _ = read_events(lines, 1)
            elapsed = time.monotonic() - started
    finally:
        a.stop()
        b.stop()
    assert event["type"] == "operation.created"
    assert event["operation"]["name"] == "cross"  # type: ignore[index]
    assert elapsed < 0.9  # pushed by NOTIFY, not found by the one-second poll


def test_opstatus_watch_follows_an_operation_to_its_end(server: ServerProcess) -> None:
    with writer(server) as w:
        assert w.put(status_path(op_id="watched"), json={"percentComplete": 5}).status_code == 201
        env = {**os.environ, "OPSTATUS_HOME": str(server.home)}
        watch = subprocess.Popen(
            [
                sys.executable, "-m", "opstatus", "watch", "watched", "-s", SUB_A, "-l", "westus",
                "--endpoint", server.url, "-o", "json",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        time.sleep(1.0)
        assert (
            w.patch(status_path(op_id="watched"), json={"percentComplete": 50}).status_code == 200
        )
        response = w.patch(
            status_path(op_id="watched"),
            json={"status": "Failed", "error": {"code": "Broke", "message": "it broke"}},
        )
        assert response.status_code == 200
        out, err = watch.communicate(timeout=20)
    assert watch.returncode == 1, err  # Failed
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert [line["type"] for line in lines] == [
        "operation.created",
        "operation.progress",
        "operation.error",
    ]
    assert lines[-1]["operation"]["error"]["code"] == "Broke"

"""The Python client's wait: held GETs (``Prefer: wait``) against a real server, and polling
that honours Retry-After against one that does not hold them or is briefly unavailable."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opstatus.client import (
    AsyncClient,
    Client,
    ClientError,
    OperationPoller,
    OperationStatus,
    WaitTimeout,
)
from tests.support import SUB_A, ServerProcess, free_port, status_path


@pytest.fixture
def slow_poll_server(home: Path) -> Iterator[ServerProcess]:
    """A server telling clients to come back in 30 s: only a held GET can be quick."""
    proc = ServerProcess(home, "--retry-after", "30").start()
    yield proc
    proc.stop()


def patch_later(server: ServerProcess, delays_and_bodies: list[tuple[float, dict]]) -> None:
    headers = {"Authorization": f"Bearer {server.token()}"}
    for delay, body in delays_and_bodies:
        time.sleep(delay)
        response = httpx.patch(server.url + status_path(op_id="job"), json=body, headers=headers)
        assert response.status_code == 200, response.text


@pytest.mark.e2e
def test_wait_is_woken_by_each_change_not_by_retry_after(
    slow_poll_server: ServerProcess,
) -> None:
    server = slow_poll_server
    seen: list[OperationStatus] = []
    with Client(server.url, server.token()) as client:
        op = client.create(SUB_A, "westus", "job", percent_complete=0)
        steps = [(0.3, {"percentComplete": 50}), (0.3, {"status": "Succeeded"})]
        writer = threading.Thread(target=patch_later, args=(server, steps))
        start = time.monotonic()
        writer.start()
        final = client.wait(op.url, timeout=20, on_update=seen.append)
        elapsed = time.monotonic() - start
        writer.join()
    assert final.succeeded
    assert elapsed < 5, elapsed  # Retry-After says 30
    assert [s.percent_complete for s in seen] == [0, 50, 100]


@pytest.mark.e2e
def test_wait_times_out_while_held(slow_poll_server: ServerProcess) -> None:
    server = slow_poll_server
    with Client(server.url, server.token()) as client:
        op = client.create(SUB_A, "westus", "job")
        start = time.monotonic()
        with pytest.raises(WaitTimeout) as info:
            client.wait(op.url, timeout=1.5)
        elapsed = time.monotonic() - start
    assert 1.4 < elapsed < 4, elapsed
    assert info.value.status.status == "InProgress"


def running(request: httpx.Request, status: str = "InProgress", **headers: str) -> httpx.Response:
    body = {"id": "/x", "name": "job", "status": status}
    return httpx.Response(200, json=body, headers=headers, request=request)


def unavailable(request: httpx.Request, retry_after: str | None = "1") -> httpx.Response:
    body = {"error": {"code": "ServiceUnavailable", "message": "Retry."}}
    headers = {"Retry-After": retry_after} if retry_after else {}
    return httpx.Response(503, json=body, headers=headers, request=request)


class Script:
    """A fake server answering from a list, recording when each request came."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.times: list[float] = []
        self.prefer: list[str | None] = []
        self.if_none_match: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(time.monotonic())
        self.prefer.append(request.headers.get("prefer"))
        self.if_none_match.append(request.headers.get("if-none-match"))
        answer = self.answers.pop(0)
        assert callable(answer)
        response = answer(request)
        assert isinstance(response, httpx.Response)
        return response

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]


URL = "http://fake/subscriptions/s/providers/P/locations/l/operationsStatus/job"


def client_for(script: Script) -> Client:
    return Client("http://fake", "t", transport=httpx.MockTransport(script))


def test_a_server_that_does_not_hold_is_polled_per_retry_after() -> None:
    script = Script(
        *[lambda r: running(r, **{"Retry-After": "1"})] * 2, lambda r: running(r, "Succeeded")
    )
    with client_for(script) as client:
        assert client.wait(URL, timeout=10).succeeded
    assert script.prefer[0] == "opstatus-detail=full"  # the first read answers at once
    assert script.prefer[1] == "opstatus-detail=full, wait=9"  # then asks to be held
    first_gap, gap = script.gaps()
    assert first_gap < 0.5
    assert 0.9 < gap < 1.5, gap  # not held: Retry-After paces the next one


def test_held_answers_are_followed_at_once() -> None:
    held = {"Retry-After": "30", "Preference-Applied": "opstatus-detail=full, wait=30"}
    script = Script(
        lambda r: running(r, **held, ETag='"e1"'),
        lambda r: running(r, **held, ETag='"e2"'),
        lambda r: running(r, "Failed"),
    )
    with client_for(script) as client:
        final = client.wait(URL)
    assert final.status == "Failed"
    assert script.prefer == ["opstatus-detail=full"] + ["opstatus-detail=full, wait=30"] * 2
    assert script.if_none_match == [None, '"e1"', '"e2"']  # held while it is the one seen
    assert all(gap < 0.5 for gap in script.gaps()), script.gaps()


def test_a_503_with_retry_after_is_retried_after_that_long() -> None:
    script = Script(unavailable, lambda r: running(r, "Canceled"))
    with client_for(script) as client:
        assert client.wait(URL, timeout=10).status == "Canceled"
    assert all(0.9 < gap < 1.5 for gap in script.gaps()), script.gaps()


def test_a_503_without_retry_after_is_retried_with_backoff() -> None:
    script = Script(*[lambda r: unavailable(r, None)] * 3, lambda r: running(r, "Succeeded"))
    with client_for(script) as client:
        assert client.wait(URL, timeout=10).succeeded
    first, second, third = script.gaps()
    assert 0.4 < first < 0.9 and 0.9 < second < 1.5 and 1.9 < third < 2.5, script.gaps()


def test_an_error_that_retrying_cannot_mend_is_raised_at_once() -> None:
    script = Script(lambda r: httpx.Response(404, json={"error": {"code": "NotFound"}}))
    with client_for(script) as client, pytest.raises(ClientError) as info:
        client.wait(URL, timeout=10)
    assert info.value.status_code == 404 and len(script.times) == 1


def test_a_503_past_the_deadline_is_raised() -> None:
    script = Script(*[unavailable] * 5)
    with client_for(script) as client, pytest.raises(ClientError) as info:
        client.wait(URL, timeout=1.5)
    assert info.value.retryable and info.value.retry_after == 1.0
    assert len(script.times) == 3  # at 0, 1 and 1.5 s (the deadline), then it gives up


@pytest.mark.e2e
@pytest.mark.anyio
async def test_the_async_wait_rides_out_a_server_restart(home: Path) -> None:
    server = ServerProcess(home, "--retry-after", "0").start()
    try:
        async with AsyncClient(server.url, server.token()) as client:
            op = await client.create(SUB_A, "westus", "job")
            server.stop()
            steps = [(1.5, {"status": "Succeeded"})]

            def restart_then_finish() -> None:
                time.sleep(1.0)
                server.start()
                patch_later(server, steps)

            writer = threading.Thread(target=restart_then_finish)
            writer.start()
            final = await client.wait(op.url, timeout=30)
            writer.join()
    finally:
        server.stop()
    assert final.succeeded


@pytest.mark.e2e
def test_the_poller_gives_up_on_an_unreachable_server_at_its_timeout() -> None:
    url = f"http://127.0.0.1:{free_port()}" + status_path(op_id="job")
    start = time.monotonic()
    with OperationPoller.from_url(url, "t") as poller, pytest.raises(httpx.ConnectError) as info:
        poller.wait(timeout=1.5)
    assert 1.4 < time.monotonic() - start < 4
    assert str(info.value.request.url).startswith(url.split("?")[0])

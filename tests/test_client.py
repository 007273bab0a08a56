"""The Python client's own logic, against a scripted server (httpx.MockTransport): waiting
with and without long-polls, the producer's outcomes, and the helpers a provider uses."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from opstatus.client import (
    AsyncClient,
    CancelRequested,
    Client,
    WaitTimeout,
    accepted_response,
    results_url_of,
    status_url_of,
)
from opstatus.client._base import failure_body, status_from_body

pytestmark = pytest.mark.anyio

BASE = "http://ops.test"
URL = (
    f"{BASE}/subscriptions/s/providers/Contoso.Widgets/locations/westus/operationsStatus/op1"
    "?api-version=2024-01-01"
)


class Script:
    """Answers each request with the next scripted (status, headers) and records requests."""

    def __init__(
        self, statuses: list[str], headers: dict[str, str] | None = None, changing: bool = True
    ) -> None:
        self.statuses = statuses
        self.changing = changing  # a new ETag on every answer, as if something changed
        self.headers = headers or {}
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(time.monotonic())
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        body = {"id": "/x/op1", "name": "op1", "status": status}
        headers = dict(self.headers)
        headers["ETag"] = f'"{len(self.requests) if self.changing else 0}"'
        if status == "InProgress":
            headers.setdefault("Retry-After", "0")
        return httpx.Response(200, json=body, headers=headers)


def sync_client(handler: Callable[[httpx.Request], httpx.Response]) -> Client:
    return Client(BASE, "t", transport=httpx.MockTransport(handler))


def test_wait_long_polls_with_one_prefer_header_when_the_server_applies_it() -> None:
    script = Script(
        ["InProgress", "InProgress", "Succeeded"],
        {"Retry-After": "5", "Preference-Applied": "opstatus-detail=full, wait=30"},
    )
    with sync_client(script) as client:
        started = time.monotonic()
        final = client.wait(URL)
    assert final.succeeded
    assert time.monotonic() - started < 2  # no Retry-After sleeps: the server held the reads
    prefers = [r.headers.get_list("prefer") for r in script.requests]
    assert prefers[0] == ["opstatus-detail=full"]  # the first read answers at once
    assert prefers[1] == ["opstatus-detail=full, wait=30"]  # one header, comma-separated
    assert script.requests[1].extensions["timeout"]["read"] >= 30


def test_a_long_poll_answered_at_once_with_nothing_changed_is_not_trusted() -> None:
    """A server that says it applied wait but did not hold the read must not make the
    client spin: it falls back to Retry-After."""
    script = Script(
        ["InProgress", "InProgress", "InProgress", "Succeeded"],
        {"Retry-After": "0", "Preference-Applied": "wait=30"},
        changing=False,
    )
    with sync_client(script) as client:
        assert client.wait(URL).succeeded
    gaps = [b - a for a, b in zip(script.times, script.times[1:], strict=False)]
    assert all(gap >= 0.09 for gap in gaps[1:])  # after the first long-poll: Retry-After


def test_wait_falls_back_to_retry_after_when_wait_is_not_applied() -> None:
    script = Script(["InProgress", "InProgress", "InProgress", "Succeeded"], {"Retry-After": "0"})
    with sync_client(script) as client:
        final = client.wait(URL)
    assert final.succeeded and len(script.requests) == 4
    gaps = [b - a for a, b in zip(script.times, script.times[1:], strict=False)]
    # The first long-poll goes at once; ignored, the client sleeps Retry-After between reads
    # (0 still means a short pause).
    assert all(gap >= 0.09 for gap in gaps[1:])


def test_wait_with_a_timeout_asks_for_no_longer_than_is_left() -> None:
    script = Script(["InProgress"], {"Retry-After": "0"})
    with sync_client(script) as client, pytest.raises(WaitTimeout) as info:
        client.wait(URL, timeout=2.5)
    assert info.value.status.status == "InProgress"
    waits = [r.headers["prefer"] for r in script.requests[1:]]
    assert waits and all(w.endswith(("wait=2", "wait=1")) or "wait" not in w for w in waits)


def test_wait_with_an_interval_never_long_polls() -> None:
    script = Script(["InProgress", "Succeeded"], {"Preference-Applied": "wait=30"})
    with sync_client(script) as client:
        client.wait(URL, interval=0.05)
    assert all("wait" not in r.headers["prefer"] for r in script.requests)


async def test_async_wait_long_polls_too() -> None:
    script = Script(["InProgress", "Succeeded"], {"Preference-Applied": "wait=30"})

    async def handler(request: httpx.Request) -> httpx.Response:
        return script(request)

    async with AsyncClient(BASE, transport=httpx.MockTransport(handler)) as client:
        assert (await client.wait(URL)).succeeded
    assert script.requests[1].headers["prefer"] == "opstatus-detail=full, wait=30"


# --- URLs and the provider's helper ----------------------------------------------------------


def test_status_and_results_urls_map_both_ways() -> None:
    results = results_url_of(URL)
    assert "/operationResults/op1?api-version=2024-01-01" in results
    assert status_url_of(results) == URL
    assert status_url_of(URL) == URL
    assert Client(BASE).resolve(results) == URL


@pytest.mark.parametrize(("method", "code"), [("PUT", 201), ("patch", 202), ("DELETE", 202)])
def test_accepted_response_has_absolute_links(method: str, code: int) -> None:
    op = status_from_body({"id": "/x", "name": "op1", "status": "InProgress"}, URL)
    accepted = accepted_response(method, op, body={"a": 1}, retry_after=3)
    assert accepted.status_code == code
    assert accepted.headers == {
        "Azure-AsyncOperation": URL,
        "Location": results_url_of(URL),
        "Retry-After": "3",
    }
    public = accepted_response(method, op, public_url="https://rp.example/ops")
    assert public.headers["Azure-AsyncOperation"].startswith(
        "https://rp.example/ops/subscriptions/s/providers/"
    )
    assert "Retry-After" not in public.headers  # none known, none invented


# --- the producer's final update --------------------------------------------------------------


class WidgetJammed(Exception):
    pass


class Ünicode(Exception):
    pass


@pytest.mark.parametrize(
    ("exc", "canceled", "expected"),
    [
        (WidgetJammed("Stuck at step 3."), False, ("Failed", "WidgetJammed", "Stuck at step 3.")),
        (ValueError(), False, ("Failed", "ValueError", "ValueError")),
        (Ünicode("bad\x00byte"), False, ("Failed", "nicode", "badbyte")),
        (
            KeyboardInterrupt(),
            True,
            ("Canceled", "OperationCanceled", "The operation was canceled."),
        ),
    ],
)
def test_failure_body(exc: BaseException, canceled: bool, expected: tuple[str, str, str]) -> None:
    body = failure_body(exc, canceled)
    assert (body["status"], body["error"]["code"], body["error"]["message"]) == expected


def test_producer_outcomes_against_a_scripted_server() -> None:
    sent: list[dict[str, Any]] = []
    cancel_at: list[str | None] = [None]

    def handler(request: httpx.Request) -> httpx.Response:
        body: dict[str, Any] = {"id": "/x", "name": "op1", "status": "InProgress"}
        if request.method == "PATCH":
            sent.append(httpx.Response(200, content=request.content).json())
        if cancel_at[0]:
            body["cancelRequestedAt"] = cancel_at[0]
        return httpx.Response(200, json=body)

    with sync_client(handler) as client:
        with client.producer(URL) as job:
            job.report(50)
            job.result = {"done": True}
        assert sent[-1] == {"status": "Succeeded", "properties": {"done": True}}

        with pytest.raises(WidgetJammed), client.producer(URL) as job:
            raise WidgetJammed("jammed")
        assert sent[-1]["error"] == {"code": "WidgetJammed", "message": "jammed"}

        cancel_at[0] = "2030-01-01T00:00:00.000Z"
        with client.producer(URL) as job:  # CancelRequested is handled: it is the outcome
            assert job.cancel_requested
            job.report(60)
            raise AssertionError("report() must raise CancelRequested")
        assert sent[-1]["status"] == "Canceled"
        with pytest.raises(CancelRequested):
            job.raise_if_cancel_requested()

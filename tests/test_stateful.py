"""Stateful property tests: random sequences of creates, replays, updates, reads and deletes
against the real app (in-process, memory store), checked against a model after every step.

Properties: a terminal status is final (a later change is 409, a replay changes nothing);
percentComplete never goes down without ``resetProgress``; the ETag changes on every write
that changes the operation and on nothing else (reads, replays, refused writes); replaying a
create answers 200 with the current operation; every answer is one the model allows; the
list (followed page by page through nextLink) shows every known operation exactly once, no
other, and each as GET shows it.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from opstatus.stores import MemoryStore
from tests.support import SUB_A, app_client, bearer, status_path

TERMINAL = {"Succeeded", "Failed", "Canceled"}
IDS = st.sampled_from(["op-a", "op-b", "OP-A", "op-c"])  # OP-A is op-a: ids ignore case
STATUSES = st.sampled_from(["InProgress", "Running", "Succeeded", "Failed", "Canceled", "failed"])
PERCENTS = st.integers(0, 100) | st.floats(0, 100, allow_nan=False)
ERRORS = st.fixed_dictionaries(
    {"code": st.sampled_from(["Boom", "DiskFull"]), "message": st.text("abc ", max_size=5)}
)


@st.composite
def change(draw: st.DrawFn, create: bool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if draw(st.booleans()):
        body["status"] = draw(STATUSES)
    if draw(st.booleans()):
        body["percentComplete"] = draw(PERCENTS)
    if not create and draw(st.integers(0, 4)) == 0:
        body["resetProgress"] = True
    if body.get("status", "").lower() in ("failed", "canceled") and draw(st.booleans()):
        body["error"] = draw(ERRORS)
    if create and draw(st.integers(0, 3)) == 0:
        body["properties"] = {"n": draw(st.integers(0, 3))}
    return body


@dataclass
class Known:
    body: dict[str, Any]
    etag: str
    created_with: dict[str, Any]

    @property
    def terminal(self) -> bool:
        return self.body["status"] in TERMINAL


class SyncClient:
    """The in-process httpx client, called synchronously on the machine's own loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, http: httpx.AsyncClient) -> None:
        self.loop = loop
        self.http = http

    def _call(self, method: str, url: str, body: Any = None) -> httpx.Response:
        return self.loop.run_until_complete(self.http.request(method, url, json=body))

    def get(self, url: str) -> httpx.Response:
        return self._call("GET", url)

    def put(self, url: str, json: Any) -> httpx.Response:
        return self._call("PUT", url, json)

    def patch(self, url: str, json: Any) -> httpx.Response:
        return self._call("PATCH", url, json)

    def delete(self, url: str) -> httpx.Response:
        return self._call("DELETE", url)


#: A renewed lease (any update is a heartbeat) moves these without changing the operation:
#: the ETag stays, so a producer's own heartbeats never break its If-Match.
LEASE_FIELDS = ("leaseExpiresAt", "leaseState")


def state_of(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in LEASE_FIELDS}


LIST_PATH = (
    f"/subscriptions/{SUB_A}/providers/Microsoft.Cache/locations/westus/operationsStatus"
    "?api-version=2025-07-01"
)


class OperationLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.home = Path(tempfile.mkdtemp(prefix="opstatus-stateful-"))
        # Rules are synchronous; each machine drives the in-process app on its own loop.
        self.loop = asyncio.new_event_loop()
        self.app = app_client(self.home, store=MemoryStore())
        self.http = self.loop.run_until_complete(self.app.__aenter__())
        self.http.headers.update(bearer(self.home))
        self.http.headers["Prefer"] = "opstatus-detail=full"  # show percentComplete
        self.client = SyncClient(self.loop, self.http)
        self.known: dict[str, Known] = {}

    def teardown(self) -> None:
        self.loop.run_until_complete(self.app.__aexit__(None, None, None))
        self.loop.close()
        shutil.rmtree(self.home, ignore_errors=True)

    def _remember(self, op_id: str, response: Any, created_with: dict[str, Any]) -> None:
        self.known[op_id.lower()] = Known(response.json(), response.headers["etag"], created_with)

    @rule(op_id=IDS, body=change(create=True))
    def create(self, op_id: str, body: dict[str, Any]) -> None:
        response = self.client.put(status_path(op_id=op_id), json=body)
        known = self.known.get(op_id.lower())
        assert response.status_code != 500, response.text
        if known is None:
            assert response.status_code in (201, 400), response.text
            if response.status_code == 201:
                self._remember(op_id, response, body)
            return
        if response.status_code == 200:  # a replay: the current operation, nothing changed
            assert response.headers["etag"] == known.etag
            assert response.json() == known.body
        else:
            assert response.status_code in (400, 409), response.text
            if response.status_code == 409:
                assert response.json()["error"]["code"] == "OperationAlreadyExists"

    @rule(op_id=IDS)
    def replay_create(self, op_id: str) -> None:
        known = self.known.get(op_id.lower())
        if known is None:
            return
        response = self.client.put(status_path(op_id=op_id), json=known.created_with)
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == known.etag
        assert response.json() == known.body

    @rule(op_id=IDS, body=change(create=False))
    def update(self, op_id: str, body: dict[str, Any]) -> None:
        response = self.client.patch(status_path(op_id=op_id), json=body)
        known = self.known.get(op_id.lower())
        if known is None:
            assert response.status_code in (400, 404), response.text  # input is checked first
            return
        code = response.status_code
        assert code in (200, 400, 409), response.text
        old_percent = known.body.get("percentComplete")
        new_percent = body.get("percentComplete")
        if code == 409:
            reason = response.json()["error"]["code"]
            if reason == "OperationAlreadyTerminal":
                assert known.terminal
            else:
                assert reason == "PercentCompleteRegression"
                assert not body.get("resetProgress") and new_percent < old_percent
            return
        if code == 400:
            return
        after = response.json()
        if known.terminal:  # only a replay that changes nothing is accepted
            assert after == known.body and response.headers["etag"] == known.etag
            return
        if state_of(after) == state_of(known.body):
            assert response.headers["etag"] == known.etag  # nothing changed, no new ETag
        else:
            assert response.headers["etag"] != known.etag  # a change, a new ETag
        if old_percent is not None and not body.get("resetProgress"):
            assert after.get("percentComplete", old_percent) >= old_percent
        if after["status"] in TERMINAL:
            assert "endTime" in after
            if after["status"] == "Succeeded":
                assert after["percentComplete"] == 100
            else:
                assert after["error"]["error"]["code"]
        self.known[op_id.lower()] = Known(after, response.headers["etag"], known.created_with)

    @rule(op_id=IDS)
    def delete(self, op_id: str) -> None:
        response = self.client.delete(status_path(op_id=op_id))
        expected = 200 if op_id.lower() in self.known else 204
        assert response.status_code == expected, response.text
        self.known.pop(op_id.lower(), None)

    @rule(page_size=st.integers(1, 3))
    def list_agrees_with_get(self, page_size: int) -> None:
        listed: list[dict[str, Any]] = []
        url: str | None = f"{LIST_PATH}&maxpagesize={page_size}"
        pages = 0
        while url is not None:
            response = self.client.get(url)
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["value"]) <= page_size
            listed += page["value"]
            url = page.get("nextLink")
            pages += 1
            assert pages <= len(self.known) + 1, "nextLink does not end"
        names = [body["name"].lower() for body in listed]
        assert sorted(names) == sorted(self.known), names  # each exactly once, no stranger
        for body in listed:
            got = self.client.get(status_path(op_id=body["name"]))
            assert got.status_code == 200, got.text
            assert state_of(body) == state_of(got.json())

    @invariant()
    def reads_agree_with_the_model_and_change_nothing(self) -> None:
        for key, known in self.known.items():
            response = self.client.get(status_path(op_id=key))
            assert response.status_code == 200, response.text
            assert response.json() == known.body
            assert response.headers["etag"] == known.etag


OperationLifecycle.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_operation_lifecycle = OperationLifecycle.TestCase

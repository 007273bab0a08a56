"""Racing writers against one real server process.

A terminal status is final: of many producers racing to finish one operation, exactly one
wins (200) and every other is told 409 OperationAlreadyTerminal; what is stored afterwards is
the winner's write, whole. Racing identical creates make exactly one operation (one 201, the
rest replays answered 200 with the same ETag).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support import SUB_A, ServerProcess, status_path

from .conftest import bearer

pytestmark = pytest.mark.e2e

WRITERS = 40


@dataclass
class Outcome:
    index: int
    sent: dict[str, Any]
    status_code: int
    body: dict[str, Any]
    etag: str | None


def race(
    server: ServerProcess, method: str, path: str, bodies: list[dict[str, Any]]
) -> list[Outcome]:
    """Send one request per body from its own thread and client, released together."""
    headers = bearer(server.token("Contributor", f"/subscriptions/{SUB_A}"))
    barrier = threading.Barrier(len(bodies))
    outcomes: list[Outcome | None] = [None] * len(bodies)
    failures: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
                # Open the connection before the barrier so the requests really race.
                assert client.get("/healthz").status_code == 200
                barrier.wait(timeout=30)
                response = client.request(method, path, json=bodies[index])
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
    assert all(o is not None for o in outcomes)
    return [o for o in outcomes if o is not None]


def terminal_bodies(round_no: int) -> list[dict[str, Any]]:
    """40 different terminal updates: no two are equal, so none is a replay of another."""
    bodies: list[dict[str, Any]] = []
    for i in range(WRITERS):
        kind = i % 4
        if kind == 0:
            bodies.append({"status": "Succeeded", "properties": {"writer": i}})
        elif kind == 1:
            bodies.append(
                {
                    "status": "Failed",
                    "error": {
                        "code": f"Failure{i}",
                        "message": f"Writer {i} failed (round {round_no}).",
                    },
                }
            )
        elif kind == 2:
            bodies.append(
                {
                    "status": "Canceled",
                    "error": {"code": f"Cancel{i}", "message": f"Writer {i} canceled."},
                }
            )
        else:
            bodies.append(
                {
                    "status": "Failed",
                    "endTime": f"2030-01-01T00:00:{i:02d}.000Z",
                    "error": {"code": f"Late{i}", "message": "Late failure."},
                }
            )
    return bodies


def expected_error(sent: dict[str, Any]) -> dict[str, Any] | None:
    """What the stored error must be for this write (nested ErrorResponse), or None."""
    if sent["status"] == "Succeeded":
        return None
    return {"error": sent["error"]}


@pytest.mark.parametrize("round_no", range(3))
def test_racing_terminal_updates_exactly_one_wins(
    server: ServerProcess,
    seed: Callable[..., httpx.Response],
    reader: httpx.Client,
    check_status_body: Callable[[Any], None],
    round_no: int,
) -> None:
    op_id = f"race-{round_no}"
    created = seed(op_id, {"status": "InProgress", "startTime": "2024-05-01T10:00:00Z"})

    outcomes = race(server, "PATCH", status_path(op_id=op_id), terminal_bodies(round_no))

    codes = Counter(o.status_code for o in outcomes)
    assert codes == {200: 1, 409: WRITERS - 1}, codes
    (winner,) = [o for o in outcomes if o.status_code == 200]
    losers = [o for o in outcomes if o.status_code == 409]
    assert {o.body["error"]["code"] for o in losers} == {"OperationAlreadyTerminal"}
    # Every loser was refused because of the winner's status, not some other state.
    for loser in losers:
        assert f"'{winner.sent['status']}'" in loser.body["error"]["message"], loser.body

    # The winner's answer is its own write.
    assert winner.body["status"] == winner.sent["status"]
    assert winner.body.get("error") == expected_error(winner.sent)
    assert winner.etag is not None
    assert winner.etag != created.headers["etag"]

    # What is stored afterwards is exactly the winner's answer.
    final = reader.get(status_path(op_id=op_id))
    assert final.status_code == 200, final.text
    body = final.json()
    check_status_body(body)
    assert final.headers["etag"] == winner.etag
    assert body == winner.body
    assert body["status"] == winner.sent["status"]
    assert body["startTime"] == "2024-05-01T10:00:00.000Z"
    assert "endTime" in body
    if "endTime" in winner.sent:
        assert body["endTime"] == winner.sent["endTime"]
    if body["status"] in ("Failed", "Canceled"):
        assert body["error"] == expected_error(winner.sent)
    else:
        assert "error" not in body
    assert "retry-after" not in final.headers  # terminal: nothing left to poll for


def test_racing_identical_creates_make_one_operation(
    server: ServerProcess,
    reader: httpx.Client,
    check_status_body: Callable[[Any], None],
) -> None:
    create = {"status": "InProgress", "startTime": "2024-05-01T10:00:00Z", "percentComplete": 5}

    outcomes = race(server, "PUT", status_path(op_id="same-create"), [create] * WRITERS)

    codes = Counter(o.status_code for o in outcomes)
    assert codes == {201: 1, 200: WRITERS - 1}, codes
    etags = {o.etag for o in outcomes}
    assert len(etags) == 1 and None not in etags, etags
    assert all(o.body == outcomes[0].body for o in outcomes)

    final = reader.get(status_path(op_id="same-create"))
    assert final.status_code == 200, final.text
    check_status_body(final.json())
    assert final.headers["etag"] == etags.pop()
    assert final.json() == outcomes[0].body
    assert final.json()["status"] == "InProgress"


def test_racing_different_creates_exactly_one_is_created(
    server: ServerProcess,
    reader: httpx.Client,
) -> None:
    bodies = [
        {"status": "InProgress", "startTime": f"2024-05-01T10:00:{i:02d}Z"} for i in range(WRITERS)
    ]

    outcomes = race(server, "PUT", status_path(op_id="diff-create"), bodies)

    codes = Counter(o.status_code for o in outcomes)
    assert codes == {201: 1, 409: WRITERS - 1}, codes
    (winner,) = [o for o in outcomes if o.status_code == 201]
    assert {o.body["error"]["code"] for o in outcomes if o.status_code == 409} == {
        "OperationAlreadyExists"
    }
    final = reader.get(status_path(op_id="diff-create"))
    assert final.status_code == 200, final.text
    assert final.headers["etag"] == winner.etag
    assert final.json() == winner.body
    assert final.json()["startTime"] == winner.sent["startTime"].replace("Z", ".000Z")

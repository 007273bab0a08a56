"""kill -9 at random moments under concurrent writers: no acknowledged write is lost and no
partial state is visible (3 trials per store here; ``python scripts/crash_trials.py`` runs
20)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from scripts.crash_trials import Acked, InFlight, run_trials, verify

from tests import pg

pytestmark = pytest.mark.e2e

RUNNING = {
    "id": "/x",
    "name": "a",
    "startTime": "t0",
    "status": "InProgress",
    "percentComplete": 10.0,
}


def answer(status: int, body: dict | None = None, etag: str = "e1") -> httpx.Response:
    return httpx.Response(
        status, json=body or {"error": {"code": "ResourceNotFound"}}, headers={"etag": etag}
    )


def test_three_crash_trials_lose_nothing(tmp_path: Path) -> None:
    results = run_trials(tmp_path, trials=3, seed=3)
    assert all(r.integrity == "ok" for r in results)
    assert [p for r in results for p in r.problems] == []
    assert sum(r.acked_writes for r in results) >= 100


def test_three_crash_trials_on_postgresql_lose_nothing(tmp_path: Path) -> None:
    pg.check_server()  # skips with the reason, or fails under CI=true, without PostgreSQL
    results = run_trials(tmp_path, trials=3, seed=3, postgres=pg.ADMIN_URL)
    assert [p for r in results for p in r.problems] == []
    assert sum(r.acked_writes for r in results) >= 100


def test_the_checker_sees_a_lost_write_and_a_partial_state() -> None:
    acked = Acked(RUNNING, "e1")
    assert verify("a", acked, None, answer(200, RUNNING)) == ""
    assert "lost" in verify("a", acked, None, answer(404))
    assert "lost" in verify(
        "a", acked, None, answer(200, {**RUNNING, "percentComplete": 20.0}, "e2")
    )
    progress = InFlight("PATCH", {"percentComplete": 20})
    assert (
        verify("a", acked, progress, answer(200, {**RUNNING, "percentComplete": 20.0}, "e2")) == ""
    )
    assert "partial" in verify(
        "a", acked, progress, answer(200, {**RUNNING, "percentComplete": 15.0}, "e2")
    )
    finish = InFlight("PATCH", {"status": "Succeeded"})
    done = {**RUNNING, "status": "Succeeded", "percentComplete": 100.0, "endTime": "t1"}
    assert verify("a", acked, finish, answer(200, done, "e2")) == ""
    assert "partial" in verify(
        "a", acked, finish, answer(200, {**done, "percentComplete": 10.0}, "e2")
    )
    assert verify("b", None, InFlight("PUT", {"percentComplete": 0}), answer(404)) == ""
    deleting = InFlight("DELETE", None)
    assert verify("a", acked, deleting, answer(404)) == ""
    assert "half done" in verify("a", acked, deleting, answer(200, RUNNING, "e9"))
    assert verify("a", Acked(None, None), None, answer(200, RUNNING)) != ""


def test_the_checker_knows_the_lifecycle_fields() -> None:
    """A landed create shows the default lease; a landed outcome drops it."""
    created = {**RUNNING, "percentComplete": 0.0, "cancelable": True, "leaseSeconds": 86400.0}
    creating = InFlight("PUT", {"percentComplete": 0})
    assert verify("c", None, creating, answer(200, created)) == ""
    assert "partial" in verify(
        "c", None, creating, answer(200, {**created, "percentComplete": 5.0})
    )
    finish = InFlight("PATCH", {"status": "Canceled"})
    done = {k: v for k, v in created.items() if k != "leaseSeconds"}
    done |= {
        "status": "Canceled",
        "endTime": "t1",
        "error": {"error": {"code": "OperationCanceled"}},
    }
    assert verify("c", Acked(created, "e1"), finish, answer(200, done, "e2")) == ""
    assert "partial" in verify(
        "c", Acked(created, "e1"), finish, answer(200, {**done, "leaseSeconds": 86400.0}, "e2")
    )

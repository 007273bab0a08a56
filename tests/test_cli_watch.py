"""``opstatus watch`` as a script runs it, in its own process against a real server: it stops
after ``--max-events`` (exit 0) or at ``--timeout`` (exit 3), and Ctrl-C exits 130."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.support import SUB_A, ServerProcess
from tests.test_cli_wait import create, opstatus, patch

pytestmark = pytest.mark.e2e


def fail_one(server: ServerProcess, op_id: str) -> None:
    create(server, op_id)
    patch(server, op_id, {"status": "Failed", "error": {"code": "Broke", "message": "it broke"}})


def watch(server: ServerProcess, *args: str):
    return opstatus(
        "watch", *args, "--endpoint", server.url, "--token", server.token(), "-o", "json"
    )


def test_a_scope_watch_stops_after_max_events_and_exits_0(server: ServerProcess) -> None:
    for name in ("a", "b", "c"):
        fail_one(server, name)
    watching = watch(server, "-s", SUB_A, "--status", "Failed", "--last-event-id", "0",
                     "--max-events", "2")  # fmt: skip
    out, err = watching.communicate(timeout=30)
    assert watching.returncode == 0, (out, err)
    names = [json.loads(line)["operation"]["name"] for line in out.splitlines()]
    assert names == ["a", "b"]  # from the oldest event kept, and no further than asked


def test_a_scope_watch_that_reaches_its_timeout_exits_3(server: ServerProcess) -> None:
    fail_one(server, "only")
    started = time.monotonic()
    watching = watch(server, "-s", SUB_A, "--status", "Failed", "--last-event-id", "0",
                     "--max-events", "2", "--timeout", "3")  # fmt: skip
    out, err = watching.communicate(timeout=30)
    assert watching.returncode == 3, (out, err)
    assert time.monotonic() - started >= 3
    assert [json.loads(line)["operation"]["name"] for line in out.splitlines()] == ["only"]
    assert "timed out after 3 s" in err


def test_an_operation_that_ends_before_the_timeout_exits_by_its_outcome(
    server: ServerProcess,
) -> None:
    create(server, "quick")
    watching = watch(server, "quick", "-s", SUB_A, "-l", "westus", "--timeout", "60")
    time.sleep(1)
    patch(server, "quick", {"status": "Succeeded"})
    out, err = watching.communicate(timeout=30)
    assert watching.returncode == 0, (out, err)
    assert json.loads(out.splitlines()[-1])["operation"]["status"] == "Succeeded"


def test_an_operation_still_running_at_the_timeout_exits_3(server: ServerProcess) -> None:
    create(server, "slow")
    watching = watch(server, "slow", "-s", SUB_A, "-l", "westus", "--timeout", "2")
    out, err = watching.communicate(timeout=30)
    assert watching.returncode == 3, (out, err)
    assert json.loads(out)["type"] == "operation.created"


def test_max_events_on_a_running_operation_exits_0(server: ServerProcess) -> None:
    create(server, "partway")
    patch(server, "partway", {"percentComplete": 30})
    watching = watch(server, "partway", "-s", SUB_A, "-l", "westus", "--max-events", "2")
    out, err = watching.communicate(timeout=30)
    assert watching.returncode == 0, (out, err)
    assert [json.loads(line)["type"] for line in out.splitlines()] == [
        "operation.created",
        "operation.progress",
    ]


def test_ctrl_c_during_a_watch_exits_130(server: ServerProcess) -> None:
    watching = watch(server, "-s", SUB_A)
    time.sleep(2)
    watching.send_signal(signal.SIGINT)
    out, err = watching.communicate(timeout=10)
    assert watching.returncode == 130, (out, err)
    assert "interrupted" in err


@pytest.mark.parametrize("bad", [["--max-events", "0"], ["--timeout", "0"]])
def test_bounds_that_allow_nothing_are_usage_errors(server: ServerProcess, bad: list) -> None:
    watching = watch(server, "-s", SUB_A, *bad)
    out, err = watching.communicate(timeout=30)
    assert watching.returncode == 2, (out, err)
    assert bad[0] in err

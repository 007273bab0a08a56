"""``opstatus list``, ``cancel`` and ``purge`` against a real server process, and the serve
flags that set the lifecycle."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from opstatus.cli import main
from tests.support import SUB_A, ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def run(server: ServerProcess):
    runner = CliRunner()
    env = {"OPSTATUS_ENDPOINT": server.url, "OPSTATUS_TOKEN": server.token()}

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(main, list(args), env=env, input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def seeded(run) -> None:
    for i, status in enumerate(["Succeeded", "Failed", "InProgress", "InProgress"]):
        args = ["create", f"job-{i}", "-s", SUB_A, "-l", "westus", "--status", status]
        if status == "Failed":
            args += ["--error-code", "DiskFull", "--error-message", "Full."]
        assert run(*args).exit_code == 0
    assert run("create", "east-1", "-s", SUB_A, "-l", "eastus").exit_code == 0


def test_list_prints_a_table_newest_first(run, seeded: None) -> None:
    result = run("list", "-s", SUB_A, "-l", "westus")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "%", "KIND", "START", "END", "ERROR"]
    assert [line.split()[0] for line in lines[1:]] == ["job-3", "job-2", "job-1", "job-0"]
    assert "DiskFull" in lines[3]


def test_list_filters_limits_and_json(run, seeded: None) -> None:
    result = run("list", "-s", SUB_A, "--status", "inprogress", "-o", "json", "--page-size", "1")
    assert result.exit_code == 0, result.output
    assert [op["name"] for op in json.loads(result.output)] == ["east-1", "job-3", "job-2"]
    limited = run("list", "-s", SUB_A, "--limit", "2", "-o", "json")
    assert len(json.loads(limited.output)) == 2
    ended = run("list", "-s", SUB_A, "--status", "Failed,Succeeded", "--ended-after", "2000-01-01")
    assert [line.split()[0] for line in ended.output.splitlines()[1:]] == ["job-1", "job-0"]


def test_list_counts(run, seeded: None) -> None:
    result = run("list", "-s", SUB_A, "--counts")
    assert result.exit_code == 0
    assert result.output.split() == [
        "Failed:", "1", "InProgress:", "3", "Succeeded:", "1", "Total:", "5"
    ]  # fmt: skip
    as_json = run("list", "-s", SUB_A, "-l", "westus", "--counts", "-o", "json")
    assert json.loads(as_json.output) == {"Failed": 1, "InProgress": 2, "Succeeded": 1}


def test_list_counts_every_provider_without_a_namespace(run, seeded: None) -> None:
    made = run("create", "other-1", "-s", SUB_A, "-l", "westus", "--namespace", "Opstatus.Classic")
    assert made.exit_code == 0, made.output
    every = run("list", "-s", SUB_A, "--counts", "-o", "json")
    assert json.loads(every.output) == {"Failed": 1, "InProgress": 4, "Succeeded": 1}
    one = run("list", "-s", SUB_A, "--namespace", "Microsoft.Cache", "--counts", "-o", "json")
    assert json.loads(one.output) == {"Failed": 1, "InProgress": 3, "Succeeded": 1}
    filtered = run("list", "-s", SUB_A, "--counts", "--status", "Failed")
    assert filtered.exit_code == 2
    assert "--namespace" in filtered.output


def test_list_refuses_bad_filters(run) -> None:
    result = run("list", "-s", SUB_A, "--status", "Cancelled")
    assert result.exit_code == 4
    assert "Canceled" in result.output


def test_cancel(run, seeded: None) -> None:
    result = run("cancel", "job-2", "-s", SUB_A, "-l", "westus")
    assert result.exit_code == 0, result.output
    fields = dict(line.split(":", 1) for line in result.output.splitlines())
    assert fields["Status"].strip() == "InProgress"
    assert fields["Cancel Requested"].strip().startswith("20")
    finished = run("cancel", "job-0", "-s", SUB_A, "-l", "westus")
    assert finished.exit_code == 4
    assert "OperationAlreadyTerminal" in finished.output


def test_purge_asks_first_then_removes_finished_operations(run, seeded: None) -> None:
    declined = run("purge", "-s", SUB_A, input="n\n")
    assert declined.exit_code == 130  # the user stopped it: not 1, an operation that failed
    assert "declined; nothing was done" in declined.output
    unanswered = run("purge", "-s", SUB_A, input="")  # standard input ends: no answer
    assert unanswered.exit_code == 130
    assert "no answer (--yes skips the question); nothing was done" in unanswered.output
    assert run("get", "job-1", "-s", SUB_A, "-l", "westus").exit_code == 0
    result = run("purge", "-s", SUB_A, "-l", "westus", "--status", "Failed", "--yes")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "purged 1 operation"
    gone = run("get", "job-1", "-s", SUB_A, "-l", "westus")
    assert gone.exit_code == 4 and "OperationExpired" in gone.output
    everything = run("purge", "-s", SUB_A, "-y")
    assert everything.output.strip() == "purged 1 operation"  # job-0; running ones stay


def test_purge_needs_an_owner(server: ServerProcess, seeded: None) -> None:
    env = {
        "OPSTATUS_ENDPOINT": server.url,
        "OPSTATUS_TOKEN": server.token("Contributor", f"/subscriptions/{SUB_A}"),
    }
    result = CliRunner().invoke(main, ["purge", "-s", SUB_A, "-y"], env=env)
    assert result.exit_code == 4
    assert "AuthorizationFailed" in result.output


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--retain-succeeded", "23h"], "retain_succeeded must be at least 24 hours"),
        (["--lease-grace", "soon"], "expected a duration such as 90s"),
        (["--default-lease", "31d"], "default_lease_seconds must be from 1 to"),
    ],
)
def test_serve_refuses_bad_lifecycle_settings(home: Path, flags: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--home", str(home), *flags])
    assert result.exit_code == 2
    assert message in result.output


def retention_of(body: dict[str, str]) -> timedelta:
    ended = datetime.fromisoformat(body["endTime"].replace("Z", "+00:00"))
    return datetime.fromisoformat(body["expiresAt"].replace("Z", "+00:00")) - ended


def test_serve_takes_lifecycle_settings_from_flags_and_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retention a server applies shows in expiresAt."""
    monkeypatch.setenv("OPSTATUS_RETAIN_FAILED", "3d")
    server = ServerProcess(home, "--retry-after", "0", "--retain-succeeded", "2d").start()
    try:
        runner = CliRunner()
        env = {"OPSTATUS_ENDPOINT": server.url, "OPSTATUS_TOKEN": server.token()}
        for op_id, status, days in (("s", "Succeeded", 2), ("f", "Failed", 3)):
            args = ["create", op_id, "-s", SUB_A, "-l", "westus", "--status", status, "-o", "json"]
            body = json.loads(runner.invoke(main, args, env=env).output)
            assert timedelta(days=days) <= retention_of(body) < timedelta(days=days, seconds=1)
    finally:
        server.stop()


def test_list_of_a_subscription_spans_every_provider(run, server) -> None:
    assert run("create", "cache-1", "-s", SUB_A, "-l", "westus").exit_code == 0
    classic = httpx.put(
        f"{server.url}/{SUB_A}/operations/req-1",
        json={},
        headers={"x-ms-version": "2014-10-01", "Authorization": f"Bearer {server.token()}"},
    )
    assert classic.status_code == 201, classic.text
    everything = run("list", "-s", SUB_A)
    assert everything.exit_code == 0, everything.output
    lines = everything.output.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "%", "KIND", "START", "END", "ERROR", "PROVIDER"]
    assert [(line.split()[0], line.split()[-1]) for line in lines[1:]] == [
        ("req-1", "Opstatus.Classic"),
        ("cache-1", "Microsoft.Cache"),
    ]
    one = run("list", "-s", SUB_A, "--namespace", "Microsoft.Cache", "-o", "json")
    assert [op["name"] for op in json.loads(one.output)] == ["cache-1"]
    classic_only = run("list", "-s", SUB_A, "--namespace", "Opstatus.Classic", "-o", "json")
    assert [op["name"] for op in json.loads(classic_only.output)] == ["req-1"]

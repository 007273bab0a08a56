"""The ``opstatus`` command against a real server process: outputs and exit codes."""

from __future__ import annotations

import json
import stat
import threading
import time
from pathlib import Path

import httpx
import jwt
import pytest
from click.testing import CliRunner

from opstatus.auth import key_id, load_key
from opstatus.cli import main
from tests.support import SUB_A, SUB_B, ServerProcess, status_path

pytestmark = pytest.mark.e2e


@pytest.fixture
def run(server: ServerProcess):
    """Run the CLI in-process, talking HTTP to the server, with an Owner token in the env."""
    runner = CliRunner()
    env = {"OPSTATUS_ENDPOINT": server.url, "OPSTATUS_TOKEN": server.token()}

    def invoke(*args: str, **extra_env: str):
        return runner.invoke(main, list(args), env={**env, **extra_env}, catch_exceptions=False)

    return invoke


def test_token_is_signed_with_the_home_key_and_carries_roles(home: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "token",
            "--subject",
            "alice",
            "--role",
            "Contributor",
            "--scope",
            f"/subscriptions/{SUB_A.upper()}",
            "--scope",
            f"/subscriptions/{SUB_B}",
            "--expires-in",
            "120",
            "--home",
            str(home),
        ],
    )
    assert result.exit_code == 0, result.output
    claims = jwt.decode(
        result.stdout.strip(), load_key(home), algorithms=["HS256"], audience="opstatus"
    )
    assert claims["sub"] == "alice"
    assert claims["roles"] == [
        {"role": "Contributor", "scope": f"/subscriptions/{SUB_A}"},
        {"role": "Contributor", "scope": f"/subscriptions/{SUB_B}"},
    ]
    assert 110 <= claims["exp"] - claims["iat"] <= 120
    assert stat.S_IMODE((home / "signing.key").stat().st_mode) == 0o600


def test_token_says_which_home_and_key_id_signed_it(tmp_path: Path) -> None:
    fresh = tmp_path / "elsewhere"
    args = ["token", "--subject", "a", "--role", "Reader", "--scope", "/", "--home", str(fresh)]
    first = CliRunner().invoke(main, args)
    kid = key_id(load_key(fresh))
    assert first.exit_code == 0
    assert f"created a new signing key {kid} in home {fresh}" in first.stderr
    again = CliRunner().invoke(main, args)
    assert f"signed with key {kid} of home {fresh}" in again.stderr
    assert again.stdout.count(".") == 2 and "opstatus" not in again.stdout  # the token alone
    assert load_key(fresh).hex() not in again.output


def test_a_token_from_another_home_is_refused_naming_its_key_id(
    run, server: ServerProcess, tmp_path: Path
) -> None:
    other = tmp_path / "other-home"
    minted = CliRunner().invoke(
        main, ["token", "--subject", "a", "--role", "Owner", "--scope", "/", "--home", str(other)]
    )
    result = run("get", "x", "-s", SUB_A, "-l", "westus", OPSTATUS_TOKEN=minted.stdout.strip())
    assert result.exit_code == 4
    assert f"signed with the key '{key_id(load_key(other))}'" in result.output
    assert "which this server does not know" in result.output


@pytest.mark.parametrize("scope", ["/subscriptions/not-a-guid", "/resourceGroups/x"])
def test_token_refuses_a_bad_scope(home: Path, scope: str) -> None:
    result = CliRunner().invoke(
        main, ["token", "--subject", "a", "--role", "Reader", "--scope", scope, "--home", str(home)]
    )
    assert result.exit_code == 2
    assert "scope" in result.output or "subscription" in result.output


def test_create_then_get_prints_the_published_data(run) -> None:
    created = run("create", "job-1", "-s", SUB_A, "-l", "West US", "--percent", "10")
    assert created.exit_code == 0, created.output
    assert "Status URL:" in created.output
    result = run("get", "job-1", "-s", SUB_A, "-l", "westus")
    assert result.exit_code == 0
    lines = dict(line.split(":", 1) for line in result.output.splitlines())
    assert lines["Request ID"].strip() == "job-1"
    assert lines["Status"].strip() == "InProgress"
    assert lines["Error Code"].strip() == ""
    assert lines["Error Message"].strip() == ""
    assert lines["End Time"].strip() == ""
    assert lines["Percent Complete"].strip() == "10"


def test_get_json_prints_the_arm_body_and_accepts_a_status_url(run, server) -> None:
    run(
        "create",
        "job-2",
        "-s",
        SUB_A,
        "-l",
        "westus",
        "--status",
        "Failed",
        "--error-code",
        "DiskFull",
        "--error-message",
        "No space left.",
    )
    url = server.url + status_path(op_id="job-2")
    result = run("get", url, "--output", "json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["status"] == "Failed"
    assert body["error"] == {"error": {"code": "DiskFull", "message": "No space left."}}
    text = run("get", url)
    assert "Error Code:        DiskFull" in text.output
    assert "Error Message:     No space left." in text.output


def test_create_without_id_uses_a_server_id(run) -> None:
    result = run("create", "-s", SUB_A, "-l", "westus", "-o", "json")
    assert result.exit_code == 0
    name = json.loads(result.output)["name"]
    assert len(name) == 36 and name[14] == "7"  # a UUIDv7


def test_wait_exit_codes(run, server) -> None:
    run("create", "ok", "-s", SUB_A, "-l", "westus")
    run("create", "bad", "-s", SUB_A, "-l", "westus")
    run("create", "slow", "-s", SUB_A, "-l", "westus")

    def finish() -> None:
        time.sleep(0.5)
        headers = {"Authorization": f"Bearer {server.token()}"}
        httpx.patch(
            server.url + status_path(op_id="ok"), json={"status": "Succeeded"}, headers=headers
        )
        httpx.patch(
            server.url + status_path(op_id="bad"), json={"status": "Canceled"}, headers=headers
        )

    thread = threading.Thread(target=finish)
    thread.start()
    succeeded = run(
        "wait", "ok", "-s", SUB_A, "-l", "westus", "--interval", "0.1", "--timeout", "20"
    )
    canceled = run(
        "wait", "bad", "-s", SUB_A, "-l", "westus", "--interval", "0.1", "--timeout", "20"
    )
    thread.join()
    assert succeeded.exit_code == 0, succeeded.output
    assert "Status:            Succeeded" in succeeded.output
    assert canceled.exit_code == 1
    assert "OperationCanceled" in canceled.output
    timed_out = run("wait", "slow", "-s", SUB_A, "-l", "westus", "--timeout", "0.3")
    assert timed_out.exit_code == 3
    assert "InProgress" in timed_out.output


def test_update_reports_service_errors_with_exit_4(run, server) -> None:
    run("create", "job-3", "-s", SUB_A, "-l", "westus", "--status", "Succeeded")
    result = run("update", "job-3", "-s", SUB_A, "-l", "westus", "--status", "Failed")
    assert result.exit_code == 4
    assert "OperationAlreadyTerminal" in result.output
    reader = server.token("Reader", f"/subscriptions/{SUB_A}")
    denied = run(
        "update", "job-3", "-s", SUB_A, "-l", "westus", "--percent", "5", OPSTATUS_TOKEN=reader
    )
    assert denied.exit_code == 4
    assert "AuthorizationFailed" in denied.output


def test_usage_errors_exit_2(run) -> None:
    assert run("get", "job-1").exit_code == 2  # an id without subscription and location
    assert run("wait", "x", "-s", SUB_A, "-l", "w", "--timeout", "-1").exit_code == 2
    assert run("create", "x", "-s", SUB_A, "-l", "w", "--properties", "[1]").exit_code == 2


def test_missing_operation_exits_4(run) -> None:
    result = run("get", "never", "-s", SUB_A, "-l", "westus")
    assert result.exit_code == 4
    assert "ResourceNotFound" in result.output


def test_local_token_is_minted_from_the_home_key(server: ServerProcess) -> None:
    runner = CliRunner()
    env = {"OPSTATUS_ENDPOINT": server.url, "OPSTATUS_HOME": str(server.home)}
    result = runner.invoke(main, ["create", "local", "-s", SUB_A, "-l", "westus"], env=env)
    assert result.exit_code == 0, result.output


def test_unreachable_endpoint_exits_4() -> None:
    result = CliRunner().invoke(
        main,
        [
            "get",
            "x",
            "-s",
            SUB_A,
            "-l",
            "westus",
            "--endpoint",
            "http://127.0.0.1:9",
            "--token",
            "t",
        ],
    )
    assert result.exit_code == 4


def test_create_takes_kind_lease_and_cancelable_as_the_api_does(run) -> None:
    result = run(
        "create", "typed", "-s", SUB_A, "-l", "westus", "--kind", "backup",
        "--lease-seconds", "86400", "--not-cancelable", "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["kind"] == "backup" and body["cancelable"] is False
    assert body["leaseSeconds"] == 86400 and isinstance(body["leaseSeconds"], int)
    refused = run("cancel", "typed", "-s", SUB_A, "-l", "westus", "-o", "env")
    assert refused.exit_code == 4 and "OperationNotCancelable" in refused.output


def test_whole_lease_seconds_are_served_as_integers_and_times_read_as_datetimes(
    server: ServerProcess,
) -> None:
    from datetime import UTC, datetime

    from opstatus.client import Client

    with Client(server.url, server.token()) as client:
        op = client.create(SUB_A, "westus", "t1", lease_seconds=86400, kind="k")
        raw = httpx.get(op.url, headers={**client.headers, "Prefer": "opstatus-detail=full"})
        ended = client.update(op.url, status="Succeeded")
    assert '"leaseSeconds":86400,' in raw.text.replace(" ", "")
    assert isinstance(op.start_time, datetime) and op.start_time.tzinfo is not None
    assert abs((datetime.now(UTC) - op.start_time).total_seconds()) < 60
    assert isinstance(ended.end_time, datetime) and isinstance(ended.expires_at, datetime)
    assert ended.body["endTime"].endswith("Z")  # the body keeps the text as answered


@pytest.mark.parametrize("output", ["table", "json", "env"])
def test_get_cancel_and_delete_take_the_same_outputs(run, output: str) -> None:
    run("create", "same", "-s", SUB_A, "-l", "westus")
    for command in ("get", "cancel", "delete"):
        result = run(command, "same", "-s", SUB_A, "-l", "westus", "-o", output)
        assert result.exit_code == 0, (command, result.output)
        if output == "json":
            json.loads(result.stdout)
        if output == "env":
            assert all("=" in line for line in result.stdout.splitlines()), result.stdout
    listed = run("list", "-s", SUB_A, "-o", "text")
    assert listed.exit_code == 0 and listed.stdout.startswith("NAME")

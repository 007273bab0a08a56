"""``opstatus get`` as Orchestrator's "Get Operation Status" activity, against a real server.

Each status (InProgress, Succeeded, Failed, Canceled) in each form (classic: by request id
and subscription; ARM: with a location) and each output (table, json, env). Operations are
seeded over HTTP with fixed times, so every expected output is written out exactly. One
server serves the module: the reading tests never change the seeded operations, and the
waiting tests create their own.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from opstatus.cli import main
from tests.support import SUB_A, ServerProcess, status_path

pytestmark = pytest.mark.e2e

T0 = "2024-05-01T10:00:00.000Z"
T1 = "2024-05-01T10:05:00.000Z"
MESSAGE = "Disk 'data' is full: <100 MB & \"no\" room; $HOME `x` é\nsecond line"

SEEDS: dict[str, dict[str, Any]] = {
    "ip": {"status": "InProgress", "startTime": T0, "percentComplete": 40},
    "ok": {"status": "Succeeded", "startTime": T0, "endTime": T1, "httpStatusCode": 201},
    "bad": {
        "status": "Failed",
        "startTime": T0,
        "endTime": T1,
        "error": {"code": "DiskFull", "message": MESSAGE},
    },
    "stop": {"status": "Canceled", "startTime": T0, "endTime": T1},
}

#: (Request ID, Status, Error Code, Error Message, HTTP Status Code) read in the classic form.
CLASSIC = {
    "ip": ("ip", "InProgress", "", "", ""),
    "ok": ("ok", "Succeeded", "", "", "201"),
    "bad": ("bad", "Failed", "DiskFull", MESSAGE, "500"),
    "stop": ("stop", "Failed", "OperationCanceled", "The operation was canceled.", "500"),
}
#: (Request ID, Status, Error Code, Error Message, Start, End, Percent) in the ARM form.
ARM = {
    "ip": ("ip", "InProgress", "", "", T0, "", "40"),
    "ok": ("ok", "Succeeded", "", "", T0, T1, "100"),
    "bad": ("bad", "Failed", "DiskFull", MESSAGE, T0, T1, ""),
    "stop": ("stop", "Canceled", "OperationCanceled", "The operation was canceled.", T0, T1, ""),
}
CLASSIC_LABELS = ("Request ID", "Status", "Error Code", "Error Message", "HTTP Status Code")
ARM_LABELS = (
    "Request ID",
    "Status",
    "Error Code",
    "Error Message",
    "Start Time",
    "End Time",
    "Percent Complete",
)
CLASSIC_VARS = ("REQUEST_ID", "STATUS", "ERROR_CODE", "ERROR_MESSAGE", "HTTP_STATUS_CODE")
ARM_VARS = (
    "REQUEST_ID",
    "STATUS",
    "ERROR_CODE",
    "ERROR_MESSAGE",
    "START_TIME",
    "END_TIME",
    "PERCENT_COMPLETE",
)
STATUSES = list(SEEDS)


def put(server: ServerProcess, op_id: str, body: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {server.token()}"}
    response = httpx.put(server.url + status_path(op_id=op_id), json=body, headers=headers)
    assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("cli-classic") / "home"
    home.mkdir()
    server = ServerProcess(home, "--retry-after", "0").start()
    for op_id, body in SEEDS.items():
        put(server, op_id, body)
    yield server
    server.stop()


@pytest.fixture
def run(seeded: ServerProcess):
    runner = CliRunner()
    env = {"OPSTATUS_ENDPOINT": seeded.url, "OPSTATUS_TOKEN": seeded.token()}

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    return invoke


def table(labels: tuple[str, ...], values: tuple[str, ...], optional: tuple[str, ...] = ()):
    lines = [
        f"{label + ':':<18} {value}".rstrip()
        for label, value in zip(labels, values, strict=True)
        if value or label not in optional
    ]
    return "\n".join(lines) + "\n"


def sourced(output: str, names: tuple[str, ...]) -> dict[str, str]:
    """What a POSIX shell sees after sourcing ``output``: each variable, NUL-separated."""
    script = output + "\nprintf '%s\\0' " + " ".join(f'"${n}"' for n in names)
    result = subprocess.run(["sh", "-c", script], capture_output=True, check=True)
    values = result.stdout.decode().split("\0")[:-1]
    return dict(zip(names, values, strict=True))


# -- classic form ----------------------------------------------------------------------------


@pytest.mark.parametrize("op_id", STATUSES)
@pytest.mark.parametrize("flag", [[], ["--classic"]], ids=["id-and-subscription", "--classic"])
def test_classic_table(run, op_id: str, flag: list[str]) -> None:
    result = run("get", op_id, "--subscription", SUB_A, *flag)
    assert result.exit_code == 0, result.output
    assert result.output == table(CLASSIC_LABELS, CLASSIC[op_id])


@pytest.mark.parametrize("op_id", STATUSES)
def test_classic_env_is_sourceable(run, op_id: str) -> None:
    result = run("get", op_id, "-s", SUB_A, "--output", "env")
    assert result.exit_code == 0, result.output
    names = [line.split("=", 1)[0] for line in result.output.splitlines() if "=" in line]
    assert names == list(CLASSIC_VARS)
    assert sourced(result.output, CLASSIC_VARS) == dict(
        zip(CLASSIC_VARS, CLASSIC[op_id], strict=True)
    )


@pytest.mark.parametrize("op_id", STATUSES)
def test_classic_json_is_the_xml_elements(run, op_id: str) -> None:
    result = run("get", op_id, "-s", SUB_A, "-o", "json")
    assert result.exit_code == 0, result.output
    request_id, status, code, message, http = CLASSIC[op_id]
    expected: dict[str, Any] = {"ID": request_id, "Status": status}
    if http:
        expected["HttpStatusCode"] = int(http)
    if code:
        expected["Error"] = {"Code": code, "Message": message}
    assert json.loads(result.output) == expected


def test_outputs_written_out(run) -> None:
    canceled = run("get", "stop", "-s", SUB_A)
    assert canceled.output == (
        "Request ID:        stop\n"
        "Status:            Failed\n"
        "Error Code:        OperationCanceled\n"
        "Error Message:     The operation was canceled.\n"
        "HTTP Status Code:  500\n"
    )
    result = run("get", "bad", "-s", SUB_A, "-o", "env")
    assert result.output == (
        "REQUEST_ID=bad\n"
        "STATUS=Failed\n"
        "ERROR_CODE=DiskFull\n"
        "ERROR_MESSAGE='Disk '\"'\"'data'\"'\"' is full: <100 MB & \"no\" room; $HOME `x` é\n"
        "second line'\n"
        "HTTP_STATUS_CODE=500\n"
    )
    running = run("get", "ip", "-s", SUB_A, "-o", "env")
    assert running.output == (
        "REQUEST_ID=ip\nSTATUS=InProgress\nERROR_CODE=''\nERROR_MESSAGE=''\nHTTP_STATUS_CODE=''\n"
    )


# -- ARM form --------------------------------------------------------------------------------


@pytest.mark.parametrize("op_id", STATUSES)
@pytest.mark.parametrize("output", ["table", "text"])
def test_arm_table(run, op_id: str, output: str) -> None:
    result = run("get", op_id, "-s", SUB_A, "-l", "westus", "-o", output)
    assert result.exit_code == 0, result.output
    assert result.output == table(ARM_LABELS, ARM[op_id], optional=("Percent Complete",))


@pytest.mark.parametrize("op_id", STATUSES)
def test_arm_env_is_sourceable(run, op_id: str) -> None:
    result = run("get", op_id, "-s", SUB_A, "-l", "westus", "-o", "env")
    assert result.exit_code == 0, result.output
    assert sourced(result.output, ARM_VARS) == dict(zip(ARM_VARS, ARM[op_id], strict=True))
    assert len(result.output.splitlines()) == len(ARM_VARS) + (1 if op_id == "bad" else 0)


@pytest.mark.parametrize("op_id", STATUSES)
def test_arm_json_is_the_arm_body(run, op_id: str) -> None:
    result = run("get", op_id, "-s", SUB_A, "-l", "westus", "-o", "json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    request_id, status, code, message, start, end, _ = ARM[op_id]
    assert body["id"] == status_path(op_id=op_id, api_version=None)
    assert (body["name"], body["status"], body["startTime"]) == (request_id, status, start)
    assert body.get("endTime", "") == end
    assert body.get("error", {}).get("error", {}) == (
        {"code": code, "message": message} if code else {}
    )


# -- wait for completion ---------------------------------------------------------------------


def _finish_later(server: ServerProcess, op_id: str, body: dict[str, Any]) -> threading.Thread:
    def finish() -> None:
        time.sleep(0.5)
        headers = {"Authorization": f"Bearer {server.token()}"}
        httpx.patch(server.url + status_path(op_id=op_id), json=body, headers=headers)

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


def test_get_wait_returns_once_succeeded(run, seeded: ServerProcess) -> None:
    put(seeded, "w1", {})
    thread = _finish_later(seeded, "w1", {"status": "Succeeded"})
    result = run("get", "w1", "-s", SUB_A, "--wait", "--interval", "0.1", "--timeout", "20")
    thread.join()
    assert result.exit_code == 0, result.output
    assert result.output == table(CLASSIC_LABELS, ("w1", "Succeeded", "", "", "200"))


def test_get_wait_exits_1_when_canceled(run, seeded: ServerProcess) -> None:
    put(seeded, "w2", {})
    thread = _finish_later(seeded, "w2", {"status": "Canceled"})
    result = run("get", "w2", "-s", SUB_A, "--classic", "--wait", "--interval", "0.1", "-o", "env")
    thread.join()
    assert result.exit_code == 1, result.output
    assert sourced(result.output, CLASSIC_VARS) == dict(
        zip(
            CLASSIC_VARS,
            ("w2", "Failed", "OperationCanceled", "The operation was canceled.", "500"),
            strict=True,
        )
    )


def test_get_wait_in_the_arm_form_and_on_an_ended_operation(run) -> None:
    assert run("get", "ok", "-s", SUB_A, "-l", "westus", "--wait").exit_code == 0
    failed = run("get", "bad", "-s", SUB_A, "--wait", "-o", "json")
    assert failed.exit_code == 1
    assert json.loads(failed.output)["Error"]["Code"] == "DiskFull"


def test_get_wait_times_out_with_exit_3(run) -> None:
    result = run("get", "ip", "-s", SUB_A, "--wait", "--timeout", "0.3")
    assert result.exit_code == 3
    assert "Status:            InProgress" in result.output
    assert "timed out after 0.3 s" in result.output


def test_wait_command_reads_the_classic_form_too(run, seeded: ServerProcess) -> None:
    put(seeded, "w3", {})
    thread = _finish_later(seeded, "w3", {"status": "Failed"})
    result = run("wait", "w3", "-s", SUB_A, "--interval", "0.1", "--timeout", "20")
    thread.join()
    assert result.exit_code == 1
    assert result.output == table(
        CLASSIC_LABELS, ("w3", "Failed", "OperationFailed", "The operation failed.", "500")
    )


# -- producing, errors and usage ---------------------------------------------------------------


def test_create_reports_http_status_code_for_the_classic_form(run) -> None:
    created = run(
        "create", "c1", "-s", SUB_A, "-l", "westus", "--status", "Succeeded",
        "--http-status-code", "202",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    result = run("get", "c1", "-s", SUB_A)
    assert result.output == table(CLASSIC_LABELS, ("c1", "Succeeded", "", "", "202"))


def test_a_classic_url_is_read_in_the_classic_form(run, seeded: ServerProcess) -> None:
    result = run("get", f"{seeded.url}/{SUB_A}/operations/stop")
    assert result.exit_code == 0, result.output
    assert result.output == table(CLASSIC_LABELS, CLASSIC["stop"])


def test_an_arm_url_read_as_classic_exits_4(run, seeded: ServerProcess) -> None:
    result = run("get", seeded.url + status_path(op_id="stop"), "--classic")
    assert result.exit_code == 4
    assert result.output == (
        "opstatus: 200 UnexpectedResponse: expected the classic XML, got application/json\n"
    )


def test_unknown_request_id_exits_4_with_the_classic_error(run) -> None:
    result = run("get", "never", "-s", SUB_A)
    assert result.exit_code == 4
    assert result.output == (
        "opstatus: 404 ResourceNotFound: The specified resource does not exist.\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["get", "ip"], "needs --subscription"),
        (["get", "ip", "-s", SUB_A, "-l", "westus", "--classic"], "drop --location"),
        (["get", "ip", "-s", SUB_A, "--timeout", "5"], "--timeout and --interval need --wait"),
        (["get", "ip", "-s", SUB_A, "--interval", "1"], "--timeout and --interval need --wait"),
        (["get", "ip", "-s", SUB_A, "-o", "yaml"], "'yaml' is not one of"),
        (["get", "ip", "-s", SUB_A, "--wait", "--timeout", "-1"], "--timeout"),
    ],
)
def test_usage_errors_exit_2(run, args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output

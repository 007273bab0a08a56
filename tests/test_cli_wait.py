"""``opstatus wait`` as a user runs it, in its own process: a wait lasts as long as its timeout
(local tokens renewed, a server restart ridden out), names what it could not reach, and
Ctrl-C exits 130."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx
import jwt
import pytest
from click.testing import CliRunner

from opstatus.auth import load_or_create_key
from opstatus.cli import main
from opstatus.cli_common import EXIT_CODE_TABLE, LocalToken
from tests.support import SUB_A, ServerProcess, free_port, status_path, token

pytestmark = pytest.mark.e2e


def opstatus(*args: str, **env: str) -> subprocess.Popen[str]:
    """``opstatus ARGS`` in a process of its own, as from a shell."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPSTATUS_")}
    return subprocess.Popen(
        [sys.executable, "-m", "opstatus", *args],
        env={**clean, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def patch(server: ServerProcess, op_id: str, body: dict) -> None:
    headers = {"Authorization": f"Bearer {server.token()}"}
    response = httpx.patch(server.url + status_path(op_id=op_id), json=body, headers=headers)
    assert response.status_code == 200, response.text


def create(server: ServerProcess, op_id: str) -> None:
    headers = {"Authorization": f"Bearer {server.token()}"}
    response = httpx.put(server.url + status_path(op_id=op_id), json={}, headers=headers)
    assert response.status_code == 201, response.text


def test_a_wait_outlives_its_local_tokens_and_a_server_restart(home: Path) -> None:
    """The 'wait 900 s on a 10-minute operation' bar, shortened: local tokens of 2 s on a
    server that allows no clock skew, so the wait only lasts through renewals."""
    server = ServerProcess(home, "--clock-skew", "0", "--max-wait", "2").start()
    try:
        create(server, "long")
        stale = token(home, expires_in=1)
        time.sleep(1.5)
        expired = httpx.get(
            server.url + status_path(op_id="long"), headers={"Authorization": f"Bearer {stale}"}
        )
        assert expired.status_code == 401  # a token is not honoured past its lifetime here
        started = time.monotonic()
        waiting = opstatus(
            "wait", "long", "-s", SUB_A, "-l", "westus", "--timeout", "60",
            "--home", str(home), "--endpoint", server.url,
            OPSTATUS_LOCAL_TOKEN_SECONDS="2",
        )  # fmt: skip
        time.sleep(4)
        server.stop()  # a restart in the middle: the wait meets a refused connection
        time.sleep(2)
        server.start()
        time.sleep(4)
        patch(server, "long", {"status": "Succeeded"})
        out, err = waiting.communicate(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert waiting.returncode == 0, (out, err)
    assert "Succeeded" in out
    assert elapsed > 10  # five times the token's lifetime


def test_local_tokens_are_minted_again_at_half_their_lifetime(home: Path) -> None:
    source = LocalToken(load_or_create_key(home), 2)
    first = source()
    assert source() == first
    claims = jwt.decode(first, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 2
    time.sleep(1.1)
    assert source() != first and source.minted == 2


def test_a_bad_local_token_lifetime_is_a_usage_error(home: Path) -> None:
    load_or_create_key(home)
    result = CliRunner().invoke(
        main,
        ["get", "x", "-s", SUB_A, "-l", "westus", "--home", str(home)],
        env={"OPSTATUS_LOCAL_TOKEN_SECONDS": "soon", "OPSTATUS_TOKEN": ""},
    )
    assert result.exit_code == 2
    assert "OPSTATUS_LOCAL_TOKEN_SECONDS" in result.output


def test_a_wait_whose_timeout_runs_out_while_the_server_is_unreachable_exits_3() -> None:
    """The timeout is the user's own limit, as for ``kubectl wait``: 3, not the service's 4,
    with since when and what could not be reached."""
    port = free_port()
    started = time.monotonic()
    waiting = opstatus(
        "wait", "x", "-s", SUB_A, "-l", "westus", "--timeout", "2.5",
        "--endpoint", f"http://127.0.0.1:{port}", "--token", "t",
    )  # fmt: skip
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 3, (out, err)
    assert time.monotonic() - started >= 2.4
    assert f"could not reach http://127.0.0.1:{port}/subscriptions/{SUB_A}/" in err
    # said once when the outage began, and at the end: not at every try
    assert err.count("trying again until the --timeout of 2.5 s") == 1, err
    assert re.search(r"timed out after 2.5 s; the service was unreachable since 20\d\d-", err)
    assert out == ""  # nothing was ever read


def test_get_wait_on_the_classic_form_times_out_the_same_way() -> None:
    port = free_port()
    waiting = opstatus(
        "get", "x", "-s", SUB_A, "--wait", "--timeout", "1",
        "--endpoint", f"http://127.0.0.1:{port}", "--token", "t",
    )  # fmt: skip
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 3, (out, err)
    assert f"could not reach http://127.0.0.1:{port}/{SUB_A}/operations/x" in err
    assert "timed out after 1 s; the service was unreachable since" in err


def test_a_wait_that_loses_its_server_prints_the_last_status_read_on_timeout(
    home: Path,
) -> None:
    server = ServerProcess(home).start()
    try:
        create(server, "stranded")
        waiting = opstatus(
            "wait", "stranded", "-s", SUB_A, "-l", "westus", "--timeout", "4",
            "--endpoint", server.url, "--token", server.token(),
        )  # fmt: skip
        time.sleep(1.5)
    finally:
        server.stop()
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 3, (out, err)
    assert re.search(r"^Status: +InProgress$", out, re.MULTILINE), out
    assert "the service was unreachable since" in err


def test_an_error_answer_during_a_wait_exits_4_at_once(server: ServerProcess) -> None:
    started = time.monotonic()
    waiting = opstatus(
        "wait", "x", "-s", SUB_A, "-l", "westus", "--timeout", "60",
        "--endpoint", server.url, "--token", "not-a-token",
    )  # fmt: skip
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 4, (out, err)
    assert "InvalidAuthenticationToken" in err
    assert time.monotonic() - started < 30


def test_a_wait_started_before_the_server_finds_it_once_up(home: Path) -> None:
    server = ServerProcess(home)
    waiting = opstatus(
        "wait", "early", "-s", SUB_A, "-l", "westus", "--timeout", "30",
        "--endpoint", server.url, "--token", token(home),
    )  # fmt: skip
    try:
        time.sleep(1.5)
        server.start()
        create(server, "early")
        patch(server, "early", {"status": "Failed", "error": {"code": "X", "message": "y"}})
        out, err = waiting.communicate(timeout=30)
    finally:
        server.stop()
    assert waiting.returncode == 1, (out, err)


def test_ctrl_c_during_a_wait_exits_130(server: ServerProcess) -> None:
    create(server, "forever")
    waiting = opstatus(
        "wait", "forever", "-s", SUB_A, "-l", "westus",
        "--endpoint", server.url, "--token", server.token(),
    )  # fmt: skip
    time.sleep(2)
    waiting.send_signal(signal.SIGINT)
    out, err = waiting.communicate(timeout=10)
    assert waiting.returncode == 130, (out, err)
    assert "interrupted" in err


def test_a_given_token_that_expires_before_the_timeout_is_announced(
    server: ServerProcess,
) -> None:
    create(server, "done")
    patch(server, "done", {"status": "Succeeded"})
    short = token(server.home, expires_in=120)
    result = CliRunner().invoke(
        main,
        ["wait", "done", "-s", SUB_A, "-l", "westus", "--timeout", "600"],
        env={"OPSTATUS_ENDPOINT": server.url, "OPSTATUS_TOKEN": short},
    )
    assert result.exit_code == 0, result.output
    assert "the token expires at" in result.output
    assert "before the --timeout of 600 s" in result.output
    enough = CliRunner().invoke(
        main,
        ["wait", "done", "-s", SUB_A, "-l", "westus", "--timeout", "60"],
        env={"OPSTATUS_ENDPOINT": server.url, "OPSTATUS_TOKEN": short},
    )
    assert enough.exit_code == 0 and "expires" not in enough.output


def every_command(group: click.Group = main, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((*path, name))
        if isinstance(command, click.Group):
            found += every_command(command, (*path, name))
    return found


@pytest.mark.parametrize("command", [(), *every_command()], ids=" ".join)
def test_every_command_shows_the_exit_code_table_in_its_help(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"], terminal_width=100)
    assert result.exit_code == 0
    assert "Exit codes:" in result.output
    rows = result.output[result.output.index("Exit codes:") :].splitlines()[1:]
    assert [row.split(None, 1) for row in rows if row.strip()] == [
        [str(code), meaning] for code, meaning in EXIT_CODE_TABLE
    ]

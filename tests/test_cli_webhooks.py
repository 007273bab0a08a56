"""``opstatus webhook``: against a real server process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from opstatus.cli import main
from tests.support import SUB_A, ServerProcess


@pytest.fixture
def hooked(home: Path) -> ServerProcess:
    return ServerProcess(
        home, "--webhook-allow-network", "127.0.0.0/8", "--webhook-concurrency", "0"
    )


def test_webhook_commands_manage_subscriptions(hooked: ServerProcess, home: Path) -> None:
    server = hooked.start()
    try:
        env = {"OPSTATUS_ENDPOINT": server.url, "OPSTATUS_HOME": str(home)}

        def run(*args: str, code: int = 0) -> str:
            result = CliRunner().invoke(main, ["webhook", *args], env=env)
            assert result.exit_code == code, result.output
            return result.output

        made = json.loads(
            run("create", "-s", SUB_A, "--url", "https://127.0.0.1/hook", "--event", "status")
        )
        assert made["secret"].startswith("whsec_") and made["events"] == ["status"]
        listed = json.loads(run("list", "-s", SUB_A))["value"]
        assert [w["id"] for w in listed] == [made["id"]] and "secret" not in listed[0]
        rotated = json.loads(run("rotate", "-s", SUB_A, made["id"]))
        assert rotated["secret"] != made["secret"]
        assert json.loads(run("deliveries", "-s", SUB_A, made["id"])) == {"value": []}
        assert "No.Such" in run("create", "-s", SUB_A, "--url", "https://127.0.0.1/h",
                                "--provider", "No.Such", code=4)  # fmt: skip
        run("delete", "-s", SUB_A, made["id"])
        assert "was not found" in run("get", "-s", SUB_A, made["id"], code=4)
        made_at_start = (home / "webhook-secret").read_text().strip()
        assert run("callback-secret").strip() == made_at_start
        assert "not found" in run("notifications", "-s", SUB_A, "-l", "westus", "nope", code=4)
    finally:
        server.stop()

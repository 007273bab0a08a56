"""``opstatus ui``: the dashboard's URL and a token the server accepts, never in the URL."""

from __future__ import annotations

from pathlib import Path

import httpx
import jwt
from click.testing import CliRunner

from opstatus.auth import load_or_create_key
from opstatus.cli import main
from tests.support import SUB_A, ServerProcess, status_path


def ui(*args: str) -> list[str]:
    result = CliRunner().invoke(main, ["ui", *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_prints_the_url_and_a_short_lived_token_of_the_homes_key(home: Path) -> None:
    url, note, token = ui(
        "--home", str(home), "--endpoint", "https://ops.example:8443/", "--role", "contributor",
        "--scope", f"/subscriptions/{SUB_A}", "--subject", "dana", "--expires-in", "600",
    )  # fmt: skip
    assert url == "Dashboard: https://ops.example:8443/ui/"
    assert token not in url
    assert "Contributor" in note and "10 min" in note
    claims = jwt.decode(token, load_or_create_key(home), algorithms=["HS256"], audience="opstatus")
    assert claims["sub"] == "dana"
    assert claims["exp"] - claims["iat"] == 600
    assert claims["roles"] == [{"role": "Contributor", "scope": f"/subscriptions/{SUB_A}"}]


def test_defaults_to_a_reader_of_everything_for_an_hour(home: Path) -> None:
    *_, token = ui("--home", str(home))
    claims = jwt.decode(token, load_or_create_key(home), algorithms=["HS256"], audience="opstatus")
    assert claims["roles"] == [{"role": "Reader", "scope": "/"}]
    assert claims["exp"] - claims["iat"] == 3600


def test_a_bad_scope_is_a_usage_error(home: Path) -> None:
    result = CliRunner().invoke(main, ["ui", "--home", str(home), "--scope", "/nowhere"])
    assert result.exit_code == 2
    assert "scope" in result.output.lower()


def test_the_server_accepts_the_token_and_its_role(server: ServerProcess) -> None:
    *_, token = ui("--home", str(server.home), "--endpoint", server.url)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get(status_path(op_id="nothing")).status_code == 404  # read: allowed
        refused = c.put(status_path(op_id="job"), json={"status": "InProgress"})
    assert refused.status_code == 403  # a Reader writes nothing


def test_serve_no_ui_turns_the_dashboard_off(home: Path) -> None:
    on = ServerProcess(home).start()
    try:
        assert httpx.get(f"{on.url}/ui/").status_code == 200
    finally:
        on.stop()
    off = ServerProcess(home, "--no-ui").start()
    try:
        response = httpx.get(f"{off.url}/ui/")
    finally:
        off.stop()
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NotFound"

"""``opstatus check``, ``opstatus migrate``, and ``opstatus serve`` refusing a schema it does
not know: what they print, and their exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner, Result

from opstatus.cli import main
from opstatus.stores.migrations import latest_version
from tests.support import free_port

LATEST = latest_version("sqlite")
assert latest_version("postgresql") == LATEST


def run(*args: str, **env: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def lines(result: Result) -> list[str]:
    return [" ".join(line.split()) for line in result.output.splitlines()]


def test_check_on_a_database_without_the_schema_says_to_migrate(
    pg_empty_url: str, home: Path
) -> None:
    result = run("check", "--store", pg_empty_url, "--home", str(home))
    assert result.exit_code == 1, result.output
    assert lines(result) == [
        f"config OK store {pg_empty_url}, home {home}",
        f"store OK reached the PostgreSQL database {pg_empty_url}",
        "schema FAIL no opstatus schema",
        f"run: opstatus migrate --store '{pg_empty_url}'",
    ]


def test_check_on_an_unreachable_database_says_so_and_what_to_do(home: Path) -> None:
    url = f"postgresql://app:s3cret@127.0.0.1:{free_port()}/ops"
    shown = url.replace("s3cret", "***")
    result = run("check", "--home", str(home), OPSTATUS_STORE=url)
    assert result.exit_code == 1, result.output
    out = lines(result)
    assert out[0] == f"config OK store {shown}, home {home}"
    assert out[1].startswith(f"store FAIL Cannot connect to the PostgreSQL database {shown}: ")
    assert "ConnectionRefusedError" in out[1]
    assert out[2] == "start the database server, or point OPSTATUS_STORE at a running one"
    assert out[3] == "schema -- not checked"
    assert "s3cret" not in result.output


def test_check_on_a_database_that_does_not_exist_says_how_to_create_it(
    pg_empty_url: str, home: Path
) -> None:
    missing = pg_empty_url.rsplit("/", 1)[0] + "/opstatus_never_created"
    result = run("check", "--store", missing, "--home", str(home))
    assert result.exit_code == 1, result.output
    out = lines(result)
    assert out[1].startswith(
        f"store FAIL the PostgreSQL database {missing} does not exist: InvalidCatalogNameError"
    )
    parts = urlsplit(missing)
    createdb = f"createdb -h {parts.hostname} -p {parts.port} -U {parts.username}"
    assert out[2] == (
        f"create it: {createdb} opstatus_never_created; "
        f"then run: opstatus migrate --store '{missing}'"
    )
    assert "start the database server" not in result.output
    migrated = run("migrate", "--store", missing)
    assert migrated.exit_code == 1
    assert f"create it first: {createdb} opstatus_never_created" in migrated.output


def test_migrate_creates_the_schema_then_has_nothing_to_do_and_check_passes(
    pg_empty_url: str, home: Path
) -> None:
    created = run("migrate", "--store", pg_empty_url)
    assert created.exit_code == 0, created.output
    assert created.output == (
        f"Created the opstatus schema (version {LATEST}) in the PostgreSQL database "
        f"{pg_empty_url}.\n"
    )
    again = run("migrate", OPSTATUS_STORE=pg_empty_url)
    assert again.exit_code == 0
    assert f"is up to date (version {LATEST})" in again.output
    checked = run("check", "--store", pg_empty_url, "--home", str(home))
    assert checked.exit_code == 0, checked.output
    assert lines(checked)[2] == f"schema OK version {LATEST}, the latest"


def test_migrate_an_unreachable_database_fails_with_the_reason() -> None:
    result = run("migrate", "--store", f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    assert result.exit_code == 1
    assert "opstatus: Cannot connect to the PostgreSQL database" in result.output


def test_check_and_migrate_on_embedded_stores(tmp_path: Path, home: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'ops.db'}"
    before = run("check", "--store", url, "--home", str(home))
    assert before.exit_code == 0, before.output
    assert "does not exist yet; the server creates it when it starts" in before.output
    migrated = run("migrate", "--store", url)
    assert migrated.exit_code == 0
    assert migrated.output.startswith(
        f"Created the opstatus schema (version {LATEST}) in the SQLite"
    )
    after = run("check", "--store", url, "--home", str(home))
    assert lines(after)[2] == f"schema OK version {LATEST}, the latest"

    memory = run("check", "--store", "memory:", "--home", str(home))
    assert memory.exit_code == 0
    assert run("migrate", "--store", "memory:").output.startswith("The memory store keeps nothing")


def test_check_reports_a_bad_configuration(home: Path, tmp_path: Path) -> None:
    result = run("check", "--store", "mysql://x", "--home", str(home))
    assert result.exit_code == 1
    assert lines(result)[0].startswith("config FAIL unsupported store URL 'mysql://x'")
    assert lines(result)[1] == "correct --store"  # the option given, not the variable
    assert lines(result)[2:] == ["store -- not checked", "schema -- not checked"]
    from_env = run("check", "--home", str(home), OPSTATUS_STORE="mysql://x")
    assert lines(from_env)[1] == "correct OPSTATUS_STORE"

    providers = tmp_path / "providers.toml"
    providers.write_text("[[provider]]\nnamespace = 'bad'\n", encoding="utf-8")
    bad = run("check", "--store", "memory:", "--providers", str(providers), "--home", str(home))
    assert bad.exit_code == 1
    assert "namespace" in lines(bad)[0] and lines(bad)[0].startswith("config FAIL")


@pytest.mark.e2e
def test_serve_refuses_a_database_without_the_schema(pg_empty_url: str, home: Path) -> None:
    """As a user runs it: the process exits at once, saying what to run."""
    server = subprocess.run(
        [sys.executable, "-m", "opstatus", "serve", "--port", str(free_port())],
        env=dict(os.environ, OPSTATUS_HOME=str(home), OPSTATUS_STORE=pg_empty_url),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert server.returncode == 1
    assert server.stderr == (
        f"opstatus: The PostgreSQL database {pg_empty_url} has no opstatus schema. "
        f"Create it with: opstatus migrate --store '{pg_empty_url}'\n"
    )

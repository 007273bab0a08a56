"""The command line's security surface without a running server: ``opstatus role`` and the
start-up checks of ``serve`` (secure defaults)."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest
import trustme
from click.testing import CliRunner

from opstatus.auth import load_or_create_key
from opstatus.cli import main
from opstatus.cli_security import check_serve
from opstatus.security import SecuritySettings, is_loopback
from tests.support import SUB_A, SUB_B


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


ISSUER = "https://login.contoso.example/tenant/v2.0"
ISSUER_B = "https://idp.fabrikam.example/realms/staff"


def without_audit(args: list[str]) -> list[str]:
    """``role list`` writes nothing, so takes no --audit-log."""
    if "--audit-log" not in args:
        return args
    i = args.index("--audit-log")
    return args[:i] + args[i + 2 :]


def test_role_assign_list_remove(home: Path, tmp_path: Path) -> None:
    common = ["--home", str(home), "--audit-log", str(tmp_path / "audit.log"), "--issuer", ISSUER]
    listing = without_audit(common)
    assert run("role", "assign", "--principal", "p-1", "--role", "contributor", "--scope",
               f"/subscriptions/{SUB_A.upper()}", *common) == (
        0, f"assigned: Contributor over /subscriptions/{SUB_A}\n")  # fmt: skip
    assert run("role", "assign", "--principal", "p-1", "--role", "Contributor", "--scope",
               f"/subscriptions/{SUB_A}", *common)[1].startswith("already assigned")  # fmt: skip
    assert run("role", "assign", "--principal", "p-2", "--role", "Owner", "--scope", "/",
               *common)[0] == 0  # fmt: skip
    assert run("role", "list", *listing) == (0, (
        f"{ISSUER}\toid\tp-1\tContributor\t/subscriptions/{SUB_A}\n"
        f"{ISSUER}\toid\tp-2\tOwner\t/\n"))  # fmt: skip
    assert run("role", "list", "--principal", "p-2", *listing) == (
        0, f"{ISSUER}\toid\tp-2\tOwner\t/\n")  # fmt: skip
    assert run("role", "remove", "--principal", "p-1", "--role", "Contributor", "--scope",
               f"/subscriptions/{SUB_A}", *common)[1].startswith("removed")  # fmt: skip
    assert run("role", "remove", "--principal", "p-1", "--role", "Reader", "--scope",
               f"/subscriptions/{SUB_B}", *common)[1].startswith("not assigned")  # fmt: skip
    assert run("role", "list", *listing) == (0, f"{ISSUER}\toid\tp-2\tOwner\t/\n")
    # The assignments live in the server's store, the SQLite file in its home.
    with sqlite3.connect(home / "opstatus.db") as conn:
        rows = conn.execute(
            "SELECT issuer, principal_claim, principal_id, role, scope FROM role_assignments"
        ).fetchall()
    assert rows == [(ISSUER, "oid", "p-2", "Owner", "/")]


def test_role_changes_are_audited_to_the_home_not_the_terminal(home: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["role", "assign", "--principal", "p-1", "--issuer", ISSUER, "--role", "Reader",
         "--scope", "/", "--home", str(home)],
        env={"OPSTATUS_AUDIT_LOG": ""},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output == "assigned: Reader over /\n"  # no JSON line on the terminal
    log = home / "audit.log"
    line = json.loads(log.read_text().splitlines()[-1])
    assert line["action"] == "role.assign" and line["target"]["principal"] == "p-1"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_role_list_says_when_there_is_nothing_and_takes_no_audit_log(home: Path) -> None:
    empty = CliRunner().invoke(main, ["role", "list", "--home", str(home)])
    assert empty.exit_code == 0
    assert empty.stdout == "" and "no role assignments" in empty.stderr
    refused = CliRunner().invoke(main, ["role", "list", "--home", str(home), "--audit-log", "x"])
    assert refused.exit_code == 2


@pytest.fixture(params=["sqlite", "postgresql"])
def store_args(request: pytest.FixtureRequest, home: Path, tmp_path: Path) -> list[str]:
    """The options that select a store of the test's own (and keep audit lines apart)."""
    audit = ["--audit-log", str(tmp_path / "audit.log")]
    if request.param == "sqlite":
        return ["--home", str(home), *audit]
    return ["--store", request.getfixturevalue("pg_url"), *audit]


def test_role_assignments_name_the_issuer_and_the_claim(
    store_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same id at two issuers, and as 'oid' and 'sub', are four principals."""
    scope = ["--role", "Reader", "--scope", "/"]
    for issuer in (ISSUER, ISSUER_B):
        for who in (["--principal", "p-1"], ["--sub", "p-1"]):
            code, output = run("role", "assign", *who, "--issuer", issuer, *scope, *store_args)
            assert (code, output) == (0, "assigned: Reader over /\n")
    code, output = run("role", "list", *without_audit(store_args))
    assert code == 0 and output.splitlines() == [
        f"{ISSUER_B}\toid\tp-1\tReader\t/",
        f"{ISSUER_B}\tsub\tp-1\tReader\t/",
        f"{ISSUER}\toid\tp-1\tReader\t/",
        f"{ISSUER}\tsub\tp-1\tReader\t/",
    ]
    assert run("role", "list", "--issuer", ISSUER, "--sub", "p-1", *without_audit(store_args)) == (
        0, f"{ISSUER}\tsub\tp-1\tReader\t/\n")  # fmt: skip
    # OPSTATUS_ISSUER names the issuer when it names one; with several, --issuer must choose.
    monkeypatch.setenv("OPSTATUS_ISSUER", ISSUER_B)
    code, output = run("role", "remove", "--principal", "p-1", *scope, *store_args)
    assert (code, output) == (0, "removed: Reader over /\n")
    monkeypatch.setenv("OPSTATUS_ISSUER", f"{ISSUER} {ISSUER_B}")
    code, output = run("role", "assign", "--principal", "p-9", *scope, *store_args)
    assert code == 2 and "one --issuer (OPSTATUS_ISSUER names several)" in output
    code, output = run("role", "assign", "--principal", "p-9", "--issuer", ISSUER, *scope,
                       *store_args)  # fmt: skip
    assert code == 0
    assert len(run("role", "list", *without_audit(store_args))[1].splitlines()) == 4


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--principal", "p", "--role", "Reader", "--scope", "/"], "one --issuer"),
        (["--principal", "p", "--issuer", "a", "--issuer", "b", "--role", "Reader", "--scope",
          "/"], "one --issuer"),
        (["--principal", "p", "--sub", "p", "--issuer", "i", "--role", "Reader", "--scope", "/"],
         "--principal (the tokens' 'oid') or --sub"),
        (["--issuer", "i", "--role", "Reader", "--scope", "/"], "--principal"),
        (["--principal", "p", "--issuer", "", "--role", "Reader", "--scope", "/"],
         "'iss' exactly"),
    ],
)  # fmt: skip
def test_role_assign_needs_one_issuer_and_one_id(
    home: Path, args: list[str], complaint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPSTATUS_ISSUER", raising=False)
    code, output = run("role", "assign", *args, "--home", str(home))
    assert code == 2
    assert complaint in output


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--role", "Admin", "--scope", "/"], "Invalid value for '--role'"),
        (["--role", "Reader", "--scope", "/subscriptions/nope"], "malformed"),
        (["--role", "Reader", "--scope", "/resourceGroups/x"], "scope must be"),
        (["--role", "Reader", "--scope", "/", "--store", "memory:"], "persistent store"),
    ],
)
def test_role_refuses_bad_input(home: Path, args: list[str], complaint: str) -> None:
    code, output = run("role", "assign", "--principal", "p", "--issuer", ISSUER, *args,
                       "--home", str(home))  # fmt: skip
    assert code == 2
    assert complaint in output


def test_role_refuses_an_empty_principal(home: Path) -> None:
    code, output = run("role", "assign", "--principal", " ", "--issuer", ISSUER, "--role",
                       "Reader", "--scope", "/", "--home", str(home))  # fmt: skip
    assert code == 2 and "--principal" in output


# -- serve's start-up checks -----------------------------------------------------------------


def test_serve_binds_loopback_by_default() -> None:
    code, output = run("serve", "--help")
    assert code == 0 and "[default: 127.0.0.1]" in output


def test_serve_help_describes_the_metrics_token() -> None:
    code, output = run("serve", "--help")
    assert code == 0
    text = " ".join(output.split())
    assert "--metrics-token TEXT Bearer token GET /metrics requires" in text
    assert "OPSTATUS_METRICS_TOKEN" in text


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--jwks", "{jwks}"], "--jwks needs at least one --issuer and one --audience"),
        (["--jwks", "{jwks}", "--issuer", "i"], "--jwks needs"),
        (["--issuer", "i", "--audience", "a"], "apply to tokens checked with --jwks"),
        (
            ["--jwks", "{jwks}", "--jwks", "{jwks}", "--issuer", "i", "--audience", "a"],
            "bind each to the issuer",
        ),
        (["--tls-cert", "{jwks}"], "--tls-cert and --tls-key go together"),
        (["--metrics-token", "has space"], "--metrics-token must be printable ASCII"),
    ],
)
def test_serve_refuses_incomplete_security_settings(
    home: Path, tmp_path: Path, args: list[str], complaint: str
) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    argv = [a.replace("{jwks}", str(jwks)) for a in args]
    code, output = run("serve", "--home", str(home), *argv)
    assert code == 2
    assert complaint in output


def test_serve_refuses_a_tls_key_others_can_read(home: Path, tmp_path: Path) -> None:
    cert = trustme.CA().issue_cert("127.0.0.1")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    key_path.chmod(0o644)
    code, output = run("serve", "--home", str(home), "--tls-cert", str(cert_path),
                       "--tls-key", str(key_path))  # fmt: skip
    assert code == 2
    assert "accessible by others (mode 0644)" in output and f"chmod 600 {key_path}" in output


def test_serve_refuses_a_signing_key_others_can_read(home: Path) -> None:
    load_or_create_key(home)
    (home / "signing.key").chmod(0o640)
    code, output = run("serve", "--home", str(home))
    assert code == 2
    assert "The signing key" in output and "chmod 600" in output


def test_serve_refuses_an_unreadable_jwks(home: Path, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}')
    code, output = run("serve", "--home", str(home), "--jwks", str(jwks), "--issuer", "i",
                       "--audience", "a")  # fmt: skip
    assert code == 2 and "has no RS256 or ES256 signing key" in output


def test_new_home_and_key_are_private(tmp_path: Path) -> None:
    home = tmp_path / "fresh" / "home"
    load_or_create_key(home)
    assert home.stat().st_mode & 0o077 == 0
    assert (home / "signing.key").stat().st_mode & 0o077 == 0


def test_plain_http_off_loopback_is_warned_about(capsys: pytest.CaptureFixture[str]) -> None:
    check_serve("127.0.0.1", SecuritySettings())
    assert capsys.readouterr().err == ""
    check_serve("0.0.0.0", SecuritySettings())
    assert "warning: serving plain HTTP on 0.0.0.0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("10.0.0.5", False), ("::", False),
     ("opstatus.contoso.example", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback

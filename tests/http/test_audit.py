"""The audit trail (one JSON line per write on ``opstatus.audit``), and secrets kept out of
every log line and every error answer."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from opstatus.auth import OID, PrincipalId, RoleAssignment
from opstatus.cli import main
from opstatus.security import SecuritySettings
from opstatus.server import build_app
from opstatus.settings import Settings
from opstatus.stores import MemoryStore
from tests.idp import ISSUER, IdentityProvider
from tests.support import CLASSIC_HEADERS, SUB_A, app_client, classic_path, status_path, token

from .conftest import collection_path

pytestmark = pytest.mark.anyio

PAT = PrincipalId(ISSUER, OID, "pat")


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> IdentityProvider:
    return IdentityProvider(tmp_path_factory.mktemp("idp"))


@pytest.fixture
async def audited(
    home: Path, idp: IdentityProvider, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[httpx.AsyncClient]:
    caplog.set_level(logging.DEBUG)
    store = MemoryStore()
    await store.assign_role(RoleAssignment("Contributor", f"/subscriptions/{SUB_A}", PAT))
    async with app_client(home, store=store, security=idp.security()) as client:
        yield client


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    lines = [r for r in caplog.records if r.name == "opstatus.audit"]
    assert all(r.levelno == logging.INFO for r in lines)
    return [json.loads(r.getMessage()) for r in lines]


def auth(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


async def test_every_write_is_one_line_with_who_what_where_result_and_request_id(
    audited: httpx.AsyncClient, home: Path, idp: IdentityProvider, caplog: pytest.LogCaptureFixture
) -> None:
    local = auth(token(home, "Contributor", subject="producer-1"))
    provider = auth(idp.token("pat"))
    responses = [
        await audited.put(status_path(op_id="job-1"), headers=local, json={}),
        await audited.patch(
            status_path(op_id="job-1"), headers=provider, json={"percentComplete": 5}
        ),
        await audited.post(collection_path(), headers=local, json={}),
        await audited.delete(status_path(op_id="job-1"), headers=provider),
        await audited.get(status_path(op_id="job-1"), headers=local),  # reads are not audited
    ]
    lines = audit_lines(caplog)
    assert len(lines) == 4
    posted_id = responses[2].json()["name"]
    expected = [
        ("create", "producer-1", "job-1", 201, "PUT"),
        ("update", f"{idp.claims('pat')['iss']}#pat", "job-1", 200, "PATCH"),
        ("create", "producer-1", posted_id, 201, "POST"),
        ("delete", f"{idp.claims('pat')['iss']}#pat", "job-1", 200, "DELETE"),
    ]
    for line, response, (action, principal, op_id, result, method) in zip(
        lines, responses, expected, strict=False
    ):
        assert line["action"] == action
        assert line["principal"] == principal
        assert line["subscription"] == SUB_A
        assert line["operationId"] == op_id
        assert line["result"] == result == response.status_code
        assert line["requestId"] == response.headers["x-ms-request-id"]
        assert line["method"] == method
        assert line["client"] == "127.0.0.1"
        assert set(line) == {
            "time",
            "action",
            "principal",
            "subscription",
            "operationId",
            "result",
            "requestId",
            "method",
            "client",
        }


async def test_classic_writes_name_their_target_with_the_arm_actions(
    audited: httpx.AsyncClient, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The classic form's writes are the same writes: same actions, subscription and id."""
    local = {**auth(token(home, "Contributor", subject="producer-1")), **CLASSIC_HEADERS}
    reader = {**auth(token(home, "Reader", subject="ro")), **CLASSIC_HEADERS}
    path = classic_path("req-7", sub=SUB_A.upper())
    responses = [
        await audited.put(path, headers=local, json={}),
        await audited.patch(path, headers=local, json={"percentComplete": 5}),
        await audited.delete(path, headers=reader),  # refused: audited all the same
        await audited.delete(path, headers=local),
    ]
    lines = audit_lines(caplog)
    assert [(x["action"], x["subscription"], x["operationId"], x["result"]) for x in lines] == [
        ("create", SUB_A, "req-7", 201),
        ("update", SUB_A, "req-7", 200),
        ("delete", SUB_A, "req-7", 403),
        ("delete", SUB_A, "req-7", 200),
    ]
    assert [x["result"] for x in lines] == [r.status_code for r in responses]
    assert [x["method"] for x in lines] == ["PUT", "PATCH", "DELETE", "DELETE"]


async def test_a_purge_is_audited_as_a_purge_of_its_subscription(
    audited: httpx.AsyncClient, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    owner = auth(token(home, "Owner", subject="admin-1"))
    base = f"/subscriptions/{SUB_A}/providers/Microsoft.Cache"
    for path in (f"{base}/locations/westus/operationsStatus", f"{base}/operationsStatus"):
        path += "/purge"
        response = await audited.post(path + "?api-version=2025-07-01", headers=owner)
        assert response.status_code == 200, response.text
    lines = audit_lines(caplog)
    assert [(x["action"], x["subscription"], x["operationId"]) for x in lines] == [
        ("purge", SUB_A, None),
        ("purge", SUB_A, None),
    ]


async def test_refused_writes_are_audited_too(
    audited: httpx.AsyncClient, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await audited.put(status_path(), json={})
    await audited.put(status_path(), headers=auth(token(home, "Reader", subject="ro")), json={})
    lines = audit_lines(caplog)
    assert [(x["principal"], x["result"]) for x in lines] == [(None, 401), ("ro", 403)]


def test_role_changes_are_audited(home: Path, tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    runner = CliRunner()
    args = ["--principal", "pat", "--issuer", ISSUER, "--role", "reader", "--scope",
            f"/subscriptions/{SUB_A}"]  # fmt: skip
    common = ["--home", str(home), "--audit-log", str(log)]
    for command in ("assign", "assign", "remove"):
        result = runner.invoke(main, ["role", command, *args, *common])
        assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [(x["action"], x["result"]) for x in lines] == [
        ("role.assign", 200),
        ("role.assign", 204),
        ("role.remove", 200),
    ]
    assert lines[0]["target"] == {
        "issuer": ISSUER,
        "claim": "oid",
        "principal": "pat",
        "role": "Reader",
        "scope": f"/subscriptions/{SUB_A}",
    }
    assert lines[0]["subscription"] == SUB_A and lines[0]["principal"].startswith("local:")
    assert log.stat().st_mode & 0o077 == 0


async def test_tokens_never_appear_in_logs_or_error_answers(
    home: Path,
    idp: IdentityProvider,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    store = MemoryStore()
    await store.assign_role(RoleAssignment("Reader", "/", PAT))
    tokens = {
        "valid-local": token(home, "Contributor"),
        "reader-local": token(home, "Reader", scope=f"/subscriptions/{SUB_A}"),
        "valid-provider": idp.token("pat"),
        "expired": idp.token("pat", exp=int(time.time()) - 3600, nbf=None, iat=None),
        "wrong-audience": idp.token("pat", aud="https://management.azure.com/"),
        "wrong-key": idp.token("pat", key=idp.other_rsa_key),
        "alg-none": idp.unsigned("pat"),
        "hs-confusion": idp.hs256_with_public_key("pat"),
    }
    answers: list[httpx.Response] = []
    security = SecuritySettings(
        jwks=(f"{ISSUER}={idp.jwks_path}",),
        audiences=idp.security().audiences,
        rate_limit=1.0,
        rate_burst=12,
        reject_delay=0.0,
    )
    app = build_app(Settings(home=home, security=security), store=store)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for raw in tokens.values():
            for method in ("GET", "PUT", "PATCH", "DELETE"):
                body = b'{"status": "Bogus Value"}' if method != "GET" else None
                answers.append(
                    await client.request(method, status_path(), headers=auth(raw), content=body)
                )
        # A store that breaks in an unexpected way: a 500 with a logged traceback.
        monkeypatch.setattr(store, "get", _explode)
        answers.append(await client.get(status_path(), headers=auth(tokens["valid-local"])))
    statuses = {r.status_code for r in answers}
    assert {400, 401, 403, 429, 500} <= statuses, statuses
    assert answers[-1].json()["error"]["code"] == "InternalServerError"
    logged = "\n".join(
        f"{r.getMessage()}\n{r.exc_text or ''}\n{r.stack_info or ''}" for r in caplog.records
    )
    assert "Traceback" in logged  # the 500 was logged server-side, with its traceback
    for name, raw in tokens.items():
        signature = raw.rsplit(".", 1)[-1] or raw
        for response in answers:
            shown = response.text + json.dumps(dict(response.headers))
            assert raw not in shown and (len(signature) < 8 or signature not in shown), name
            assert "Traceback" not in response.text
        assert raw not in logged, name
        assert len(signature) < 8 or signature not in logged, name


async def _explode(subscription_id: str, operation_key: str) -> None:
    raise RuntimeError("disk on fire")

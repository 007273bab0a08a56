"""Who may do what: ARM's 401 (with its challenge), ARM's 403 template, and tenant isolation.

401 comes before anything else, 403 before any lookup, so neither reveals whether an
operation exists; an operation is reachable only under the subscription it was created in.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from opstatus.auth import key_id, load_or_create_key, mint_token
from tests.support import SUB_A, SUB_B, bearer, status_path, token

from .conftest import JSON, assert_arm_error, collection_path

pytestmark = pytest.mark.anyio

CHALLENGE = re.compile(
    r'Bearer authorization_uri="https://login\.(?:microsoftonline\.com|windows\.net)/[^"\s]+", '
    r'error="invalid_token", error_description="(?P<description>[^"]*)"\Z'
)
MISSING_DESCRIPTION = "The authentication failed because of missing 'Authorization' header."
MISSING_MESSAGE = "Authentication failed. The 'Authorization' header is missing."
MALFORMED_MESSAGE = (
    "Authentication failed. The 'Authorization' header is provided in an invalid format."
)
INVALID_MESSAGE = "The access token is invalid."
EXPIRED_MESSAGE = "The access token has expired."

REQUESTS = [
    pytest.param("GET", status_path(), id="GET"),
    pytest.param("PUT", status_path(), id="PUT"),
    pytest.param("PATCH", status_path(), id="PATCH"),
    pytest.param("DELETE", status_path(), id="DELETE"),
    pytest.param("POST", collection_path(), id="POST"),
]


def auth(raw_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw_token}"}


def denied(verb: str, scope: str, who: str = "alice") -> str:
    """ARM's AuthorizationFailed message for Microsoft.Cache's operationsStatus."""
    return (
        f"The client '{who}' with object id '{who}' does not have authorization to perform "
        f"action 'Microsoft.Cache/locations/operationsStatus/{verb}' over scope '{scope}' or "
        "the scope is invalid. If access was recently granted, please refresh your credentials."
    )


def op_scope(sub: str = SUB_A, op_id: str = "op1") -> str:
    return (
        f"/subscriptions/{sub}/providers/Microsoft.Cache/locations/westus/operationsStatus/{op_id}"
    )


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": "opstatus",
        "aud": "opstatus",
        "sub": "alice",
        "oid": "alice",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "roles": [{"role": "Owner", "scope": "/"}],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def tampered(home: Path) -> str:
    """A real Reader token whose payload was rewritten to Owner, signature kept."""
    header, _, signature = token(home, "Reader", f"/subscriptions/{SUB_A}").split(".")
    return f"{header}.{b64(claims())}.{signature}"


def assert_401(
    response: httpx.Response, code: str, message: str, description: str | None = None
) -> None:
    assert_arm_error(response, 401, code, message=message)
    challenge = response.headers.get("www-authenticate", "")
    match = CHALLENGE.match(challenge)
    assert match, challenge
    assert match["description"] == (description or message)


async def create(
    client: httpx.AsyncClient, home: Path, sub: str = SUB_A, op_id: str = "op1"
) -> dict[str, Any]:
    response = await client.put(
        status_path(sub=sub, op_id=op_id), headers=bearer(home), json={"status": "InProgress"}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def snapshot(
    client: httpx.AsyncClient, home: Path, sub: str = SUB_A, op_id: str = "op1"
) -> tuple[int, Any, str | None]:
    response = await client.get(status_path(sub=sub, op_id=op_id), headers=bearer(home))
    return response.status_code, response.json(), response.headers.get("etag")


# -- 401 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "url"), REQUESTS)
async def test_missing_header_is_401_with_arms_challenge(
    bare_client: httpx.AsyncClient, home: Path, method: str, url: str
) -> None:
    await create(bare_client, home)
    response = await bare_client.request(method, url, content=b"{}", headers=JSON)
    assert_401(response, "AuthenticationFailed", MISSING_MESSAGE, MISSING_DESCRIPTION)
    assert response.headers["www-authenticate"].endswith(
        ', error="invalid_token", error_description="The authentication failed because of '
        "missing 'Authorization' header.\""
    )


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("", id="empty"),
        pytest.param("Bearer", id="scheme-only"),
        pytest.param("Bearer    ", id="scheme-and-blanks"),
        pytest.param("Basic YWxpY2U6c2VjcmV0", id="basic"),
        pytest.param("Token abc.def.ghi", id="other-scheme"),
        pytest.param("abc.def.ghi", id="token-without-scheme"),
    ],
)
async def test_malformed_header_is_401_authentication_failed(
    bare_client: httpx.AsyncClient, header: str
) -> None:
    response = await bare_client.get(status_path(), headers={"Authorization": header})
    if header == "":
        assert_401(response, "AuthenticationFailed", MISSING_MESSAGE, MISSING_DESCRIPTION)
    else:
        assert_401(response, "AuthenticationFailed", MALFORMED_MESSAGE)


WRONG_AUDIENCE_MESSAGE = (
    "The access token has been obtained for wrong audience or resource "
    "'https://management.azure.com/'. It should exactly match with one of the allowed "
    "audiences 'opstatus'."
)
WRONG_ISSUER_MESSAGE = (
    "The access token is from the wrong issuer 'someone-else'. It must match one of the "
    "allowed issuers 'opstatus'."
)
NOT_YET_VALID_MESSAGE = "The access token is not yet valid."


def bad_tokens(home: Path) -> dict[str, tuple[str, str]]:
    """Name -> (token, expected message)."""
    key = load_or_create_key(home)
    other_key = secrets.token_bytes(32)
    return {
        "garbage": ("not-a-token", INVALID_MESSAGE),
        "three-garbage-parts": ("abc.def.ghi", INVALID_MESSAGE),
        "expired": (token(home, expires_in=-3600), EXPIRED_MESSAGE),
        "other-key": (
            mint_token(other_key, "alice", [("Owner", "/")]),
            f"The access token is signed with the key '{key_id(other_key)}', which this server "
            "does not know. Mint tokens with the server's own home folder (opstatus token "
            "--home, or OPSTATUS_HOME, as the server was started with).",
        ),
        "alg-none": (jwt.encode(claims(), None, algorithm="none"), INVALID_MESSAGE),
        "alg-none-signature-dropped": (".".join(token(home).split(".")[:2]) + ".", INVALID_MESSAGE),
        "payload-tampered": (tampered(home), INVALID_MESSAGE),
        "wrong-audience": (
            jwt.encode(claims(aud="https://management.azure.com/"), key, algorithm="HS256"),
            WRONG_AUDIENCE_MESSAGE,
        ),
        "wrong-issuer": (
            jwt.encode(claims(iss="someone-else"), key, algorithm="HS256"),
            WRONG_ISSUER_MESSAGE,
        ),
        "no-expiry": (jwt.encode(claims(exp=None), key, algorithm="HS256"), INVALID_MESSAGE),
        "not-yet-valid": (
            jwt.encode(claims(nbf=int(time.time()) + 3600), key, algorithm="HS256"),
            NOT_YET_VALID_MESSAGE,
        ),
        "roles-not-a-list": (
            jwt.encode(claims(roles="Owner"), key, algorithm="HS256"),
            INVALID_MESSAGE,
        ),
    }


BAD_TOKEN_NAMES = [
    "garbage",
    "three-garbage-parts",
    "expired",
    "other-key",
    "alg-none",
    "alg-none-signature-dropped",
    "payload-tampered",
    "wrong-audience",
    "wrong-issuer",
    "no-expiry",
    "not-yet-valid",
    "roles-not-a-list",
]


@pytest.mark.parametrize("name", BAD_TOKEN_NAMES)
@pytest.mark.parametrize(("method", "url"), REQUESTS)
async def test_invalid_token_is_401_invalid_authentication_token(
    bare_client: httpx.AsyncClient, home: Path, name: str, method: str, url: str
) -> None:
    await create(bare_client, home)
    before = await snapshot(bare_client, home)
    raw_token, message = bad_tokens(home)[name]
    response = await bare_client.request(
        method, url, content=b'{"status": "Succeeded"}', headers={**JSON, **auth(raw_token)}
    )
    code = "InvalidAuthenticationTokenAudience" if name == "wrong-audience" else None
    assert_401(response, code or "InvalidAuthenticationToken", message)
    assert await snapshot(bare_client, home) == before


async def test_401_does_not_reveal_whether_the_operation_exists(
    bare_client: httpx.AsyncClient, home: Path
) -> None:
    await create(bare_client, home)
    for headers in ({}, auth("garbage")):
        existing = await bare_client.get(status_path(op_id="op1"), headers=headers)
        absent = await bare_client.get(status_path(op_id="op2"), headers=headers)
        assert existing.status_code == absent.status_code == 401
        assert existing.content == absent.content
        assert existing.headers["www-authenticate"] == absent.headers["www-authenticate"]


async def test_401_comes_before_any_other_check(bare_client: httpx.AsyncClient) -> None:
    for url in (
        status_path(sub="not-a-guid"),
        status_path(api_version=None),
        status_path(namespace="Microsoft.Nope"),
        status_path(op_id="%00"),
    ):
        response = await bare_client.get(url)
        assert_401(response, "AuthenticationFailed", MISSING_MESSAGE, MISSING_DESCRIPTION)


async def test_lowercase_bearer_scheme_is_accepted(
    bare_client: httpx.AsyncClient, home: Path
) -> None:
    await create(bare_client, home)
    response = await bare_client.get(
        status_path(), headers={"Authorization": f"bearer {token(home, 'Reader')}"}
    )
    assert response.status_code == 200, response.text


# -- 403 -------------------------------------------------------------------------------------

WRITE_REQUESTS = [
    pytest.param("PUT", status_path(), "write", op_scope(), id="PUT"),
    pytest.param("PATCH", status_path(), "write", op_scope(), id="PATCH"),
    pytest.param("DELETE", status_path(), "delete", op_scope(), id="DELETE"),
    pytest.param("POST", collection_path(), "write", op_scope().rsplit("/", 1)[0], id="POST"),
]


@pytest.mark.parametrize("reader_scope", ["/", f"/subscriptions/{SUB_A}"])
@pytest.mark.parametrize(("method", "url", "verb", "scope"), WRITE_REQUESTS)
async def test_reader_writing_is_403_and_changes_nothing(
    bare_client: httpx.AsyncClient,
    home: Path,
    reader_scope: str,
    method: str,
    url: str,
    verb: str,
    scope: str,
) -> None:
    await create(bare_client, home)
    before = await snapshot(bare_client, home)
    response = await bare_client.request(
        method,
        url,
        content=b'{"status": "Succeeded"}',
        headers={**JSON, **bearer(home, "Reader", reader_scope)},
    )
    assert_arm_error(response, 403, "AuthorizationFailed", message=denied(verb, scope))
    assert await snapshot(bare_client, home) == before


async def test_reader_can_read(bare_client: httpx.AsyncClient, home: Path) -> None:
    created = await create(bare_client, home)
    for scope in ("/", f"/subscriptions/{SUB_A}", f"/subscriptions/{SUB_A.upper()}"):
        response = await bare_client.get(status_path(), headers=bearer(home, "Reader", scope))
        assert response.status_code == 200, response.text
        assert response.json() == created


@pytest.mark.parametrize("role", ["Reader", "Contributor", "Owner"])
async def test_token_for_subscription_b_reading_a_is_403(
    bare_client: httpx.AsyncClient, home: Path, role: str
) -> None:
    await create(bare_client, home)
    response = await bare_client.get(
        status_path(), headers=bearer(home, role, f"/subscriptions/{SUB_B}")
    )
    assert_arm_error(response, 403, "AuthorizationFailed", message=denied("read", op_scope()))


async def test_403_names_the_callers_subject(bare_client: httpx.AsyncClient, home: Path) -> None:
    response = await bare_client.get(
        status_path(), headers=bearer(home, "Reader", f"/subscriptions/{SUB_B}", subject="bob")
    )
    assert_arm_error(
        response, 403, "AuthorizationFailed", message=denied("read", op_scope(), who="bob")
    )


async def test_contributor_of_a_writes_a_but_not_b(
    bare_client: httpx.AsyncClient, home: Path
) -> None:
    contributor = bearer(home, "Contributor", f"/subscriptions/{SUB_A}")
    put_a = await bare_client.put(status_path(sub=SUB_A), headers=contributor, json={})
    assert put_a.status_code == 201, put_a.text
    patch_a = await bare_client.patch(
        status_path(sub=SUB_A), headers=contributor, json={"status": "Succeeded"}
    )
    assert patch_a.status_code == 200, patch_a.text
    put_b = await bare_client.put(status_path(sub=SUB_B), headers=contributor, json={})
    assert_arm_error(
        put_b, 403, "AuthorizationFailed", message=denied("write", op_scope(sub=SUB_B))
    )
    assert (await snapshot(bare_client, home, sub=SUB_B))[0] == 404


@pytest.mark.parametrize(
    ("method", "headers_for"),
    [
        pytest.param(
            "GET",
            lambda home: bearer(home, "Owner", f"/subscriptions/{SUB_B}"),
            id="GET-by-owner-of-B",
        ),
        pytest.param("PATCH", lambda home: bearer(home, "Reader"), id="PATCH-by-reader"),
        pytest.param("DELETE", lambda home: bearer(home, "Reader"), id="DELETE-by-reader"),
        pytest.param("PUT", lambda home: bearer(home, "Reader"), id="PUT-by-reader"),
    ],
)
async def test_403_is_the_same_whether_the_operation_exists_or_not(
    bare_client: httpx.AsyncClient, home: Path, method: str, headers_for: Any
) -> None:
    headers = {**JSON, **headers_for(home)}
    body = b'{"status": "Succeeded"}'
    await create(bare_client, home)
    existing = await bare_client.request(
        method, status_path(op_id="op1"), content=body, headers=headers
    )
    never = await bare_client.request(
        method, status_path(op_id="op2"), content=body, headers=headers
    )
    assert (await bare_client.delete(status_path(), headers=bearer(home))).status_code == 200
    deleted = await bare_client.request(
        method, status_path(op_id="op1"), content=body, headers=headers
    )
    assert existing.status_code == never.status_code == deleted.status_code == 403
    # Byte for byte the same once the id it names is the same.
    assert existing.content == deleted.content
    assert existing.content == never.content.replace(b"/op2'", b"/op1'")
    assert existing.headers.keys() == never.headers.keys() == deleted.headers.keys()


# -- tenant isolation ------------------------------------------------------------------------


async def test_operation_of_a_is_404_under_b_like_one_that_never_existed(
    client: httpx.AsyncClient, home: Path
) -> None:
    before_b = await client.get(status_path(sub=SUB_B))
    await create(client, home, sub=SUB_A)
    under_b = await client.get(status_path(sub=SUB_B))
    never = await client.get(status_path(sub=SUB_B, op_id="op2"))
    assert_arm_error(under_b, 404, "ResourceNotFound", target="operationId")
    assert under_b.content == before_b.content
    assert under_b.content == never.content.replace(b"'op2'", b"'op1'")
    assert under_b.headers.keys() == never.headers.keys()
    assert "etag" not in under_b.headers


async def test_patch_under_b_is_404_and_leaves_a_unchanged(
    client: httpx.AsyncClient, home: Path
) -> None:
    absent = await client.patch(status_path(sub=SUB_B), json={"status": "Succeeded"})
    await create(client, home, sub=SUB_A)
    before = await snapshot(client, home)
    for if_match in (None, "*", before[2]):
        headers = {"If-Match": if_match} if if_match else {}
        response = await client.patch(
            status_path(sub=SUB_B), json={"status": "Succeeded"}, headers=headers
        )
        assert_arm_error(response, 404, "ResourceNotFound", target="operationId")
        if if_match is None:
            assert response.content == absent.content
    assert await snapshot(client, home) == before


async def test_delete_under_b_answers_as_for_an_absent_operation_and_leaves_a(
    client: httpx.AsyncClient, home: Path
) -> None:
    absent = await client.delete(status_path(sub=SUB_B, op_id="op2"))
    assert absent.status_code == 204
    await create(client, home, sub=SUB_A)
    before = await snapshot(client, home)
    response = await client.delete(status_path(sub=SUB_B))
    assert response.status_code == absent.status_code
    assert response.content == absent.content == b""
    assert await snapshot(client, home) == before


async def test_put_of_the_same_id_under_b_is_a_separate_operation(
    client: httpx.AsyncClient, home: Path
) -> None:
    a = await create(client, home, sub=SUB_A)
    response = await client.put(status_path(sub=SUB_B), json={"status": "Succeeded"})
    assert response.status_code == 201, response.text
    assert response.json()["id"] == op_scope(sub=SUB_B)
    assert response.json()["status"] == "Succeeded"
    assert (await snapshot(client, home, sub=SUB_A))[1] == a


@pytest.mark.parametrize("sub", [SUB_A, SUB_B, str(uuid.uuid4())])
async def test_owner_of_root_acts_on_any_subscription(
    bare_client: httpx.AsyncClient, home: Path, sub: str
) -> None:
    owner = bearer(home, "Owner", "/")
    url = status_path(sub=sub)
    assert (await bare_client.put(url, headers=owner, json={})).status_code == 201
    assert (await bare_client.get(url, headers=owner)).status_code == 200
    patched = await bare_client.patch(url, headers=owner, json={"status": "Succeeded"})
    assert patched.status_code == 200
    assert patched.json()["status"] == "Succeeded"
    posted = await bare_client.post(collection_path(sub=sub), headers=owner, json={})
    assert posted.status_code == 201, posted.text
    assert (await bare_client.delete(url, headers=owner)).status_code == 200
    assert (await bare_client.get(url, headers=owner)).status_code == 404

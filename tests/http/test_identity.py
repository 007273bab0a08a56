"""Tokens of an external identity provider, verified against its JWKS.

The token matrix pins, for every kind of bad (and the good) credential, the exact status,
error code and WWW-Authenticate challenge. Missing scope is a 401
``InvalidAuthenticationToken`` (decided from the token alone, like the other 401s).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import jwt
import pytest

from opstatus.auth import OID, SUB, KeyRing, PrincipalId, RoleAssignment, TokenVerifier
from opstatus.auth.jwks import JwksSource
from opstatus.errors import NotAuthenticated
from opstatus.security import SecuritySettings
from opstatus.stores import MemoryStore, PostgreSQLStore, SQLiteStore
from opstatus.stores.base import Store
from tests.idp import AUDIENCE, ISSUER, ISSUER_B, IdentityProvider, jwk_of
from tests.support import SUB_A, SUB_B, app_client, bearer, status_path

from .conftest import assert_arm_error

pytestmark = pytest.mark.anyio


def of_idp(object_id: str, issuer: str = ISSUER, claim: str = OID) -> PrincipalId:
    return PrincipalId(issuer, claim, object_id)


AUTHORITY = "https://login.microsoftonline.com/common"


def challenge(description: str) -> str:
    return (
        f'Bearer authorization_uri="{AUTHORITY}", error="invalid_token", '
        f'error_description="{description}"'
    )


MISSING = "The authentication failed because of missing 'Authorization' header."
MALFORMED = "Authentication failed. The 'Authorization' header is provided in an invalid format."
INVALID = "The access token is invalid."
EXPIRED = "The access token has expired."
NOT_YET = "The access token is not yet valid."
WRONG_ISSUER = (
    "The access token is from the wrong issuer 'https://sts.elsewhere.example/'. It must match "
    f"one of the allowed issuers '{ISSUER}'."
)
WRONG_AUDIENCE = (
    "The access token has been obtained for wrong audience or resource "
    f"'https://management.azure.com/'. It should exactly match with one of the allowed "
    f"audiences '{AUDIENCE}','https://opstatus.contoso.example'."
)
NO_SCOPE = (
    "The access token does not grant the scope 'user_impersonation' that this API requires "
    "('scp' claim)."
)


@pytest.fixture(scope="session")
def idp(tmp_path_factory: pytest.TempPathFactory) -> IdentityProvider:
    return IdentityProvider(tmp_path_factory.mktemp("idp"))


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
async def provider_client(
    home: Path, idp: IdentityProvider, store: MemoryStore
) -> AsyncIterator[httpx.AsyncClient]:
    """The app trusting ``idp`` (two audiences); alice is Contributor of subscription A."""
    await store.assign_role(
        RoleAssignment("Contributor", f"/subscriptions/{SUB_A}", of_idp("alice"))
    )
    security = idp.security(audiences=(AUDIENCE, "https://opstatus.contoso.example"))
    async with app_client(home, store=store, security=security) as client:
        response = await client.put(status_path(), headers=bearer(home), json={})
        assert response.status_code == 201, response.text
        yield client


Case = tuple[Callable[[IdentityProvider], dict[str, str]], int, str, str | None]

MATRIX: dict[str, Case] = {
    "no-header": (lambda idp: {}, 401, "AuthenticationFailed", MISSING),
    "malformed-header": (
        lambda idp: {"Authorization": "Bearer"},
        401,
        "AuthenticationFailed",
        MALFORMED,
    ),
    "basic": (
        lambda idp: {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
        401,
        "AuthenticationFailed",
        MALFORMED,
    ),
    "expired": (
        lambda idp: bearer_of(idp.token(exp=int(time.time()) - 3600, nbf=None, iat=None)),
        401,
        "InvalidAuthenticationToken",
        EXPIRED,
    ),
    "future-nbf": (
        lambda idp: bearer_of(idp.token(nbf=int(time.time()) + 3600)),
        401,
        "InvalidAuthenticationToken",
        NOT_YET,
    ),
    "wrong-issuer": (
        lambda idp: bearer_of(idp.token(iss="https://sts.elsewhere.example/")),
        401,
        "InvalidAuthenticationToken",
        WRONG_ISSUER,
    ),
    "wrong-audience": (
        lambda idp: bearer_of(idp.token(aud="https://management.azure.com/")),
        401,
        "InvalidAuthenticationTokenAudience",
        WRONG_AUDIENCE,
    ),
    "wrong-key": (
        lambda idp: bearer_of(idp.token(key=idp.other_rsa_key)),
        401,
        "InvalidAuthenticationToken",
        INVALID,
    ),
    "alg-none": (
        lambda idp: bearer_of(idp.unsigned()),
        401,
        "InvalidAuthenticationToken",
        INVALID,
    ),
    "hs256-with-public-key": (
        lambda idp: bearer_of(idp.hs256_with_public_key()),
        401,
        "InvalidAuthenticationToken",
        INVALID,
    ),
    "missing-scope": (
        lambda idp: bearer_of(idp.token(scp=None)),
        401,
        "InvalidAuthenticationToken",
        NO_SCOPE,
    ),
    "valid": (lambda idp: bearer_of(idp.token()), 200, "", None),
}


def bearer_of(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("method", ["GET", "PATCH"])
@pytest.mark.parametrize("case", list(MATRIX))
async def test_token_matrix(
    provider_client: httpx.AsyncClient, idp: IdentityProvider, case: str, method: str
) -> None:
    headers_for, status, code, description = MATRIX[case]
    response = await provider_client.request(
        method, status_path(), headers=headers_for(idp), json={"percentComplete": 5}
    )
    if status == 200:
        assert response.status_code == 200, response.text
        assert "www-authenticate" not in response.headers
        return
    error = assert_arm_error(response, status, code)
    expected = challenge(description or error["message"])
    assert response.headers["www-authenticate"] == expected
    if code != "AuthenticationFailed":
        assert error["message"] == description


async def test_es256_tokens_are_accepted(
    provider_client: httpx.AsyncClient, idp: IdentityProvider
) -> None:
    response = await provider_client.get(status_path(), headers=bearer_of(idp.token(alg="ES256")))
    assert response.status_code == 200, response.text


async def test_es256_header_on_an_rsa_key_is_refused(
    provider_client: httpx.AsyncClient, idp: IdentityProvider
) -> None:
    forged = idp.token(alg="ES256", kid="rsa-1")
    response = await provider_client.get(status_path(), headers=bearer_of(forged))
    assert_arm_error(response, 401, "InvalidAuthenticationToken", message=INVALID)


async def test_scope_may_be_one_of_several(
    provider_client: httpx.AsyncClient, idp: IdentityProvider
) -> None:
    token = idp.token(scp="openid user_impersonation profile")
    assert (await provider_client.get(status_path(), headers=bearer_of(token))).status_code == 200
    listed = idp.token(scp=["user_impersonation"])
    assert (await provider_client.get(status_path(), headers=bearer_of(listed))).status_code == 200


async def test_provider_principal_is_oid_then_sub(
    provider_client: httpx.AsyncClient, idp: IdentityProvider, store: MemoryStore
) -> None:
    # No oid: the principal is sub, which holds no role yet.
    no_oid = idp.token("nobody", oid=None, sub="alice-sub-only", upn=None)
    denied = await provider_client.get(status_path(), headers=bearer_of(no_oid))
    error = assert_arm_error(denied, 403, "AuthorizationFailed")
    assert error["message"].startswith(
        "The client 'alice-sub-only' with object id 'alice-sub-only' does not have authorization"
    )
    await store.assign_role(RoleAssignment("Reader", "/", of_idp("alice-sub-only", claim=SUB)))
    allowed = await provider_client.get(status_path(), headers=bearer_of(no_oid))
    assert allowed.status_code == 200, allowed.text


async def test_role_changes_apply_on_the_next_request(
    provider_client: httpx.AsyncClient, idp: IdentityProvider, store: MemoryStore
) -> None:
    token = bearer_of(idp.token("bob"))
    assert (await provider_client.get(status_path(), headers=token)).status_code == 403
    reader = RoleAssignment("Reader", f"/subscriptions/{SUB_A}", of_idp("bob"))
    await store.assign_role(reader)
    assert (await provider_client.get(status_path(), headers=token)).status_code == 200
    assert (await provider_client.get(status_path(sub=SUB_B), headers=token)).status_code == 403
    await store.remove_role(reader)
    assert (await provider_client.get(status_path(), headers=token)).status_code == 403


async def test_roles_inside_a_provider_token_are_ignored(
    provider_client: httpx.AsyncClient, idp: IdentityProvider
) -> None:
    token = idp.token("mallory", roles=[{"role": "Owner", "scope": "/"}])
    response = await provider_client.get(status_path(), headers=bearer_of(token))
    assert_arm_error(response, 403, "AuthorizationFailed")


async def test_local_tokens_keep_working_beside_a_provider(
    provider_client: httpx.AsyncClient, home: Path
) -> None:
    response = await provider_client.get(status_path(), headers=bearer(home, "Reader"))
    assert response.status_code == 200, response.text


async def test_clock_skew_is_configurable(
    home: Path, idp: IdentityProvider, store: MemoryStore
) -> None:
    await store.assign_role(RoleAssignment("Reader", "/", of_idp("alice")))
    just_expired = bearer_of(idp.token(exp=int(time.time()) - 20, nbf=None, iat=None))
    for skew, status in ((30, 404), (5, 401)):
        async with app_client(home, store=store, security=idp.security(clock_skew=skew)) as client:
            response = await client.get(status_path(), headers=just_expired)
            assert response.status_code == status, (skew, response.text)


async def test_rs256_tokens_without_a_provider_are_invalid(
    home: Path, idp: IdentityProvider
) -> None:
    async with app_client(home, store=MemoryStore()) as client:
        response = await client.get(status_path(), headers=bearer_of(idp.token()))
        assert_arm_error(response, 401, "InvalidAuthenticationToken", message=INVALID)


# -- two providers: a principal is its issuer's, and an 'oid' is not a 'sub' ------------------


@pytest.fixture(scope="module")
def provider_b(tmp_path_factory: pytest.TempPathFactory) -> IdentityProvider:
    """Another provider. Its RSA key has the same kid as ``idp``'s (a different key); its
    EC key has a kid of its own."""
    b = IdentityProvider(tmp_path_factory.mktemp("idp-b"), ISSUER_B)
    b.keys[1]["kid"] = "ec-b"
    b.write_jwks()
    return b


@pytest.fixture(params=["sqlite", "postgresql"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """Makes stores on one database of the test's own."""
    if request.param == "sqlite":
        return functools.partial(SQLiteStore, tmp_path / "roles.db")
    return functools.partial(PostgreSQLStore, request.getfixturevalue("pg_url"))


VICTIM_B = RoleAssignment("Owner", "/", PrincipalId(ISSUER_B, OID, "victim"))


@pytest.fixture
async def two_providers(
    home: Path, idp: IdentityProvider, provider_b: IdentityProvider, make_store: Callable[[], Store]
) -> AsyncIterator[httpx.AsyncClient]:
    """The app trusting ``idp`` and ``provider_b``, each JWKS bound to its issuer; B's user
    ``victim`` is Owner of everything."""
    store = make_store()
    await store.migrate()
    await store.open()
    await store.assign_role(VICTIM_B)
    await store.close()
    security = SecuritySettings(
        jwks=(f"{ISSUER}={idp.jwks_path}", f"{ISSUER_B}={provider_b.jwks_path}"),
        audiences=(AUDIENCE,),
    )
    async with app_client(home, store=make_store(), security=security) as client:
        response = await client.put(status_path(), headers=bearer(home), json={})
        assert response.status_code == 201, response.text
        yield client


COLLISIONS: dict[str, tuple[Callable[[IdentityProvider, IdentityProvider], str], int]] = {
    # A's user whose oid is B's victim's.
    "same-oid-other-issuer": (lambda a, b: a.token("victim"), 403),
    # A's key, the token claiming B's issuer: with a kid B's JWKS also has (for another key),
    # and with a kid only A's JWKS has.
    "forged-iss-shared-kid": (lambda a, b: a.token("victim", iss=ISSUER_B), 401),
    "forged-iss-own-kid": (lambda a, b: a.token("victim", alg="ES256", iss=ISSUER_B), 401),
    # No oid, and a sub equal to the victim's oid: at B itself, and at A.
    "sub-is-victims-oid": (lambda a, b: b.token("x", oid=None, sub="victim"), 403),
    "sub-is-victims-oid-other-issuer": (lambda a, b: a.token("x", oid=None, sub="victim"), 403),
}


@pytest.mark.parametrize("case", list(COLLISIONS))
async def test_a_principal_of_one_provider_is_nobody_at_another(
    two_providers: httpx.AsyncClient,
    idp: IdentityProvider,
    provider_b: IdentityProvider,
    case: str,
) -> None:
    make_token, status = COLLISIONS[case]
    response = await two_providers.delete(
        status_path(), headers=bearer_of(make_token(idp, provider_b))
    )
    if status == 401:
        assert_arm_error(response, 401, "InvalidAuthenticationToken", message=INVALID)
    else:
        assert_arm_error(response, 403, "AuthorizationFailed")
    # The victim's own tokens still hold the role.
    for victim in (provider_b.token("victim"), provider_b.token("victim", alg="ES256", kid="ec-b")):
        answer = await two_providers.get(status_path(), headers=bearer_of(victim))
        assert answer.status_code == 200, answer.text


async def test_a_sub_principal_holds_only_what_was_assigned_to_its_sub(
    two_providers: httpx.AsyncClient, provider_b: IdentityProvider, make_store: Callable[[], Store]
) -> None:
    store = make_store()
    await store.open()
    await store.assign_role(RoleAssignment("Reader", "/", PrincipalId(ISSUER_B, SUB, "svc-7")))
    await store.close()
    no_oid = bearer_of(provider_b.token("x", oid=None, sub="svc-7"))
    assert (await two_providers.get(status_path(), headers=no_oid)).status_code == 200
    with_oid = bearer_of(provider_b.token("svc-7"))  # an oid 'svc-7' is someone else
    assert_arm_error(
        await two_providers.get(status_path(), headers=with_oid), 403, "AuthorizationFailed"
    )


@pytest.mark.parametrize("oid", ["v" * 1025, "vic\ttim", "victim\u200b"])
async def test_ids_are_compared_whole_and_unshortened(
    two_providers: httpx.AsyncClient, provider_b: IdentityProvider, oid: str
) -> None:
    """An id that could only be shown shortened or altered is refused, not matched loosely."""
    response = await two_providers.get(status_path(), headers=bearer_of(provider_b.token(oid)))
    assert_arm_error(response, 401, "InvalidAuthenticationToken", message=INVALID)


def test_each_jwks_is_bound_to_its_issuer(idp: IdentityProvider, tmp_path: Path) -> None:
    shared = str(idp.jwks_path)
    pairs = {
        (f"{ISSUER}={shared}", f"{ISSUER_B}={shared}"): [(ISSUER, shared), (ISSUER_B, shared)],
        (shared,): [(ISSUER, shared)],
    }
    for jwks, bindings in pairs.items():
        issuers = (ISSUER,) if len(jwks) == 1 else ()
        settings = SecuritySettings(jwks=jwks, issuers=issuers, audiences=(AUDIENCE,))
        settings.check()
        assert settings.bindings() == bindings
    # A query string's '=' is no binding: an OpenID issuer has no '?'.
    url = "https://login.contoso.example/keys?appid=1"
    assert SecuritySettings(jwks=(url,), issuers=(ISSUER,)).bindings() == [(ISSUER, url)]


@pytest.mark.parametrize(
    ("jwks", "issuers", "complaint"),
    [
        (("a.json", "b.json"), (ISSUER, ISSUER_B), "bind each to the issuer"),
        ((f"{ISSUER}=a.json", "b.json"), (), "bind every JWKS to its issuer"),
        ((f"{ISSUER}=a.json", f"{ISSUER}=b.json"), (), "to two JWKS"),
        ((f"{ISSUER}=a.json",), (ISSUER, ISSUER_B), "differ"),
        ((f"{ISSUER}=",), (), "give ISSUER=FILE_OR_URL"),
        (("a.json",), (), "needs at least one --issuer"),
    ],
)
def test_jwks_and_issuers_that_do_not_pair_up_are_refused(
    jwks: tuple[str, ...], issuers: tuple[str, ...], complaint: str
) -> None:
    settings = SecuritySettings(jwks=jwks, issuers=issuers, audiences=(AUDIENCE,))
    with pytest.raises(ValueError, match=complaint):
        settings.check()


# -- the key ring: rotation and refresh ------------------------------------------------------


def test_unknown_kid_rereads_a_changed_jwks_file(tmp_path: Path, idp: IdentityProvider) -> None:
    path = tmp_path / "rotating.json"
    path.write_text(json.dumps({"keys": [idp.keys[0]]}), encoding="utf-8")
    verifier = TokenVerifier(
        b"k" * 32, keys=KeyRing.from_bindings([(ISSUER, str(path))]), audiences=[AUDIENCE]
    )
    rotated = idp.token(kid="rsa-2", key=idp.other_rsa_key)
    with pytest.raises(NotAuthenticated):
        verifier.authenticate(f"Bearer {rotated}")
    new_key = jwk_of(idp.other_rsa_key.public_key(), "rsa-2", "RS256")
    path.write_text(json.dumps({"keys": [idp.keys[0], new_key]}), encoding="utf-8")
    assert verifier.authenticate(f"Bearer {rotated}").object_id == "alice"


class FakeUrlSource(JwksSource):
    """A URL source whose fetches are counted instead of sent."""

    def __init__(self, keys: list[dict[str, object]]) -> None:
        super().__init__("https://idp.contoso.example/keys", [ISSUER])
        self.served = keys
        self.fetches = 0

    def load(self):  # type: ignore[no-untyped-def]
        from opstatus.auth.jwks import _signing_keys

        self.fetches += 1
        return _signing_keys({"keys": self.served}, "test")


async def test_unknown_kids_refresh_a_url_at_most_once_per_interval(idp: IdentityProvider) -> None:
    now = [1000.0]
    source = FakeUrlSource([idp.keys[0]])
    ring = KeyRing([source], min_refresh=30.0, clock=lambda: now[0])
    verifier = TokenVerifier(b"k" * 32, keys=ring, audiences=[AUDIENCE])
    assert (await verifier.authenticate_async(f"Bearer {idp.token()}")).object_id == "alice"
    assert source.fetches == 1  # the first token loads the keys
    for i in range(5):  # made-up kids: refused, and no fetch storm
        with pytest.raises(NotAuthenticated):
            await verifier.authenticate_async(f"Bearer {idp.token(f'p{i}', kid=f'made-up-{i}')}")
    assert source.fetches == 1
    source.served = [idp.keys[0], jwk_of(idp.other_rsa_key.public_key(), "rsa-2", "RS256")]
    rotated = f"Bearer {idp.token('carol', kid='rsa-2', key=idp.other_rsa_key)}"
    now[0] += 31  # the interval passed: a new kid triggers one fetch and is found
    assert (await verifier.authenticate_async(rotated)).object_id == "carol"
    assert source.fetches == 2


def test_jwks_urls_must_use_https() -> None:
    with pytest.raises(ValueError, match="must use https"):
        JwksSource("http://idp.contoso.example/keys", [ISSUER])


def test_a_provider_needs_issuer_and_audience(idp: IdentityProvider) -> None:
    with pytest.raises(ValueError, match="--issuer"):
        idp.security(issuers=()).check()
    with pytest.raises(ValueError, match="--audience"):
        idp.security(audiences=()).check()


def test_symmetric_keys_in_a_jwks_are_not_used(tmp_path: Path) -> None:
    path = tmp_path / "oct.json"
    path.write_text(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "x"}]}))
    with pytest.raises(ValueError, match="no usable keys|no RS256 or ES256"):
        KeyRing.from_bindings([(ISSUER, str(path))])


def test_verified_tokens_are_cached(idp: IdentityProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(
        b"k" * 32,
        keys=KeyRing.from_bindings([(ISSUER, str(idp.jwks_path))]),
        audiences=[AUDIENCE],
    )
    token = f"Bearer {idp.token()}"
    first = verifier.authenticate(token)
    calls = []
    real = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert verifier.authenticate(token) is first
    assert calls == []

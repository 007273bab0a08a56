"""The one place that turns an ``Authorization`` header into a :class:`Principal`.

Two kinds of token are accepted, told apart by their algorithm:

- ``HS256``: minted locally with the key in the server's home; issuer and audience
  ``opstatus``; roles inside the token.
- ``RS256``/``ES256``: from an external identity provider, verified against the JWKS bound
  to the issuer the token claims (a key of another provider's JWKS never verifies it); the
  audience must be among the configured ones, ``scp`` must hold the required scope
  (``user_impersonation``), and the roles come from the store's role assignments, which
  name the principal by issuer and ``oid`` (else ``sub``, apart from the ``oid`` values).

Anything else (``alg: none``, an HS256 token signed with a provider's public key, an
RS256 token when no provider is configured) is invalid. Verified tokens are cached until
they expire, because the read path sees the same token thousands of times.

Missing scope is a 401 ``InvalidAuthenticationToken``, not a 403: it is decided from the
token alone, before the URL is looked at, and re-authenticating with the right scope is
what fixes it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import jwt

from ..errors import NotAuthenticated
from .jwks import ALGORITHMS, KeyRing
from .local import AUDIENCE, ISSUER, key_id
from .roles import OID, SUB, Principal, PrincipalId, RoleAssignment

_CACHE_LIMIT = 10_000
INVALID = "The access token is invalid."
#: The scope the ARM spec's OAuth2 flow names ("impersonate your user account").
DEFAULT_SCOPE = "user_impersonation"
#: The longest ``oid``/``sub`` accepted: ids are compared whole, never shortened.
MAX_ID_LENGTH = 1024


class KeysStale(Exception):
    """The token names a key the ring does not know (yet); refresh the keys and retry."""


def _shown(value: object) -> str:
    """A claim as an error message may show it: printable, bounded."""
    if isinstance(value, list):
        text = ",".join(str(v) for v in value)
    else:
        text = "" if value is None else str(value)
    return "".join(c if c.isprintable() else "?" for c in text[:200])


def _quoted(values: Sequence[str]) -> str:
    return ",".join(f"'{v}'" for v in values)


def _claim(claims: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _scopes(claims: dict[str, Any]) -> set[str]:
    value = claims.get("scp", claims.get("scope", ""))
    if isinstance(value, str):
        return set(value.split())
    if isinstance(value, list):
        return {v for v in value if isinstance(v, str)}
    return set()


def unknown_key_message(kid: str) -> str:
    """A local token signed with another home's key: name the key id it carries (an id,
    never the key), so the mismatch is found without guessing."""
    return (
        f"The access token is signed with the key '{_shown(kid)}', which this server does not "
        "know. Mint tokens with the server's own home folder (opstatus token --home, or "
        "OPSTATUS_HOME, as the server was started with)."
    )


def _locally_issued(token: str) -> bool:
    """Whether the (not yet verified) token claims to be an ``opstatus token``: only such a
    token is worth telling that its key is another home's."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return False
    return claims.get("iss") == ISSUER


class TokenVerifier:
    def __init__(
        self,
        key: bytes,
        leeway: float = 30.0,
        *,
        keys: KeyRing | None = None,
        audiences: Sequence[str] = (),
        required_scope: str = DEFAULT_SCOPE,
    ) -> None:
        if keys is not None and not (keys.issuers and audiences):
            raise ValueError("an external identity provider needs --issuer and --audience")
        self._key = key
        self._key_id = key_id(key)
        self._leeway = leeway
        self.keys = keys
        #: The issuers whose tokens are accepted, each with the keys bound to it.
        self.issuers = keys.issuers if keys is not None else ()
        self._issuer_set = frozenset(self.issuers)
        self.audiences = tuple(audiences)
        self.required_scope = required_scope
        self._cache: dict[str, Principal] = {}

    # -- entry points ----------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> Principal:
        """Verify; when a provider's keys need fetching, fetch them inline (blocking)."""
        token = self._token(authorization)
        cached = self._cached(token)
        if cached is not None:
            return cached
        try:
            principal = self._verify(token, allow_refresh=True)
        except KeysStale:
            assert self.keys is not None
            self.keys.refresh()
            principal = self._verify(token, allow_refresh=False)
        return self._remember(token, principal)

    async def authenticate_async(self, authorization: str | None) -> Principal:
        """As :meth:`authenticate`, but a key fetch runs off the event loop."""
        token = self._token(authorization)
        cached = self._cached(token)
        if cached is not None:
            return cached
        try:
            principal = self._verify(token, allow_refresh=True)
        except KeysStale:
            assert self.keys is not None
            await self.keys.refresh_async()
            principal = self._verify(token, allow_refresh=False)
        return self._remember(token, principal)

    def known(self, authorization: str) -> Principal | None:
        """The principal of a bearer token verified before and not expired; None when it
        would need verifying (or the header is not a bearer token). Never raises."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self._cached(token.strip())

    # -- steps -----------------------------------------------------------------------------

    @staticmethod
    def _token(authorization: str | None) -> str:
        if not authorization:
            raise NotAuthenticated(
                "Authentication failed. The 'Authorization' header is missing.",
                code="AuthenticationFailed",
                challenge="The authentication failed because of missing 'Authorization' header.",
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated(
                "Authentication failed. The 'Authorization' header is provided in an invalid "
                "format.",
                code="AuthenticationFailed",
            )
        return token

    def _cached(self, token: str) -> Principal | None:
        cached = self._cache.get(token)
        if cached is not None and cached.expires_at > time.time() - self._leeway:
            return cached
        return None

    def _remember(self, token: str, principal: Principal) -> Principal:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[token] = principal
        return principal

    def _verify(self, token: str, allow_refresh: bool) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise NotAuthenticated(INVALID) from None
        algorithm = header.get("alg")
        if algorithm == "HS256":
            kid = header.get("kid")
            if isinstance(kid, str) and kid != self._key_id and _locally_issued(token):
                raise NotAuthenticated(unknown_key_message(kid))
            return self._verify_local(token)
        if algorithm in ALGORITHMS and self.keys is not None:
            return self._verify_external(token, header, allow_refresh)
        raise NotAuthenticated(INVALID)

    def _decode(
        self,
        token: str,
        key: Any,
        algorithm: str,
        issuers: Sequence[str],
        audiences: Sequence[str],
    ) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=list(audiences),
                issuer=list(issuers),
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("The access token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise NotAuthenticated("The access token is not yet valid.") from None
        except jwt.InvalidIssuerError:
            # Only reached once the signature is verified, so the claims are the signer's.
            iss = _shown(jwt.decode(token, options={"verify_signature": False}).get("iss"))
            raise NotAuthenticated(
                f"The access token is from the wrong issuer '{iss}'. It must match one of the "
                f"allowed issuers {_quoted(issuers)}."
            ) from None
        except jwt.InvalidAudienceError:
            aud = _shown(jwt.decode(token, options={"verify_signature": False}).get("aud"))
            raise NotAuthenticated(
                f"The access token has been obtained for wrong audience or resource '{aud}'. "
                f"It should exactly match with one of the allowed audiences {_quoted(audiences)}.",
                code="InvalidAuthenticationTokenAudience",
            ) from None
        except jwt.InvalidTokenError:
            raise NotAuthenticated(INVALID) from None
        return claims

    def _verify_local(self, token: str) -> Principal:
        claims = self._decode(token, self._key, "HS256", (ISSUER,), (AUDIENCE,))
        roles = claims.get("roles")
        subject = claims.get("sub")
        if not isinstance(roles, list) or not isinstance(subject, str):
            raise NotAuthenticated(INVALID)
        holder = PrincipalId(ISSUER, OID, str(claims.get("oid", subject)))
        assignments = tuple(
            RoleAssignment(str(r.get("role")), str(r.get("scope")), holder)
            for r in roles
            if isinstance(r, dict)
        )
        return Principal(
            subject=subject,
            object_id=holder.value,
            roles=assignments,
            expires_at=float(claims["exp"]),
        )

    def _verify_external(
        self, token: str, header: dict[str, Any], allow_refresh: bool
    ) -> Principal:
        assert self.keys is not None
        issuer = self._claimed_issuer(token)
        key = self.keys.find(header.get("kid"), issuer)
        if (key is None or self.keys.is_old()) and allow_refresh and self.keys.may_refresh():
            raise KeysStale()
        if key is None or key.algorithm_name != header["alg"]:
            raise NotAuthenticated(INVALID)
        issuers = (issuer,) if issuer is not None else self.issuers
        claims = self._decode(token, key.key, header["alg"], issuers, self.audiences)
        oid = _claim(claims, OID)
        object_id, claim = (oid, OID) if oid is not None else (_claim(claims, SUB), SUB)
        if object_id is None or len(object_id) > MAX_ID_LENGTH or not object_id.isprintable():
            raise NotAuthenticated(INVALID)
        if self.required_scope and self.required_scope not in _scopes(claims):
            raise NotAuthenticated(
                f"The access token does not grant the scope '{self.required_scope}' that this "
                "API requires ('scp' claim)."
            )
        return Principal(
            subject=_shown(_claim(claims, "upn", "unique_name", "appid", "sub") or object_id),
            object_id=object_id,
            roles=(),
            expires_at=float(claims["exp"]),
            issuer=str(claims["iss"]),
            external=True,
            claim=claim,
        )

    def _claimed_issuer(self, token: str) -> str | None:
        """The configured issuer the (not yet verified) token claims, whose keys alone may
        verify it; None for any other claim, which is then refused as the wrong issuer."""
        try:
            claimed = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.InvalidTokenError:
            raise NotAuthenticated(INVALID) from None
        return claimed if isinstance(claimed, str) and claimed in self._issuer_set else None

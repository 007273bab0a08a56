"""Bearer tokens and roles.

opstatus mints its own tokens: HS256 JWTs signed with a key created in the server's home on
first start (mode 0600). A token names its subject and its role assignments, as ARM's RBAC
does: a role (Reader, Contributor, Owner) over a scope (``/subscriptions/<guid>``, or ``/``
for every subscription). Verified tokens are cached until they expire, because the read path
sees the same token thousands of times.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jwt

from .errors import NotAuthenticated, NotAuthorized

Role = Literal["Reader", "Contributor", "Owner"]
Action = Literal["read", "write", "admin"]
ROLES: tuple[Role, ...] = ("Reader", "Contributor", "Owner")
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "Reader": frozenset({"read"}),
    "Contributor": frozenset({"read", "write"}),
    "Owner": frozenset({"read", "write", "admin"}),
}
ISSUER = "opstatus"
AUDIENCE = "opstatus"
KEY_FILE = "signing.key"
_CACHE_LIMIT = 10_000


@dataclass(frozen=True)
class RoleAssignment:
    role: str
    scope: str

    def covers(self, subscription_id: str, action: str) -> bool:
        if action not in ROLE_ACTIONS.get(self.role, frozenset()):
            return False
        return self.scope == "/" or self.scope.lower() == f"/subscriptions/{subscription_id}"


@dataclass(frozen=True)
class Principal:
    subject: str
    object_id: str
    roles: tuple[RoleAssignment, ...]
    expires_at: float

    def can(self, action: str, subscription_id: str) -> bool:
        return any(r.covers(subscription_id, action) for r in self.roles)


def normalize_scope(scope: str) -> str:
    """Accept ``/`` or ``/subscriptions/<guid>``; the GUID is lower-cased."""
    from .models import validate_subscription_id

    if scope == "/":
        return scope
    parts = scope.strip("/").split("/")
    if len(parts) != 2 or parts[0].lower() != "subscriptions":
        raise ValueError(f"scope must be '/' or '/subscriptions/<guid>', got {scope!r}")
    return f"/subscriptions/{validate_subscription_id(parts[1])}"


def load_or_create_key(home: Path) -> bytes:
    """The signing key lives in the home folder, readable by its owner only."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_key(home)
    with os.fdopen(fd, "w") as f:
        f.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode() + "\n")
        f.flush()
        os.fsync(f.fileno())
    return load_key(home)


def load_key(home: Path) -> bytes:
    text = (home / KEY_FILE).read_text().strip()
    return base64.urlsafe_b64decode(text)


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def mint_token(
    key: bytes,
    subject: str,
    roles: list[tuple[str, str]],
    expires_in: int = 3600,
    object_id: str | None = None,
) -> str:
    """A signed token for ``subject`` holding ``(role, scope)`` assignments."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "oid": object_id or subject,
        "iat": now,
        "nbf": now,
        "exp": now + expires_in,
        "roles": [{"role": role, "scope": normalize_scope(scope)} for role, scope in roles],
    }
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": key_id(key)})


class TokenVerifier:
    def __init__(self, key: bytes, leeway: float = 30.0) -> None:
        self._key = key
        self._leeway = leeway
        self._cache: dict[str, Principal] = {}

    def authenticate(self, authorization: str | None) -> Principal:
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
        cached = self._cache.get(token)
        if cached is not None and cached.expires_at > time.time() - self._leeway:
            return cached
        principal = self._verify(token)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[token] = principal
        return principal

    def _verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=self._leeway,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("The access token has expired.") from None
        except jwt.InvalidTokenError:
            raise NotAuthenticated("The access token is invalid.") from None
        roles = claims.get("roles")
        if not isinstance(roles, list):
            raise NotAuthenticated("The access token is invalid.")
        assignments = tuple(
            RoleAssignment(str(r.get("role")), str(r.get("scope")))
            for r in roles
            if isinstance(r, dict)
        )
        return Principal(
            subject=str(claims["sub"]),
            object_id=str(claims.get("oid", claims["sub"])),
            roles=assignments,
            expires_at=float(claims["exp"]),
        )


def authorize(
    principal: Principal, action: str, subscription_id: str, scope: str, arm_action: str
) -> None:
    """Raise ARM's 403 unless a role allows ``action``; the message never depends on data."""
    if not principal.can(action, subscription_id):
        raise NotAuthorized(
            f"The client '{principal.subject}' with object id '{principal.object_id}' does not "
            f"have authorization to perform action '{arm_action}' over scope '{scope}' or the "
            "scope is invalid. If access was recently granted, please refresh your credentials."
        )

"""An azure-core ``TokenCredential`` of an opstatus token, for the Azure SDK's clients.

azure-core asks a credential for ``get_token(*scopes)`` and reads ``token`` and
``expires_on`` of the answer; it needs no base class, so opstatus does not depend on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jwt


class AccessToken(NamedTuple):
    """What ``get_token`` answers, field for field azure-core's own ``AccessToken``."""

    token: str
    expires_on: int


class BearerTokenCredential:
    """A credential whose token is an opstatus bearer token (``opstatus token``, or a
    callable returning a current one). The scopes the SDK asks for are not checked: the
    server decides what the token grants."""

    def __init__(self, token: str | Callable[[], str]) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        value = self._token() if callable(self._token) else self._token
        return AccessToken(value, _expiry(value))

    def close(self) -> None:
        """azure-core closes credentials with their client; there is nothing to close."""


def _expiry(token: str) -> int:
    """The token's ``exp`` as its issuer wrote it, or five minutes from now when it has
    none readable (the SDK then asks again in time)."""
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.InvalidTokenError:
        exp = None
    return int(exp) if isinstance(exp, int | float) else int(time.time()) + 300

"""Bearer tokens, identity providers and roles.

- :mod:`.roles`: roles, role assignments, :class:`Principal` and :func:`authorize` (ARM's 403).
- :mod:`.local`: tokens minted with the key in the server's home (HS256).
- :mod:`.jwks`: the signing keys of external identity providers (JWKS files or URLs).
- :mod:`.verifier`: :class:`TokenVerifier`, the one place a header becomes a Principal.
"""

from __future__ import annotations

from .jwks import KeyRing
from .local import (
    AUDIENCE,
    ISSUER,
    KEY_FILE,
    check_private_file,
    key_id,
    load_key,
    load_or_create_key,
    mint_token,
)
from .roles import (
    CLAIMS,
    OID,
    ROLE_ACTIONS,
    ROLES,
    SUB,
    UNBOUND,
    Action,
    Principal,
    PrincipalId,
    Role,
    RoleAssignment,
    authorize,
    canonical_role,
    normalize_scope,
)
from .verifier import DEFAULT_SCOPE, TokenVerifier

__all__ = [
    "AUDIENCE",
    "CLAIMS",
    "DEFAULT_SCOPE",
    "ISSUER",
    "KEY_FILE",
    "OID",
    "ROLES",
    "ROLE_ACTIONS",
    "SUB",
    "UNBOUND",
    "Action",
    "KeyRing",
    "Principal",
    "PrincipalId",
    "Role",
    "RoleAssignment",
    "TokenVerifier",
    "authorize",
    "canonical_role",
    "check_private_file",
    "key_id",
    "load_key",
    "load_or_create_key",
    "mint_token",
    "normalize_scope",
]

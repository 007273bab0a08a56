"""Locally minted tokens: HS256 JWTs signed with a key kept in the server's home.

The key is created on first start, readable by its owner only (mode 0600), and a server
refuses to start when a key file it uses is readable by anyone else (see
:func:`check_private_file`). A local token names its subject and carries its role
assignments, so it needs no lookup on the read path.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
import time
from pathlib import Path
from typing import Any

import jwt

from .roles import LOCAL_ISSUER, normalize_scope

ISSUER = LOCAL_ISSUER
AUDIENCE = "opstatus"
KEY_FILE = "signing.key"


def load_or_create_key(home: Path) -> bytes:
    """The signing key lives in the home folder, readable by its owner only."""
    if not home.exists():
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
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


def check_private_file(path: Path, what: str) -> None:
    """Refuse a secret file that its group or others may read or write (as ssh does)."""
    mode = path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionError(
            f"{what} {path} is accessible by others (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )


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

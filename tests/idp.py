"""A stand-in external identity provider: its keys, its JWKS file and the tokens it issues.

Keys are generated per test session (RSA 2048 for RS256, P-256 for ES256); nothing is
fetched. Two providers (``issuer``) use the same ``kid`` values for different keys, as
unrelated providers may. ``hs256_with_public_key`` forges the classic HS/RS confusion
token by hand, since PyJWT rightly refuses to HMAC with a PEM key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from opstatus.security import SecuritySettings

ISSUER = "https://login.contoso.example/7f3c0d1e-0000-4000-8000-000000000001/v2.0"
#: A second provider's issuer, for the tests of principals that two providers both name.
ISSUER_B = "https://idp.fabrikam.example/realms/staff"
AUDIENCE = "api://opstatus"
SCOPE = "user_impersonation"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_of(public_key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if alg == "RS256" else ECAlgorithm
    jwk: dict[str, Any] = algorithm.to_jwk(public_key, as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", "alg": alg}


class IdentityProvider:
    def __init__(self, folder: Path, issuer: str = ISSUER) -> None:
        self.folder = folder
        self.issuer = issuer
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        self.other_rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwks_path = folder / "jwks.json"
        self.keys = [
            jwk_of(self.rsa_key.public_key(), "rsa-1", "RS256"),
            jwk_of(self.ec_key.public_key(), "ec-1", "ES256"),
        ]
        self.write_jwks()

    def write_jwks(self) -> None:
        self.jwks_path.write_text(json.dumps({"keys": self.keys}), encoding="utf-8")

    def security(self, **overrides: Any) -> SecuritySettings:
        """Settings for a server that trusts this provider."""
        values: dict[str, Any] = {
            "jwks": (str(self.jwks_path),),
            "issuers": (self.issuer,),
            "audiences": (AUDIENCE,),
        }
        values.update(overrides)
        return SecuritySettings(**values)

    def claims(self, principal: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": f"sub-{principal}",
            "oid": principal,
            "upn": f"{principal}@contoso.example",
            "scp": SCOPE,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self,
        principal: str = "alice",
        *,
        alg: str = "RS256",
        kid: str | None = None,
        key: Any = None,
        **overrides: Any,
    ) -> str:
        if key is None:
            key = self.rsa_key if alg == "RS256" else self.ec_key
        if kid is None:
            kid = "rsa-1" if alg == "RS256" else "ec-1"
        return jwt.encode(
            self.claims(principal, **overrides), key, algorithm=alg, headers={"kid": kid}
        )

    def public_pem(self) -> bytes:
        return self.rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def hs256_with_public_key(self, principal: str = "alice") -> str:
        """The HS/RS confusion attack: HMAC-SHA256 keyed with the provider's public key."""
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
        payload = _b64(json.dumps(self.claims(principal)).encode())
        signing_input = f"{header}.{payload}".encode()
        signature = hmac.new(self.public_pem(), signing_input, hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"

    def unsigned(self, principal: str = "alice") -> str:
        """``alg: none``."""
        return jwt.encode(self.claims(principal), None, algorithm="none", headers={"kid": "rsa-1"})

"""Security settings: identity providers, TLS, limits and audit; one dataclass.

Every field has a ``serve`` flag and an ``OPSTATUS_*`` variable (see ``cli_security``).
Where each limit is enforced:

- request rate per principal, body size, body read time, long-poll waiters: the app's
  guard middleware (``http/guard.py``), answering in ARM's error envelope;
- request head size, and every connection's timers (head, body, idle keep-alive, TLS
  handshake, a client that stops reading): the HTTP protocol (``server/protocol.py``),
  before the app sees the request;
- the number of connections: uvicorn (``limit_concurrency``).
- who may read ``/metrics`` (``metrics_token``): its handler (``http/operability.py``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from .auth import KEY_FILE, KeyRing, TokenVerifier, check_private_file, load_or_create_key
from .auth.verifier import DEFAULT_SCOPE


@dataclass
class SecuritySettings:
    #: JWKS files or HTTPS URLs of external identity providers, each bound to the issuer
    #: whose tokens its keys sign: ``ISSUER=LOCATION``, or a lone ``LOCATION`` bound to
    #: every ``issuers`` value (see :meth:`bindings`).
    jwks: tuple[str, ...] = ()
    #: Accepted ``iss`` values of external tokens.
    issuers: tuple[str, ...] = ()
    #: Accepted ``aud`` values of external tokens.
    audiences: tuple[str, ...] = ()
    #: The scope an external token's ``scp`` must hold; empty: not checked.
    required_scope: str = DEFAULT_SCOPE
    #: Seconds of clock difference tolerated on ``exp``, ``nbf`` and ``iat``.
    clock_skew: int = 30
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: Requests per second each principal (or, unauthenticated, each client address) may
    #: make on average; 0 turns the limit off.
    rate_limit: float = 100.0
    #: How many requests a principal may make at once above the average.
    rate_burst: int = 200
    #: A request over the limit gets its 429 after about this many seconds (jittered 0.5x
    #: to 1.5x), so a flood costs the server little; at most ``max_held_rejections`` are
    #: held at once, the others are answered at once.
    reject_delay: float = 0.5
    max_held_rejections: int = 256
    #: Largest request line plus headers, in bytes (431 beyond).
    max_header_bytes: int = 16 * 1024
    #: Seconds a client may take to send a request's line and headers (408 beyond).
    header_timeout: float = 10.0
    #: Seconds a client may take to send a request's body (408 beyond).
    body_timeout: float = 30.0
    #: Seconds an idle keep-alive connection stays open.
    keep_alive_timeout: int = 5
    #: Open connections (and requests in progress) the server accepts; 503 beyond.
    max_connections: int = 1000
    #: Long-poll requests (``Prefer: wait``) waiting at once, in all and per principal;
    #: beyond, a request is answered at once, without waiting.
    max_waiters: int = 1000
    max_waiters_per_principal: int = 100
    #: Where audit lines go; default: standard error.
    audit_log: Path | None = None
    #: The bearer token ``GET /metrics`` requires; None: the metrics are open to anyone.
    metrics_token: str | None = None

    @property
    def external_identity(self) -> bool:
        return bool(self.jwks)

    def bindings(self) -> list[tuple[str, str]]:
        """``(issuer, JWKS location)``: whose tokens each JWKS's keys may verify.

        ``--jwks ISSUER=LOCATION`` binds a JWKS to an issuer (repeat it for an issuer that
        shares a JWKS with another). A single ``--jwks LOCATION`` is bound to every
        ``--issuer``; several must each be bound, so that no provider's key can vouch for
        another provider's users. An entry is a binding when what precedes its first ``=``
        has no ``?`` or ``#`` (an OpenID issuer has neither), so a JWKS URL with a query
        string is given bound. With bindings, ``--issuer`` may be left out; given, it must
        name exactly the bound issuers. Raises ValueError naming the mistake.
        """
        bound: list[tuple[str, str]] = []
        plain: list[str] = []
        for entry in self.jwks:
            issuer, sep, location = entry.partition("=")
            if sep and not any(c in issuer for c in "?#"):
                if not issuer or not location:
                    raise ValueError(f"--jwks {entry!r}: give ISSUER=FILE_OR_URL")
                bound.append((issuer, location))
            else:
                plain.append(entry)
        if bound and plain:
            raise ValueError(
                "--jwks: bind every JWKS to its issuer (ISSUER=FILE_OR_URL), or give one JWKS "
                "and its --issuer values"
            )
        if len(plain) > 1:
            raise ValueError(
                "several --jwks: bind each to the issuer whose tokens its keys sign, as "
                "--jwks ISSUER=FILE_OR_URL"
            )
        if plain:
            return [(issuer, plain[0]) for issuer in dict.fromkeys(self.issuers)]
        location_of: dict[str, str] = {}
        for issuer, location in bound:
            if location_of.setdefault(issuer, location) != location:
                raise ValueError(f"--jwks binds issuer {issuer!r} to two JWKS")
        if self.issuers and set(self.issuers) != set(location_of):
            extra = sorted(set(self.issuers) ^ set(location_of))
            raise ValueError(
                f"--issuer and the issuers --jwks binds differ ({', '.join(extra)}); with "
                "--jwks ISSUER=FILE_OR_URL, --issuer may be left out"
            )
        return list(location_of.items())

    def check(self) -> None:
        """Raise ValueError naming the setting when a combination cannot work."""
        if self.jwks and not (self.bindings() and self.audiences):
            raise ValueError("--jwks needs at least one --issuer and one --audience")
        if (self.issuers or self.audiences) and not self.jwks:
            raise ValueError("--issuer and --audience apply to tokens checked with --jwks")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.rate_limit < 0 or self.rate_burst < 1:
            raise ValueError("--rate-limit must be >= 0 and --rate-burst >= 1")
        token = self.metrics_token
        if token is not None and not (token and all("!" <= c <= "~" for c in token)):
            raise ValueError("--metrics-token must be printable ASCII without spaces")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; the only addresses safe without TLS."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def build_verifier(security: SecuritySettings, home: Path) -> TokenVerifier:
    """The server's token verifier: its local key, plus the configured identity providers."""
    security.check()
    key = load_or_create_key(home)
    check_private_file(home / KEY_FILE, "The signing key")
    return TokenVerifier(
        key,
        leeway=security.clock_skew,
        keys=KeyRing.from_bindings(security.bindings()) if security.jwks else None,
        audiences=security.audiences,
        required_scope=security.required_scope,
    )

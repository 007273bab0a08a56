"""Webhooks in the Standard Webhooks format: subscriptions, callbacks, deliveries and their
retry rules, and the signature. Pure: no I/O (sending is :mod:`opstatus.webhook_sender`'s).

Two kinds of endpoint receive an operation's events:

- its **callback**, a URL its creator gave (``callbackUrl``, maybe ``callbackEvents``),
  signed with the server's callback secret (``--webhook-secret``);
- every **webhook subscription** whose scope covers it: a subscription, maybe narrowed to a
  provider, a location and event types, each with a secret of its own, shown once.

Each event becomes one :class:`Delivery` per endpoint, in the store (the outbox), with a
``webhook-id`` that every retry repeats, so receivers can drop duplicates. Deliveries to one
endpoint for one operation go in order: the next waits until the one before is delivered or
has failed for good.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import random
import secrets
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from .errors import InvalidInput
from .events import Event, EventScope

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
DeliveryState = Literal["pending", "delivered", "failed"]
#: The ``webhook_id`` of deliveries to an operation's callback.
CALLBACK = "callback"
SECRET_PREFIX = "whsec_"
MAX_URL_CHARS = 2048


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes them: ``whsec_`` and base64 of 32 bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_webhook_id() -> str:
    return "wh_" + secrets.token_hex(12)


def check_secret(secret: str, target: str = "secret") -> str:
    """A ``whsec_`` secret whose key decodes, at least 24 bytes of it."""
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        key = b""
    if not secret.startswith(SECRET_PREFIX) or len(key) < 24:
        raise InvalidInput(
            f"'{target}' must be 'whsec_' and the base64 of at least 24 random bytes.",
            target=target,
        )
    return secret


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` under ``secret``."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def check_url(url: object, allow_http: bool, target: str = "url") -> str:
    """An absolute http(s) URL with a host, https unless ``allow_http``. Where it points is
    checked again at every send (:mod:`.webhook_sender`): names may resolve differently."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise InvalidInput(f"'{target}' must be a URL of at most {MAX_URL_CHARS} characters.",
                           target=target)  # fmt: skip
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput(f"'{target}' must be an absolute https URL.", target=target)
    if parts.scheme == "http" and not allow_http:
        raise InvalidInput(
            f"'{target}' must use https; this server does not send webhooks over plain http.",
            target=target,
        )
    if parts.username or parts.password or parts.fragment or port == 0:
        raise InvalidInput(
            f"'{target}' must not carry credentials, a fragment or port 0.", target=target
        )
    return url


def address_allowed(
    address: str, allowed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    """Whether a webhook may be sent to ``address``: a public address, or one an allowlist
    names. Private, loopback, link-local, multicast and reserved ones are refused otherwise:
    a webhook must not reach into the server's own network."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in network for network in allowed):
        return True
    return ip.is_global and not ip.is_multicast


def parse_networks(
    values: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``--webhook-allow-network`` values (``127.0.0.0/8``, ``::1``); ValueError names a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"--webhook-allow-network: not a network: {value!r}") from None
    return tuple(networks)


@dataclass(frozen=True, slots=True)
class Callback:
    """Where an operation's creator wants its events, and which (None: all)."""

    url: str
    event_types: frozenset[str] | None = None

    def wants(self, event: Event) -> bool:
        return self.event_types is None or event.type in self.event_types


@dataclass(frozen=True, slots=True)
class Webhook:
    """A webhook subscription. ``previous_secret`` still signs until ``previous_until``
    (a rotation's overlap), so receivers can switch secrets without dropping a delivery."""

    id: str
    subscription_id: str
    url: str
    secret: str
    created_at: str
    namespace: str | None = None
    location: str | None = None
    event_types: frozenset[str] | None = None
    previous_secret: str | None = None
    previous_until: str | None = None

    @property
    def scope(self) -> EventScope:
        return EventScope(
            self.subscription_id, self.namespace, self.location, types=self.event_types
        )

    def secrets(self, now: str) -> tuple[str, ...]:
        """The secrets a delivery is signed with now (both during an overlap)."""
        if self.previous_secret and self.previous_until and now < self.previous_until:
            return (self.secret, self.previous_secret)
        return (self.secret,)

    def shown(self, with_secret: bool = False) -> dict[str, object]:
        """As the API shows it; the secret only when just created or rotated."""
        body: dict[str, object] = {
            "id": self.id,
            "subscriptionId": self.subscription_id,
            "url": self.url,
            "provider": self.namespace,
            "location": self.location,
            "events": sorted(self.event_types) if self.event_types else None,
            "createdAt": self.created_at,
            "previousSecretValidUntil": self.previous_until,
        }
        if with_secret:
            body["secret"] = self.secret
        return {key: value for key, value in body.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event to one endpoint: the outbox row, and what became of it."""

    id: int
    message_id: str
    webhook_id: str
    subscription_id: str
    operation_key: str
    event_id: str
    event_type: str
    url: str
    payload: str
    state: str
    attempts: int
    next_attempt_at: str
    last_attempt_at: str | None
    last_status: int | None
    last_error: str | None
    created_at: str

    def shown(self) -> dict[str, object]:
        body: dict[str, object] = {
            "id": str(self.id),
            "webhookId": self.message_id,
            "endpoint": "callback" if self.webhook_id == CALLBACK else self.webhook_id,
            "url": self.url,
            "eventId": self.event_id,
            "eventType": f"operation.{self.event_type}",
            "state": self.state,
            "attempts": self.attempts,
            "lastAttemptAt": self.last_attempt_at,
            "lastHttpStatus": self.last_status,
            "lastError": self.last_error,
            "nextAttemptAt": self.next_attempt_at if self.state == PENDING else None,
            "createdAt": self.created_at,
        }
        return {key: value for key, value in body.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to: an HTTP status (2xx: delivered) or an error."""

    status: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter (each wait between half and all of ``base * 2^n``,
    at most ``max_seconds``), up to ``max_attempts`` tries in all."""

    base_seconds: float = 1.0
    max_seconds: float = 600.0
    max_attempts: int = 12

    def delay(self, attempts: int) -> float | None:
        """Seconds until the next try after ``attempts`` tries, or None: the budget is spent."""
        if attempts >= self.max_attempts:
            return None
        ceiling = min(self.max_seconds, self.base_seconds * 2.0 ** (attempts - 1))
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))


def message_id(event: Event, webhook_id: str) -> str:
    """The ``webhook-id`` of an event's delivery to one endpoint: the same on every try."""
    return f"msg_{event.position}_{webhook_id}"

"""Sending one webhook: where it may go, signed, bounded in time and size.

Outbound safety: the URL's host is resolved at every send and each address checked
(:func:`opstatus.webhooks.address_allowed`): private, loopback and link-local targets are
refused unless an allowlist names them; the connection then goes to a checked address.
Redirects are not followed (a 3xx is a failed attempt), each attempt has one time limit for
connecting, sending and reading, and at most ``max_response_bytes`` of the answer are read.
Connections are kept alive between sends to the same origin (:mod:`.webhook_http`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from urllib.parse import quote, urlsplit

from .webhook_http import AnswerError, Origin, Pool
from .webhooks import Outcome, address_allowed, signature

MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "opstatus-webhooks"
#: What a request target keeps unescaped: RFC 3986's reserved and unreserved characters, and
#: escapes already made.
_SAFE = "%:/?#[]@!$&'()*+,;=-._~"

Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


class Refused(Exception):
    """The URL points where webhooks may not go."""


class Sender:
    def __init__(
        self,
        allowed_networks: Networks = (),
        allow_http: bool = False,
        timeout: float = 10.0,
        max_connections: int = 64,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.allowed_networks = allowed_networks
        self.allow_http = allow_http
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.pool = Pool(max_connections, max_response_bytes)

    async def close(self) -> None:
        self.pool.close()

    async def check_target(self, url: str) -> Origin:
        """Raise Refused unless ``url`` may be sent to now (scheme, and every address its
        host resolves to); where to connect."""
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and self.allow_http):
            raise Refused(f"only https URLs may receive webhooks, not {parts.scheme}")
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:  # an address needs no resolver (nor its thread)
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except OSError as exc:
                raise Refused(f"the host {host!r} could not be resolved: {exc}") from None
            addresses = [str(info[4][0]) for info in infos]
        if not addresses:
            raise Refused(f"the host {host!r} resolves to no address")
        for address in addresses:
            if not address_allowed(address, self.allowed_networks):
                raise Refused(
                    f"{host} resolves to {address}, a private, loopback or link-local address "
                    "that is not allowed (--webhook-allow-network)"
                )
        return Origin(parts.scheme, host, port, addresses[0])

    async def send(
        self, url: str, message_id: str, body: bytes, secrets: tuple[str, ...]
    ) -> Outcome:
        """One attempt; never raises for the receiver's or the network's failures."""
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    origin = await self.check_target(url)
                except Refused as exc:
                    return Outcome(error=f"refused: {exc}")
                request = _request(url, origin, message_id, body, secrets)
                answer = await self.pool.post(origin, request)
        except TimeoutError:
            return Outcome(error=f"no answer within {self.timeout:g} seconds")
        except (OSError, AnswerError) as exc:  # ssl's errors are OSErrors too
            return Outcome(error=f"{type(exc).__name__}: {exc}"[:500])
        status = answer.status
        if 300 <= status < 400:
            return Outcome(status, "redirects are not followed")
        return Outcome(status, None if 200 <= status < 300 else f"HTTP {status}")


def _request(
    url: str, origin: Origin, message_id: str, body: bytes, secrets: tuple[str, ...]
) -> bytes:
    """The POST, head and body, signed with every secret (Standard Webhooks' headers)."""
    parts = urlsplit(url)
    # As a client would send them: spaces, controls and other bytes outside URLs escaped.
    target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), _SAFE)
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    if origin.port != (443 if origin.scheme == "https" else 80):
        host = f"{host}:{origin.port}"
    timestamp = int(time.time())
    signatures = " ".join(signature(s, message_id, timestamp, body) for s in secrets)
    head = (
        f"POST {target} HTTP/1.1\r\nhost: {host}\r\nwebhook-id: {message_id}\r\n"
        f"webhook-timestamp: {timestamp}\r\nwebhook-signature: {signatures}\r\n"
        f"content-type: application/json\r\nuser-agent: {USER_AGENT}\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body

"""Sending one webhook: where it may go, signed, bounded in time and size.

Outbound safety: the URL's host is resolved at every send and each address checked
(:func:`opstatus.webhooks.address_allowed`): private, loopback and link-local targets are
refused unless an allowlist names them. Redirects are not followed (a 3xx is a failed
attempt), each attempt has one time limit for connecting, sending and reading, and at most
``max_response_bytes`` of the answer are read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from urllib.parse import urlsplit

import httpx

from .webhooks import Outcome, address_allowed, signature

MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "opstatus-webhooks"

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
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: the checks are about the target
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def check_target(self, url: str) -> None:
        """Raise Refused unless ``url`` may be sent to now (scheme, and every address its
        host resolves to)."""
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and self.allow_http):
            raise Refused(f"only https URLs may receive webhooks, not {parts.scheme}")
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise Refused(f"the host {host!r} could not be resolved: {exc}") from None
        for info in infos:
            address = str(info[4][0])
            if not address_allowed(address, self.allowed_networks):
                raise Refused(
                    f"{host} resolves to {address}, a private, loopback or link-local address "
                    "that is not allowed (--webhook-allow-network)"
                )

    async def send(
        self, url: str, message_id: str, body: bytes, secrets: tuple[str, ...]
    ) -> Outcome:
        """One attempt; never raises for the receiver's or the network's failures."""
        try:
            await self.check_target(url)
        except Refused as exc:
            return Outcome(error=f"refused: {exc}")
        timestamp = int(time.time())
        headers = {
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(
                signature(s, message_id, timestamp, body) for s in secrets
            ),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        try:
            async with asyncio.timeout(self.timeout):
                async with self._client.stream(
                    "POST", url, content=body, headers=headers
                ) as answer:
                    read = 0
                    async for chunk in answer.aiter_raw():
                        read += len(chunk)
                        if read >= self.max_response_bytes:
                            break
                    status = answer.status_code
        except TimeoutError:
            return Outcome(error=f"no answer within {self.timeout:g} seconds")
        except httpx.HTTPError as exc:
            return Outcome(error=f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__)
        if 300 <= status < 400:
            return Outcome(status, "redirects are not followed")
        return Outcome(status, None if 200 <= status < 300 else f"HTTP {status}")

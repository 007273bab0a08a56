"""Which ``Host`` a request may name.

The server's absolute links (``Azure-AsyncOperation``, ``Location``, ``nextLink``, the
trailing-slash redirect) start with ``--public-url`` when it is set, else with the request's
own scheme and Host. A Host the server does not answer for would make links that lead
elsewhere, and a shared cache in front would hand them to other clients; so a request
naming another Host is refused (400 ``HostNotAllowed``) before anything reads it.

Which names are allowed:

- ``--allowed-hosts`` when given: ``name`` (any port), ``name:port``, ``*.example.com``
  (any name under example.com, not example.com itself; ``*.example.com:443`` on that port),
  IPv6 addresses in brackets (``[::1]:8080``), or ``*`` for any Host at all;
- else, without ``--public-url``: the address the connection reached (for a server bound to
  one address, that address) and ``localhost``, ``127.0.0.1`` and ``[::1]``, with its port;
- else (``--public-url`` set, no ``--allowed-hosts``): any Host, since no link is made from it.

A request without Host (HTTP/1.0) is allowed: its links name the server's own address.
Liveness, readiness, metrics and this API's document make no links and are answered
whatever the Host, since orchestrators probe them by address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

HOST_NOT_ALLOWED = "HostNotAllowed"
HOST_MESSAGE = (
    "The request's Host header names a host this server does not answer for. Use the "
    "server's address, or a name its --allowed-hosts lists."
)
#: Paths answered whatever the Host (see the module docstring).
ANY_HOST_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?|\[[0-9a-f:.]+\]")
#: Distinct (Host, connection) pairs whose verdict is kept, so that a hot read decides once.
_KEPT = 1024


def split_host(text: str, wildcard: bool = False) -> tuple[str, int | None] | None:
    """``(name, port)`` of ``name[:port]`` (lowercase, without a final dot; IPv6 in
    brackets), None if malformed. ``wildcard``: the name may start with ``*.``."""
    text = text.strip().lower()
    star = "*." if wildcard and text.startswith("*.") else ""
    text = text.removeprefix(star)
    if text.startswith("["):
        name, bracket, rest = text.partition("]")
        name += bracket
        port_text = rest.removeprefix(":") if rest.startswith(":") else rest or None
    else:
        name, colon, port_text_ = text.partition(":")
        port_text = port_text_ if colon else None
    if not _NAME.fullmatch(name):
        return None
    name = star + name.rstrip(".")
    if port_text is None:
        return name, None
    if not port_text.isdigit() or len(port_text) > 5 or int(port_text) > 65535:
        return None
    return name, int(port_text)


class AllowedHosts:
    """The Host check: :meth:`allows` a request's scope or not."""

    def __init__(self, patterns: Sequence[str] | None, public_url: str | None) -> None:
        """``patterns``: ``--allowed-hosts`` (None: not given). ValueError names a bad one."""
        self.any = (patterns is None and public_url is not None) or "*" in (patterns or ())
        self.defaults = patterns is None and not self.any
        self.exact: set[tuple[str, int | None]] = set()
        self.suffixes: list[tuple[str, int | None]] = []
        for pattern in patterns or ():
            if pattern == "*":
                continue
            parsed = split_host(pattern, wildcard=True)
            if parsed is None:
                raise ValueError(
                    f"--allowed-hosts: {pattern!r} is not a host name, an address, "
                    "name:port, *.domain or *"
                )
            name, port = parsed
            if name.startswith("*."):
                self.suffixes.append((name[1:], port))
            else:
                self.exact.add((name, port))
        self._kept: dict[tuple[Any, ...], bool] = {}

    def allows(self, scope: Any) -> bool:
        """Whether the request may be answered with the Host it names (see the module)."""
        if self.any or scope["path"] in ANY_HOST_PATHS:
            return True
        host = _host_header(scope["headers"])
        if host is None:
            return True
        key = (host, scope.get("scheme"), scope.get("server"))
        verdict = self._kept.get(key)
        if verdict is None:
            verdict = self._decide(host, key[1], key[2])
            if len(self._kept) >= _KEPT:
                self._kept.clear()
            self._kept[key] = verdict
        return verdict

    def _decide(self, host: bytes, scheme: str | None, server: Any) -> bool:
        parsed = split_host(host.decode("latin-1"))
        if parsed is None:
            return False
        name, port = parsed
        if port is None:
            port = _DEFAULT_PORTS.get(scheme or "http", 80)
        if self.defaults:
            return (name, port) in set(_defaults(scheme, server))
        if (name, port) in self.exact or (name, None) in self.exact:
            return True
        return any(
            name.endswith(suffix) and wanted in (None, port) for suffix, wanted in self.suffixes
        )


def _host_header(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == b"host":
            return value
    return None


def _defaults(scheme: str | None, server: Any) -> Iterable[tuple[str, int]]:
    """The loopback names and the address the connection reached, with its port."""
    address, port = (None, None) if not server else (server[0], server[1])
    if port is None:
        port = _DEFAULT_PORTS.get(scheme or "http", 80)
    for name in _LOOPBACK_NAMES:
        yield name, port
    if isinstance(address, str):
        yield (f"[{address.lower()}]" if ":" in address else address.lower()), port

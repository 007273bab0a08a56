"""The signing keys of external identity providers, from JWKS files or HTTPS URLs.

Every JWKS document is bound to the issuers it signs for (``--jwks ISSUER=LOCATION``, or
one JWKS and its ``--issuer`` values): a key of one provider never verifies a token that
claims another provider's ``iss``, even when both use the same ``kid``. Keys are looked up
by the token's issuer and ``kid``. An unknown ``kid`` (a provider rotated its
keys) re-reads the sources: a file whenever it changed on disk, a URL at most once every
``min_refresh`` seconds, so a caller sending made-up ``kid`` values cannot make the server
hammer the provider. A URL's keys are also re-fetched once they are ``max_age`` old. When a
fetch fails the keys already known stay in use. Only RS256 and ES256 signing keys are kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

log = logging.getLogger("opstatus.auth")

#: The algorithms external tokens may use; everything else (none, HS*, ...) is refused.
ALGORITHMS = ("RS256", "ES256")


def describe(location: str) -> str:
    """A source as logs and errors show it: no credentials or query string from a URL."""
    if "://" not in location:
        return location
    parts = urllib.parse.urlsplit(location)
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}"


def _signing_keys(data: Any, origin: str) -> list[PyJWK]:
    if not isinstance(data, dict):
        raise ValueError(f"JWKS {origin} is not a JSON object with 'keys'")
    try:
        key_set = PyJWKSet.from_dict(data)
    except jwt.PyJWTError as exc:
        raise ValueError(f"JWKS {origin} has no usable keys: {exc}") from None
    keys = [
        k
        for k in key_set.keys
        if k.algorithm_name in ALGORITHMS and k.public_key_use in (None, "sig")
    ]
    if not keys:
        raise ValueError(f"JWKS {origin} has no RS256 or ES256 signing key")
    return keys


class JwksSource:
    """One JWKS document: a local file, or an HTTPS URL fetched with certificate checks;
    its keys sign the tokens of ``issuers`` and of no one else."""

    def __init__(
        self,
        location: str,
        issuers: Sequence[str],
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 5.0,
    ) -> None:
        if not issuers:
            raise ValueError(f"JWKS {describe(location)} is bound to no issuer")
        self.location = location
        self.issuers = tuple(issuers)
        self.is_url = "://" in location
        if self.is_url:
            if not location.lower().startswith("https://"):
                raise ValueError(f"--jwks: a JWKS URL must use https, got {describe(location)}")
            self._client = PyJWKClient(
                location, cache_jwk_set=False, timeout=timeout, ssl_context=ssl_context
            )
        self._mtime: float | None = None

    def changed_on_disk(self) -> bool:
        if self.is_url:
            return False
        try:
            return Path(self.location).stat().st_mtime != self._mtime
        except OSError:
            return False

    def load(self) -> list[PyJWK]:
        """Read or fetch the keys; blocking. Raises ValueError naming the source."""
        origin = describe(self.location)
        if self.is_url:
            try:
                data = self._client.fetch_data()
            except jwt.PyJWTError as exc:
                raise ValueError(f"JWKS {origin} could not be fetched: {exc}") from None
            return _signing_keys(data, origin)
        path = Path(self.location)
        try:
            mtime = path.stat().st_mtime
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"JWKS file {origin} could not be read: {exc}") from None
        keys = _signing_keys(data, origin)
        self._mtime = mtime
        return keys


class KeyRing:
    """Every configured provider's signing keys, by issuer and ``kid``."""

    def __init__(
        self,
        sources: Sequence[JwksSource],
        min_refresh: float = 30.0,
        max_age: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sources = list(sources)
        #: Every issuer some source is bound to, in the order configured.
        self.issuers = tuple(dict.fromkeys(i for s in self.sources for i in s.issuers))
        self.min_refresh = min_refresh
        self.max_age = max_age
        self._clock = clock
        self._keys: dict[int, list[PyJWK]] = {}
        self._of_issuer: dict[str, list[PyJWK]] = {}
        self._by_kid: dict[tuple[str | None, str], PyJWK] = {}
        self._loaded_at = clock()
        self._last_attempt = float("-inf")
        self._lock: asyncio.Lock | None = None

    @classmethod
    def from_bindings(
        cls, bindings: Sequence[tuple[str, str]], ssl_context: ssl.SSLContext | None = None
    ) -> KeyRing:
        """A ring of ``(issuer, location)`` pairs; a location bound to several issuers is
        read once. Files must load now (a bad file is a configuration error); URLs load
        lazily."""
        issuers_of: dict[str, list[str]] = {}
        for issuer, location in bindings:
            issuers_of.setdefault(location, []).append(issuer)
        ring = cls([JwksSource(loc, issuers, ssl_context) for loc, issuers in issuers_of.items()])
        for index, source in enumerate(ring.sources):
            if not source.is_url:
                ring._keys[index] = source.load()
        ring._index()
        return ring

    def _index(self) -> None:
        of_issuer: dict[str, list[PyJWK]] = {}
        by_kid: dict[tuple[str | None, str], PyJWK] = {}
        for index, keys in sorted(self._keys.items()):
            issuers = self.sources[index].issuers
            for issuer in issuers:
                of_issuer.setdefault(issuer, []).extend(keys)
            for key in keys:
                if key.key_id is not None:
                    for bound in (*issuers, None):  # None: any issuer's
                        by_kid.setdefault((bound, key.key_id), key)
        self._of_issuer = of_issuer
        self._by_kid = by_kid

    def find(self, kid: object, issuer: str | None) -> PyJWK | None:
        """The key ``kid`` of a source bound to ``issuer``; ``issuer`` None looks in every
        source (for a token of an unknown issuer: verified, it is then told so)."""
        if isinstance(kid, str):
            key = self._by_kid.get((issuer, kid))
            if key is None and self._reload_changed_files():
                key = self._by_kid.get((issuer, kid))
            return key
        if kid is None:
            if issuer is None:
                every = [k for keys in self._keys.values() for k in keys]
            else:
                every = self._of_issuer.get(issuer, [])
            return every[0] if len(every) == 1 else None
        return None

    def _reload_changed_files(self) -> bool:
        changed = False
        for index, source in enumerate(self.sources):
            if source.changed_on_disk():
                try:
                    self._keys[index] = source.load()
                    changed = True
                except ValueError as exc:
                    log.warning("%s; keeping the keys already known", exc)
        if changed:
            self._index()
        return changed

    @property
    def has_urls(self) -> bool:
        return any(s.is_url for s in self.sources)

    def is_old(self) -> bool:
        return self.has_urls and self._clock() - self._loaded_at > self.max_age

    def may_refresh(self) -> bool:
        return self.has_urls and self._clock() - self._last_attempt >= self.min_refresh

    def refresh(self) -> None:
        """Fetch every URL source again; blocking. Failures keep the previous keys."""
        self._last_attempt = self._clock()
        for index, source in enumerate(self.sources):
            if not source.is_url:
                continue
            try:
                self._keys[index] = source.load()
            except ValueError as exc:
                log.warning("%s; keeping the keys already known", exc)
        self._loaded_at = self._clock()
        self._index()

    async def refresh_async(self) -> None:
        """Refresh off the event loop; concurrent callers share one fetch."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        attempt = self._last_attempt
        async with self._lock:
            if self._last_attempt != attempt:
                return  # another request refreshed while this one waited
            await asyncio.to_thread(self.refresh)

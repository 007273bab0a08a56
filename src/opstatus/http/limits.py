"""Per-caller limits: a token bucket per principal, and slots for long-poll waiters.

Both are per server process (per instance); they protect the process, not a global quota.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from ..security import SecuritySettings

#: Buckets kept before idle (full) ones are dropped.
MAX_BUCKETS = 100_000
#: Set in a request's ASGI state when its token was spent before the guard saw it (by the
#: status read lanes, which admit it): the guard does not charge it twice.
CHARGED = "opstatus.rate_charged"


class RateLimiter:
    """``rate`` requests per second on average, ``burst`` at once, per key."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        # key -> [tokens, time of last update]; a list, so one lookup updates in place.
        self._buckets: dict[str, list[float]] = {}

    @classmethod
    def from_settings(cls, security: SecuritySettings) -> RateLimiter | None:
        """The limiter ``--rate-limit`` and ``--rate-burst`` ask for; None when it is 0 (off)."""
        if security.rate_limit <= 0:
            return None
        return cls(security.rate_limit, security.rate_burst)

    def take(self, key: str) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until one is available."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._prune(now)
            self._buckets[key] = [self.burst - 1.0, now]
            return 0.0
        tokens = bucket[0] + (now - bucket[1]) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled: they behave exactly like new ones."""
        full = [
            key
            for key, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= MAX_BUCKETS:
            self._buckets.clear()


class WaiterSlots:
    """Bounds long-poll waiters, in all and per principal.

    A handler that would wait (``Prefer: wait``) asks for a slot; without one it answers
    at once instead of waiting, which RFC 7240 allows, so the limit never fails a request::

        with ctx.waiters.slot(principal.key) as granted:
            if granted:
                ...  # wait for a change, then answer
    """

    def __init__(self, limit: int = 1000, per_principal: int = 100) -> None:
        self.limit = limit
        self.per_principal = per_principal
        self.waiting = 0
        self._by_principal: dict[str, int] = {}

    def acquire(self, principal_key: str) -> bool:
        held = self._by_principal.get(principal_key, 0)
        if self.waiting >= self.limit or held >= self.per_principal:
            return False
        self.waiting += 1
        self._by_principal[principal_key] = held + 1
        return True

    def release(self, principal_key: str) -> None:
        self.waiting -= 1
        held = self._by_principal[principal_key] - 1
        if held:
            self._by_principal[principal_key] = held
        else:
            del self._by_principal[principal_key]

    @contextlib.contextmanager
    def slot(self, principal_key: str) -> Iterator[bool]:
        granted = self.acquire(principal_key)
        try:
            yield granted
        finally:
            if granted:
                self.release(principal_key)

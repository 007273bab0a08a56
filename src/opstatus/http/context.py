"""What the handlers share for the life of the app: built by ``opstatus.server.wiring``, the
store opened and closed by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..auth import TokenVerifier
from ..event_tail import EventTail
from ..metrics import Metrics
from ..providers import ProviderRegistry
from ..service import OperationService
from ..settings import Settings
from ..stores.base import Store
from ..webhook_sender import Sender
from .hosts import AllowedHosts
from .limits import RateLimiter, WaiterSlots
from .sse import encode


@dataclass
class AppContext:
    settings: Settings
    store: Store
    service: OperationService
    verifier: TokenVerifier
    providers: ProviderRegistry
    #: Signs continuation tokens (derived from the server's signing key).
    paging_key: bytes
    #: Long-poll waiters (Prefer: wait) ask here for a slot; see limits.WaiterSlots.
    waiters: WaiterSlots = field(default_factory=WaiterSlots)
    #: Requests per second per caller (the guard, and the fast reads); None: no limit.
    limiter: RateLimiter | None = None
    #: The app's own registry; the store is instrumented into it (metrics.instrument).
    metrics: Metrics = field(default_factory=Metrics)
    #: The Host names answered (the guard, and the fast reads).
    hosts: AllowedHosts = field(default_factory=lambda: AllowedHosts(None, None))
    #: Sends webhooks, and checks their URLs' targets (see webhook_sender.py).
    sender: Sender | None = None
    #: Server-Sent Events streams open at once, in all and per principal (http/streams.py).
    streams: WaiterSlots = field(default_factory=lambda: WaiterSlots(10_000, 1_000))
    #: The process's one reader of the event log, feeding every stream (event_tail.py).
    tail: EventTail = field(init=False)

    def __post_init__(self) -> None:
        self.tail = EventTail(self.store, encode)

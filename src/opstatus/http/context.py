"""What the handlers share for the life of the app, opened and closed by its lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..auth import TokenVerifier
from ..providers import ProviderRegistry
from ..service import OperationService
from ..settings import Settings
from ..stores.base import Store
from ..webhook_sender import Sender
from .limits import RateLimiter, WaiterSlots


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
    #: Requests per second per caller (the guard, and the inline status reads); None: no limit.
    limiter: RateLimiter | None = None
    #: Sends webhooks, and checks their URLs' targets (see webhook_sender.py).
    sender: Sender | None = None

"""Server settings: one dataclass; every field has a flag and an ``OPSTATUS_*`` variable."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .lifecycle import DAY, LifecyclePolicy
from .security import SecuritySettings


def default_home() -> Path:
    """The per-user data folder (XDG), unless OPSTATUS_HOME says otherwise."""
    if os.environ.get("OPSTATUS_HOME"):
        return Path(os.environ["OPSTATUS_HOME"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "opstatus"


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*\Z")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, setting: str) -> float:
    """Seconds from ``90``, ``90s``, ``15m``, ``24h`` or ``7d``; errors name the setting."""
    match = _DURATION.match(text.lower())
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else math.nan
    if not math.isfinite(seconds):
        raise ValueError(
            f"{setting}: expected a duration such as 90s, 15m, 24h or 7d, got {text!r}"
        )
    return seconds


@dataclass
class Settings:
    home: Path
    store_url: str = ""
    providers_file: Path | None = None
    #: Seconds clients are told to wait between polls of a running operation.
    retry_after: int = 10
    #: Longest a status GET may be held by ``Prefer: wait=N``; 0 turns waiting off.
    max_wait: int = 60
    #: Largest request body accepted; larger ones get 413.
    max_body_bytes: int = 256 * 1024
    #: Base URL for absolute links (Azure-AsyncOperation); default: from the request's Host.
    public_url: str | None = None
    #: The Host names a request may name (see http/hosts.py); None: the server's own
    #: address and loopback names, or any with ``public_url``.
    allowed_hosts: tuple[str, ...] | None = None
    #: Identity providers, TLS, limits and audit (see security.py).
    security: SecuritySettings = field(default_factory=SecuritySettings)
    #: Seconds a terminal operation stays readable, per status (at least a day).
    retain_succeeded: float = 7 * DAY
    retain_failed: float = 30 * DAY
    retain_canceled: float = 7 * DAY
    #: Seconds a removed operation still reads as "expired" rather than "not found".
    tombstone_seconds: float = 30 * DAY
    #: The lease of an operation whose producer names none (0: no lease).
    default_lease_seconds: float = DAY
    #: Seconds after a lease lapses before the operation is Failed with ProducerLost.
    lease_grace_seconds: float = 300.0
    #: Seconds between background sweeps (0: none); and how much one batch handles.
    maintenance_interval: float = 60.0
    maintenance_batch: int = 100
    #: List pages: the size when the caller names none, and the most the server returns.
    default_page_size: int = 100
    max_page_size: int = 1000
    #: Answer status reads without the middleware stack (``http/fast_reads.py``), in the
    #: server's protocol where the running uvicorn allows it; off: every request goes
    #: through the ordinary app, with identical answers.
    fast_reads: bool = True
    #: The access log (``http/access.py``): None: off; ``-``: standard error; else a file.
    #: With it on, the fast reads are off, so that every status read is logged.
    access_log: str | None = None
    #: The dashboard at ``/ui/`` (``http/ui.py``): static files only; its data comes from
    #: the API, under the same guard as any other client's.
    ui: bool = True
    #: Progress events kept per operation in the event log (the newest; see events.py).
    progress_events_kept: int = 100
    #: Server-Sent Events streams (http/streams.py): how many may be open at once, in all
    #: and per principal; seconds of silence before a heartbeat comment; events queued
    #: per stream before it is too far behind and ends (its client resumes from the log).
    max_streams: int = 10_000
    max_streams_per_principal: int = 1_000
    stream_heartbeat: float = 15.0
    stream_queue: int = 1_000
    #: Webhooks (webhooks.py): the secret that signs operations' callbacks (default: made
    #: once, kept in the home folder), whether plain http URLs are allowed, and the networks
    #: of private addresses that may receive them.
    webhook_secret: str = ""
    webhook_allow_http: bool = False
    webhook_allow_networks: tuple[str, ...] = ()
    #: Seconds one attempt may take; tries in all; the first and the longest retry delay.
    webhook_timeout: float = 10.0
    webhook_max_attempts: int = 12
    webhook_retry_base: float = 1.0
    webhook_retry_max: float = 600.0
    #: Sends in flight at once, per server process (0: this process sends none).
    webhook_concurrency: int = 64
    #: Seconds finished deliveries stay listed.
    webhook_history_seconds: float = 7 * DAY

    def lifecycle_policy(self) -> LifecyclePolicy:
        """The retention and lease rules; ValueError names a bad setting."""
        return LifecyclePolicy(
            retain_succeeded=self.retain_succeeded,
            retain_failed=self.retain_failed,
            retain_canceled=self.retain_canceled,
            tombstone_seconds=self.tombstone_seconds,
            default_lease_seconds=self.default_lease_seconds or None,
            lease_grace_seconds=self.lease_grace_seconds,
        )

    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{self.home / 'opstatus.db'}"

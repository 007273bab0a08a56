"""Server settings: one dataclass; every field has a flag and an ``OPSTATUS_*`` variable."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .security import SecuritySettings


def default_home() -> Path:
    """The per-user data folder (XDG), unless OPSTATUS_HOME says otherwise."""
    if os.environ.get("OPSTATUS_HOME"):
        return Path(os.environ["OPSTATUS_HOME"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "opstatus"


@dataclass
class Settings:
    home: Path
    store_url: str = ""
    providers_file: Path | None = None
    #: Seconds clients are told to wait between polls of a running operation.
    retry_after: int = 10
    #: Largest request body accepted; larger ones get 413.
    max_body_bytes: int = 256 * 1024
    #: Base URL for absolute links (Azure-AsyncOperation); default: from the request's Host.
    public_url: str | None = None
    #: Identity providers, TLS, limits and audit (see security.py).
    security: SecuritySettings = field(default_factory=SecuritySettings)

    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{self.home / 'opstatus.db'}"

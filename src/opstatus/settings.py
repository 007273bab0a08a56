"""Server settings: one dataclass; every field has a flag and an ``OPSTATUS_*`` variable."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


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
    #: Longest a status GET may be held by ``Prefer: wait=N``; 0 turns waiting off.
    max_wait: int = 60
    #: Largest request body accepted; larger ones get 413.
    max_body_bytes: int = 256 * 1024
    #: Base URL for absolute links (Azure-AsyncOperation); default: from the request's Host.
    public_url: str | None = None

    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{self.home / 'opstatus.db'}"

"""Stores, chosen by URL: ``memory:``, ``sqlite:///path/to/file.db`` (the default)."""

from __future__ import annotations

from pathlib import Path

from .base import Store
from .memory import MemoryStore
from .sqlite import SQLiteStore


def open_store(url: str) -> Store:
    """Build (not yet open) the store a URL names; errors name the bad value."""
    if url == "memory:":
        return MemoryStore()
    if url.startswith("sqlite:///"):
        return SQLiteStore(Path(url.removeprefix("sqlite:///")))
    if url.startswith("sqlite://"):
        raise ValueError(f"OPSTATUS_STORE: write sqlite URLs as sqlite:///PATH, got {url!r}")
    raise ValueError(
        f"OPSTATUS_STORE: unsupported store URL {url!r}; use 'memory:' or 'sqlite:///PATH'"
    )


__all__ = ["MemoryStore", "SQLiteStore", "Store", "open_store"]

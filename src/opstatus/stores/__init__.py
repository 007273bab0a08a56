"""Stores, chosen by URL: ``memory:``, ``sqlite:///path/to/file.db`` (the default),
``postgresql://user@host:5432/dbname`` (or ``postgres://``; any libpq URL asyncpg accepts)."""

from __future__ import annotations

from pathlib import Path

from .base import Store
from .memory import MemoryStore
from .migrations import redact
from .postgresql import PostgreSQLStore
from .sqlite import SQLiteStore


def open_store(url: str) -> Store:
    """Build (not yet open) the store a URL names; errors name the bad value."""
    if url == "memory:":
        return MemoryStore()
    if url.startswith("sqlite:///"):
        return SQLiteStore(Path(url.removeprefix("sqlite:///")))
    if url.startswith("sqlite://"):
        raise ValueError(f"write sqlite store URLs as sqlite:///PATH, got {url!r}")
    if url.startswith(("postgresql://", "postgres://")):
        return PostgreSQLStore(url)
    raise ValueError(
        f"unsupported store URL {redact(url)!r}; use 'memory:', "
        "'sqlite:///PATH' or 'postgresql://USER@HOST:PORT/DATABASE'"
    )


__all__ = ["MemoryStore", "PostgreSQLStore", "SQLiteStore", "Store", "open_store"]

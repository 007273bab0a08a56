"""The stores a benchmark can seed and point the servers at: an SQLite file, or a throwaway
PostgreSQL database. Either way the same operations, read by the same wrk script."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.common import seed_sqlite
from bench.pg import seed_postgres, throwaway_database

KINDS = ("sqlite", "postgres")


@dataclass(frozen=True)
class Seeded:
    """A store holding ``count`` operations, and how each server reaches it."""

    kind: str
    count: int
    #: What ``opstatus serve --store`` takes.
    url: str
    #: BENCH_DB_URL and BENCH_DB_TABLE of the hand-written baseline (SQLAlchemy, sync driver).
    sqlalchemy_url: str
    table: str
    seed_seconds: float


@contextmanager
def seeded(kind: str, home: Path, count: int, dsn: str, name: str) -> Iterator[Seeded]:
    """Seed a store named ``name`` with ``count`` operations; remove it after, also on error.

    SQLite: ``home``/``name``.db. PostgreSQL: a throwaway database next to ``dsn``'s.
    """
    with ExitStack() as cleanup:
        if kind == "sqlite":
            path = home / f"{name}.db"
            cleanup.callback(remove_sqlite, path)
            started = time.monotonic()
            seed_sqlite(path, count)
            url, sqlalchemy_url, table = f"sqlite:///{path}", f"sqlite:///{path}", "operations"
        elif kind == "postgres":
            url = cleanup.enter_context(throwaway_database(dsn, name, home))
            started = time.monotonic()  # the seed alone, not the making of the database
            seed_postgres(url, count)
            sqlalchemy_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
            table = "opstatus_operations"
        else:
            raise ValueError(f"no store kind {kind!r}: {', '.join(KINDS)}")
        yield Seeded(kind, count, url, sqlalchemy_url, table, time.monotonic() - started)


def remove_sqlite(path: Path) -> None:
    """An SQLite database file and the files SQLite keeps beside it."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)

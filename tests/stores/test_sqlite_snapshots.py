"""Shared read transactions (stores/sqlite_snapshots.py): never staler than a read of its own.

"Another process" here is another connection to the same file, which is what SQLite sees of
another process; a commit through it rewrites the WAL-index header like any commit.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from opstatus.models import SUCCEEDED, OperationStatus
from opstatus.stores.sqlite import READ_MAP_BYTES, SQLiteStore
from tests.stores.test_contract import SUB_A, make_op

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "db.sqlite")
    await s.open()
    for i in range(3):
        await s.create(make_op(f"op-{i}"))
    yield s
    await s.close()


def other_process(store: SQLiteStore) -> sqlite3.Connection:
    conn = sqlite3.connect(store.path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def status(store: SQLiteStore, key: str) -> OperationStatus | None:
    """The status of ``key`` in subscription A, read as the fast lane reads it."""
    return store.statuses_now([(SUB_A, key)]).get((SUB_A, key))


def statements_of(store: SQLiteStore) -> list[str]:
    seen: list[str] = []
    assert store._reader is not None
    store._reader.set_trace_callback(seen.append)
    return seen


async def test_reads_in_one_turn_share_one_transaction(store: SQLiteStore) -> None:
    seen = statements_of(store)
    for _ in range(3):  # no await between: one turn of the loop
        for i in range(3):
            assert status(store, f"op-{i}") is not None
    assert seen.count("BEGIN") == 1
    assert store._reader is not None and store._reader.in_transaction
    await asyncio.sleep(0)  # the turn ends: so does the transaction
    assert not store._reader.in_transaction
    assert seen.count("COMMIT") == 1


async def test_a_commit_elsewhere_is_seen_by_the_next_read_in_the_same_turn(
    store: SQLiteStore,
) -> None:
    other = other_process(store)
    assert status(store, "op-1").status == "InProgress"  # type: ignore[union-attr]
    other.execute("UPDATE operations SET status = ? WHERE operation_key = 'op-1'", (SUCCEEDED,))
    assert status(store, "op-1").status == SUCCEEDED  # type: ignore[union-attr]
    other.execute("DELETE FROM operations WHERE operation_key = 'op-2'")
    assert status(store, "op-2") is None
    await store.update(SUB_A, "op-0", lambda op: op.evolve(status=SUCCEEDED, etag="e2"))
    assert status(store, "op-0").status == SUCCEEDED  # type: ignore[union-attr]
    other.close()


async def test_an_idle_server_holds_no_snapshot_back(store: SQLiteStore) -> None:
    other = other_process(store)
    for i in range(50):
        other.execute(
            "UPDATE operations SET percent_complete = ? WHERE operation_key = 'op-1'", (i,)
        )
        status(store, "op-1")
    await asyncio.sleep(0)
    busy, log_frames, checkpointed = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0 and log_frames == checkpointed == 0  # the WAL could be emptied
    other.close()


def test_without_an_event_loop_each_read_is_its_own(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    asyncio.run(store.open())
    asyncio.run(store.create(make_op("op-1")))
    assert status(store, "op-1") is not None
    assert store._reader is not None and not store._reader.in_transaction
    asyncio.run(store.close())


async def test_reads_through_the_map_see_a_file_grown_and_checkpointed_elsewhere(
    store: SQLiteStore,
) -> None:
    """The read connection maps the file (READ_MAP_BYTES); rows another process wrote and
    checkpointed into the file, growing it past what was mapped, are read all the same."""
    assert store._reader is not None
    mapped = store._reader.execute("PRAGMA mmap_size").fetchone()[0]
    assert mapped == READ_MAP_BYTES
    assert status(store, "op-0") is not None  # the map is made, at the old size
    size_before = Path(store.path).stat().st_size
    other = other_process(store)
    row = other.execute("SELECT * FROM operations WHERE operation_key = 'op-0'").fetchone()
    other.execute("BEGIN")
    for i in range(3, 2003):
        other.execute(
            f"INSERT INTO operations VALUES ({', '.join('?' * len(row))})",
            (SUB_A, f"op-{i}", f"op-{i}", *row[3:]),
        )
    other.execute("COMMIT")
    other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert Path(store.path).stat().st_size > size_before
    assert all(status(store, f"op-{i}") is not None for i in range(2003))
    await asyncio.sleep(0)
    assert status(store, "op-2002").operation_id == "op-2002"  # type: ignore[union-attr]
    other.close()


#: SQLite's "dead man switch" lock byte in the -shm file (UNIX_SHM_DMS in os_unix.c): every
#: process with the database open holds a shared lock on it; one that can lock it exclusively
#: takes itself for the only user and truncates the -shm file.
_SHM_DMS_BYTE = 128

_TRY_DMS = """
import fcntl, sys
with open(sys.argv[1], "r+b") as f:
    try:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, int(sys.argv[2]))
    except OSError:
        print("held")
    else:
        print("free")
"""


async def test_the_store_keeps_sqlites_locks_on_the_wal_index(store: SQLiteStore) -> None:
    """Mapping the -shm file must not drop SQLite's locks on it (closing any descriptor of
    a file drops all the process's locks on it): else another process opening the database
    would truncate the -shm file under this one's mapping, a bus error at its next access."""
    await store.create(make_op("locked"))
    assert await store.get(SUB_A, "locked") is not None  # the reader and its mapping in use
    shm = f"{store.path}-shm"
    probe = subprocess.run(
        [sys.executable, "-c", _TRY_DMS, shm, str(_SHM_DMS_BYTE)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "held"

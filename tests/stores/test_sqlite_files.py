"""The SQLite store's files on disk: a new database, and its -wal and -shm files, are 0600
whatever the umask, as private as the signing key; an existing database keeps its mode."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from opstatus.models import Operation
from opstatus.stores import SQLiteStore
from tests.support import SUB_A

pytestmark = pytest.mark.anyio


@pytest.fixture(params=[0o000, 0o022])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """An open umask (0000: SQLite alone would make 0644 files) and the usual one."""
    before = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def write_one(store: SQLiteStore) -> None:
    op = Operation(
        subscription_id=SUB_A,
        operation_id="op1",
        namespace="Microsoft.Cache",
        location="westus",
        status="InProgress",
        start_time="2030-01-01T00:00:00.000Z",
        updated_at="2030-01-01T00:00:00.000Z",
    )
    await store.create(op)


async def test_a_new_database_and_its_wal_and_shm_are_private(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "new" / "opstatus.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        await write_one(store)
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        await store.close()


async def test_migrate_makes_a_private_database(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "migrated.db"
    await SQLiteStore(path).migrate()
    assert mode(path) == 0o600


async def test_an_existing_database_keeps_its_mode(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "shared.db"
    path.touch()
    path.chmod(0o640)
    store = SQLiteStore(path)
    await store.open()
    try:
        await write_one(store)
    finally:
        await store.close()
    assert mode(path) == 0o640

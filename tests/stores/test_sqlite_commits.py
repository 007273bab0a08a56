"""Group commit (stores/sqlite_commits.py): writes waiting together share one COMMIT, and
each write still succeeds or fails on its own, durable before it is answered."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from opstatus.errors import OperationNotFound, StoreError
from opstatus.models import SUCCEEDED, Operation
from opstatus.stores.sqlite import SQLiteStore
from tests.stores.test_contract import make_op

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "db.sqlite")
    await s.open()
    yield s
    await s.close()


async def held(store: SQLiteStore) -> threading.Event:
    """Block the writer thread until the event is set, so that writes queue up meanwhile."""
    started, release = threading.Event(), threading.Event()

    def wait() -> None:
        started.set()
        release.wait(10)

    asyncio.get_running_loop().run_in_executor(store._executor, wait)
    await asyncio.to_thread(started.wait, 10)
    return release


def commits_of(store: SQLiteStore) -> list[int]:
    """Records the size of every group the store commits."""
    sizes: list[int] = []
    original = store._groups._commit

    def spy(group: list) -> list:  # type: ignore[type-arg]
        sizes.append(len(group))
        return original(group)

    store._groups._commit = spy  # type: ignore[method-assign]
    return sizes


def on_disk(path: str) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT operation_id, status FROM operations"))


def succeed(current: Operation) -> Operation:
    return current.evolve(status=SUCCEEDED, etag=current.etag + "x")


async def test_waiting_writes_share_a_commit_and_fail_alone(store: SQLiteStore) -> None:
    await store.create(make_op("existing"))
    sizes = commits_of(store)
    release = await held(store)
    creates = [asyncio.ensure_future(store.create(make_op(f"op-{i}"))) for i in range(30)]
    updates = [
        asyncio.ensure_future(store.update(store_sub(), key, succeed))
        for key in ("existing", "missing")
    ]
    await asyncio.sleep(0.05)  # every write is waiting for the writer thread
    release.set()
    created = await asyncio.gather(*creates)
    assert all(was_created for _, was_created in created)
    assert (await updates[0]).status == SUCCEEDED
    with pytest.raises(OperationNotFound):  # its own error; the rest of its group commits
        await updates[1]
    assert sizes == [32]
    stored = on_disk(store.path)
    assert len(stored) == 31 and stored["existing"] == SUCCEEDED


async def test_a_group_whose_transaction_is_lost_fails_whole(store: SQLiteStore) -> None:
    release = await held(store)

    def lose_the_transaction(conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")  # as SQLite does itself on SQLITE_FULL
        raise sqlite3.OperationalError("database or disk is full")

    writes = [asyncio.ensure_future(store.create(make_op(f"op-{i}"))) for i in range(5)]
    lost = asyncio.ensure_future(store._commit(lose_the_transaction))
    writes.append(asyncio.ensure_future(store.create(make_op("op-after"))))
    await asyncio.sleep(0.05)
    release.set()
    outcomes = await asyncio.gather(*writes, lost, return_exceptions=True)
    assert all(isinstance(o, StoreError) for o in outcomes), outcomes
    assert on_disk(store.path) == {}  # none of them was applied
    _, created = await store.create(make_op("op-later"))  # the store carries on
    assert created and on_disk(store.path) == {"op-later": "InProgress"}


def store_sub() -> str:
    return make_op().subscription_id

"""Batched reads (stores/batched_reads.py): alone when idle, gathered under load, and a
failed query fails exactly the reads it carried."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from opstatus.errors import StoreError
from opstatus.stores.batched_reads import BatchedReads, Key

pytestmark = pytest.mark.anyio


class Table:
    def __init__(self) -> None:
        self.rows = {("s", f"k{i}"): f"row{i}" for i in range(100)}
        self.queries: list[list[Key]] = []
        self.fail = False
        self.gate = asyncio.Event()
        self.gate.set()

    async def fetch(self, keys: Sequence[Key]) -> dict[Key, str]:
        self.queries.append(list(keys))
        await self.gate.wait()
        if self.fail:
            raise StoreError("PostgreSQL did not answer")
        return {key: self.rows[key] for key in keys if key in self.rows}


async def test_an_idle_read_is_sent_alone() -> None:
    table = Table()
    reads = BatchedReads(table.fetch)
    assert await reads.get(("s", "k1")) == "row1"
    assert await reads.get(("s", "nope")) is None
    assert table.queries == [[("s", "k1")], [("s", "nope")]]


async def test_reads_waiting_share_the_next_query() -> None:
    table = Table()
    reads = BatchedReads(table.fetch, max_in_flight=2, max_batch=50)
    table.gate.clear()
    keys = [("s", f"k{i % 80}") for i in range(120)] + [("s", "missing")]
    pending = [asyncio.ensure_future(reads.get(key)) for key in keys]
    await asyncio.sleep(0)
    table.gate.set()
    results = await asyncio.gather(*pending)
    assert results == [table.rows.get(key) for key in keys]
    # Two queries went out at once with one read each; the rest waited and were gathered.
    assert [len(q) for q in table.queries[:2]] == [1, 1]
    assert len(table.queries) <= 2 + -(-119 // 50)
    assert all(len(q) == len(set(q)) for q in table.queries)  # a key once per query


async def test_a_failed_query_fails_its_reads_only() -> None:
    table = Table()
    reads = BatchedReads(table.fetch, max_in_flight=1)
    table.gate.clear()
    table.fail = True
    first = [asyncio.ensure_future(reads.get(("s", f"k{i}"))) for i in range(5)]
    await asyncio.sleep(0)
    table.gate.set()
    outcomes = await asyncio.gather(*first, return_exceptions=True)
    assert all(isinstance(o, StoreError) for o in outcomes)
    table.fail = False
    assert await reads.get(("s", "k3")) == "row3"  # the next read goes through

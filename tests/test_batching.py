"""Batches (opstatus/batching.py, and the store's stores/batched_reads.py over it): gathered
while the loop's polls bring more, one in flight, those that arrive meanwhile in the next; a
failed read fails exactly the items it carried."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from opstatus.batching import Batcher
from opstatus.errors import StoreError
from opstatus.stores.batched_reads import BatchedReads, Key

pytestmark = pytest.mark.anyio


async def turns(n: int) -> None:
    """Let ``n`` turns of the event loop pass (each polls the loop's sockets once)."""
    for _ in range(n):
        await asyncio.sleep(0)


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


async def test_reads_of_one_turn_share_a_query_and_the_rest_wait_for_the_next() -> None:
    table = Table()
    reads = BatchedReads(table.fetch, max_batch=50)
    table.gate.clear()
    first = [asyncio.ensure_future(reads.get(("s", f"k{i}"))) for i in range(3)]
    await asyncio.sleep(0.01)
    assert table.queries == [[("s", "k0"), ("s", "k1"), ("s", "k2")]]  # one in flight
    keys = [("s", f"k{i % 80}") for i in range(120)] + [("s", "missing")]
    later = [asyncio.ensure_future(reads.get(key)) for key in keys]
    await asyncio.sleep(0.01)
    assert len(table.queries) == 1  # the others wait for it
    table.gate.set()
    assert await asyncio.gather(*first) == ["row0", "row1", "row2"]
    assert await asyncio.gather(*later) == [table.rows.get(key) for key in keys]
    assert [len(q) for q in table.queries[1:]] == [50, 50, 21]  # 121 reads, 50 a query
    assert all(len(q) == len(set(q)) for q in table.queries)  # a key once per query


async def test_a_failed_query_fails_its_reads_only() -> None:
    table = Table()
    reads = BatchedReads(table.fetch)
    table.gate.clear()
    table.fail = True
    first = [asyncio.ensure_future(reads.get(("s", f"k{i}"))) for i in range(5)]
    await asyncio.sleep(0)
    table.gate.set()
    outcomes = await asyncio.gather(*first, return_exceptions=True)
    assert all(isinstance(o, StoreError) for o in outcomes)
    table.fail = False
    assert await reads.get(("s", "k3")) == "row3"  # the next read goes through


async def test_a_reader_that_left_does_not_disturb_the_others() -> None:
    table = Table()
    reads = BatchedReads(table.fetch)
    table.gate.clear()
    gone = asyncio.ensure_future(reads.get(("s", "k1")))
    kept = asyncio.ensure_future(reads.get(("s", "k2")))
    await asyncio.sleep(0)
    gone.cancel()
    table.gate.set()
    assert await kept == "row2"


async def test_reading_now_answers_at_the_end_of_the_turn_in_batches() -> None:
    answered: list[tuple[list[int], object]] = []
    batcher: Batcher[int, list[int]] = Batcher(
        lambda batch, result: answered.append((batch, result)),
        read_now=lambda batch: [n * 2 for n in batch],
        max_batch=2,
    )
    for n in range(5):
        batcher.add(n)
    await turns(1)
    assert answered == []  # not before a poll that brings no more
    await turns(1)
    assert answered == [([0, 1], [0, 2]), ([2, 3], [4, 6]), ([4], [8])]


async def test_items_that_come_on_the_next_polls_join_the_batch() -> None:
    answered: list[list[int]] = []
    batcher: Batcher[int, None] = Batcher(
        lambda batch, result: answered.append(batch), read_now=lambda batch: None
    )
    batcher.add(0)
    for n in (1, 2):  # each a turn later, as requests read on the next poll would be
        await turns(1)
        batcher.add(n)
    await turns(1)
    assert answered == []
    await turns(1)
    assert answered == [[0, 1, 2]]


async def test_a_batch_waits_for_at_most_max_polls() -> None:
    answered: list[list[int]] = []
    batcher: Batcher[int, None] = Batcher(
        lambda batch, result: answered.append(batch), read_now=lambda batch: None, max_polls=3
    )
    for n in range(10):  # an item on every poll: the batch does not wait for ever
        batcher.add(n)
        await turns(1)
    await turns(4)
    assert answered[0] == [0, 1, 2, 3]
    assert sum(answered, []) == list(range(10))


async def test_a_fault_of_the_answer_does_not_stop_later_batches() -> None:
    seen: list[list[int]] = []

    def answer(batch: list[int], result: object) -> None:
        seen.append(batch)
        if batch == [1]:
            raise RuntimeError("a bug in the answer")

    batcher: Batcher[int, None] = Batcher(answer, read_now=lambda batch: None)
    batcher.add(1)
    await turns(2)
    batcher.add(2)
    await turns(2)
    assert seen == [[1], [2]]


def test_exactly_one_way_of_reading() -> None:
    with pytest.raises(ValueError):
        Batcher(lambda batch, result: None)

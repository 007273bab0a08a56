"""Work gathered over a turn of the event loop and done together, one batch in flight at a
time: how opstatus reads statuses under load, in the store and in the server.

Status reads arrive far faster than one database round trip each can serve: every read would
pay for a pooled connection, a round trip and the server's work for one row. Here the items
that arrive are handed over together; while a batch is being read, those that arrive wait for
the next one, which takes every waiting item (up to ``max_batch``). One batch in flight per
process: a second one gave no more reads per second and longer tails (docs/performance.md).

A batch is taken once a poll of the loop's sockets brings no more items, after at most
``max_polls`` polls past the first item's. Answers written together reach their clients
together, but the clients' next requests come back one by one; one that comes back just after
the poll would wait for the whole batch and then its own. Worse, the kernel hands a
level-triggered poll its ready sockets in their earlier order, so such a late request is also
read last in the next turn: two turns where the others wait one. Polling again while the batch
grows lets it catch up, at the cost of a poll that does not wait.

Reads stay linearizable: a batch starts after every item in it arrived, so it sees every
write acknowledged before any of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

log = logging.getLogger("opstatus.batching")


class Batcher(Generic[Item, Result]):
    """Items gathered per turn and read together; ``answer(batch, result)`` gets each batch
    back with what the read returned, or the exception it raised.

    Give ``read``, awaited with one batch in flight at a time; or ``read_now``, which reads
    without waiting (SQLite, memory) and is called in the turn the batch is taken.
    """

    def __init__(
        self,
        answer: Callable[[list[Item], Result | BaseException], None],
        *,
        read: Callable[[list[Item]], Awaitable[Result]] | None = None,
        read_now: Callable[[list[Item]], Result] | None = None,
        max_batch: int = 256,
        max_polls: int = 3,
    ) -> None:
        if (read is None) == (read_now is None):
            raise ValueError("give read or read_now")
        self._answer = answer
        self._read = read
        self._read_now = read_now
        self.max_batch = max_batch
        self.max_polls = max_polls
        self._waiting: list[Item] = []
        self._scheduled = False  # is a batch gathering (its next look on the loop's list)
        self._polls = 0  # polls the gathering batch has waited for
        self._seen = 0  # items waiting at its last look
        self._in_flight = False  # is a read running
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, item: Item) -> None:
        self._waiting.append(item)
        if not self._scheduled and not self._in_flight:
            self._scheduled = True
            self._polls = self._seen = 0
            asyncio.get_running_loop().call_soon(self._gathered)

    def _gathered(self) -> None:
        """Called once per turn while a batch gathers: a callback scheduled now runs after
        the loop's next poll, so wait for one more while the last one brought items."""
        waiting = len(self._waiting)
        if waiting > self._seen and self._polls < self.max_polls:
            self._seen = waiting
            self._polls += 1
            asyncio.get_running_loop().call_soon(self._gathered)
        else:
            self._turn_ended()

    def _turn_ended(self) -> None:
        self._scheduled = False
        if self._read_now is not None:
            while self._waiting:
                batch = self._take()
                try:
                    result: Result | BaseException = self._read_now(batch)
                except Exception as exc:  # noqa: BLE001 - handed to answer
                    result = exc
                self._deliver(batch, result)
        elif not self._in_flight and self._waiting:
            self._send()

    def _take(self) -> list[Item]:
        batch = self._waiting[: self.max_batch]
        del self._waiting[: self.max_batch]
        return batch

    def _send(self) -> None:
        self._in_flight = True
        task = asyncio.get_running_loop().create_task(self._read_and_answer(self._take()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_and_answer(self, batch: list[Item]) -> None:
        assert self._read is not None
        try:
            result: Result | BaseException = await self._read(batch)
        except BaseException as exc:  # noqa: BLE001 - every item of the batch fails alike
            result = exc
        finally:
            self._in_flight = False
            if self._waiting:
                self._send()  # those that arrived meanwhile, while these are answered
        self._deliver(batch, result)
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result  # cancelled: after the batch has its answer

    def _deliver(self, batch: list[Item], result: Result | BaseException) -> None:
        try:
            self._answer(batch, result)
        except Exception:  # noqa: BLE001 - a fault of answer's must not stop the batches
            log.exception("answering a batch of %d failed", len(batch))

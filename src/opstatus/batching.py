"""Work gathered during a turn of the event loop and done together at its end, one batch in
flight at a time: how opstatus reads statuses under load, in the store and in the server.

Status reads arrive far faster than one database round trip each can serve: every read would
pay for a pooled connection, a round trip and the server's work for one row. Here the items
that arrive during a turn are handed over together when the turn ends; while a batch is being
read, those that arrive wait for the next one, which takes every waiting item (up to
``max_batch``). One batch in flight per process: a second one gave no more reads per second
and longer tails (docs/performance.md).

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
    without waiting (SQLite, memory) and is called at the end of the turn itself.
    """

    def __init__(
        self,
        answer: Callable[[list[Item], Result | BaseException], None],
        *,
        read: Callable[[list[Item]], Awaitable[Result]] | None = None,
        read_now: Callable[[list[Item]], Result] | None = None,
        max_batch: int = 256,
    ) -> None:
        if (read is None) == (read_now is None):
            raise ValueError("give read or read_now")
        self._answer = answer
        self._read = read
        self._read_now = read_now
        self.max_batch = max_batch
        self._waiting: list[Item] = []
        self._scheduled = False  # is the end of this turn on the loop's list
        self._in_flight = False  # is a read running
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, item: Item) -> None:
        self._waiting.append(item)
        if not self._scheduled and not self._in_flight:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._turn_ended)

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

"""Single-operation reads gathered into one query (:class:`~opstatus.batching.Batcher`): the
read side of group commit, for a store whose every read is a round trip (PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from ..batching import Batcher
from .base import Key

Row = TypeVar("Row")


class BatchedReads(Generic[Row]):
    def __init__(
        self, fetch: Callable[[Sequence[Key]], Awaitable[dict[Key, Row]]], max_batch: int = 256
    ) -> None:
        """``fetch(keys)``: the rows found, by key (absent keys are left out); each key once."""
        self._fetch = fetch
        self._batcher: Batcher[tuple[Key, asyncio.Future[Row | None]], dict[Key, Row]] = Batcher(
            self._answer, read=self._read, max_batch=max_batch
        )

    async def get(self, key: Key) -> Row | None:
        future: asyncio.Future[Row | None] = asyncio.get_running_loop().create_future()
        self._batcher.add((key, future))
        return await future

    async def _read(self, batch: list[tuple[Key, asyncio.Future[Row | None]]]) -> dict[Key, Row]:
        return await self._fetch(list(dict.fromkeys(key for key, _ in batch)))

    @staticmethod
    def _answer(
        batch: list[tuple[Key, asyncio.Future[Row | None]]],
        rows: dict[Key, Row] | BaseException,
    ) -> None:
        for key, future in batch:
            if future.done():  # its caller went away
                continue
            if isinstance(rows, BaseException):
                future.set_exception(rows)
            else:
                future.set_result(rows.get(key))

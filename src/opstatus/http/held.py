"""A request the server holds (``Prefer: wait``) ends when its client leaves.

Nothing else would end it: the app is not cancelled when a connection closes, so a held
GET whose client is gone would keep its waiter slot (see :class:`.limits.WaiterSlots`)
until its wait ran out. The ASGI server reports the disconnect on ``receive``, which a GET
has no other use for once its (empty) body is read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.types import Receive

T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected while its request was held."""


async def unless_client_leaves(receive: Receive, work: Awaitable[T]) -> T:
    """``work``'s result; raises :class:`ClientGone` (``work`` cancelled) when the client
    disconnects first. An error of ``receive`` (a body sent too slowly) is raised too."""
    working = asyncio.ensure_future(work)
    leaving = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((working, leaving), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (working, leaving):
            if not task.done():
                task.cancel()
        # Let the cancelled side finish (the wait leaves its notifier watch) before going on.
        await asyncio.gather(working, leaving, return_exceptions=True)
    if not working.cancelled() and working.done():
        return working.result()
    leaving.result()  # raises what receive raised
    raise ClientGone()


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has disconnected (what is left of a body is dropped)."""
    while (await receive())["type"] != "http.disconnect":
        pass

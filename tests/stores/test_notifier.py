"""The in-process notifier: wakes the watchers of one operation, from any thread, and tidies up."""

from __future__ import annotations

import asyncio
import threading

import pytest

from opstatus.stores.notifier import Notifier

pytestmark = pytest.mark.anyio


async def test_notify_wakes_only_the_watchers_of_that_operation() -> None:
    notifier = Notifier()
    with (
        notifier.watch("s", "a") as a1,
        notifier.watch("s", "a") as a2,
        notifier.watch("s", "b") as b,
    ):
        notifier.notify("s", "a")
        assert a1.is_set() and a2.is_set() and not b.is_set()
        notifier.notify("other", "b")
        assert not b.is_set()
        notifier.notify_all()
        assert b.is_set()
    assert notifier._events == {}  # nothing left behind once every watcher is gone


async def test_notify_without_watchers_is_a_no_op() -> None:
    Notifier().notify("s", "a")  # before any loop was seen
    notifier = Notifier()
    with notifier.watch("s", "a"):
        pass
    notifier.notify("s", "a")
    notifier.notify_all()


async def test_a_writer_on_another_thread_wakes_the_waiter() -> None:
    notifier = Notifier()
    with notifier.watch("s", "a") as event:
        thread = threading.Thread(target=notifier.notify, args=("s", "a"))
        thread.start()
        async with asyncio.timeout(2):
            await event.wait()
        thread.join()


async def test_closed_notifier_sets_every_watch_at_once() -> None:
    notifier = Notifier(poll_interval=1.0)
    with notifier.watch("s", "a") as before:
        notifier.close()
        assert before.is_set()
        with notifier.watch("s", "b") as after:
            assert after.is_set()
    assert notifier.closed and notifier.poll_interval == 1.0

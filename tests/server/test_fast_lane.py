"""How the protocol answers a turn's status reads (server/fast_lane.py, FastLane).

The real protocol, stores and sockets are exercised end to end in tests/e2e/test_fast_reads.py;
here the lane and the connections are stand-ins, so that the order of things can be
watched: every answer of a turn is made before any is written, a store that reads in
batches has one query in flight and the reads admitted meanwhile go out together in the
next, and whatever the lane does not answer goes to the app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from opstatus.server.fast_lane import FastLane, _Pending

pytestmark = pytest.mark.anyio


class Lane:
    """Stands in for FastReads: operation ``x`` has the status ``table[x]`` (None: left to
    the app), answered as ``ok-<status>``. Its batched read waits until the test lets it go."""

    def __init__(self, table: dict[str, str | None], immediate: bool = True) -> None:
        self.table = table
        self.immediate = immediate
        self.batched = not immediate
        self.events: list[str] = []
        self.queries: list[list[str]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.release = asyncio.Event()
        self.fail = False

    def statuses_now(self, names: Sequence[str]) -> list[str | None]:
        return [self.table[name] for name in names]

    async def statuses(self, names: Sequence[str]) -> list[str | None]:
        self.queries.append(list(names))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        if self.fail:  # as FastReads.statuses when the store fails: all to the app
            return [None] * len(names)
        return [self.table[name] for name in names]

    def respond(self, name: str, status: str | None, *_: Any) -> tuple[list[Any], bytes] | None:
        self.events.append(f"answer {name}")
        return None if status is None else ([], f"ok-{status}".encode())


class Connection:
    """What FastLane uses of the protocol and of uvicorn's request cycle."""

    def __init__(self, name: str, lane: Lane) -> None:
        self.name, self.lane = name, lane
        self.loop = asyncio.get_running_loop()
        self.flow = SimpleNamespace(write_paused=False)
        self.cycle = SimpleNamespace(scope={"headers": []}, keep_alive=True, disconnected=False)
        self.written: list[bytes] = []
        self.to_app = 0

    def finish(self, cycle: Any, response: bytes) -> None:
        self.lane.events.append(f"write {self.name}")
        head, _, body = response.partition(b"\r\n\r\n")
        assert head == b"HTTP/1.1 200 OK"
        self.written.append(body)

    def start_app(self, cycle: Any) -> None:
        self.to_app += 1


def admit(reads: FastLane, lane: Lane, *names: str) -> dict[str, Connection]:
    """A read from each of ``names``, each on a connection of its own."""
    connections = {name: Connection(name, lane) for name in names}
    for name, c in connections.items():
        reads.add(_Pending(c, c.cycle, name, 0.0))  # type: ignore[arg-type]
    return connections


async def turns(count: int = 3) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_a_turns_reads_are_all_answered_before_any_is_written() -> None:
    lane = Lane({"a": "1", "b": "2", "gone": None})
    reads = FastLane(lane)  # type: ignore[arg-type]
    connections = admit(reads, lane, "a", "b", "gone")
    assert lane.events == []  # not before the turn ends
    await turns()
    assert lane.events == ["answer a", "answer b", "answer gone", "write a", "write b"]
    assert connections["a"].written == [b"ok-1"] and connections["b"].written == [b"ok-2"]
    assert connections["gone"].written == [] and connections["gone"].to_app == 1


async def test_a_client_that_stopped_reading_is_left_to_the_app() -> None:
    lane = Lane({"a": "1", "b": "2"})
    reads = FastLane(lane)  # type: ignore[arg-type]
    connections = admit(reads, lane, "a", "b")
    connections["b"].flow.write_paused = True  # its buffer filled while the turn went on
    await turns()
    assert connections["a"].written == [b"ok-1"]
    assert connections["b"].written == [] and connections["b"].to_app == 1


async def test_batched_reads_have_one_query_in_flight_and_the_rest_wait_for_the_next() -> None:
    lane = Lane({name: name.upper() for name in "abcdef"} | {"gone": None}, immediate=False)
    reads = FastLane(lane)  # type: ignore[arg-type]
    first = admit(reads, lane, "a", "b")
    await turns()
    assert lane.queries == [["a", "b"]]  # the turn's reads, in one query
    later = admit(reads, lane, "c", "gone")
    await turns()
    later |= admit(reads, lane, "d")
    await turns()
    assert lane.queries == [["a", "b"]]  # still one in flight: the others wait
    assert all(c.written == [] for c in [*first.values(), *later.values()])
    lane.release.set()
    await turns(6)
    assert lane.queries == [["a", "b"], ["c", "gone", "d"]]
    assert lane.most_in_flight == 1
    for name, connection in {**first, **later}.items():
        if name == "gone":
            assert connection.written == [] and connection.to_app == 1
        else:
            assert connection.written == [f"ok-{name.upper()}".encode()]


async def test_a_batch_whose_read_fails_goes_to_the_app_whole() -> None:
    lane = Lane({"a": "A", "b": "B"}, immediate=False)
    lane.fail = True
    lane.release.set()
    reads = FastLane(lane)  # type: ignore[arg-type]
    connections = admit(reads, lane, "a", "b")
    await turns(6)
    assert [c.to_app for c in connections.values()] == [1, 1]
    assert all(c.written == [] for c in connections.values())


async def test_batches_are_no_larger_than_the_limit() -> None:
    names = [f"op{i}" for i in range(5)]
    lane = Lane(dict.fromkeys(names, "ok"), immediate=False)
    lane.release.set()
    reads = FastLane(lane)  # type: ignore[arg-type]
    reads.batches.max_batch = 2
    connections = admit(reads, lane, *names)
    await turns(12)
    assert lane.queries == [names[:2], names[2:4], names[4:]]
    assert all(c.written == [b"ok-ok"] for c in connections.values())


async def test_a_fault_in_the_lane_sends_the_read_to_the_app_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lane = Lane({"a": "1", "b": "2"})

    def broken(*_: Any) -> None:
        raise RuntimeError("a bug in the lane")

    lane.respond = broken  # type: ignore[method-assign]
    reads = FastLane(lane)  # type: ignore[arg-type]
    connections = admit(reads, lane, "a", "b")
    await turns()
    assert [c.to_app for c in connections.values()] == [1, 1]
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "answering a status read" in errors[0].getMessage()


async def test_a_fault_while_writing_closes_that_connection_only() -> None:
    lane = Lane({"a": "1", "b": "2"})
    reads = FastLane(lane)  # type: ignore[arg-type]
    connections = admit(reads, lane, "a", "b")
    closed: list[str] = []

    def broken(cycle: Any, response: bytes) -> None:
        raise RuntimeError("the transport broke")

    connections["a"].finish = broken  # type: ignore[method-assign]
    connections["a"].transport = SimpleNamespace(close=lambda: closed.append("a"))
    await turns()
    assert closed == ["a"] and connections["b"].written == [b"ok-2"]

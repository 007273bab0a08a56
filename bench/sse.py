"""Server-Sent Events at scale: memory per stream, event latency, and what streams cost reads.

    python bench/sse.py [--streams 10000] [--waiters 1000] [--rate 1000] [--seconds 10]

One ``opstatus serve`` process on SQLite, with --seed operations for the status reads.
``--streams`` subscription-wide streams are opened (``/subscriptions/{sub_i}/
operationsStatusEvents``, one subscription each) and ``--waiters`` status GETs held with
``Prefer: wait=30`` (re-sent when they return), all from this process over raw keep-alive
connections. Meanwhile a writer completes ``--rate`` operations per second (PATCH to
Succeeded, each operation created beforehand in one of the streams' subscriptions), so
every completion is an event on exactly one stream.

Measured, in one run:

- memory: the server's resident memory before the streams open and after, divided by the
  number of streams (and, as a second figure, after the waiters too, counted against the
  streams);
- latency: from the writer's receipt of a PATCH's 200 to the event's arrival on its stream,
  p50 and p99 over the --seconds of completions (an event that arrives first counts as 0);
- reads: wrk's status GETs per second for --seconds with the writer running, while the
  streams are open, and before they open and after they close (the same server without
  streams); the ratio of the first to the mean of the other two, so that a drift of the
  machine's speed during the run counts on both sides.

The bars: memory growth at most 20 KiB per stream, p99 at most 50 ms, reads at least 0.8x.
Appends to bench/results/sse.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    STATUS_PATH_FMT,
    Load,
    gets_script,
    opstatus_args,
    record,
    rss_mib,
    scratch,
    seed_sqlite,
    start_wrk,
    started,
)
from opstatus.auth import load_or_create_key, mint_token  # noqa: E402

API = "api-version=2025-07-01"


def op_path(sub: str, name: str) -> str:
    return (
        f"/subscriptions/{sub}/providers/Microsoft.Cache/locations/westus/operationsStatus/"
        f"{name}?{API}"
    )


class Connection:
    """One keep-alive HTTP/1.1 connection, request after request (Content-Length bodies)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.host = "127.0.0.1"

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        connection = cls(reader, writer)
        connection.host = f"127.0.0.1:{port}"
        return connection

    async def request(
        self, method: str, path: str, token: str, body: bytes = b"", extra: str = ""
    ) -> int:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        )
        self.writer.write(head.encode() + body)
        head_bytes = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head_bytes.split(b" ", 2)[1])
        length = 0
        for line in head_bytes.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status


async def open_stream(port: int, sub: str, token: str, arrived: dict[str, float]) -> None:
    """Open a subscription's stream and note when each completion's event arrives."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(
        f"GET /subscriptions/{sub}/operationsStatusEvents HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"stream refused: {head[:200]!r}")
    opened.append(writer)
    while line := await reader.readline():
        if line.startswith(b"data: ") and b'"operation.status"' in line:
            now = time.perf_counter()
            name = json.loads(line[6:])["operation"]["name"]
            arrived.setdefault(name, now)


async def hold(port: int, token: str, index: int, stop: asyncio.Event) -> None:
    """A waiter: a status GET held by Prefer: wait, again whenever it returns."""
    conn = await Connection.open(port)
    path = STATUS_PATH_FMT % index
    try:
        while not stop.is_set():
            await conn.request("GET", path, token, extra="Prefer: wait=30\r\n")
    finally:
        conn.writer.close()


opened: list[asyncio.StreamWriter] = []


async def write_all(
    port: int, token: str, jobs: list[tuple[str, str]], method: str, rate: float | None
) -> dict[str, float]:
    """PUT (create) or PATCH (complete) ``jobs`` ((sub, name)), paced at ``rate`` per
    second (None: as fast as 32 connections go); when each was acknowledged."""
    acked: dict[str, float] = {}
    queue: asyncio.Queue[tuple[str, str, float]] = asyncio.Queue()
    start = time.perf_counter()
    for n, (sub, name) in enumerate(jobs):
        queue.put_nowait((sub, name, start + n / rate if rate else 0.0))
    body = b"{}" if method == "PUT" else b'{"status":"Succeeded"}'

    async def worker() -> None:
        conn = await Connection.open(port)
        while not queue.empty():
            sub, name, due = queue.get_nowait()
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            status = await conn.request(method, op_path(sub, name), token, body)
            if status not in (200, 201):
                raise RuntimeError(f"{method} {name}: {status}")
            acked[name] = time.perf_counter()
        conn.writer.close()

    await asyncio.gather(*(worker() for _ in range(32)))
    return acked


def reads_while(url: str, token: str, seed: int, seconds: int, connections: int) -> Load:
    wrk = start_wrk(url, gets_script(STATUS_PATH_FMT, seed, token), seconds, connections)
    return Load.from_wrk(wrk.finish())


async def reads_and_writes(
    args: argparse.Namespace, url: str, token: str, jobs: list[tuple[str, str]]
) -> tuple[Load, dict[str, float]]:
    """wrk's status reads (c=32) for --seconds while the writer completes ``jobs`` at --rate:
    the reads, and when each completion was acknowledged."""
    port = int(url.rsplit(":", 1)[1])
    loop = asyncio.get_running_loop()
    wrk = loop.run_in_executor(None, reads_while, url, token, args.seed, args.seconds, 32)
    acked = await write_all(port, token, jobs, "PATCH", args.rate)
    return await wrk, acked


async def run(args: argparse.Namespace, url: str, pid: int, token: str) -> dict[str, object]:
    port = int(url.rsplit(":", 1)[1])
    subs = [str(uuid.UUID(int=n + 1)) for n in range(args.streams)]
    total = args.rate * args.seconds
    jobs = [(subs[n % len(subs)], f"done-{n:07d}") for n in range(3 * total)]
    await write_all(port, token, jobs, "PUT", None)

    # Reads without streams, with the writer completing the first half.
    alone, _ = await reads_and_writes(args, url, token, jobs[:total])

    before = rss_mib(pid)
    arrived: dict[str, float] = {}
    streams = [asyncio.create_task(open_stream(port, sub, token, arrived)) for sub in subs]
    deadline = time.monotonic() + 120
    while len(opened) < len(subs):
        if time.monotonic() > deadline or any(t.done() for t in streams):
            failed = [t.exception() for t in streams if t.done()]
            raise RuntimeError(f"{len(opened)} streams open; {failed[:1]}")
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)
    with_streams = rss_mib(pid)
    stop = asyncio.Event()
    waiter_tokens = [
        mint_token(args.key, f"waiter-{n}", [("Reader", "/")], 3600) for n in range(50)
    ]
    waiters = [
        asyncio.create_task(hold(port, waiter_tokens[n % 50], n % args.seed, stop))
        for n in range(args.waiters)
    ]
    await asyncio.sleep(3)
    after = rss_mib(pid)

    # Reads with the streams and waiters open, the writer completing the second third.
    during, acked = await reads_and_writes(args, url, token, jobs[total : 2 * total])
    await asyncio.sleep(1)
    latencies = sorted(
        max(arrived[name] - at, 0.0) * 1000 for name, at in acked.items() if name in arrived
    )
    missing = len(acked) - len(latencies)
    stop.set()
    for task in [*streams, *waiters]:
        task.cancel()
    for writer in opened:
        writer.close()
    await asyncio.gather(*streams, *waiters, return_exceptions=True)
    await asyncio.sleep(2)  # the server sees every stream and waiter gone

    # Reads without streams again, the writer completing the last third.
    alone_after, _ = await reads_and_writes(args, url, token, jobs[2 * total :])
    baseline = (alone.rps + alone_after.rps) / 2
    per_stream_kib = (with_streams - before) * 1024 / len(subs)
    return {
        "streams": len(subs),
        "waiters": args.waiters,
        "rate": args.rate,
        "rss_before_mib": round(before, 1),
        "rss_streams_mib": round(with_streams, 1),
        "rss_after_mib": round(after, 1),
        "kib_per_stream": round(per_stream_kib, 2),
        "kib_per_stream_waiters_counted": round((after - before) * 1024 / len(subs), 2),
        "latency_p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "latency_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2)
        if latencies
        else None,
        "events_missing": missing,
        "reads_alone_rps": round(baseline),
        "reads_before_rps": round(alone.rps),
        "reads_after_rps": round(alone_after.rps),
        "reads_during_rps": round(during.rps),
        "reads_ratio": round(during.rps / baseline, 3),
        "reads_errors": during.errors + during.non2xx,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--waiters", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=1000, help="completions per second")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=10_000, help="operations to read")
    parser.add_argument("--heartbeat", default="15s", help="serve --stream-heartbeat")
    args = parser.parse_args()
    with scratch() as home:
        seed_sqlite(home / "opstatus.db", args.seed)
        args.key = load_or_create_key(home)
        token = mint_token(args.key, "bench", [("Owner", "/")], 24 * 3600)
        limit = str(args.streams + args.waiters + 500)
        serve = [
            *opstatus_args(home),
            "--max-connections", limit, "--max-streams", limit,
            "--max-streams-per-principal", limit, "--max-waiters", str(args.waiters + 100),
            "--maintenance-interval", "0", "--stream-heartbeat", args.heartbeat,
        ]  # fmt: skip
        with started(serve) as running:
            result = asyncio.run(run(args, running.url, running.pid, token))
    print(json.dumps(result, indent=2))
    record("sse", result)
    bars = (
        result["kib_per_stream"] <= 20,  # type: ignore[operator]
        (result["latency_p99_ms"] or 1e9) <= 50,  # type: ignore[operator]
        result["reads_ratio"] >= 0.8,  # type: ignore[operator]
    )
    print("bars (memory, latency, reads):", ["met" if ok else "NOT met" for ok in bars])


if __name__ == "__main__":
    main()

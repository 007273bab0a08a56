"""Soak: minutes of mixed reads, writes and waits against a real server; memory must stay flat.

    python scripts/soak.py --minutes 10
    python scripts/soak.py --minutes 10 --store postgres

Starts ``opstatus serve`` on a fresh home and a loopback port (on SQLite, or on a throwaway
PostgreSQL database with ``--store postgres``), then runs
``--workers`` client threads until the time is up: reads of existing operations (most of
the traffic), creates, progress updates and finishes, deletes of finished operations (the
live set stays bounded: each create past the bound deletes the oldest finished one), and
waits (polling an operation until it ends or 2 s pass), plus a scraper reading /metrics and
/readyz once a second. Every
``--interval`` seconds it samples the server's RSS, open file descriptors and threads from
/proc, and the clients' request and error counts, and prints a row. An error is a 5xx, a
transport failure or any answer the client did not expect (a 404 or 409 from a race between
workers is expected and counted apart).

At the end it prints RSS at the first sample after warm-up and at the end, and fails
(exit 1) on any error, a growing descriptor count, or RSS growth past ``--max-growth``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
import tempfile
import threading
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pg import throwaway_database  # noqa: E402
from tests.support import SUB_A, ServerProcess, status_path  # noqa: E402

from scripts.crash_trials import DEFAULT_POSTGRES  # noqa: E402

TERMINAL = ("Succeeded", "Failed", "Canceled")


@dataclass
class Counters:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    errors: int = 0
    races: int = 0
    waits: int = 0
    samples: list[str] = field(default_factory=list)

    def add(self, requests: int = 0, errors: int = 0, races: int = 0, waits: int = 0) -> None:
        with self.lock:
            self.requests += requests
            self.errors += errors
            self.races += races
            self.waits += waits


class Workload:
    def __init__(self, url: str, token: str, deadline: float, counters: Counters) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.deadline = deadline
        self.counters = counters
        self.lock = threading.Lock()
        self.running: deque[str] = deque(maxlen=500)
        self.finished: deque[str] = deque()
        self.ids = itertools.count()
        self.error_samples: list[str] = []

    def _check(self, response: httpx.Response, expected: tuple[int, ...]) -> bool:
        if response.status_code in expected:
            self.counters.add(requests=1)
            return True
        if response.status_code in (404, 409, 412):
            self.counters.add(requests=1, races=1)
            return False
        self.counters.add(requests=1, errors=1)
        if len(self.error_samples) < 20:
            self.error_samples.append(f"{response.status_code} {response.text[:200]}")
        return False

    def worker(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=30) as client:
            while time.monotonic() < self.deadline:
                try:
                    self._one(client, rng)
                except httpx.HTTPError as exc:
                    self.counters.add(errors=1)
                    if len(self.error_samples) < 20:
                        self.error_samples.append(repr(exc))

    def scraper(self) -> None:
        """What Prometheus and a load balancer do: /metrics and /readyz once a second."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while time.monotonic() < self.deadline:
                try:
                    for path in ("/metrics", "/readyz"):
                        self._check(client.get(path), (200,))
                except httpx.HTTPError as exc:
                    self.counters.add(errors=1)
                    self.error_samples.append(repr(exc))
                time.sleep(1)

    def _pick(self, rng: random.Random, pool: deque[str]) -> str | None:
        with self.lock:
            return pool[rng.randrange(len(pool))] if pool else None

    def _one(self, client: httpx.Client, rng: random.Random) -> None:
        roll = rng.random()
        if roll < 0.60 and self._read(client, rng):
            return
        if roll < 0.72 or not self.running:
            self._create(client)
        elif roll < 0.90:
            self._update(client, rng)
        elif roll >= 0.95 or not self._delete(client):
            self._wait(client, rng)

    def _read(self, client: httpx.Client, rng: random.Random) -> bool:
        op = self._pick(rng, self.running if rng.random() < 0.5 else self.finished)
        if op is not None:
            self._check(client.get(status_path(op_id=op)), (200,))
        return op is not None

    def _create(self, client: httpx.Client) -> None:
        op = f"soak-{next(self.ids)}"
        response = client.put(status_path(op_id=op), json={"percentComplete": 0})
        if self._check(response, (201,)):
            with self.lock:
                if len(self.running) == self.running.maxlen:
                    self.finished.append(self.running.popleft())
                self.running.append(op)
            self._delete(client)  # one out for one in: the live set stays bounded

    def _update(self, client: httpx.Client, rng: random.Random) -> None:
        op = self._pick(rng, self.running)
        if op is None:
            return
        if rng.random() < 0.25:
            body: dict[str, object] = {"status": rng.choice(TERMINAL)}
        else:
            body = {"percentComplete": rng.randint(1, 99), "resetProgress": True}
        response = client.patch(status_path(op_id=op), json=body)
        if self._check(response, (200,)) and "status" in body:
            with self.lock:
                if op in self.running:
                    self.running.remove(op)
                    self.finished.append(op)

    def _delete(self, client: httpx.Client) -> bool:
        """Delete the oldest finished operation once there are enough; False if none."""
        with self.lock:
            op = self.finished.popleft() if len(self.finished) > 1000 else None
        if op is not None:
            self._check(client.delete(status_path(op_id=op)), (200, 204))
        return op is not None

    def _wait(self, client: httpx.Client, rng: random.Random) -> None:
        op = self._pick(rng, self.running)
        if op is None:
            return
        until = time.monotonic() + 2
        while time.monotonic() < until:
            response = client.get(status_path(op_id=op))
            if not self._check(response, (200,)) or response.json()["status"] in TERMINAL:
                break
            time.sleep(0.05)
        self.counters.add(waits=1)


def database_kib(home: Path, store: str | None) -> int:
    """The size of the store: the home's SQLite files, or the PostgreSQL database."""
    if store is None:
        return sum(p.stat().st_size for p in home.glob("opstatus.db*")) // 1024

    async def size() -> int:
        conn = await asyncpg.connect(store)
        try:
            return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
        finally:
            await conn.close()

    return asyncio.run(size()) // 1024


def sample(pid: int) -> tuple[int, int, int]:
    """(RSS in KiB, open descriptors, threads) of a process, from /proc."""
    rss = threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss, len(list(Path(f"/proc/{pid}/fd").iterdir())), threads


def soak(
    home: Path, minutes: float, interval: float, workers: int, store: str | None = None
) -> dict[str, object]:
    """``store``: a migrated PostgreSQL database's URL; None for the home's SQLite file."""
    extra = ("--store", store) if store else ()
    server = ServerProcess(home, "--retry-after", "1", "--rate-limit", "0", *extra).start()
    assert server.proc is not None
    pid = server.proc.pid
    counters = Counters()
    started = time.monotonic()
    deadline = started + minutes * 60
    load = Workload(
        server.url, server.token("Contributor", f"/subscriptions/{SUB_A}"), deadline, counters
    )
    threads = [threading.Thread(target=load.worker, args=(i,), daemon=True) for i in range(workers)]
    threads.append(threading.Thread(target=load.scraper, daemon=True))
    for thread in threads:
        thread.start()
    rows: list[tuple[float, int, int, int, int, int]] = []
    print(
        f"{'t (s)':>6} {'RSS MiB':>8} {'fds':>5} {'thr':>4} {'requests':>9} {'req/s':>7} "
        f"{'errors':>6} {'races':>6} {'waits':>6} {'db MiB':>6}",
        flush=True,
    )
    last_requests, last_t = 0, 0.0
    try:
        while time.monotonic() < deadline:
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            t = time.monotonic() - started
            rss, fds, nthreads = sample(pid)
            with counters.lock:
                requests, errors, races, waits = (
                    counters.requests,
                    counters.errors,
                    counters.races,
                    counters.waits,
                )
            rate = (requests - last_requests) / max(t - last_t, 1e-9)
            size_mib = database_kib(home, store) / 1024
            last_requests, last_t = requests, t
            rows.append((t, rss, fds, nthreads, requests, errors))
            print(
                f"{t:6.0f} {rss / 1024:8.1f} {fds:5d} {nthreads:4d} {requests:9d} "
                f"{rate:7.0f} {errors:6d} {races:6d} {waits:6d} {size_mib:6.1f}",
                flush=True,
            )
        for thread in threads:
            thread.join(60)
    finally:
        server.stop()
    return {
        "rows": rows,
        "errors": counters.errors,
        "requests": counters.requests,
        "races": counters.races,
        "waits": counters.waits,
        "error_samples": load.error_samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--interval", type=float, default=10)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--max-growth", type=float, default=0.10, help="allowed RSS growth")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES,
        help="with --store postgres: a database on the server to make the throwaway one "
        "beside [env: OPSTATUS_TEST_POSTGRES; default: %(default)s]",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="opstatus-soak-") as tmp, ExitStack() as stack:
        home = Path(tmp) / "home"
        home.mkdir()
        store = None
        if args.store == "postgres":
            store = stack.enter_context(throwaway_database(args.postgres_url, "soak", home))
        result = soak(home, args.minutes, args.interval, args.workers, store)
    rows = result["rows"]
    assert isinstance(rows, list) and rows
    # The first sample includes warm-up (imports, caches, the first pages); judge from the
    # second on, or the first when the run is that short.
    base = rows[1] if len(rows) > 2 else rows[0]
    end = rows[-1]
    growth = (end[1] - base[1]) / base[1]
    fds_grew = end[2] > max(r[2] for r in rows[: max(2, len(rows) // 2)]) + 2
    print()
    print(f"requests                  {result['requests']}")
    print(f"errors                    {result['errors']}")
    print(f"expected races (404/409)  {result['races']}")
    print(f"waits                     {result['waits']}")
    print(f"RSS at {base[0]:.0f} s             {base[1] / 1024:.1f} MiB")
    print(f"RSS at end ({end[0]:.0f} s)       {end[1] / 1024:.1f} MiB ({growth:+.1%})")
    print(f"RSS max                   {max(r[1] for r in rows) / 1024:.1f} MiB")
    print(f"open fds min/max/end      {min(r[2] for r in rows)}/{max(r[2] for r in rows)}/{end[2]}")
    for sample_line in result["error_samples"]:  # type: ignore[attr-defined]
        print("  error:", sample_line)
    failed = bool(result["errors"]) or growth > args.max_growth or fds_grew
    print("FAIL" if failed else "OK: flat memory, no errors")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

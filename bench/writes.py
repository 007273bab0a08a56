"""Durable write throughput: opstatus over HTTP against its store's own limit, same run.

    python bench/writes.py --seconds 10 --connections 32 [--stores sqlite,postgres]

One operation is a create and an update to a terminal status: a PUT (InProgress), then,
once it was answered 201, a PATCH to Succeeded answered 200; a 2xx means the write is
durable. For each store, the store's own limit (``bench/bare_writes.py``: the same
transactions from one tight loop, no HTTP) is measured, then ``opstatus serve`` loaded by
wrk from its own process over loopback. Prints operations/s for both and their ratio (the
goal: at least 0.5); appends to bench/results/writes.jsonl. PostgreSQL runs in a throwaway
database beside --dsn. Needs wrk (apt-get install wrk) and the bench extra.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bare_writes import postgres_rate, sqlite_rate  # noqa: E402
from bench.common import (  # noqa: E402
    SUB,
    cpu_seconds,
    opstatus_args,
    record,
    run_wrk,
    started,
)
from bench.pg import DEFAULT_DSN, throwaway_database  # noqa: E402
from opstatus.auth import load_or_create_key, mint_token  # noqa: E402

#: Each wrk thread keeps a queue of operations answered 201; a connection asking for its
#: next request PATCHes the oldest of them, or else PUTs a fresh one. So no PATCH is sent
#: before its PUT was acknowledged, and the load stays about half creates, half updates.
WRITE_SCRIPT = """
local base = "%(base)s"
local api = "?api-version=2025-07-01"
local headers = {["Authorization"] = "Bearer %(token)s", ["Content-Type"] = "application/json"}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("prefix", string.format("%(run)s-%%d-", #threads))
end

function init(args)
  made, head, tail, queue = 0, 1, 0, {}
  created, completed, failed = 0, 0, 0
end

function request()
  if head <= tail then
    local id = queue[head]
    queue[head] = nil
    head = head + 1
    return wrk.format("PATCH", base .. id .. api, headers, '{"status": "Succeeded"}')
  end
  made = made + 1
  return wrk.format("PUT", base .. prefix .. made .. api, headers, '{"status": "InProgress"}')
end

function response(status, hdrs, body)
  if status == 201 then
    created = created + 1
    tail = tail + 1
    queue[tail] = string.match(body, '"name":"([^"]+)"')
  elseif status == 200 then
    completed = completed + 1
  else
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local c, d, f = 0, 0, 0
  for _, t in ipairs(threads) do
    c, d, f = c + t:get("created"), d + t:get("completed"), f + t:get("failed")
  end
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"created\\": %%d, \\"completed\\": %%d, \\"failed\\": %%d, \\"errors\\": %%d, "
    .. "\\"duration_us\\": %%d, \\"p50_us\\": %%d, \\"p99_us\\": %%d}\\n",
    c, d, f, e.connect + e.read + e.write + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(99)))
end
"""
#: The bare loop: (run name, seconds) -> operations/s.
Bare = Callable[[str, float], float]
BASE = f"/subscriptions/{SUB}/providers/Microsoft.Cache/locations/westus/operationsStatus/"


@dataclass
class Writes:
    """Operations/s of opstatus (completed PATCHes) and of the bare loop, one round."""

    bare: float
    opstatus: float
    #: CPU time the opstatus process used per second of load: near 1.0, its one event loop
    #: (and the GIL its writer thread shares) is the limit, not the disk.
    server_cores: float
    p50_ms: float
    p99_ms: float
    failed: int

    @property
    def ratio(self) -> float:
        return self.opstatus / self.bare

    @property
    def cpu_ms(self) -> float:
        """The server's CPU time per operation (to set against 1000 / bare)."""
        return self.server_cores / self.opstatus * 1000


def load(
    url: str, pid: int, token: str, run: str, seconds: int, args: argparse.Namespace
) -> Writes:
    """wrk's write load on opstatus; also how many cores the server process kept busy."""
    script = WRITE_SCRIPT % {"base": BASE, "token": token, "run": run}
    cpu = cpu_seconds(pid)
    data = run_wrk(url, script, seconds, args.connections, args.threads)
    wall = data["duration_us"] / 1e6
    return Writes(
        bare=0.0,
        opstatus=data["completed"] / wall,
        server_cores=(cpu_seconds(pid) - cpu) / wall,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        failed=data["failed"] + data["errors"],
    )


@contextmanager
def store(name: str, home: Path, args: argparse.Namespace) -> Iterator[tuple[list[str], Bare]]:
    """``opstatus serve``'s arguments and the bare loop, each on a store of its own (SQLite:
    files side by side; PostgreSQL: one throwaway database, the rows of each apart)."""
    if name == "sqlite":
        yield opstatus_args(home), lambda run, s: sqlite_rate(home / f"{run}.db", s, run)
        return
    with throwaway_database(args.dsn, "writes", home) as url:
        yield opstatus_args(home, url), lambda run, s: postgres_rate(url, s, run)


def measure(name: str, args: argparse.Namespace) -> list[Writes]:
    """Rounds of (bare loop, then opstatus), so that drifts of the machine hit both alike."""
    with tempfile.TemporaryDirectory(prefix="opstatus-writes-") as tmp:
        home = Path(tmp)
        token = mint_token(
            load_or_create_key(home), "bench", [("Contributor", f"/subscriptions/{SUB}")]
        )
        rounds = []
        with store(name, home, args) as (argv, bare), started(argv) as server:
            load(server.url, server.pid, token, "warm", 2, args)
            for i in range(args.rounds):
                bare_rate = bare(f"bare{i}", args.seconds)
                result = load(server.url, server.pid, token, f"r{i}", args.seconds, args)
                result.bare = bare_rate
                print(f"  {name} round {i + 1}: bare {bare_rate:,.0f}, opstatus "
                      f"{result.opstatus:,.0f} operations/s", file=sys.stderr)  # fmt: skip
                rounds.append(result)
        return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk's")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    args = parser.parse_args()
    results = {name: measure(name, args) for name in args.stores.split(",")}
    report(results, args)


def report(results: dict[str, list[Writes]], args: argparse.Namespace) -> None:
    """Medians over the rounds; the ratio is the median of each round's own ratio."""
    print(
        f"\ncreate + update to Succeeded, durable; operations/s; c={args.connections}, "
        f"{args.seconds}s per measurement, {args.rounds} round(s); "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'store':<10}{'bare loop':>11}{'opstatus':>10}{'ratio':>7}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'failed':>8}{'cores':>7}{'cpu ms/op':>11}"
    )
    for name, rounds in results.items():
        median = statistics.median
        print(
            f"{name:<10}{median(r.bare for r in rounds):>11,.0f}"
            f"{median(r.opstatus for r in rounds):>10,.0f}{median(r.ratio for r in rounds):>7.2f}"
            f"{median(r.p50_ms for r in rounds):>8.2f}{median(r.p99_ms for r in rounds):>8.2f}"
            f"{sum(r.failed for r in rounds):>8}{median(r.server_cores for r in rounds):>7.2f}"
            f"{median(r.cpu_ms for r in rounds):>11.2f}"
        )
        record(
            "writes",
            {
                "store": name,
                "connections": args.connections,
                "seconds": args.seconds,
                "load_average": os.getloadavg()[0],
                "rounds": [{**vars(r), "ratio": r.ratio, "cpu_ms": r.cpu_ms} for r in rounds],
            },
        )
    print(
        "p50/p99: of each PUT or PATCH, as wrk saw it; cores: CPU the opstatus process used "
        "per second;\ncpu ms/op: its CPU time per operation (the bare loop's whole time per "
        "operation is 1000 / its rate)"
    )


if __name__ == "__main__":
    main()

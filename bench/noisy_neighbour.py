"""Noisy neighbour: does a flood from principal A hurt principal B's latency?

    python bench/noisy_neighbour.py --rounds 5 --seconds 5 --flood-connections 64

One opstatus server (SQLite, --ops seeded operations, default limits unless told). B is a
well-behaved poller: wrk with --quiet-connections connections, each pausing --quiet-delay-ms
between requests (under its rate limit). In each round B's p50/p99 are measured alone, then
while A floods with wrk at full speed on --flood-connections connections; medians over the
rounds are reported, since the machines are shared and their load drifts. The same is
repeated with the rate limit off, to show what the limit buys. Prints a table; appends to
bench/results/noisy_neighbour.jsonl. Needs wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    STATUS_PATH_FMT,
    SUB,
    Load,
    Wrk,
    gets_script,
    opstatus_args,
    record,
    scratch,
    seed_sqlite,
    server,
    start_wrk,
)
from opstatus.auth import load_or_create_key, mint_token  # noqa: E402


def gets(
    url: str, count: int, token: str, seconds: int, connections: int, delay_ms: int = 0
) -> Wrk:
    """Status GETs from wrk in the background; ``delay_ms`` pauses each connection between
    its requests."""
    script = gets_script(STATUS_PATH_FMT, count, token)
    if delay_ms:
        script += f"\ndelay = function()\n  return {delay_ms}\nend\n"
    return start_wrk(url, script, seconds, connections, threads=1)


def finish(run: Wrk) -> Load:
    return Load.from_wrk(run.finish())


def scenario(
    args: argparse.Namespace, home: Path, rate_limit: float, tokens: dict[str, str]
) -> dict[str, list[Load]]:
    """Rounds of (B alone, then B while A floods), interleaved so that drifts in the
    machine's own load hit both sides alike."""
    argv = [*opstatus_args(home, rate_limit=rate_limit), "--max-connections", "4096"]
    results: dict[str, list[Load]] = {"B alone": [], "B during flood": [], "A flooding": []}
    seconds = args.seconds
    with server(argv) as url:
        quiet = (args.quiet_connections, args.quiet_delay_ms)
        finish(gets(url, args.ops, tokens["B"], 2, *quiet))  # warm-up
        for _ in range(args.rounds):
            alone = gets(url, args.ops, tokens["B"], seconds, *quiet)
            results["B alone"].append(finish(alone))
            flood = gets(url, args.ops, tokens["A"], seconds + 2, args.flood_connections)
            time.sleep(1)
            loaded = gets(url, args.ops, tokens["B"], seconds, *quiet)
            results["B during flood"].append(finish(loaded))
            results["A flooding"].append(finish(flood))
            time.sleep(1)  # let held rejections drain before B runs alone again
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=5, help="per phase and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--flood-connections", type=int, default=64)
    parser.add_argument("--quiet-connections", type=int, default=2)
    parser.add_argument("--quiet-delay-ms", type=int, default=25)
    parser.add_argument("--rate-limit", type=float, default=100.0, help="as serve's default")
    parser.add_argument("--skip-unlimited", action="store_true")
    args = parser.parse_args()

    with scratch() as home:
        seed_sqlite(home / "opstatus.db", args.ops)  # the store serve opens by default
        key = load_or_create_key(home)
        scope = [("Reader", f"/subscriptions/{SUB}")]
        tokens = {who: mint_token(key, f"principal-{who}", scope, 24 * 3600) for who in "AB"}
        limited = f"rate limit {args.rate_limit:g}/s"
        runs = {limited: scenario(args, home, args.rate_limit, tokens)}
        if not args.skip_unlimited:
            runs["no rate limit"] = scenario(args, home, 0, tokens)
    report(runs, args)


def median(loads: list[Load], field: str) -> float:
    return float(statistics.median(getattr(x, field) for x in loads))


def report(runs: dict[str, dict[str, list[Load]]], args: argparse.Namespace) -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nnoisy neighbour: A floods with c={args.flood_connections}, B polls with "
        f"c={args.quiet_connections} every {args.quiet_delay_ms} ms; {args.rounds} rounds of "
        f"{args.seconds}s per phase; medians over rounds; load average {load:.1f}"
    )
    print(f"{'server':<20}{'client':<16}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'non-2xx':>9}{'errors':>8}   p99 per round")  # fmt: skip
    for name, results in runs.items():
        for who, loads in results.items():
            rounds = " ".join(f"{x.p99_ms:.1f}" for x in loads)
            print(f"{name:<20}{who:<16}{median(loads, 'rps'):>9,.0f}"
                  f"{median(loads, 'p50_ms'):>9.2f}{median(loads, 'p99_ms'):>9.2f}"
                  f"{sum(x.non2xx for x in loads):>9}{sum(x.errors for x in loads):>8}"
                  f"   {rounds}")  # fmt: skip
        ratio = median(results["B during flood"], "p99_ms") / median(results["B alone"], "p99_ms")
        print(f"{name:<20}{'B p99 ratio':<16}{ratio:>36.2f}x")
    record(
        "noisy_neighbour",
        {
            "seconds": args.seconds,
            "rounds": args.rounds,
            "flood_connections": args.flood_connections,
            "quiet_connections": args.quiet_connections,
            "quiet_delay_ms": args.quiet_delay_ms,
            "load_average": load,
            **{
                name: {who: [vars(x) for x in loads] for who, loads in res.items()}
                for name, res in runs.items()
            },
        },
    )


if __name__ == "__main__":
    main()

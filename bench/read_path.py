"""Status GET throughput and latency, with the two baselines measured in the same run.

    python bench/read_path.py --ops 1000000 --seconds 10 --connections 64
    python bench/read_path.py --store postgres --ops 1000000 --seconds 8
    python bench/read_path.py --ops 1000000 --seconds 10 --no-fast-reads-too

Seeds a store with --ops operations (an SQLite file, or with --store postgres a throwaway
PostgreSQL database next to --dsn's, dropped at the end), then drives GETs of random ids with
a valid bearer token on every request against: opstatus, a bare ASGI app returning a constant
document, and the hand-written FastAPI + SQLAlchemy + pydantic endpoint on the same
database; with --no-fast-reads-too also opstatus without its fast lane for status reads
(``opstatus serve --no-fast-reads``). Prints a table of req/s, p50, p99 and the ratios; appends to
bench/results/read_path.jsonl. Needs wrk (apt-get install wrk) and the bench extra
(pip install -e ".[bench]").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    Load,
    opstatus_args,
    reader_token,
    record,
    scratch,
    server,
    status_load,
    uvicorn_args,
)
from bench.pg import DEFAULT_DSN  # noqa: E402
from bench.stores import KINDS, Seeded, seeded  # noqa: E402

#: What --no-fast-reads-too adds to opstatus's command line.
NO_FAST_READS = ["--no-fast-reads"]
#: The row of the server NO_FAST_READS starts.
NO_FAST_READS_ROW = "no fast reads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--scale-to",
        type=int,
        default=0,
        metavar="N",
        help="also measure opstatus with --workers N, reported against its --workers run",
    )
    parser.add_argument(
        "--no-fast-reads-too",
        action="store_true",
        help="also measure opstatus serve --no-fast-reads, reported against the bare app",
    )
    parser.add_argument("--skip-handwritten", action="store_true")
    parser.add_argument("--store", choices=KINDS, default="sqlite")
    parser.add_argument(
        "--dsn", default=DEFAULT_DSN, help="PostgreSQL to make the throwaway database beside"
    )
    args = parser.parse_args()

    with scratch() as home, seeded(args.store, home, args.ops, args.dsn, "read_path") as store:
        print(f"seeded {args.ops} operations in {store.seed_seconds:.1f} s", file=sys.stderr)
        results = run(args, home, store)
    report(results, args, store)


def run(args: argparse.Namespace, home: Path, store: Seeded) -> dict[str, Load]:
    key, token = reader_token(home)

    def measure(name: str, argv: list[str], env: dict[str, str] | None = None) -> Load:
        with server(argv, env, health="/healthz" if name == "opstatus" else "/") as url:
            load = status_load(url, args.ops, token, args.seconds, args.connections)
        print(f"  {name}: {load.rps:,.0f} req/s", file=sys.stderr)
        return load

    opstatus_argv = opstatus_args(home, store.url)
    if args.workers > 1:
        opstatus_argv += ["--workers", str(args.workers)]
    results: dict[str, Load] = {
        "bare ASGI": measure("bare", uvicorn_args("bench.baselines.bare:app", args.workers)),
        "opstatus": measure("opstatus", opstatus_argv),
    }
    if not args.skip_handwritten:
        env = {
            "BENCH_DB_URL": store.sqlalchemy_url,
            "BENCH_DB_TABLE": store.table,
            "BENCH_KEY_HEX": key.hex(),
        }
        results["hand-written"] = measure(
            "handwritten", uvicorn_args("bench.baselines.handwritten:app", args.workers), env
        )
    if args.scale_to > 1:
        scaled = [*opstatus_args(home, store.url), "--workers", str(args.scale_to)]
        results[f"opstatus x{args.scale_to}"] = measure("opstatus", scaled)
    if args.no_fast_reads_too:
        results[NO_FAST_READS_ROW] = measure("opstatus", [*opstatus_argv, *NO_FAST_READS])
    return results


def report(results: dict[str, Load], args: argparse.Namespace, store: Seeded) -> None:
    bare = results["bare ASGI"].rps
    hand = results.get("hand-written")
    print(
        f"\nstatus GET, {store.kind}, {args.ops:,} operations, c={args.connections}, "
        f"workers={args.workers}, {args.seconds}s"
    )
    print(
        f"{'server':<15}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'x bare':>8}{'x hand':>8}"
    )
    for name, load in results.items():
        vs_hand = f"{load.rps / hand.rps:8.2f}" if hand else f"{'-':>8}"
        print(
            f"{name:<15}{load.rps:>10,.0f}{load.p50_ms:>9.2f}{load.p99_ms:>9.2f}"
            f"{load.errors + load.non2xx:>8}{load.rps / bare:>8.2f}{vs_hand}"
        )
    scaled = results.get(f"opstatus x{args.scale_to}")
    if scaled is not None:
        print(
            f"opstatus with {args.scale_to} workers: {scaled.rps / results['opstatus'].rps:.2f}x "
            f"its throughput with {args.workers}"
        )
    slow = results.get(NO_FAST_READS_ROW)
    if slow is not None:
        print(
            f"opstatus --no-fast-reads: {slow.rps / bare:.2f}x bare ASGI, "
            f"against {results['opstatus'].rps / bare:.2f}x with fast reads"
        )
    record(
        "read_path",
        {
            "store": store.kind,
            "ops": args.ops,
            "seed_seconds": round(store.seed_seconds, 1),
            "connections": args.connections,
            "workers": args.workers,
            "seconds": args.seconds,
            **{name: vars(load) for name, load in results.items()},
        },
    )


if __name__ == "__main__":
    main()

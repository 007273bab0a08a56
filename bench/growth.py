"""Does a status read get slower, or the server bigger, as the store fills up?

    python bench/growth.py [--sizes 1000,10000000] [--store sqlite|postgres] [--seconds 10]

Seeds one store per size (an SQLite file, or with --store postgres a throwaway PostgreSQL
database next to --dsn's; all removed at the end, also on error). Then, round after round,
for each size in turn (interleaved, so that drifts in a shared machine's load hit every size
alike): starts opstatus on that store, reads its resident memory once it is up and idle,
drives status GETs of random ids with a valid bearer token (wrk, 2 s warm-up, then
--seconds), reads its memory again, stops it. Prints the medians over the rounds per size
and the ratios of the largest size to the smallest; appends to bench/results/growth.jsonl.

Targets: p50 and p99 within LATENCY_LIMIT of each other, and idle memory within RSS_LIMIT,
since a server's memory should hold bounded caches and nothing that grows with the store.
After the load, its private memory (RssAnon) is held to the same limit; its resident file
pages are shown beside it (they include the part of an SQLite file the reads mapped, which
is the kernel's page cache, shared and reclaimable: see READ_MAP_BYTES in stores/sqlite.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    Load,
    opstatus_args,
    reader_token,
    record,
    rss_mib,
    scratch,
    started,
    status_load,
)
from bench.pg import DEFAULT_DSN  # noqa: E402
from bench.stores import KINDS, Seeded, seeded  # noqa: E402

LATENCY_LIMIT = 1.5
#: Memory is "independent of the store" within this: allocator noise is a few per cent.
RSS_LIMIT = 1.1
#: How long a started server sits before its idle memory is read (startup tasks settle).
IDLE_SECONDS = 1.0


@dataclass
class Sample:
    """One run of one server: its load, and its memory before and after it (MiB)."""

    load: Load
    idle_rss_mib: float
    loaded_rss_mib: float
    #: After the load: the private part of loaded_rss_mib, and its file pages.
    loaded_private_mib: float
    loaded_file_mib: float

    def figures(self) -> dict[str, float]:
        """What the table shows, by COLUMNS."""
        return {
            "rps": self.load.rps,
            "p50_ms": self.load.p50_ms,
            "p99_ms": self.load.p99_ms,
            "idle_rss_mib": self.idle_rss_mib,
            "loaded_rss_mib": self.loaded_rss_mib,
            "loaded_private_mib": self.loaded_private_mib,
            "loaded_file_mib": self.loaded_file_mib,
        }


COLUMNS = (
    "rps",
    "p50_ms",
    "p99_ms",
    "idle_rss_mib",
    "loaded_rss_mib",
    "loaded_private_mib",
    "loaded_file_mib",
)


def sizes(text: str) -> list[int]:
    """'1000,10_000_000' -> [1000, 10000000]."""
    values = sorted({int(x) for x in text.split(",") if x.strip()})
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError("sizes are whole numbers of operations, at least 1")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=sizes, default=[1_000, 10_000_000])
    parser.add_argument("--store", choices=KINDS, default="sqlite")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--dsn", default=DEFAULT_DSN, help="PostgreSQL to make the throwaway databases beside"
    )
    args = parser.parse_args()

    with scratch() as home, ExitStack() as stores:
        seeds = []
        for size in args.sizes:
            store = stores.enter_context(seeded(args.store, home, size, args.dsn, f"growth_{size}"))
            print(f"seeded {size:,} in {store.seed_seconds:.1f} s", file=sys.stderr)
            seeds.append(store)
        _, token = reader_token(home)
        samples: dict[int, list[Sample]] = {size: [] for size in args.sizes}
        for round_ in range(args.rounds):
            for store in seeds:
                sample = measure(store, home, token, args)
                samples[store.count].append(sample)
                print(f"  round {round_ + 1}, {store.count:,}: {sample.load.rps:,.0f} req/s, "
                      f"p99 {sample.load.p99_ms:.1f} ms", file=sys.stderr)  # fmt: skip
    report(seeds, samples, args)


def measure(store: Seeded, home: Path, token: str, args: argparse.Namespace) -> Sample:
    with started(opstatus_args(home, store.url)) as server:
        time.sleep(IDLE_SECONDS)
        idle = rss_mib(server.pid)
        load = status_load(server.url, store.count, token, args.seconds, args.connections)
        pid = server.pid
        return Sample(load, idle, rss_mib(pid), rss_mib(pid, "RssAnon"), rss_mib(pid, "RssFile"))


def medians(samples: list[Sample]) -> dict[str, float]:
    """Each figure's median over the rounds."""
    figures = [s.figures() for s in samples]
    return {c: float(statistics.median(f[c] for f in figures)) for c in COLUMNS}


def report(seeds: list[Seeded], samples: dict[int, list[Sample]], args: argparse.Namespace) -> None:
    middle = {size: medians(runs) for size, runs in samples.items()}
    small, large = min(middle), max(middle)
    ratios = {c: middle[large][c] / middle[small][c] for c in COLUMNS}
    print(
        f"\nstatus GET as the store grows, {args.store}, c={args.connections}, {args.seconds}s, "
        f"medians over {args.rounds} rounds"
    )
    print(f"{'operations':>12}{'seed s':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
          f"{'idle MiB':>10}{'loaded MiB':>12}{'private':>9}{'file':>8}"
          "   p99 per round")  # fmt: skip
    for store in seeds:
        runs, m = samples[store.count], middle[store.count]
        errors = sum(s.load.errors + s.load.non2xx for s in runs)
        rounds = " ".join(f"{s.load.p99_ms:.1f}" for s in runs)
        print(f"{store.count:>12,}{store.seed_seconds:>8.1f}{m['rps']:>9,.0f}{m['p50_ms']:>9.2f}"
              f"{m['p99_ms']:>9.2f}{errors:>8}{m['idle_rss_mib']:>10.1f}"
              f"{m['loaded_rss_mib']:>12.1f}{m['loaded_private_mib']:>9.1f}"
              f"{m['loaded_file_mib']:>8.1f}   {rounds}")  # fmt: skip
    print(f"{f'{large:,}/{small:,}':>20}{ratios['rps']:>9.2f}{ratios['p50_ms']:>9.2f}"
          f"{ratios['p99_ms']:>9.2f}{'':>8}{ratios['idle_rss_mib']:>10.2f}"
          f"{ratios['loaded_rss_mib']:>12.2f}{ratios['loaded_private_mib']:>9.2f}"
          f"{ratios['loaded_file_mib']:>8.2f}")  # fmt: skip
    verdicts = {
        "p50": ratios["p50_ms"] <= LATENCY_LIMIT,
        "p99": ratios["p99_ms"] <= LATENCY_LIMIT,
        "idle RSS": ratios["idle_rss_mib"] <= RSS_LIMIT,
        "loaded private memory": ratios["loaded_private_mib"] <= RSS_LIMIT,
    }
    print(f"limits: latency x{LATENCY_LIMIT}, memory x{RSS_LIMIT}: "
          + ", ".join(f"{k} {'ok' if v else 'OVER'}" for k, v in verdicts.items()))  # fmt: skip
    record(
        "growth",
        {
            "store": args.store,
            "connections": args.connections,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "sizes": {
                str(store.count): {
                    "seed_seconds": round(store.seed_seconds, 1),
                    "median": middle[store.count],
                    "rounds": [asdict(s) for s in samples[store.count]],
                }
                for store in seeds
            },
            "ratios": ratios,
            "within_limits": verdicts,
        },
    )


if __name__ == "__main__":
    main()

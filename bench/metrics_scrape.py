"""Does a /metrics scrape cost more as the store grows, and do scrapers slow the reads?

    python bench/metrics_scrape.py [--sizes 1000,1000000] [--seconds 12] [--scrapers 8]

Seeds one SQLite file per size (removed at the end). Then, round after round, for each size
in turn (interleaved, so that drifts in a shared machine's load hit every size alike):
starts opstatus on that store, scrapes once and waits until the background count shows every
operation, then for --seconds runs --scrapers threads that scrape /metrics back to back (one
keep-alive connection each, every scrape timed) while wrk drives status GETs of random ids
(c=--connections). Last it reads from the server's own metrics how many counting queries it
made (``opstatus_store_call_duration_seconds{call="counts"}``) and how long they took.

Before that, one scraper scrapes alone for ALONE_SECONDS: the plain cost of a scrape.
Prints the medians over the rounds per size, and the ratios of the largest size to the
smallest; appends to bench/results/metrics_scrape.jsonl. The goal: a lone scraper's latency
within LATENCY_LIMIT at either size, and at most one counting query per COUNTS_INTERVAL
however many scrape.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    STATUS_PATH_FMT,
    Load,
    gets_script,
    opstatus_args,
    reader_token,
    record,
    scratch,
    start_wrk,
    started,
)
from bench.pg import DEFAULT_DSN  # noqa: E402
from bench.stores import seeded  # noqa: E402
from opstatus.metrics import COUNTS_INTERVAL  # noqa: E402

LATENCY_LIMIT = 1.5
#: How long one scraper scrapes alone, before the scrapers and the reads.
ALONE_SECONDS = 3.0


@dataclass
class Sample:
    #: One scraper alone, scrape after scrape: what a scrape costs.
    alone_p50_ms: float
    alone_p99_ms: float
    #: --scrapers at once while wrk reads.
    scrapes: int
    scrape_p50_ms: float
    scrape_p99_ms: float
    scrape_max_ms: float
    #: Counting queries the server made during the run, and their mean duration.
    counts: int
    count_mean_ms: float
    read_rps: float
    read_p99_ms: float


COLUMNS = tuple(Sample.__dataclass_fields__)


def sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=sizes, default=[1_000, 1_000_000])
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--scrapers", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with scratch() as home, ExitStack() as stores:
        seeds = []
        for size in args.sizes:
            store = stores.enter_context(seeded("sqlite", home, size, DEFAULT_DSN, f"m_{size}"))
            print(f"seeded {size:,} in {store.seed_seconds:.1f} s", file=sys.stderr)
            seeds.append(store)
        _, token = reader_token(home)
        samples: dict[int, list[Sample]] = {size: [] for size in args.sizes}
        for round_ in range(args.rounds):
            for store in seeds:
                sample = measure(store.url, store.count, home, token, args)
                samples[store.count].append(sample)
                print(f"  round {round_ + 1}, {store.count:,}: scrape p50 "
                      f"{sample.scrape_p50_ms:.2f} ms, p99 {sample.scrape_p99_ms:.2f} ms, "
                      f"{sample.counts} counts", file=sys.stderr)  # fmt: skip
    report(samples, args)


def measure(url: str, count: int, home: Path, token: str, args: argparse.Namespace) -> Sample:
    with started(opstatus_args(home, url)) as server:
        before = counted(server.url, count)
        alone: list[float] = []
        scrape(server.url, time.monotonic() + ALONE_SECONDS, alone)
        alone.sort()
        reads = start_wrk(
            server.url, gets_script(STATUS_PATH_FMT, count, token), args.seconds, args.connections
        )
        times: list[float] = []
        stop = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=scrape, args=(server.url, stop, times))
            for _ in range(args.scrapers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        load = Load.from_wrk(reads.finish())
        calls, seconds = counting_queries(httpx.get(server.url + "/metrics").text)
    times.sort()
    made = calls - before[0]
    return Sample(
        alone_p50_ms=percentile(alone, 0.5),
        alone_p99_ms=percentile(alone, 0.99),
        scrapes=len(times),
        scrape_p50_ms=percentile(times, 0.5),
        scrape_p99_ms=percentile(times, 0.99),
        scrape_max_ms=times[-1] * 1000,
        counts=int(made),
        count_mean_ms=(seconds - before[1]) / made * 1000 if made else 0.0,
        read_rps=load.rps,
        read_p99_ms=load.p99_ms,
    )


def percentile(sorted_seconds: list[float], fraction: float) -> float:
    """In milliseconds."""
    return sorted_seconds[min(len(sorted_seconds) - 1, int(len(sorted_seconds) * fraction))] * 1000


def counted(url: str, count: int) -> tuple[float, float]:
    """Scrape until the background count shows ``count`` operations; the counting queries
    made so far (see counting_queries)."""
    deadline = time.monotonic() + 120
    while True:
        text = httpx.get(url + "/metrics", timeout=30).text
        shown = sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "opstatus_operations"
        )
        if shown == count:
            return counting_queries(text)
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server counted {shown} operations, not {count}")
        time.sleep(0.2)


def counting_queries(text: str) -> tuple[float, float]:
    """How many counting queries the server has made, and their seconds in all."""
    calls = seconds = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("call") != "counts":
                continue
            if sample.name == "opstatus_store_call_duration_seconds_count":
                calls += sample.value
            elif sample.name == "opstatus_store_call_duration_seconds_sum":
                seconds += sample.value
    return calls, seconds


def scrape(url: str, stop: float, times: list[float]) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        while time.monotonic() < stop:
            started_at = time.perf_counter()
            response = client.get("/metrics")
            elapsed = time.perf_counter() - started_at
            response.raise_for_status()
            times.append(elapsed)  # list.append is atomic under the GIL


def report(samples: dict[int, list[Sample]], args: argparse.Namespace) -> None:
    middle = {
        size: {c: float(statistics.median(getattr(s, c) for s in runs)) for c in COLUMNS}
        for size, runs in samples.items()
    }
    small, large = min(middle), max(middle)
    print(f"\n/metrics on SQLite, {args.scrapers} scrapers for {args.seconds} s, status GETs "
          f"c={args.connections} meanwhile, medians over {args.rounds} rounds")  # fmt: skip
    print(f"{'operations':>12}{'alone p50':>10}{'p99':>7}{'scrapes':>9}{'p50 ms':>9}"
          f"{'p99 ms':>9}{'max ms':>9}"
          f"{'counts':>8}{'count ms':>10}{'reads/s':>10}{'read p99':>10}")  # fmt: skip
    for size, m in middle.items():
        print(f"{size:>12,}{m['alone_p50_ms']:>10.2f}{m['alone_p99_ms']:>7.2f}"
              f"{m['scrapes']:>9,.0f}{m['scrape_p50_ms']:>9.2f}"
              f"{m['scrape_p99_ms']:>9.2f}{m['scrape_max_ms']:>9.2f}{m['counts']:>8.0f}"
              f"{m['count_mean_ms']:>10.1f}{m['read_rps']:>10,.0f}"
              f"{m['read_p99_ms']:>10.2f}")  # fmt: skip
    ratio = {c: middle[large][c] / middle[small][c] if middle[small][c] else 0.0 for c in COLUMNS}
    print(f"{f'{large:,}/{small:,}':>12}{ratio['alone_p50_ms']:>10.2f}"
          f"{ratio['alone_p99_ms']:>7.2f}{'':>9}{ratio['scrape_p50_ms']:>9.2f}"
          f"{ratio['scrape_p99_ms']:>9.2f}{ratio['scrape_max_ms']:>9.2f}{'':>18}"
          f"{ratio['read_rps']:>10.2f}{ratio['read_p99_ms']:>10.2f}")  # fmt: skip
    most = args.seconds / COUNTS_INTERVAL + 1
    verdicts = {  # under load the figures also carry the shared cores' noise: shown, not held
        f"alone p50 x{LATENCY_LIMIT}": ratio["alone_p50_ms"] <= LATENCY_LIMIT,
        f"alone p99 x{LATENCY_LIMIT}": ratio["alone_p99_ms"] <= LATENCY_LIMIT,
        f"counts <= {most:.0f} per run": all(m["counts"] <= most for m in middle.values()),
    }
    print("goals: " + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in verdicts.items()))
    record(
        "metrics_scrape",
        {
            "scrapers": args.scrapers,
            "seconds": args.seconds,
            "connections": args.connections,
            "rounds": args.rounds,
            "medians": {str(size): m for size, m in middle.items()},
            "runs": {str(size): [asdict(s) for s in runs] for size, runs in samples.items()},
        },
    )


if __name__ == "__main__":
    main()

"""Two versions of opstatus under the same status GET load, in turn: which costs less?

    python bench/compare.py --base HEAD~1 --ops 1000000 --rounds 4 --seconds 6

Compares the working tree with the commit ``--base`` names (checked out into a temporary git
worktree), both serving the same seeded store (``--store``: SQLite, or a throwaway PostgreSQL
database, whose own processes are not pinned and whose CPU is not counted). A change of a
few per cent is smaller than what a shared machine's load does to req/s from one minute to
the next, so this measures what that moves least:
- the server pinned to CPU 0 and wrk to CPU 1, so that they never take each other's core;
- rounds that alternate between the two versions, so that a drift hits both;
- besides req/s, the server's CPU time per request (user + system).

Prints every run and the medians per version; appends to bench/results/compare.jsonl.
Needs Linux with two cores, git, taskset (util-linux) and wrk.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ROOT,
    STATUS_PATH_FMT,
    cpu_seconds,
    opstatus_args,
    reader_token,
    record,
    scratch,
    started,
    wrk,
)
from bench.pg import DEFAULT_DSN  # noqa: E402
from bench.stores import KINDS, seeded  # noqa: E402

SERVER_CPU, LOAD_CPU = 0, 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--store", choices=KINDS, default="sqlite")
    parser.add_argument(
        "--dsn", default=DEFAULT_DSN, help="PostgreSQL to make the throwaway database beside"
    )
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("compare.py pins the server and the load to two different CPUs")
    os.sched_setaffinity(0, {LOAD_CPU})  # this process and wrk, which it starts

    runs: dict[str, list[tuple[float, float]]] = {"base": [], "working tree": []}
    with (
        scratch() as home,
        worktree(args.base) as base_src,
        seeded(args.store, home, args.ops, args.dsn, "compare") as store,
    ):
        _, token = reader_token(home)
        sources = {"base": base_src, "working tree": ROOT / "src"}
        for round_ in range(args.rounds):
            for name, src in sources.items():
                rps, cpu_us = measure(src, home, store.url, token, args)
                runs[name].append((rps, cpu_us))
                print(f"  round {round_ + 1}, {name}: {rps:,.0f} req/s, "
                      f"{cpu_us:.1f} us CPU per request", file=sys.stderr)  # fmt: skip
    report(runs, args)


@contextmanager
def worktree(commit: str) -> Iterator[Path]:
    """The ``src`` folder of ``commit``, checked out into a temporary git worktree."""
    with tempfile.TemporaryDirectory(prefix="opstatus-base-") as folder:
        path = Path(folder) / "tree"
        git = ["git", "-C", str(ROOT)]
        subprocess.run([*git, "worktree", "add", "--detach", "-q", str(path), commit], check=True)
        try:
            yield path / "src"
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(path)], check=True)


def measure(
    src: Path, home: Path, store_url: str, token: str, args: argparse.Namespace
) -> tuple[float, float]:
    """req/s, and the server's CPU microseconds per request, for opstatus from ``src``."""
    argv = ["taskset", "-c", str(SERVER_CPU), *opstatus_args(home, store_url)]
    with started(argv, {"PYTHONPATH": str(src)}) as server:
        wrk(server.url, STATUS_PATH_FMT, args.ops, token, 2, args.connections)  # warm up
        before = cpu_seconds(server.pid)
        load = wrk(server.url, STATUS_PATH_FMT, args.ops, token, args.seconds, args.connections)
        used = cpu_seconds(server.pid) - before
    if load.errors or load.non2xx:
        raise SystemExit(f"{load.errors} errors and {load.non2xx} non-2xx answers from {src}")
    return load.rps, used / (load.rps * args.seconds) * 1e6


def report(runs: dict[str, list[tuple[float, float]]], args: argparse.Namespace) -> None:
    medians = {
        name: (statistics.median(r for r, _ in got), statistics.median(c for _, c in got))
        for name, got in runs.items()
    }
    (base_rps, base_cpu), (new_rps, new_cpu) = medians["base"], medians["working tree"]
    print(f"\nstatus GET, {args.store}, {args.ops:,} operations, c={args.connections}, server on "
          f"CPU {SERVER_CPU}, wrk on CPU {LOAD_CPU}, medians of {args.rounds} rounds")  # fmt: skip
    print(f"{'version':<14}{'req/s':>9}{'CPU us/req':>12}")
    for name, (rps, cpu) in medians.items():
        print(f"{name:<14}{rps:>9,.0f}{cpu:>12.1f}")
    print(f"working tree / base: req/s x{new_rps / base_rps:.2f}, CPU per request "
          f"x{new_cpu / base_cpu:.2f}")  # fmt: skip
    record(
        "compare",
        {
            "base": args.base,
            "store": args.store,
            "ops": args.ops,
            "rounds": args.rounds,
            "seconds": args.seconds,
            "runs": {name: [list(r) for r in got] for name, got in runs.items()},
        },
    )


if __name__ == "__main__":
    main()

"""Schemathesis against a live ``opstatus serve``: no 5xx, every answer as the document says.

    python scripts/fuzz.py --examples 200 --max-time 600 --seed 7   # the long run: >= 10,000 cases
    python scripts/fuzz.py --store postgres                          # the same on PostgreSQL

Starts a real server on a fresh home and a loopback port (on SQLite, or on a throwaway
PostgreSQL database with ``--store postgres``), mints an Owner token,
and runs ``st run`` on the server's own ``/openapi.json``, both forms (ARM and classic),
with every phase (examples, coverage, fuzzing, stateful) and every check schemathesis has,
configured by scripts/schemathesis.toml (which says why for each exception). The server
holds a ``Prefer: wait=N`` read at most a second, so that a generated wait cannot outlast
the request timeout. Then reads the server's own ``/metrics`` for the number of 5xx it
answered, and its log for unhandled errors. Prints the figures; exits 1 on any failure,
5xx or logged error. The CI test (tests/e2e/test_fuzz.py) runs the same with fewer examples.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pg import throwaway_database  # noqa: E402
from tests.support import ServerProcess  # noqa: E402

from scripts.crash_trials import DEFAULT_POSTGRES  # noqa: E402

#: Every check is on unless this says otherwise for an operation (a --checks option would
#: override it for every operation).
CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"
#: What the generated requests keep of the rules a JSON Schema cannot state.
HOOKS = Path(__file__).resolve().parent / "fuzz_hooks.py"


@dataclass
class FuzzResult:
    cases: int
    failures: int
    errors: int
    server_errors: int
    requests: int
    seconds: float
    log_errors: list[str]
    report: dict[str, object]
    output: str

    @property
    def ok(self) -> bool:
        return (
            self.failures == 0
            and self.errors == 0
            and self.server_errors == 0
            and not self.log_errors
            and self.report.get("exit_code") == 0
        )


def schemathesis_command() -> list[str]:
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if st is None:
        raise SystemExit("schemathesis is not installed: pip install -e '.[test]'")
    return [st]


def served_by_status(url: str) -> tuple[int, int]:
    """(all requests, 5xx answers) as the server's own /metrics counts them."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    total = errors = 0
    for family in text_string_to_metric_families(text):
        if family.name != "opstatus_http_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                total += int(sample.value)
                if sample.labels["status"].startswith("5"):
                    errors += int(sample.value)
    return total, errors


def run(
    home: Path,
    examples: int,
    seed: int,
    workers: int = 1,
    timeout: float = 3600,
    max_time: float | None = None,
    store: str | None = None,
) -> FuzzResult:
    """``store``: a migrated PostgreSQL database's URL; None for the home's SQLite file."""
    extra = ("--store", store) if store else ()
    server = ServerProcess(
        home,
        *("--retry-after", "1", "--rate-limit", "0", "--max-wait", "1"),
        # Webhook URLs name localhost (fuzz_hooks.py): allowed, and never sent to.
        *("--webhook-allow-network", "127.0.0.0/8", "--webhook-allow-network", "::1/128"),
        *("--webhook-concurrency", "0"),
        *extra,
    ).start()
    report_dir = home.parent / "schemathesis"
    started = time.monotonic()
    try:
        command = [
            *schemathesis_command(),
            "--config-file",
            str(CONFIG),
            "run",
            f"{server.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {server.token('Owner', '/')}",
            "--max-examples",
            str(examples),
            "--seed",
            str(seed),
            "--workers",
            str(workers),
            "--report",
            "json",
            "--report-dir",
            str(report_dir),
            "--request-timeout",
            "30",
            *(["--max-time", str(int(max_time))] if max_time else []),
        ]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=home.parent,
            env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
        )
        requests, server_errors = served_by_status(server.url)
    finally:
        server.stop()
    seconds = time.monotonic() - started
    reports = sorted(report_dir.glob("json-*.json"))
    report = json.loads(reports[-1].read_text()) if reports else {"exit_code": done.returncode}
    cases = report.get("test_cases", {})
    log = server.log.read_text(errors="replace")
    log_errors = [line for line in log.splitlines() if "ERROR" in line or "Traceback" in line]
    return FuzzResult(
        cases=int(cases.get("generated", 0)),
        failures=int(cases.get("with_failures", 0)),
        errors=int(cases.get("errored", 0)),
        server_errors=server_errors,
        requests=requests,
        seconds=seconds,
        log_errors=log_errors,
        report=report,
        output=done.stdout[-20000:] + done.stderr[-5000:],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300, help="max examples per operation")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--max-time", type=float, default=None, help="repeat fuzzing/stateful for this long (s)"
    )
    parser.add_argument("--timeout", type=float, default=3600, help="give up after (s)")
    parser.add_argument("--min-cases", type=int, default=10_000)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES,
        help="with --store postgres: a database on the server to make the throwaway one "
        "beside [env: OPSTATUS_TEST_POSTGRES; default: %(default)s]",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="opstatus-fuzz-") as tmp, ExitStack() as stack:
        home = Path(tmp) / "home"
        home.mkdir()
        store = None
        if args.store == "postgres":
            store = stack.enter_context(throwaway_database(args.postgres_url, "fuzz", home))
        result = run(
            home, args.examples, args.seed, args.workers, args.timeout, args.max_time, store
        )
    print(result.output[-3000:])
    print(f"seed                      {args.seed}")
    print(f"examples per operation    {args.examples}")
    print(f"test cases generated      {result.cases}")
    print(f"cases with failures       {result.failures}")
    print(f"cases errored             {result.errors}")
    print(f"requests served           {result.requests}")
    print(f"5xx answers (server)      {result.server_errors}")
    print(f"error lines in server log {len(result.log_errors)}")
    print(f"time                      {result.seconds:.0f} s")
    for line in result.log_errors[:20]:
        print("  ", line[:300])
    if result.cases < args.min_cases:
        print(f"FAIL: fewer than {args.min_cases} cases; raise --examples")
        sys.exit(1)
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()

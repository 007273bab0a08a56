"""Shared pieces of the benchmarks: seeding a store, running servers, driving wrk.

Load always comes from a separate process (wrk) on loopback, bounded in time. Every figure
is reported next to baselines measured in the same run, because the machines are shared.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from opstatus.stores.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parent.parent
SUB = "e7b5a9d2-6b6a-4d2f-9143-20d9a10f5b8f"
RESULTS = ROOT / "bench" / "results"
#: The status GET every read benchmark drives: one %07d slot for the id (see op_id).
STATUS_PATH_FMT = (
    f"/subscriptions/{SUB}/providers/Microsoft.Cache/locations/westus/operationsStatus/"
    "op-%07d?api-version=2025-07-01"
)


def op_id(i: int) -> str:
    return f"op-{i:07d}"


def sqlite_schema(path: Path) -> SQLiteStore:
    """An SQLite file with opstatus's schema, made by the store itself (it migrates when
    opened); returns the store, closed, whose connection settings are the server's."""
    store = SQLiteStore(path)
    asyncio.run(store.open())
    asyncio.run(store.close())
    return store


def seed_sqlite(path: Path, count: int) -> None:
    """Bulk-load ``count`` InProgress operations straight into an opstatus SQLite file.

    The rows are made by SQLite itself (a recursive CTE), with no journal and no syncs: ten
    million take about half a minute, where an executemany from Python took two and a half
    times as long. The ids come in key order, so both indexes fill by appending.
    """
    sqlite_schema(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")  # a failed seed is thrown away, not rolled back
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")  # 256 MiB
        conn.execute("BEGIN")
        conn.execute(_SEED_SQLITE, (count - 1, SUB, SEED_TIME))
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")  # as opstatus leaves its files
    finally:
        conn.close()


#: When every seeded operation started (and was created and updated).
SEED_TIME = "2026-01-01T00:00:00.000Z"
#: The rows of seed_sqlite: ids as op_id() writes them, etags as 16 hex digits of the index.
_SEED_SQLITE = (
    "WITH RECURSIVE n(i) AS (SELECT 0 WHERE ?1 >= 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) "
    "INSERT INTO operations (subscription_id, operation_key, operation_id, namespace, "
    "location, status, start_time, etag, created_at, updated_at, create_digest) "
    "SELECT ?2, printf('op-%07d', i), printf('op-%07d', i), 'Microsoft.Cache', 'westus', "
    "'InProgress', ?3, printf('%016x', i), ?3, ?3, 'seed' FROM n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Running:
    """A started server: where it answers, and its process id (for its memory or its CPU
    time: rss_mib(), cpu_seconds())."""

    url: str
    pid: int


@contextmanager
def started(
    args: list[str], env: dict[str, str] | None = None, health: str = "/healthz"
) -> Iterator[Running]:
    """Start a server process on a free port (``{port}`` in ``args``), once ``health``
    answers; stop it after.

    Its standard error goes to a file, not a pipe: opstatus writes an audit line there for
    every write, and a pipe nobody reads would fill and stall the server mid-benchmark.
    """
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in args]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(log.read().decode(errors="replace")[-4000:] or "exited")
                try:
                    httpx.get(url + health, timeout=1)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            yield Running(url, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def server(
    args: list[str], env: dict[str, str] | None = None, health: str = "/healthz"
) -> Iterator[str]:
    """:func:`started`, for callers that need only the base URL."""
    with started(args, env, health) as running:
        yield running.url


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux), all its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int, part: str = "VmRSS") -> float:
    """Resident memory of a process, in MiB, from /proc/<pid>/status (Linux only): all of it
    (VmRSS), or its private part (RssAnon: what the process itself allocated) or its file
    pages (RssFile: code, and the store's file where SQLite maps it, which is the kernel's
    page cache, shared and reclaimable)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{part}:"):
            return int(line.split()[1]) / 1024  # the kernel writes kB, meaning KiB
    raise RuntimeError(f"no {part} for process {pid}")


@contextmanager
def scratch() -> Iterator[Path]:
    """A home folder for one run (signing key, SQLite files), removed after it."""
    with tempfile.TemporaryDirectory(prefix="opstatus-bench-") as folder:
        yield Path(folder)


def opstatus_args(home: Path, store: str | None = None, rate_limit: float = 0) -> list[str]:
    """``opstatus serve`` on {port}, for :func:`started` or :func:`server`: quiet, on
    ``store`` (a URL ``serve --store`` takes; else the SQLite file of ``home``), and by
    default with no per-principal rate limit, since one token drives all the load."""
    return [
        sys.executable,
        "-m",
        "opstatus",
        "serve",
        "--home",
        str(home),
        *(["--store", store] if store else []),
        "--port",
        "{port}",
        "--log-level",
        "warning",
        "--rate-limit",
        f"{rate_limit:g}",
    ]


def reader_token(home: Path) -> tuple[bytes, str]:
    """The signing key of the opstatus home ``home`` (made if need be), and a day's token
    of a Reader of the benchmark subscription."""
    from opstatus.auth import load_or_create_key, mint_token

    key = load_or_create_key(home)
    return key, mint_token(key, "bench", [("Reader", f"/subscriptions/{SUB}")], 24 * 3600)


def uvicorn_args(app: str, workers: int = 1) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--port",
        "{port}",
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--no-access-log",
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    ]


#: wrk runs this script once per thread: each seeds its own generator (setup hands it a seed
#: of its own, from the run's own random %(seed)d), or every thread would ask for the same ids
#: in the same order. Fill it in with gets_script().
WRK_SCRIPT = """
local ids = %(count)d
local token = "%(token)s"
local fmt = "%(path_fmt)s"
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("seed", %(seed)d + threads)
end
init = function(args)
  math.randomseed(seed)
end
request = function()
  local path = string.format(fmt, math.random(0, ids - 1))
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end
done = function(summary, latency, requests)
  io.write(string.format(
    "WRKJSON {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"errors\\": %%d, \\"non2xx\\": %%d, "
    .. "\\"p50_us\\": %%d, \\"p99_us\\": %%d}\\n",
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
"""


def gets_script(path_fmt: str, count: int, token: str) -> str:
    """:data:`WRK_SCRIPT` for GETs of random ids among ``count``; ``path_fmt`` has one
    %07d-style slot for the id. Each call seeds its wrk threads afresh."""
    seed = random.randrange(1 << 30)
    return WRK_SCRIPT % {"count": count, "token": token, "path_fmt": path_fmt, "seed": seed}


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    non2xx: int

    @classmethod
    def from_wrk(cls, data: dict[str, Any]) -> Load:
        """From the WRKJSON line of :data:`WRK_SCRIPT`'s done()."""
        return cls(
            rps=data["requests"] / (data["duration_us"] / 1e6),
            p50_ms=data["p50_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            errors=data["errors"],
            non2xx=data["non2xx"],
        )


@dataclass(frozen=True)
class Wrk:
    """wrk running in the background (see :func:`start_wrk`)."""

    proc: subprocess.Popen[str]
    script: str
    seconds: int

    def finish(self) -> dict[str, Any]:
        """Wait for wrk to end; the object its script's done() wrote (:func:`parse_wrk`)."""
        try:
            out, err = self.proc.communicate(timeout=self.seconds + 60)
        except BaseException:  # a timeout, or SIGTERM (bench.pg): no wrk left behind
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            os.unlink(self.script)
        return parse_wrk(out, err)


def start_wrk(url: str, script: str, seconds: int, connections: int, threads: int = 2) -> Wrk:
    """Start wrk with a Lua ``script`` whose done() writes one line ``WRKJSON {...}``."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s"]
    try:
        proc = subprocess.Popen(
            [*argv, "--timeout", "10s", "-s", f.name, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except BaseException:
        os.unlink(f.name)
        raise
    return Wrk(proc, f.name, seconds)


def run_wrk(
    url: str, script: str, seconds: int, connections: int, threads: int = 2
) -> dict[str, Any]:
    """:func:`start_wrk`, then wait for it: the object of its ``WRKJSON`` line."""
    return start_wrk(url, script, seconds, connections, threads).finish()


def parse_wrk(out: str, err: str = "") -> dict[str, Any]:
    """The object on the ``WRKJSON {...}`` line a wrk script's done() writes to wrk's output
    (``err``, wrk's standard error, says why when there is none)."""
    line = next((x for x in out.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {err or out}")
    data: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    return data


def wrk(
    url: str,
    path_fmt: str,
    count: int,
    token: str,
    seconds: int,
    connections: int,
    threads: int = 2,
) -> Load:
    """Drive GETs of random ids with wrk; ``path_fmt`` has one %07d-style slot for the id."""
    script = gets_script(path_fmt, count, token)
    return Load.from_wrk(run_wrk(url, script, seconds, connections, threads))


def status_load(url: str, count: int, token: str, seconds: int, connections: int) -> Load:
    """Status GETs of random ids among ``count`` (STATUS_PATH_FMT): 2 s to warm up, then
    ``seconds`` measured."""
    wrk(url, STATUS_PATH_FMT, count, token, 2, connections)
    return wrk(url, STATUS_PATH_FMT, count, token, seconds, connections)


def record(name: str, result: dict[str, object]) -> None:
    """Append one machine-readable line to bench/results/<name>.jsonl."""
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / f"{name}.jsonl", "a") as f:
        f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **result}) + "\n")

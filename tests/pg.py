"""PostgreSQL for the tests: the machine's server, a database per test, throwaway clusters.

Tests use PostgreSQL for real. ``OPSTATUS_TEST_POSTGRES`` names a server's maintenance
database (default: the local ``test`` database, as CI machines have it); each test gets a
database of its own, copied from a template that ``opstatus``'s own migrator set up once per
session, and dropped afterwards. Names carry the process id, so other people's tests on the
same server are not disturbed. Where no server answers, these tests skip with the reason,
except under ``CI=true``, where they fail: CI must not pass by running none of them.

:class:`Cluster` is a whole server of the test's own (initdb into a temporary folder, its
own port, the machine's ``pg_ctl``), for the tests that stop and start PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pwd
import queue
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import asyncpg
import pytest

from opstatus.stores import PostgreSQLStore
from tests.support import free_port

ADMIN_URL = os.environ.get("OPSTATUS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PREFIX = f"opstatus_test_{os.getpid()}"
_numbers = itertools.count()


def unavailable(reason: str) -> None:
    """Skip (or, under CI=true, fail) a test that needs something PostgreSQL-related."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)", pytrace=False)
    pytest.skip(reason)


def url_for(database: str, base: str = ADMIN_URL) -> str:
    return base.rsplit("/", 1)[0] + f"/{database}"


async def admin(sql: str, url: str = ADMIN_URL) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def run_admin(sql: str, url: str = ADMIN_URL) -> None:
    asyncio.run(admin(sql, url))


def check_server() -> None:
    try:
        run_admin("SELECT 1")
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        unavailable(
            f"PostgreSQL is not reachable at {ADMIN_URL} ({type(exc).__name__}: {exc}); "
            "start it, or set OPSTATUS_TEST_POSTGRES to a server's URL"
        )


async def create_database() -> str:
    """A new, empty, uniquely named database; returns its URL."""
    name = f"{PREFIX}_{next(_numbers)}"
    await admin(f'CREATE DATABASE "{name}"')
    return url_for(name)


async def drop(url: str) -> None:
    await admin(_drop_sql(url))


def new_database() -> str:
    return asyncio.run(create_database())


def drop_database(url: str) -> None:
    asyncio.run(drop(url))


class Databases:
    """Copies of a template, made ahead and dropped behind by two worker threads.

    CREATE and DROP DATABASE each cost the server a few fsyncs (about half a second here);
    done beside the tests instead of in their setup and teardown, and beside each other (a
    third of the time of one after the other), the tests hardly wait for them.
    """

    AHEAD = 2

    def __init__(self, template: str) -> None:
        self.template = template
        self._ready: queue.Queue[str | BaseException] = queue.Queue()
        self._to_create: queue.Queue[bool] = queue.Queue()
        self._to_drop: queue.Queue[str | None] = queue.Queue()
        for _ in range(self.AHEAD):
            self._to_create.put(True)
        self._threads = [
            threading.Thread(target=asyncio.run, args=(work,), daemon=True)
            for work in (self._create(), self._drop())
        ]
        for thread in self._threads:
            thread.start()

    def take(self) -> str:
        self._to_create.put(True)  # to replace the one taken
        item = self._ready.get(timeout=120)
        if isinstance(item, BaseException):
            raise item
        return item

    def give_back(self, url: str) -> None:
        self._to_drop.put(url)

    def close(self) -> None:
        self._to_create.put(False)
        self._threads[0].join(120)
        while not self._ready.empty():  # made ahead, never taken
            item = self._ready.get_nowait()
            if isinstance(item, str):
                self._to_drop.put(item)
        self._to_drop.put(None)
        self._threads[1].join(120)

    async def _create(self) -> None:
        conn = await asyncpg.connect(ADMIN_URL, timeout=5)
        try:
            while await asyncio.to_thread(self._to_create.get):
                name = f"{PREFIX}_{next(_numbers)}"
                try:
                    await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
                except Exception as exc:  # handed to the test that takes it
                    self._ready.put(exc)
                else:
                    self._ready.put(url_for(name))
        finally:
            await conn.close()

    async def _drop(self) -> None:
        conn = await asyncpg.connect(ADMIN_URL, timeout=5)
        try:
            while (url := await asyncio.to_thread(self._to_drop.get)) is not None:
                await conn.execute(_drop_sql(url))
        finally:
            await conn.close()


def _drop_sql(url: str) -> str:
    return f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'


async def drop_leftovers() -> None:
    """Drop databases that test sessions which died (no cleanup) left on the server."""
    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        names = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE 'opstatus\\_test\\_%'"
        )
        for (name,) in names:
            pid = name.split("_")[2]
            if pid.isdigit() and not _alive(int(pid)):
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_template() -> str:
    """A database with the schema, migrated by opstatus itself; returns its name."""
    url = new_database()
    applied = asyncio.run(PostgreSQLStore(url).migrate())
    assert applied.schema is not None  # an empty database takes schema.sql
    return url.rsplit("/", 1)[1]


def bin_dir() -> Path:
    """Where initdb and pg_ctl live: OPSTATUS_TEST_PG_BIN, pg_config, PATH, or Debian's."""
    candidates = []
    if os.environ.get("OPSTATUS_TEST_PG_BIN"):
        candidates.append(Path(os.environ["OPSTATUS_TEST_PG_BIN"]))
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(Path(out.stdout.strip()))
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb") or "").resolve().parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    unavailable("initdb and pg_ctl not found; set OPSTATUS_TEST_PG_BIN to their folder")
    raise AssertionError("unreachable")


class Cluster:
    """A PostgreSQL server of the test's own: initdb, its own port, pg_ctl start and stop.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres``
    user (in a folder of its own under the system's temporary folder, which it can reach).
    """

    def __init__(self) -> None:
        self.bin = bin_dir()
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="opstatus-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"
            owner = pwd.getpwnam(self.user)
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)

    def init(self) -> Cluster:
        done = self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        if done.returncode != 0:
            unavailable(f"initdb failed: {done.stderr.strip()[:500]}")
        return self

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        done = self._run(
            "pg_ctl", "start", "-w", "-t", "30", "-D", str(self.data), "-l", str(self.log),
            "-o", options,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr + self.log.read_text()

    def stop(self, mode: str = "fast") -> None:
        done = self._run("pg_ctl", "stop", "-w", "-t", "30", "-m", mode, "-D", str(self.data))
        assert done.returncode == 0, done.stderr

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-w", "-t", "30", "-m", "immediate", "-D", str(self.data))
        shutil.rmtree(self.folder, ignore_errors=True)

    def database(self, name: str) -> str:
        """Create a database with opstatus's schema in this cluster; returns its URL."""
        run_admin(f'CREATE DATABASE "{name}"', self.url)
        url = url_for(name, self.url)
        asyncio.run(PostgreSQLStore(url).migrate())
        return url

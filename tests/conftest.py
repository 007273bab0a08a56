from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pg
from tests.support import ServerProcess


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def server(home: Path) -> Iterator[ServerProcess]:
    """A real ``opstatus serve`` process with its own home and SQLite store."""
    proc = ServerProcess(home, "--retry-after", "0").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[pg.Databases]:
    """Copies of a database that opstatus migrated once per session (the template)."""
    pg.check_server()
    asyncio.run(pg.drop_leftovers())
    template = pg.make_template()
    databases = pg.Databases(template)
    yield databases
    databases.close()
    pg.drop_database(pg.url_for(template))


@pytest.fixture
def pg_url(pg_databases: pg.Databases) -> Iterator[str]:
    """The URL of a fresh PostgreSQL database with opstatus's schema, for this test alone."""
    url = pg_databases.take()
    yield url
    pg_databases.give_back(url)


@pytest.fixture
def pg_empty_url(pg_databases: pg.Databases) -> Iterator[str]:
    """The URL of a fresh PostgreSQL database with no schema at all."""
    url = pg.new_database()
    yield url
    pg_databases.give_back(url)

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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

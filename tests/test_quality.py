"""The codebase's own standards, checked like any other behaviour."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import opstatus

ROOT = Path(__file__).resolve().parent.parent


def test_public_api_is_pinned() -> None:
    assert sorted(opstatus.__all__) == sorted(
        [
            "CANCELED",
            "FAILED",
            "IN_PROGRESS",
            "SUCCEEDED",
            "AsyncClient",
            "AsyncOperationPoller",
            "AsyncProducer",
            "CancelRequested",
            "Client",
            "ClientError",
            "Operation",
            "OperationFailed",
            "OperationPoller",
            "OperationStatus",
            "Producer",
            "WaitTimeout",
        ]
    )
    for name in opstatus.__all__:
        assert hasattr(opstatus, name)
    for name in opstatus.client.__all__:
        assert hasattr(opstatus.client, name)


def test_every_package_folder_is_a_package() -> None:
    """A folder without __init__.py installs from a checkout but not from `pip install .`."""
    for folder in (ROOT / "src" / "opstatus").rglob("*"):
        if folder.is_dir() and folder.name != "__pycache__":
            assert (folder / "__init__.py").exists(), folder


def test_every_data_file_is_package_data() -> None:
    """SQL files reach a `pip install .` only if pyproject's package-data names them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["opstatus"]
    package = ROOT / "src" / "opstatus"
    data = [p for p in package.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert any(p.suffix == ".sql" for p in data)
    for path in data:
        relative = path.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed")
def test_ruff_is_clean() -> None:
    result = subprocess.run(
        ["ruff", "check", "src", "tests"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_mypy_strict_is_clean() -> None:
    pytest.importorskip("mypy")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "src/opstatus"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout

"""Schemathesis against a real server process, over both forms of the served OpenAPI
document with every check (scripts/schemathesis.toml): at least 1,000 generated cases, zero
5xx, zero check failures. The long run is scripts/fuzz.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from scripts.fuzz import run

pytestmark = pytest.mark.e2e

#: Fixed, so that a failure here reproduces: ``python scripts/fuzz.py --examples 10 --seed 8``.
SEED = 8


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_thousand_generated_requests_get_no_5xx_and_conform(
    home: Path, store: str, request: pytest.FixtureRequest
) -> None:
    """On both stores: their status reads take different lanes (server/fast_lane.py)."""
    url = request.getfixturevalue("pg_url") if store == "postgres" else None
    result = run(home, examples=10, seed=SEED, timeout=300, store=url)
    assert result.cases >= 1000, result.output
    assert result.failures == 0 and result.errors == 0, result.output
    assert result.server_errors == 0, result.output
    assert result.requests >= result.cases
    assert not result.log_errors, result.log_errors
    assert result.ok, result.output

"""The server's event log settings: what ``serve`` is told reaches the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from opstatus.events import START
from opstatus.stores import MemoryStore
from tests.support import app_client, bearer, status_path

pytestmark = pytest.mark.anyio


async def test_progress_events_kept_is_the_servers_setting(home: Path) -> None:
    store = MemoryStore()
    async with app_client(home, store=store, progress_events_kept=2) as client:
        client.headers.update(bearer(home))
        assert (await client.put(status_path(), json={})).status_code == 201
        for percent in (10, 20, 30, 40):
            response = await client.patch(status_path(), json={"percentComplete": percent})
            assert response.status_code == 200
        events = await store.events(START, 100)
    assert [(e.type, e.data.get("percentComplete")) for e in events] == [
        ("created", None),
        ("progress", 30.0),
        ("progress", 40.0),
    ]

"""opstatus.Client and AsyncClient against a real server process: lists over every page,
counts, cancel and purge, producers, and tracking resumed from the status URL alone."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import subprocess
import sys
import time
import weakref

import pytest

from opstatus import (
    AsyncClient,
    CancelRequested,
    Client,
    ClientError,
    OperationFailed,
    OperationPoller,
)
from opstatus.client import AsyncOperationPoller
from tests.support import SUB_A, SUB_B, ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(server: ServerProcess) -> Client:
    with Client(server.url, server.token("Owner", f"/subscriptions/{SUB_A}")) as c:
        yield c  # type: ignore[misc]


def test_list_iterates_every_page_with_filters(client: Client) -> None:
    for i in range(11):
        client.create(SUB_A, "westus", f"op-{i:02d}", kind="resize" if i % 2 else "backup")
    client.create(SUB_A, "eastus", "elsewhere")
    listed = list(client.list(SUB_A, "westus", page_size=3))
    assert [op.name for op in listed] == [f"op-{i:02d}" for i in range(10, -1, -1)]
    assert listed[0].url == client.status_url(SUB_A, "westus", "op-10")
    assert listed[0].lease_seconds == 86400  # full detail comes with every item
    pages = list(client.list_pages(SUB_A, page_size=5, kind=["resize"]))
    assert [len(page) for page in pages] == [5]
    assert len(list(client.list(SUB_A))) == 12  # every location
    assert client.counts(SUB_A, "westus", kind="backup") == {"InProgress": 6}


def test_cancel_and_purge(client: Client) -> None:
    op = client.create(SUB_A, "westus", "job")
    asked = client.cancel(op.url)
    assert asked.cancel_requested and asked.status == "InProgress"
    client.update(op.url, status="Canceled")
    assert client.purge(SUB_A, "westus", status="Canceled") == 1
    with pytest.raises(ClientError) as info:
        client.get(op.url)
    assert (info.value.status_code, info.value.code) == (404, "OperationExpired")


def test_producer_marks_the_outcome_and_keeps_the_lease_alive(client: Client) -> None:
    op = client.create(SUB_A, "westus", "work", lease_seconds=2)
    with client.producer(op.url, heartbeat=0.2) as job:
        first = job.report(10)
        time.sleep(1.0)  # longer than a beat: the thread renews the lease meanwhile
        assert client.get(op.url).lease_expires_at > first.lease_expires_at  # type: ignore[operator]
        job.result = {"answer": 42}
    assert job.status is not None and job.status.succeeded
    assert client.get(op.url).properties == {"answer": 42}

    failing = client.create(SUB_A, "westus", "failing")
    with pytest.raises(KeyError), client.producer(failing.url):
        raise KeyError("no such widget")
    final = client.get(failing.url)
    assert (final.status, final.error_code, final.error_message) == (
        "Failed",
        "KeyError",
        "'no such widget'",
    )


def test_producer_sees_a_cancel_request_on_its_next_report(client: Client) -> None:
    op = client.create(SUB_A, "westus", "cancel-me")
    steps = []
    with client.producer(op.url) as job:
        for step in range(100):
            if step == 3:
                client.cancel(op.url)  # someone else asks
            job.report(step)
            steps.append(step)
    assert steps == [0, 1, 2]
    final = client.get(op.url)
    assert final.status == "Canceled" and final.error_code == "OperationCanceled"


def test_resume_from_the_url_after_the_client_is_gone(server: ServerProcess) -> None:
    token = server.token("Contributor", f"/subscriptions/{SUB_A}")
    first = Client(server.url, token)
    op = first.create(SUB_A, "westus", status="InProgress")
    saved = first.poller(op.url).continuation_token()
    first.close()
    gone = weakref.ref(first)
    del first, op
    gc.collect()
    assert gone() is None

    with Client(server.url, token) as producer:
        producer.update(saved, percent_complete=100, status="Succeeded", properties={"n": 1})
    with OperationPoller.from_url(saved, token) as poller:
        assert poller.result(timeout=10) == {"n": 1}
        assert poller.done()


def test_resume_in_a_new_process(server: ServerProcess) -> None:
    """One process starts tracking and exits; another resumes from the URL it printed."""
    token = server.token("Contributor", f"/subscriptions/{SUB_A}")
    start = (
        "import sys; from opstatus import Client\n"
        "with Client(sys.argv[1], sys.argv[2]) as c:\n"
        f"    print(c.poller(c.create('{SUB_A}', 'westus').url).continuation_token())\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", start, server.url, token], capture_output=True, text=True, check=True
    )
    url = run.stdout.strip()
    resume = (
        "import json, sys; from opstatus import OperationPoller\n"
        "with OperationPoller.from_url(sys.argv[1], sys.argv[2]) as p:\n"
        "    print(json.dumps(p.result(timeout=30)))\n"
    )
    waiting = subprocess.Popen(
        [sys.executable, "-c", resume, url, token], stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(0.5)
        with Client(server.url, token) as producer:
            producer.update(url, status="Succeeded", properties={"resumed": True})
        out, _ = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
    assert waiting.returncode == 0
    assert json.loads(out) == {"resumed": True}


def test_result_raises_when_the_operation_failed(client: Client) -> None:
    op = client.create(
        SUB_A, "westus", status="Failed", error={"code": "DiskFull", "message": "Full."}
    )
    with pytest.raises(OperationFailed) as info:
        client.poller(op.url).result()
    assert info.value.status.error_code == "DiskFull"
    assert "DiskFull: Full." in str(info.value)


def test_location_urls_work_as_status_urls(client: Client) -> None:
    op = client.create(SUB_A, "westus", "located")
    location = op.url.replace("/operationsStatus/", "/operationResults/")
    assert client.get(client.resolve(location)).name == "located"
    assert client.poller(location).url == op.url


# --- async ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_client_round_trip(server: ServerProcess) -> None:
    async with AsyncClient(server.url, server.token("Owner", "/")) as client:
        for i in range(4):
            await client.create(SUB_B, "westus", f"a-{i}", kind="k")
        names = [op.name async for op in client.list(SUB_B, page_size=3)]
        assert names == ["a-3", "a-2", "a-1", "a-0"]
        assert await client.counts(SUB_B) == {"InProgress": 4}

        async with client.producer(client.status_url(SUB_B, "westus", "a-0")) as job:
            await job.report(50)
            job.result = {"ok": True}
        poller = AsyncOperationPoller.from_url(job.url, server.token("Reader", "/"))
        async with poller:
            assert await poller.result() == {"ok": True}

        with pytest.raises(RuntimeError):
            async with client.producer(client.status_url(SUB_B, "westus", "a-1")):
                raise RuntimeError("boom")
        failed = await client.get(client.status_url(SUB_B, "westus", "a-1"))
        assert (failed.error_code, failed.error_message) == ("RuntimeError", "boom")

        url = client.status_url(SUB_B, "westus", "a-2")
        await client.cancel(url)
        async with client.producer(url) as job:
            await job.report(10)
        assert job.status is not None and job.status.status == "Canceled"
        assert (await client.purge(SUB_B, status=["Canceled", "Failed"])) == 2


@pytest.mark.anyio
async def test_a_cancelled_task_marks_its_operation_canceled(server: ServerProcess) -> None:
    async with AsyncClient(server.url, server.token("Owner", "/")) as client:
        op = await client.create(SUB_A, "westus", "task")
        started = asyncio.Event()

        async def work() -> None:
            async with client.producer(op.url):
                started.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(work())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        final = await client.get(op.url)
        assert final.status == "Canceled"


def test_cancel_requested_is_an_exception_a_producer_may_catch(client: Client) -> None:
    op = client.create(SUB_A, "westus", "stubborn")
    client.cancel(op.url)
    with client.producer(op.url) as job:
        with contextlib.suppress(CancelRequested):  # best effort: it finishes anyway
            job.report(10)
        job.result = {"finished": "anyway"}
    assert client.get(op.url).status == "Succeeded"

"""The dashboard in Chromium against a real server: sign-in, the list's filter and pages, an
operation's detail going live, cancel as a Contributor and not as a Reader, the page after a
server restart, accessibility (axe-core) of every page, and the screenshots in the docs."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from tests.support import SUB_A, ServerProcess, status_path
from tests.ui.conftest import check_accessibility, screenshot, sign_in

pytestmark = pytest.mark.e2e

PutOp = Callable[..., dict[str, Any]]


def detail_path(op_id: str, location: str = "westus") -> str:
    return f"/ui/operations/{SUB_A}/Microsoft.Cache/{location}/{op_id}"


def contributor(server: ServerProcess) -> str:
    return server.token("Contributor", f"/subscriptions/{SUB_A}", subject="carol")


def reader(server: ServerProcess) -> str:
    return server.token("Reader", f"/subscriptions/{SUB_A}", subject="rita")


def test_sign_in_shows_who_and_keeps_the_token_in_the_tab_only(
    page: Any, server: ServerProcess
) -> None:
    token = contributor(server)
    sign_in(page, server, token)
    expect(page.locator("#who .name")).to_have_text("carol")
    expect(page.locator("#who .roles")).to_have_text(f"Contributor on /subscriptions/{SUB_A}")
    assert page.evaluate("sessionStorage.getItem('opstatus.token')") == token
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    assert token not in page.url
    # Signing out forgets it.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Bearer token")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('opstatus.token')") is None


def test_an_invalid_token_is_refused_with_the_servers_message(
    page: Any, server: ServerProcess
) -> None:
    page.goto(server.url + "/ui/")
    page.get_by_label("Bearer token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_contain_text("token")
    expected = httpx.get(
        f"{server.url}/principal?api-version=2025-07-01",
        headers={"Authorization": "Bearer not-a-token"},
    ).json()["error"]["message"]
    expect(page.locator("#signin-error")).to_have_text(expected)
    assert page.evaluate("sessionStorage.getItem('opstatus.token')") is None
    expect(page.locator("#who")).to_be_hidden()


def test_a_token_the_server_stops_accepting_returns_to_sign_in(
    page: Any, server: ServerProcess
) -> None:
    sign_in(page, server, contributor(server))
    page.evaluate("sessionStorage.setItem('opstatus.token', 'forged')")
    page.get_by_role("link", name="Operations").click()
    expect(page.get_by_label("Bearer token")).to_be_visible()
    expect(page.locator("#signin-error")).not_to_be_empty()


def test_the_list_filters_by_the_url_and_pages(
    page: Any, server: ServerProcess, put_op: PutOp
) -> None:
    for i in range(12):
        put_op(f"run-{i:02}", percentComplete=i)
    boom = {"code": "Boom", "message": "It broke."}
    put_op("broke-1", status="Failed", error=boom, startTime="2026-01-01T10:00:00Z")
    put_op(
        "broke-2", location="eastus", status="Failed", error=boom, startTime="2026-01-01T11:00:00Z"
    )
    sign_in(page, server, contributor(server), f"/ui/operations?sub={SUB_A}&size=10")
    expect(page.locator("table.ops caption")).to_have_text("10 operations on page 1")
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("table.ops caption")).to_have_text("4 operations on page 2")
    page.get_by_role("button", name="Previous page").click()
    expect(page.locator("table.ops caption")).to_have_text("10 operations on page 1")

    # The filter goes into the URL, and the URL alone opens the same list.
    page.get_by_label("Failed").check()
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("table.ops caption")).to_have_text("2 operations on page 1")
    query = parse_qs(urlsplit(page.url).query)
    assert query["status"] == ["Failed"] and query["sub"] == [SUB_A]
    shared = page.url
    page.get_by_label("Provider").select_option("Microsoft.Cache")
    page.get_by_label("Location").fill("eastus")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("table.ops tbody tr")).to_have_count(1)
    expect(page.locator("table.ops tbody th")).to_have_text("broke-2")
    page.go_back()
    expect(page.locator("table.ops caption")).to_have_text("2 operations on page 1")
    names = page.locator("table.ops tbody th")
    expect(names).to_have_text(["broke-2", "broke-1"])  # newest start first
    page.get_by_label("Sort by").select_option("startTime asc")
    page.get_by_role("button", name="Apply").click()
    expect(names).to_have_text(["broke-1", "broke-2"])
    assert parse_qs(urlsplit(page.url).query)["order"] == ["startTime asc"]

    # An id prefix, with no status: the running ones whose ids start so.
    page.get_by_label("Failed").uncheck()
    page.get_by_label("Id starts with").fill("run-1")
    page.get_by_role("button", name="Apply").click()
    expect(names).to_have_text(["run-10", "run-11"])
    # Another tab (its own session: signed in anew) opens the shared URL to the same list.
    other = page.context.new_page()
    sign_in(other, server, contributor(server), shared.removeprefix(server.url))
    expect(other.locator("table.ops caption")).to_have_text("2 operations on page 1")
    expect(other.locator("table.ops tbody th")).to_have_text(["broke-2", "broke-1"])
    expect(other.get_by_label("Failed")).to_be_checked()


def test_the_list_and_the_detail_go_live_to_succeeded(
    page: Any, server: ServerProcess, put_op: PutOp, producer: httpx.Client
) -> None:
    put_op("job-live", percentComplete=10)
    sign_in(page, server, contributor(server), f"/ui/operations?sub={SUB_A}")
    row = page.locator("tr[data-id$='/job-live']")
    expect(row.locator(".pct")).to_have_text("10%")
    expect(page.locator(".stream-state")).to_have_attribute("data-state", "live")
    assert producer.patch(status_path(op_id="job-live"), json={"percentComplete": 55}).is_success
    expect(row.locator(".pct")).to_have_text("55%")

    row.get_by_role("link", name="job-live").click()
    expect(page.get_by_role("heading", name="Operation job-live")).to_be_visible()
    expect(page.locator(".facts .pct")).to_have_text("55%")
    expect(page.locator("table.events tbody tr")).to_have_count(2)  # created, progress
    assert producer.patch(status_path(op_id="job-live"), json={"percentComplete": 80}).is_success
    expect(page.locator(".facts .pct")).to_have_text("80%")
    done = producer.patch(
        status_path(op_id="job-live"), json={"status": "Succeeded", "properties": {"size": 3}}
    )
    assert done.is_success
    expect(page.locator(".facts .badge")).to_have_text("Succeeded")
    expect(page.locator(".facts .pct")).to_have_text("100%")
    expect(page.locator("table.events tbody tr")).to_have_count(4)
    expect(page.locator("#history-title + .stream-state")).to_have_attribute("data-state", "ended")
    expect(page.locator("pre.json")).to_contain_text('"size": 3')
    expect(page.get_by_role("button", name="Cancel operation…")).to_have_count(0)


def test_times_are_in_the_browsers_zone_with_utc_on_hover(
    browser: Any, server: ServerProcess, put_op: PutOp
) -> None:
    op = put_op("job-time", startTime="2026-03-01T12:00:00Z")
    context = browser.new_context(timezone_id="Asia/Tokyo", locale="en-GB")
    tab = context.new_page()
    try:
        sign_in(tab, server, contributor(server), detail_path("job-time"))
        started = tab.locator(".facts time").first
        expect(started).to_have_attribute("title", "2026-03-01 12:00:00 UTC")
        expect(started).to_have_text("01/03/2026, 21:00:00")  # Tokyo is UTC+9
        assert started.get_attribute("datetime") == op["startTime"]
    finally:
        context.close()


def test_a_contributor_cancels_after_confirming(
    page: Any, server: ServerProcess, put_op: PutOp, producer: httpx.Client
) -> None:
    put_op("job-cancel", percentComplete=20)
    sign_in(page, server, contributor(server), detail_path("job-cancel"))
    page.get_by_role("button", name="Cancel operation…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Cancel job-cancel?")
    dialog.get_by_role("button", name="Keep it running").click()
    expect(dialog).to_be_hidden()
    assert (
        "cancelRequestedAt"
        not in producer.get(
            status_path(op_id="job-cancel"), headers={"Prefer": "opstatus-detail=full"}
        ).json()
    )
    page.get_by_role("button", name="Cancel operation…").click()
    dialog.get_by_role("button", name="Cancel the operation").click()
    expect(page.get_by_text("Cancel requested: waiting for the producer")).to_be_visible()
    full = producer.get(status_path(op_id="job-cancel"), headers={"Prefer": "opstatus-detail=full"})
    assert "cancelRequestedAt" in full.json()


def test_a_reader_sees_no_cancel_and_a_forged_cancel_is_refused(
    page: Any, server: ServerProcess, put_op: PutOp, producer: httpx.Client
) -> None:
    put_op("job-read", percentComplete=30)
    sign_in(page, server, reader(server), detail_path("job-read"))
    expect(page.locator(".facts .pct")).to_have_text("30%")
    expect(page.get_by_role("button", name=re.compile("Cancel"))).to_have_count(0)
    status = page.evaluate(
        """async (url) => (await fetch(url, {method: "POST", headers: {
            Authorization: "Bearer " + sessionStorage.getItem("opstatus.token")}})).status""",
        status_path(op_id="job-read").replace("?", "/cancel?"),
    )
    assert status == 403
    full = producer.get(status_path(op_id="job-read"), headers={"Prefer": "opstatus-detail=full"})
    assert "cancelRequestedAt" not in full.json()


def test_live_updates_come_back_after_a_server_restart(
    page: Any, server: ServerProcess, put_op: PutOp, producer: httpx.Client
) -> None:
    put_op("job-restart", percentComplete=5)
    sign_in(page, server, contributor(server), f"/ui/operations?sub={SUB_A}")
    state = page.locator(".stream-state")
    expect(state).to_have_attribute("data-state", "live")
    server.stop()
    expect(state).to_have_attribute("data-state", "reconnecting")
    server.start()
    expect(state).to_have_attribute("data-state", "live", timeout=20_000)
    assert producer.patch(status_path(op_id="job-restart"), json={"percentComplete": 65}).is_success
    expect(page.locator("tr[data-id$='/job-restart'] .pct")).to_have_text("65%")
    # And the page itself still works: a new list from the restarted server.
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("table.ops caption")).to_have_text("1 operation on page 1")


def seed_for_pictures(put_op: PutOp, producer: httpx.Client) -> None:
    put_op("deploy-cache-eu", location="westeurope", percentComplete=62)
    put_op("resize-node-7", percentComplete=18)
    put_op("patch-os-fleet", location="eastus", percentComplete=91)
    put_op("backup-2026-12", status="Succeeded", properties={"bytes": 734003200})
    put_op(
        "failover-east",
        location="eastus",
        status="Failed",
        error={
            "code": "ReplicaUnavailable",
            "message": "The secondary replica did not answer within 300 seconds.",
            "target": "replica/eastus-2",
        },
    )
    put_op("scale-out-12", status="InProgress", percentComplete=40)
    put_op("import-legacy-db", location="eastus", percentComplete=7, leaseSeconds=1)
    assert producer.post(status_path(op_id="scale-out-12").replace("?", "/cancel?")).is_success


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_passes_axe_and_fits_the_screen(
    browser: Any, server: ServerProcess, put_op: PutOp, producer: httpx.Client, width: int
) -> None:
    """No serious or critical axe-core violation on the sign-in, overview, list and detail
    pages; at a phone's width nothing makes the page scroll sideways. The desktop run makes
    the screenshots of docs/dashboard.md."""
    seed_for_pictures(put_op, producer)
    context = browser.new_context(viewport={"width": width, "height": 900})
    tab = context.new_page()
    try:
        tab.goto(server.url + "/ui/")
        expect(tab.get_by_label("Bearer token")).to_be_visible()
        check_accessibility(tab)
        sign_in(tab, server, contributor(server))
        pages = {
            "overview": ("/ui/", "table.counts"),
            "list": (f"/ui/operations?sub={SUB_A}", "table.ops"),
            "detail": (detail_path("failover-east", "eastus"), "table.events tbody tr"),
        }
        time.sleep(1.2)  # import-legacy-db's lease lapses: it is stalled
        for name, (path, ready) in pages.items():
            tab.goto(server.url + path)
            tab.locator(ready).first.wait_for()
            if name == "overview":
                stalled = tab.get_by_role("region", name="Stalled (lease lapsed)")
                expect(stalled.locator("tbody th")).to_have_text(["import-legacy-db"])
                running = tab.get_by_role("region", name="Running now")
                expect(running.locator("tbody tr")).to_have_count(5)
                failed = tab.get_by_role("region", name="Recent failures")
                expect(failed.locator("tbody td").nth(1)).to_have_text("ReplicaUnavailable")
            check_accessibility(tab)
            overflow = tab.evaluate("document.documentElement.scrollWidth - innerWidth")
            assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
            if width == 1280:
                screenshot(tab, name)
    finally:
        context.close()


def test_the_keyboard_reaches_the_skip_link_then_the_navigation(
    page: Any, server: ServerProcess
) -> None:
    sign_in(page, server, contributor(server), f"/ui/operations?sub={SUB_A}")
    page.reload()  # the tab keeps its session: no sign-in again
    page.get_by_label("Subscription").wait_for()
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to content")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_attribute("id", "f-sub")  # the filter's first field


def test_the_detail_copies_its_urls(
    browser: Any, server: ServerProcess, producer: httpx.Client
) -> None:
    path = status_path(op_id="req-42", namespace="Opstatus.Classic", location="global")
    assert producer.put(path, json={"status": "InProgress"}).status_code == 201
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    tab = context.new_page()
    try:
        sign_in(
            tab,
            server,
            contributor(server),
            f"/ui/operations/{SUB_A}/Opstatus.Classic/global/req-42",
        )
        tab.get_by_role("button", name="Copy the ARM status URL").click()
        assert tab.evaluate("navigator.clipboard.readText()") == server.url + path
        tab.get_by_role("button", name="Copy the Classic status URL").click()
        copied = tab.evaluate("navigator.clipboard.readText()")
        assert copied == f"{server.url}/{SUB_A}/operations/req-42"
        classic = httpx.get(copied, headers={"x-ms-version": "2014-10-01", **producer.headers})
        assert classic.status_code == 200 and b"<Status>InProgress</Status>" in classic.content
    finally:
        context.close()

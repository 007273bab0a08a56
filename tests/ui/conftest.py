"""The dashboard in a real browser: the machine's Chromium (Debian's ``chromium``), driven by
Playwright, against real ``opstatus serve`` processes.

Playwright's own browser download is never used. Without /usr/bin/chromium these tests skip
with the reason, except under ``CI=true``, where they fail: CI must not pass by running none.
One browser serves a module (Playwright's sync API keeps an event loop running while it
is started, which anyio tests after it could not run beside); each test gets a fresh
context (its own sessionStorage), so no token leaks from one test into another.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import SUB_A, ServerProcess, status_path

CHROMIUM = Path(os.environ.get("OPSTATUS_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def unavailable(reason: str) -> None:
    """Skip (or, under CI=true, fail) a test that needs the browser."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the dashboard's browser tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        unavailable(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab of its own context; the test fails on any error the page's scripts throw
    or any console error (a refused request the page did not expect, a CSP violation)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and not expected_console_error(msg.text)
            else None
        ),
    )
    tab.problems = problems
    yield tab
    context.close()
    assert not problems, problems


def expected_console_error(text: str) -> bool:
    """Chromium logs every non-2xx answer to fetch as a console error; the tests that provoke
    one (a refused token, a server that is down) expect them."""
    return "Failed to load resource" in text or "net::ERR_" in text


@pytest.fixture
def producer(server: ServerProcess) -> Iterator[httpx.Client]:
    token = server.token("Contributor", f"/subscriptions/{SUB_A}", subject="producer")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def put_op(producer: httpx.Client) -> Callable[..., dict[str, Any]]:
    """Create (or update) an operation of subscription A as a producer does."""

    def put(op_id: str, location: str = "westus", **body: Any) -> dict[str, Any]:
        body.setdefault("status", "InProgress")
        response = producer.put(status_path(op_id=op_id, location=location), json=body)
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result

    return put


def sign_in(page: Any, server: ServerProcess, token: str, path: str = "/ui/") -> None:
    """Open ``path`` and sign in with ``token`` as a user does: paste it, press Sign in."""
    page.goto(server.url + path)
    page.get_by_label("Bearer token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#who .name").wait_for()


def check_accessibility(page: Any) -> None:
    """axe-core (as axe-playwright-python bundles it) run in the page: no serious or critical
    violation."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, "\n".join(bad)


def screenshot(page: Any, name: str) -> None:
    """A picture for docs/dashboard.md, made by the test run (docs/images/<name>.png)."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / f"{name}.png"), full_page=True)

"""http/ui.py: the dashboard's files, their headers, and that they carry no data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opstatus.http import ui
from tests.support import app_client

pytestmark = pytest.mark.anyio

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def assert_secured(headers: object) -> None:
    assert headers["content-security-policy"] == CSP  # type: ignore[index]
    assert headers["x-content-type-options"] == "nosniff"  # type: ignore[index]
    assert headers["referrer-policy"] == "no-referrer"  # type: ignore[index]
    assert "set-cookie" not in headers  # type: ignore[operator]


@pytest.mark.parametrize(
    "path", ["/ui/", "/ui/operations", "/ui/operations/s/p/l/job-1", "/ui/anything/else"]
)
async def test_every_page_path_answers_the_index_without_a_token(home: Path, path: str) -> None:
    async with app_client(home) as client:
        response = await client.get(path + "?sub=x&status=Failed")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert_secured(response.headers)
    assert ui.BUNDLE_MARK not in response.text
    assert '<script type="module" src="/ui/assets/' in response.text


async def test_ui_redirects_to_the_folder(home: Path) -> None:
    async with app_client(home) as client:
        response = await client.get("/ui")
    assert response.status_code == 307
    assert response.headers["location"].endswith("/ui/")


async def test_assets_are_named_by_the_bundle_and_cached_for_good(home: Path) -> None:
    async with app_client(home) as client:
        index = (await client.get("/ui/")).text
        (folder,) = set(re.findall(r"/ui/assets/([0-9a-f]+)/", index))
        js = await client.get(f"/ui/assets/{folder}/app.js")
        css = await client.get(f"/ui/assets/{folder}/app.css")
        page = await client.get(f"/ui/assets/{folder}/pages/detail.js")
        again = await client.get(
            f"/ui/assets/{folder}/app.js", headers={"If-None-Match": js.headers["etag"]}
        )
        stale = await client.get("/ui/assets/0123456789abcdef/app.js")
        missing = await client.get(f"/ui/assets/{folder}/nothing.js")
        index_as_asset = await client.get(f"/ui/assets/{folder}/index.html")
    assert js.status_code == css.status_code == page.status_code == 200
    assert js.headers["content-type"] == "text/javascript; charset=utf-8"
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert js.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert_secured(js.headers)
    assert js.content == (ui.STATIC / "app.js").read_bytes()
    assert again.status_code == 304 and not again.content
    for refused in (stale, missing, index_as_asset):
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "NotFound"


async def test_a_changed_file_changes_the_bundle(tmp_path: Path) -> None:
    folder = tmp_path / "static"
    folder.mkdir()
    (folder / "index.html").write_text(f'<script src="/ui/assets/{ui.BUNDLE_MARK}/a.js">')
    (folder / "a.js").write_text("export const a = 1;\n")
    first = ui.load(folder)
    (folder / "a.js").write_text("export const a = 2;\n")
    second = ui.load(folder)
    assert first.name != second.name
    assert f"/ui/assets/{second.name}/a.js".encode() in second.index


async def test_other_methods_are_refused(home: Path) -> None:
    async with app_client(home) as client:
        response = await client.post("/ui/operations", content=b"x")
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "HEAD"}
    assert response.json()["error"]["code"] == "MethodNotAllowed"


async def test_no_ui_serves_nothing(home: Path) -> None:
    async with app_client(home, ui=False) as client:
        page = await client.get("/ui/")
        folder = await client.get("/ui")
    assert page.status_code == folder.status_code == 404
    assert page.json()["error"]["code"] == "NotFound"


async def test_a_host_the_server_does_not_answer_for_is_refused(home: Path) -> None:
    async with app_client(home) as client:
        response = await client.get("/ui/", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "HostNotAllowed"


def test_the_static_files_hold_no_inline_script_or_style() -> None:
    """The CSP allows no inline code: a file that had some would break in the browser."""
    index = (ui.STATIC / "index.html").read_text()
    assert re.findall(r"<script\b[^>]*>", index) == [
        f'<script type="module" src="/ui/assets/{ui.BUNDLE_MARK}/app.js">'
    ]
    assert "<style" not in index and "style=" not in index and " on" not in index.lower()
    for script in ui.STATIC.rglob("*.js"):
        text = script.read_text()
        assert "eval(" not in text and "new Function" not in text, script
        assert "innerHTML" not in text, script  # text goes in as text (format.h)

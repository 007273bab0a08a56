"""The dashboard's files: ``/ui/`` and every page path below it answer ``index.html``, and
``/ui/assets/{bundle}/{name}`` the scripts and the style sheet (``opstatus/ui/static``).

The routes serve files only, never data, so they need no token: every figure the page
shows comes from the API through the guard, with the caller's own bearer token (see
docs/dashboard.md). Every page path answers the same ``index.html`` so that a shared URL
(a list's filter is in its query string) opens the page it names; the script routes.

The assets sit under a folder named by a hash of all of them together: their relative
module imports stay within it, so they can be cached for a year (``immutable``), and a
new release's ``index.html`` (never cached without revalidation) names a new folder.

Every answer carries a Content-Security-Policy that allows scripts, styles and requests of
this origin only (no inline code, no eval, no framing), ``nosniff`` and ``no-referrer``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

STATIC = Path(__file__).resolve().parent.parent / "ui" / "static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: Where index.html names the assets' folder.
BUNDLE_MARK = "__BUNDLE__"


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


@dataclass(frozen=True)
class Bundle:
    """The files, read once: the index (with the folder filled in) and the assets by name."""

    name: str
    index: bytes
    assets: dict[str, Asset]


def load(folder: Path = STATIC) -> Bundle:
    files = {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        # The folders are packages, so that installs carry them: their Python is no asset.
        if path.is_file() and (path.suffix in MEDIA_TYPES or path.name == "index.html")
    }
    whole = hashlib.sha256()
    for name, body in files.items():
        whole.update(name.encode() + b"\0" + hashlib.sha256(body).digest())
    bundle = whole.hexdigest()[:16]
    index = files.pop("index.html").replace(BUNDLE_MARK.encode(), bundle.encode())
    assets = {
        name: Asset(
            body,
            MEDIA_TYPES[Path(name).suffix],
            '"' + hashlib.sha256(body).hexdigest()[:16] + '"',
        )
        for name, body in files.items()
    }
    return Bundle(bundle, index, assets)


def ui_routes(bundle: Bundle) -> list[Route]:
    """``/ui/assets/...`` and every other ``/ui/...`` path (``/ui`` redirects to ``/ui/``,
    by the router's default); GET and HEAD, other methods 405."""

    async def asset(request: Request) -> Response:
        found = None
        if request.path_params["bundle"] == bundle.name:
            found = bundle.assets.get(request.path_params["name"])
        if found is None:
            raise HTTPException(404, "No such file of the dashboard.")
        headers = {
            **SECURITY_HEADERS,
            "Cache-Control": "public, max-age=31536000, immutable",
            "ETag": found.etag,
        }
        if found.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(found.body, media_type=found.media_type, headers=headers)

    async def page(request: Request) -> Response:
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
        return Response(bundle.index, media_type="text/html; charset=utf-8", headers=headers)

    return [
        Route("/ui/assets/{bundle}/{name:path}", asset, methods=["GET", "HEAD"]),
        Route("/ui/{page:path}", page, methods=["GET", "HEAD"]),
    ]

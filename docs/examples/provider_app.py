"""Contoso.Widgets: a tiny resource provider running ARM's asynchronous pattern with opstatus.

Every write answers at once (PUT 201, the others 202) with ``Azure-AsyncOperation`` and
``Location`` pointing at opstatus, then does its work in the background inside an opstatus
producer block: progress is reported as it goes, and leaving the block publishes the
outcome (Succeeded, Failed with the exception's type and message, or Canceled when someone
cancels the operation). Any ARM client polls opstatus and then reads the widget here.

Run it beside ``opstatus serve --providers docs/examples/providers.toml``::

    export OPSTATUS_ENDPOINT=http://127.0.0.1:8080
    export OPSTATUS_TOKEN=$(opstatus token --subject widgets --role Contributor --scope /)
    python docs/examples/provider_app.py --port 8081

Routes (as ARM forwards them to a provider; ARM has already authenticated the caller):

    PUT | PATCH | DELETE | GET  /subscriptions/{sub}/resourceGroups/{rg}/providers/
                                Contoso.Widgets/widgets/{name}?api-version=2024-01-01
    POST                        .../widgets/{name}/polish

The work is simulated: ``size`` steps (PUT and PATCH: the new size; DELETE: the widget's),
``rounds`` steps to polish, each ``WIDGETS_STEP_SECONDS`` long (default 0.5). Plaid widgets
are refused (``UnsupportedColor``), a locked widget cannot be deleted (``WidgetLocked``) and
sandpaper is no polish (``UnsupportedCompound``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from opstatus import AsyncClient, CancelRequested

NAMESPACE = "Contoso.Widgets"
WIDGET = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Contoso.Widgets/widgets/{name}"
STEP_SECONDS = float(os.environ.get("WIDGETS_STEP_SECONDS", "0.5"))


class UnsupportedColor(Exception):
    pass


class WidgetLocked(Exception):
    pass


class UnsupportedCompound(Exception):
    pass


widgets: dict[str, dict[str, Any]] = {}
background: set[asyncio.Task[None]] = set()


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status)


def ops(request: Request) -> AsyncClient:
    client: AsyncClient = request.app.state.ops
    return client


def key_of(request: Request) -> str:
    return request.url.path.split("?")[0].lower().removesuffix("/polish")


def resource_id(request: Request) -> str:
    p = request.path_params
    return WIDGET.format(sub=p["sub"], rg=p["rg"], name=p["name"])


async def start(
    request: Request,
    widget: dict[str, Any],
    steps: int,
    finish: Callable[[], dict[str, Any] | None],
    body: dict[str, Any] | None = None,
) -> Response:
    """Create the operation, answer 201/202, and run the work in the background."""
    accepted = await ops(request).accept(
        request.method,
        request.path_params["sub"],
        widget["location"],
        resource=body,
        kind=f"widgets/{request.method.lower()}",
    )

    async def work() -> None:
        async with ops(request).producer(accepted.operation.url) as job:
            try:
                for step in range(steps):
                    await job.report(100 * step / max(steps, 1))
                    await asyncio.sleep(STEP_SECONDS)
                    if widget["properties"].get("color") == "plaid":
                        raise UnsupportedColor("Widgets do not come in plaid.")
                job.result = finish()
            except BaseException as exc:
                if busy(widget):  # a PUT, PATCH or DELETE leaves the widget Failed/Canceled
                    canceled = isinstance(exc, CancelRequested | asyncio.CancelledError)
                    state = "Canceled" if canceled else "Failed"
                    widget["properties"]["provisioningState"] = state
                raise

    task = asyncio.create_task(work())
    background.add(task)
    task.add_done_callback(background.discard)
    if accepted.body is None:
        return Response(status_code=accepted.status_code, headers=accepted.headers)
    return JSONResponse(accepted.body, accepted.status_code, accepted.headers)


def busy(widget: dict[str, Any] | None) -> bool:
    state = widget and widget["properties"].get("provisioningState")
    return state not in (None, "Succeeded", "Failed", "Canceled")


async def put_widget(request: Request) -> Response:
    body = await request.json()
    if not isinstance(body.get("location"), str):
        return error(400, "LocationRequired", "The widget needs a 'location'.")
    key = key_of(request)
    if busy(widgets.get(key)):
        return error(409, "AnotherOperationInProgress", "The widget is busy.")
    properties = dict(body.get("properties") or {})
    properties["provisioningState"] = "Accepted"
    widget = {
        "id": resource_id(request),
        "name": request.path_params["name"],
        "type": f"{NAMESPACE}/widgets",
        "location": body["location"],
        "properties": properties,
    }
    widgets[key] = widget

    def finish() -> dict[str, Any]:
        properties["provisioningState"] = "Succeeded"
        return {"size": properties.get("size", 1)}

    return await start(request, widget, int(properties.get("size", 1)), finish, widget)


async def patch_widget(request: Request) -> Response:
    widget = widgets.get(key_of(request))
    if widget is None:
        return error(404, "ResourceNotFound", "No such widget.")
    if busy(widget):
        return error(409, "AnotherOperationInProgress", "The widget is busy.")
    changes = dict((await request.json()).get("properties") or {})
    widget["properties"].update(changes, provisioningState="Updating")

    def finish() -> None:
        widget["properties"]["provisioningState"] = "Succeeded"

    return await start(request, widget, int(changes.get("size", 1)), finish)


async def delete_widget(request: Request) -> Response:
    key = key_of(request)
    widget = widgets.get(key)
    if widget is None:
        return Response(status_code=204)
    if busy(widget):
        return error(409, "AnotherOperationInProgress", "The widget is busy.")
    if widget["properties"].get("locked"):

        def refuse() -> None:
            raise WidgetLocked("The widget is locked; unlock it first.")

        return await start(request, widget, 1, refuse)
    widget["properties"]["provisioningState"] = "Deleting"

    def finish() -> None:
        widgets.pop(key, None)

    return await start(request, widget, int(widget["properties"].get("size", 1)), finish)


async def polish_widget(request: Request) -> Response:
    widget = widgets.get(key_of(request))
    if widget is None:
        return error(404, "ResourceNotFound", "No such widget.")
    body = await request.json()
    rounds = int(body.get("rounds", 1))

    def finish() -> dict[str, Any]:
        if body.get("compound") == "sandpaper":
            raise UnsupportedCompound("Sandpaper would scratch the widget.")
        widget["properties"]["shine"] = widget["properties"].get("shine", 0) + rounds
        return {"shine": widget["properties"]["shine"]}

    return await start(request, widget, rounds, finish)


async def get_widget(request: Request) -> Response:
    widget = widgets.get(key_of(request))
    if widget is None:
        return error(404, "ResourceNotFound", "No such widget.")
    return JSONResponse(widget)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(endpoint: str, token: str | None) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncClient(
            endpoint, token, namespace=NAMESPACE, api_version="2024-01-01"
        ) as client:
            app.state.ops = client
            yield
            for task in list(background):
                task.cancel()

    methods = {"PUT": put_widget, "PATCH": patch_widget, "DELETE": delete_widget}

    async def widget_route(request: Request) -> Response:
        handler = methods.get(request.method, get_widget)
        return await handler(request)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route(WIDGET, widget_route, methods=["GET", "PUT", "PATCH", "DELETE"]),
            Route(WIDGET + "/polish", polish_widget, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    endpoint = os.environ.get("OPSTATUS_ENDPOINT", "http://127.0.0.1:8080")
    app = create_app(endpoint, os.environ.get("OPSTATUS_TOKEN"))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

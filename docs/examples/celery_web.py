"""A web API on Celery that answers like an ARM resource provider: 202 and opstatus's links.

``POST .../widgets/{name}/resize`` publishes the ``resize`` task of ``celery_app.py`` and
answers ``202`` with ``Azure-AsyncOperation``, ``Location`` and ``Retry-After``; the caller
(the Azure SDK's ``LROPoller``, for one) polls opstatus until the worker's outcome is there,
and reads the task's result from the ``Location`` URL. Run it beside the worker::

    cd docs/examples && python celery_web.py --port 8081

    curl -i -X POST -H 'Content-Type: application/json' -d '{"size": 4}' \\
      "http://127.0.0.1:8081/subscriptions/$SUB/resourceGroups/rg1/providers/\\
    Contoso.Widgets/widgets/w1/resize?api-version=2024-01-01"
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from celery_app import resize, tracker
from opstatus.celery import accept_task, starlette_response

RESIZE = (
    "/subscriptions/{sub}/resourceGroups/{rg}/providers/Contoso.Widgets/widgets/{name}/resize"
)


async def resize_widget(request: Request) -> Response:
    body = await request.json()
    size = body.get("size")
    if not isinstance(size, int) or size < 1:
        error = {"code": "InvalidSize", "message": "'size' must be a positive integer."}
        return JSONResponse({"error": error}, 400)
    # accept_task creates the operation and publishes the task: blocking calls, so they run
    # in Starlette's thread pool (accept_task_async does the same with an AsyncClient).
    name = request.path_params["name"]
    accepted = await run_in_threadpool(accept_task, tracker, resize, (name, size))
    return starlette_response(accepted)


async def healthz(request: Request) -> Response:
    return Response("ok")


app = Starlette(
    routes=[Route(RESIZE, resize_widget, methods=["POST"]), Route("/healthz", healthz)]
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8081)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="warning")

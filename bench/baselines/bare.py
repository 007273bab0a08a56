"""Baseline: a bare ASGI app answering every request with one constant JSON document.

The ceiling of the HTTP stack itself (same uvicorn, httptools and uvloop as opstatus).
"""

BODY = (
    b'{"id":"/subscriptions/e7b5a9d2-6b6a-4d2f-9143-20d9a10f5b8f/providers/Microsoft.Cache/'
    b'locations/westus/operationsStatus/op-0000001","name":"op-0000001",'
    b'"startTime":"2017-01-01T13:13:13.933Z","status":"InProgress"}'
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})

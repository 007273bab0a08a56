"""Running the server: uvicorn with opstatus's protocol, in one process or several sharing
one port.

uvicorn runs the app through :class:`~.protocol.TimedHttpToolsProtocol`, which keeps every
connection under a timer, or its subclass with the fast lane (:mod:`.fast_lane`) when
``--fast-reads`` is on and the running uvicorn has what the lane needs (:mod:`.uvicorn_check`).

With ``--workers N`` the command forks N workers after the checks that need doing once
(the signing key, the store's schema). Each worker opens its own store and app, since
neither a SQLite connection nor an asyncpg pool survives a fork, and listens on the same
address with SO_REUSEPORT, so that the kernel spreads connections over the workers evenly
(a shared accept queue would hand most of a client's long-lived connections to whichever
worker woke first). The parent holds the port bound, restarts a worker that dies, and on
SIGTERM or SIGINT asks every worker to drain and waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import uvicorn

from ..http.access import configure_access
from ..http.app import OpstatusApp
from ..http.audit import configure_audit
from ..logs import log_config
from ..settings import Settings
from ..stores import open_store
from ..stores.base import Store
from . import uvicorn_check
from .fast_lane import FastLaneProtocol
from .protocol import ConnectionLimits, TimedHttpToolsProtocol
from .wiring import build_app

log = logging.getLogger("opstatus.server")

#: uvicorn's exit code for "could not start"; a worker that exits with it is not restarted.
COULD_NOT_START = 3


@dataclass(frozen=True)
class ServerOptions:
    host: str
    port: int
    log_level: str
    log_format: Literal["text", "json"]
    drain_timeout: int


class CannotServe(Exception):
    """The server cannot run on this machine as it is (the message says why)."""


def build(settings: Settings) -> tuple[Store, OpstatusApp]:
    """The store (not opened yet) and the app over it. Raises ValueError or OSError for
    settings it cannot use (a providers file, a key, a store URL), CannotServe for a
    uvicorn without what the server's protocol needs."""
    missing = uvicorn_check.missing_for_protocol()
    if missing:
        raise CannotServe(
            f"this uvicorn lacks what opstatus's connection timers need ({', '.join(missing)}); "
            'install a supported one: pip install "uvicorn{}"'.format(uvicorn_check.pin())
        )
    store = open_store(settings.resolved_store_url())
    return store, build_app(settings, store)


def protocol_for(
    settings: Settings, app: OpstatusApp, access_log: bool
) -> type[TimedHttpToolsProtocol]:
    """The protocol class uvicorn runs: the timed one, with the fast lane where it may."""
    security = settings.security
    limits = ConnectionLimits(
        max_head_bytes=security.max_header_bytes,
        header_timeout=security.header_timeout,
        body_timeout=security.body_timeout,
        keep_alive_timeout=security.keep_alive_timeout,
    )
    reads = app.fast_reads
    # The lane's answers would bypass uvicorn's access log: with it on, the app answers.
    if reads is None or access_log or not (reads.immediate or reads.batched):
        return TimedHttpToolsProtocol.configured(limits)
    why = uvicorn_check.fast_lane_unavailable()
    if why is not None:
        log.warning(
            "fast reads: %s; the protocol lane is off and the app answers every status read "
            'the same way (pip install "uvicorn%s" to have it)',
            why,
            uvicorn_check.pin(),
        )
        return TimedHttpToolsProtocol.configured(limits)
    return FastLaneProtocol.with_lane(limits, reads)


def run_server(
    built: tuple[Store, OpstatusApp],
    settings: Settings,
    options: ServerOptions,
    sock: socket.socket | None,
) -> int:
    """Serve ``built`` until told to stop; the process's exit code. ``sock``: listen there."""
    store, app = built

    handshake_timeout = settings.security.header_timeout

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            # uvicorn leaves a TLS handshake the event loop's default minute: a client that
            # never sends its ClientHello must be timed out as a slow head is.
            loop = asyncio.get_running_loop()
            create_server = loop.create_server

            async def timed(*args: Any, **kwargs: Any) -> Any:
                if kwargs.get("ssl") is not None:
                    kwargs.setdefault("ssl_handshake_timeout", handshake_timeout)
                return await create_server(*args, **kwargs)

            loop.create_server = timed  # type: ignore[method-assign]
            try:
                await super().startup(sockets)
            finally:
                del loop.create_server  # the loop's own again

        async def shutdown(self, sockets: Any = None) -> None:
            # Held GETs (Prefer: wait) answer now, not when their wait runs out: uvicorn waits
            # for every open request before it shuts the app down.
            store.notifier.close()
            await super().shutdown(sockets)

    access_log = options.log_level == "debug"
    security = settings.security
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        log_level=options.log_level,
        log_config=log_config(options.log_format, options.log_level),
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        date_header=False,
        server_header=False,
        access_log=access_log,
        ws="none",
        timeout_keep_alive=security.keep_alive_timeout,
        limit_concurrency=security.max_connections,
        ssl_certfile=None if security.tls_cert is None else str(security.tls_cert),
        ssl_keyfile=None if security.tls_key is None else str(security.tls_key),
        timeout_graceful_shutdown=options.drain_timeout,
    )
    # After uvicorn.Config, whose logging setup resets the handlers of opstatus's loggers.
    configure_audit(security.audit_log)
    configure_access(settings.access_log)
    config.http = protocol_for(settings, app, access_log)
    server = Server(config)
    settle_collector()
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=None if sock is None else [sock])
    return 0 if server.started else COULD_NOT_START


#: The collector's thresholds while serving: a young collection per 10,000 net allocations of
#: container objects, not Python's 700 (docs/performance.md, "Server-Sent Events").
COLLECTOR_THRESHOLDS = (10_000, 10, 10)


def settle_collector() -> None:
    """Move what start-up built out of the collector's way, and collect young objects less often.

    A server holding thousands of streams, waiters and connections has hundreds of thousands
    of long-lived objects. At Python's default thresholds a young collection runs every 700
    allocations, so a request's objects, alive for the few milliseconds it takes, are promoted
    to the old generation, and every few seconds a full collection walks all of the long-lived
    ones, stalling every connection while it does. Fewer young collections let such objects
    die young, and ``gc.freeze`` keeps the modules, the app and the store, which live as long
    as the process, out of every collection. Cycles are still collected, a little later.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to the address with SO_REUSEPORT and not listening: it holds the port
    (port 0 picks one) for the workers, which bind it too; connections go to listeners only."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def listener(reserved: socket.socket) -> socket.socket:
    """A worker's own listening socket on the reserved address."""
    sock = socket.socket(reserved.family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(reserved.getsockname()[:2])
    sock.listen(2048)
    return sock


def run_workers(count: int, reserved: socket.socket, work: Callable[[socket.socket], int]) -> int:
    """Fork ``count`` workers running ``work`` on a listener each; supervise them."""
    children: set[int] = set()
    stopping = False

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 1
            try:
                code = work(listener(reserved))
            except BaseException:  # noqa: BLE001 - said, then the supervisor decides
                traceback.print_exc()
            finally:
                os._exit(code)
        children.add(pid)

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        # SIGTERM whatever came: a worker that already had the terminal's SIGINT drains on
        # it, where a second SIGINT would make uvicorn stop at once.
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(count):
        spawn()
    exit_code = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        children.discard(pid)
        code = os.waitstatus_to_exitcode(status)
        if stopping:
            continue
        if code == COULD_NOT_START:
            exit_code = COULD_NOT_START
            stop(signal.SIGTERM, None)
            continue
        log.error("worker %d exited with code %d; starting another", pid, code)
        time.sleep(0.5)  # a worker that dies at once must not make the supervisor spin
        spawn()
    return exit_code

"""Running ``opstatus serve``: one server process, or several sharing one port.

With ``--workers N`` the command forks N workers after the checks that need doing once
(the signing key, the store's schema). Each worker opens its own store and app, since
neither a SQLite connection nor an asyncpg pool survives a fork, and listens on the same
address with SO_REUSEPORT, so that the kernel spreads connections over the workers evenly
(a shared accept queue would hand most of a client's long-lived connections to whichever
worker woke first). The parent holds the port bound, restarts a worker that dies, and on
SIGTERM or SIGINT asks every worker to drain and waits for them.
"""

from __future__ import annotations

import contextlib
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

from .cli_security import configure_audit, uvicorn_options
from .http.app import OpstatusApp, create_app
from .logs import log_config
from .settings import Settings
from .stores import open_store
from .stores.base import Store

log = logging.getLogger("opstatus.serve")

#: uvicorn's exit code for "could not start"; a worker that exits with it is not restarted.
COULD_NOT_START = 3


@dataclass(frozen=True)
class ServerOptions:
    host: str
    port: int
    log_level: str
    log_format: Literal["text", "json"]
    drain_timeout: int


def build(settings: Settings) -> tuple[Store, OpstatusApp]:
    """The store (not opened yet) and the app over it. Raises ValueError or OSError for
    settings it cannot use (a providers file, a key, a store URL)."""
    store = open_store(settings.resolved_store_url())
    return store, create_app(settings, store)


def run_server(
    built: tuple[Store, OpstatusApp],
    settings: Settings,
    options: ServerOptions,
    sock: socket.socket | None,
) -> int:
    """Serve ``built`` until told to stop; the process's exit code. ``sock``: listen there."""
    store, app = built

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            # Held GETs (Prefer: wait) answer now, not when their wait runs out: uvicorn waits
            # for every open request before it shuts the app down.
            store.notifier.close()
            await super().shutdown(sockets)

    access_log = options.log_level == "debug"
    # The protocol's own answers would bypass uvicorn's access log: with it on, the app answers.
    status_reads = None if access_log else app.protocol_reads
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
        **uvicorn_options(settings.security, status_reads),
        timeout_graceful_shutdown=options.drain_timeout,
    )
    # After uvicorn.Config, whose logging setup resets the handlers of opstatus's loggers.
    configure_audit(settings.security.audit_log)
    server = Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=None if sock is None else [sock])
    return 0 if server.started else COULD_NOT_START


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

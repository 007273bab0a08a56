"""The server: the one package that knows uvicorn.

- :mod:`.wiring` builds the app's context (key, verifier, store, providers, service) and the
  lifespan that opens the store and runs the background sweeps;
- :mod:`.running` runs uvicorn with it, in one process or several sharing a port;
- :mod:`.protocol` keeps every connection under a timer and bounds request heads;
- :mod:`.fast_lane` answers status reads inside the protocol (``--fast-reads``), where
  :mod:`.uvicorn_check` finds the running uvicorn has what it needs.

Everything below it (``opstatus.http`` and the core) is an ordinary Starlette app that any
ASGI server can run; docs/architecture.md draws the map.
"""

from .wiring import build_app, build_context

__all__ = ["build_app", "build_context"]

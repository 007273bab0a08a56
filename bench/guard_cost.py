"""What the guard middleware adds to each request, in microseconds, measured in-process.

    python bench/guard_cost.py --requests 20000

Calls the guard in front of an app that does nothing, for: a locally minted token (roles
inside), a provider token (RS256, roles read from the store: memory and SQLite), and
compares with calling the do-nothing app directly. Tokens are verified once and then come
from the verifier's cache, as on the real read path.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.idp import ISSUER, IdentityProvider  # noqa: E402

from opstatus.auth import OID, PrincipalId, RoleAssignment, mint_token  # noqa: E402
from opstatus.http.context import AppContext  # noqa: E402
from opstatus.http.guard import GuardMiddleware  # noqa: E402
from opstatus.http.limits import RateLimiter  # noqa: E402
from opstatus.providers import ProviderRegistry  # noqa: E402
from opstatus.security import build_verifier  # noqa: E402
from opstatus.service import OperationService  # noqa: E402
from opstatus.settings import Settings  # noqa: E402
from opstatus.stores import MemoryStore, SQLiteStore  # noqa: E402
from opstatus.stores.base import Store  # noqa: E402

SUB = "e7b5a9d2-6b6a-4d2f-9143-20d9a10f5b8f"


async def nothing(scope: Any, receive: Any, send: Any) -> None:
    return None


async def per_request_us(app: Any, authorization: bytes, n: int) -> float:
    headers = [
        (b"host", b"127.0.0.1:8080"),
        (b"accept", b"application/json"),
        (b"authorization", authorization),
    ]

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    started = time.perf_counter()
    for _ in range(n):
        scope = {"type": "http", "method": "GET", "path": "/", "headers": headers,
                 "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080),
                 "scheme": "http", "state": {}}  # fmt: skip
        await app(scope, receive, nothing)
    return (time.perf_counter() - started) / n * 1e6


async def measure(n: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="opstatus-guard-"))
    idp = IdentityProvider(folder)
    stores: dict[str, Store] = {"memory": MemoryStore(), "sqlite": SQLiteStore(folder / "g.db")}
    local = None
    rows = []
    for name, store in stores.items():
        await store.open()
        await store.assign_role(RoleAssignment("Reader", "/", PrincipalId(ISSUER, OID, "alice")))
        settings = Settings(home=folder / "home", security=idp.security(rate_limit=1e9))
        verifier = build_verifier(settings.security, settings.home)
        ctx = AppContext(
            settings,
            store,
            OperationService(store),
            verifier,
            ProviderRegistry(),
            paging_key=bytes(32),
            limiter=RateLimiter.from_settings(settings.security),
        )
        guard = GuardMiddleware(nothing, ctx)
        if local is None:
            from opstatus.auth import load_key

            local = mint_token(load_key(settings.home), "bench", [("Reader", "/")])
            bare = await per_request_us(nothing, b"Bearer " + local.encode(), n)
            rows.append(("no guard (baseline)", bare))
            rows.append(
                ("local token", await per_request_us(guard, b"Bearer " + local.encode(), n))
            )
        provider = b"Bearer " + idp.token("alice").encode()
        rows.append((f"provider token, {name} roles", await per_request_us(guard, provider, n)))
        await store.close()
    print(f"guard cost per request, {n} requests each")
    for label, us in rows:
        print(f"  {label:<32}{us:8.2f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    asyncio.run(measure(parser.parse_args().requests))


if __name__ == "__main__":
    main()

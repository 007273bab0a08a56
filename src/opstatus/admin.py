"""What an operator runs beside the server: ``opstatus check``, ``opstatus migrate``, and the
check ``opstatus serve`` makes before it listens.

Each answers in findings a person can act on: what is wrong, and what to run or change.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import StoreError, StoreMissing
from .providers import ProviderRegistry
from .settings import Settings
from .stores import open_store
from .stores.base import Migratable, Store
from .stores.migrations import Plan, latest_version, migrate_command, redact, require_latest


@dataclass(frozen=True)
class Finding:
    #: What was checked: config, store or schema.
    topic: str
    #: True: fine; False: must be fixed; None: not checked (an earlier check failed).
    ok: bool | None
    detail: str
    #: What to run or change, when not ok.
    fix: str = ""


@dataclass(frozen=True)
class Sources:
    """Where the store URL and the providers file came from, as a person set them (the
    option, the variable or the default), so that a finding names the one to correct."""

    store: str = "--store / OPSTATUS_STORE"
    providers: str = "--providers / OPSTATUS_PROVIDERS"


def _configured_store(settings: Settings, sources: Sources) -> tuple[Store | None, Finding]:
    url = settings.resolved_store_url()
    try:
        store = open_store(url)
    except (ValueError, OSError) as exc:
        return None, Finding("config", False, str(exc), f"correct {sources.store}")
    try:
        if settings.providers_file is not None:
            ProviderRegistry.from_file(settings.providers_file)
    except (ValueError, OSError) as exc:
        return None, Finding("config", False, str(exc), f"correct {sources.providers}")
    detail = f"store {redact(url)}, home {settings.home}"
    if settings.providers_file is not None:
        detail += f", providers {settings.providers_file}"
    return store, Finding("config", True, detail)


async def check(settings: Settings, sources: Sources | None = None) -> list[Finding]:
    """Config, store connection and schema, in that order; later ones skip if one fails."""
    sources = sources or Sources()
    store, config = _configured_store(settings, sources)
    if store is None:
        return [config, Finding("store", None, "not checked"), Finding("schema", None, "")]
    if not isinstance(store, Migratable):
        return [
            config,
            Finding("store", True, "in memory: nothing to connect to (data ends with the server)"),
            Finding("schema", True, "none needed"),
        ]
    try:
        version = await store.schema_version()
    except StoreMissing as exc:
        fix = f"create it: {exc.create}; then run: {migrate_command(store.url)}"
        return [config, Finding("store", False, exc.message, fix), Finding("schema", None, "")]
    except StoreError as exc:
        fix = f"start the database server, or point {sources.store} at a running one"
        return [config, Finding("store", False, exc.message, fix), Finding("schema", None, "")]
    if version is None:
        detail = f"{store.describe()} does not exist yet; the server creates it when it starts"
        return [config, Finding("store", True, detail), Finding("schema", True, "made with it")]
    return [config, Finding("store", True, f"reached {store.describe()}"), _schema(store, version)]


def _schema(store: Migratable, version: int) -> Finding:
    latest = latest_version(store.dialect)
    if version == latest:
        return Finding("schema", True, f"version {latest}, the latest")
    if version > latest:
        detail = f"version {version}, newer than this opstatus knows ({latest})"
        return Finding("schema", False, detail, "upgrade opstatus")
    if store.migrates_on_open:
        return Finding(
            "schema", True, f"version {version}: the server migrates it to {latest} when it starts"
        )
    detail = "no opstatus schema" if version == 0 else f"version {version}; this needs {latest}"
    return Finding("schema", False, detail, f"run: {migrate_command(store.url)}")


async def migrate(settings: Settings) -> tuple[Migratable | None, Plan | None]:
    """Migrate the configured store; (None, None) for a store with no schema (memory)."""
    store = open_store(settings.resolved_store_url())
    if not isinstance(store, Migratable):
        return None, None
    return store, await store.migrate()


async def preflight(store: Store) -> None:
    """Before ``serve`` listens: refuse a store whose schema is not this version's (raises
    StoreError saying what to run). Stores that migrate themselves on open pass."""
    if isinstance(store, Migratable) and not store.migrates_on_open:
        version = await store.schema_version()
        require_latest(store.dialect, version, store.describe(), migrate_command(store.url))

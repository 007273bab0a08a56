"""Schema files and numbered migrations, per SQL dialect.

Each dialect keeps, under ``stores/sql/<dialect>/`` (shipped as package data):

- ``schema.sql``: the whole schema as of the latest migration, for a database that has none;
- ``migrations/NNNN_name.sql``: one step each, numbered from 0001 without gaps, for a database
  made by an older opstatus; both dialects have the same numbers (a file missing from one
  dialect is a packaging mistake).

A database's *schema version* is the number of the last migration it has had; 0 means it has
no opstatus schema. The backends record the version (SQLite: ``PRAGMA user_version``;
PostgreSQL: a bookkeeping table) and run the SQL; this module finds the files, orders them and
decides what a database at some version needs. ``tests/stores/test_migrations.py`` checks that
``schema.sql`` and all migrations in order give the same schema.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib.resources import files
from urllib.parse import urlsplit, urlunsplit

from ..errors import SchemaMismatch

_MIGRATION_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql\Z")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True, slots=True)
class Plan:
    """What brings a database to the latest version: the schema file, or the missing steps."""

    #: The schema file's SQL, for a database with no schema; None when steps apply instead.
    schema: str | None
    #: Every migration the database will be recorded as having after this plan.
    steps: tuple[Migration, ...]

    @property
    def empty(self) -> bool:
        return self.schema is None and not self.steps


def _package(dialect: str) -> str:
    return f"{__package__}.sql.{dialect}"


@functools.cache
def schema_sql(dialect: str) -> str:
    return files(_package(dialect)).joinpath("schema.sql").read_text(encoding="utf-8")


@functools.cache
def migrations(dialect: str) -> tuple[Migration, ...]:
    """The dialect's migrations in order; refuses gaps and duplicates (a packaging mistake)."""
    found = []
    for entry in files(_package(dialect) + ".migrations").iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            sql = entry.read_text(encoding="utf-8")
            found.append(Migration(int(match[1]), match[2], sql))
    found.sort(key=lambda m: m.version)
    numbers = [m.version for m in found]
    if numbers != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations must be numbered 1..n without gaps: {numbers}")
    return tuple(found)


def latest_version(dialect: str) -> int:
    return migrations(dialect)[-1].version


def plan(dialect: str, current: int, where: str) -> Plan:
    """What a database at version ``current`` needs; refuses one newer than this opstatus."""
    latest = latest_version(dialect)
    if current > latest:
        raise newer_schema(current, latest, where)
    if current == 0:
        return Plan(schema_sql(dialect), migrations(dialect))
    return Plan(None, tuple(m for m in migrations(dialect) if m.version > current))


def newer_schema(current: int, latest: int, where: str) -> SchemaMismatch:
    return SchemaMismatch(
        f"The opstatus schema in {where} is version {current}, newer than this opstatus knows "
        f"({latest}); upgrade opstatus."
    )


def require_latest(dialect: str, current: int | None, where: str, migrate_hint: str) -> None:
    """Raise SchemaMismatch, naming the command that fixes it, unless ``current`` is the latest."""
    latest = latest_version(dialect)
    if not current:
        raise SchemaMismatch(
            f"{where[:1].upper()}{where[1:]} has no opstatus schema. Create it with: {migrate_hint}"
        )
    if current < latest:
        raise SchemaMismatch(
            f"The opstatus schema in {where} is version {current}; this opstatus needs "
            f"version {latest}. Upgrade it with: {migrate_hint}"
        )
    if current > latest:
        raise newer_schema(current, latest, where)


def redact(url: str) -> str:
    """A store URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def migrate_command(url: str) -> str:
    """The command that migrates the store at ``url`` (password left out)."""
    return f"opstatus migrate --store '{redact(url)}'"

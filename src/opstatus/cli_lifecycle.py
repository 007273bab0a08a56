"""``opstatus list``, ``opstatus cancel`` and ``opstatus purge`` (added to ``opstatus`` by
:mod:`opstatus.cli`).

Exit codes as for the other commands (:data:`opstatus.cli_common.EXIT_CODES`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import click
import httpx

from .cli_common import (
    client_options,
    confirm,
    fail,
    list_output_option,
    make_client,
    output_option,
    print_status,
    resolve,
    target_options,
)
from .client import ClientError, OperationStatus
from .models import format_time


def filter_options(func: Any) -> Any:
    options = [
        click.option(
            "--status",
            "statuses",
            multiple=True,
            help="Only this status (any letter case); repeat or comma-separate for several.",
        ),
        click.option("--kind", "kinds", multiple=True, help="Only this producer-set kind."),
        click.option("--started-after", help="ISO 8601; start time at or after it."),
        click.option("--started-before", help="ISO 8601; start time before it."),
        click.option("--ended-after", help="ISO 8601; end time at or after it."),
        click.option("--ended-before", help="ISO 8601; end time before it."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _filters(
    statuses: tuple[str, ...],
    kinds: tuple[str, ...],
    started_after: str | None,
    started_before: str | None,
    ended_after: str | None,
    ended_before: str | None,
) -> dict[str, Any]:
    return {
        "status": list(statuses) or None,
        "kind": list(kinds) or None,
        "started_after": started_after,
        "started_before": started_before,
        "ended_after": ended_after,
        "ended_before": ended_before,
    }


COLUMNS = ("NAME", "STATUS", "%", "KIND", "START", "END", "ERROR")
#: A list of every provider's operations says whose each is.
PROVIDER_COLUMN = "PROVIDER"


def _provider(op: OperationStatus) -> str:
    """The namespace in the operation's id (``.../providers/{namespace}/locations/...``)."""
    parts = op.id.split("/")
    return parts[parts.index("providers") + 1] if "providers" in parts[:-1] else ""


def _row(op: OperationStatus, with_provider: bool = False) -> tuple[str, ...]:
    percent = "" if op.percent_complete is None else f"{op.percent_complete:g}"
    if op.lease_state == "Lapsed":
        percent += " (lease lapsed)"
    return (
        op.name,
        op.status,
        percent,
        op.kind or "",
        format_time(op.start_time) if op.start_time else "",
        format_time(op.end_time) if op.end_time else "",
        op.error_code or "",
        *((_provider(op),) if with_provider else ()),
    )


def print_table(rows: list[tuple[str, ...]], with_provider: bool = False) -> None:
    columns = (*COLUMNS, PROVIDER_COLUMN) if with_provider else COLUMNS
    widths = [max(len(row[i]) for row in [columns, *rows]) for i in range(len(columns))]
    for row in [columns, *rows]:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@click.command("list")
@click.option("--subscription", "-s", required=True, help="Subscription GUID.")
@click.option("--location", "-l", help="Only this location (default: every location).")
@filter_options
@click.option(
    "--limit", type=click.IntRange(1), default=None, help="At most this many (default: all)."
)
@click.option("--page-size", type=click.IntRange(1), default=None, help="Operations per request.")
@click.option("--counts", is_flag=True, help="Print how many operations there are per status.")
@client_options
@list_output_option
def list_operations(
    subscription: str,
    location: str | None,
    statuses: tuple[str, ...],
    kinds: tuple[str, ...],
    started_after: str | None,
    started_before: str | None,
    ended_after: str | None,
    ended_before: str | None,
    limit: int | None,
    page_size: int | None,
    counts: bool,
    endpoint: str,
    token: str | None,
    home: Path | None,
    namespace: str,
    api_version: str,
    output: str,
) -> None:
    """List operations, newest first (every page unless --limit).

    Without --namespace and --location, every provider's operations in the subscription
    (those created through the classic form included); with either, one provider's
    (Microsoft.Cache unless --namespace names another). --counts counts the same operations:
    without --namespace and --location, every provider's (then without filters).
    """
    filters = _filters(statuses, kinds, started_after, started_before, ended_after, ended_before)
    named = click.get_current_context().get_parameter_source("namespace")
    every_provider = named is not click.core.ParameterSource.COMMANDLINE and location is None
    with make_client(endpoint, token, home, namespace, api_version) as client:
        try:
            if counts:
                if every_provider and any(filters.values()):
                    raise click.UsageError(
                        "--counts of every provider takes no filters (they are kept as they "
                        "change); name a provider with --namespace to count with filters"
                    )
                by_status = client.counts(subscription, location, every_provider, **filters)
                if output == "json":
                    click.echo(json.dumps(by_status, indent=2))
                else:
                    for status, count in sorted(by_status.items()):
                        click.echo(f"{status + ':':<18} {count}")
                    click.echo(f"{'Total:':<18} {sum(by_status.values())}")
                return
            found: Iterator[OperationStatus] = client.list(
                subscription,
                location,
                page_size=page_size,
                every_provider=every_provider,
                **filters,
            )
            operations = list(islice(found, limit))
        except (ClientError, httpx.HTTPError) as exc:
            fail(exc)
    if output == "json":
        click.echo(json.dumps([op.body for op in operations], indent=2))
    else:
        print_table([_row(op, every_provider) for op in operations], every_provider)


@click.command()
@target_options
@client_options
@output_option
def cancel(
    target: str,
    subscription: str | None,
    location: str | None,
    endpoint: str,
    token: str | None,
    home: Path | None,
    namespace: str,
    api_version: str,
    output: str,
) -> None:
    """Ask an operation's producer to cancel it (it may still finish)."""
    with make_client(endpoint, token, home, namespace, api_version) as client:
        url = resolve(client, target, subscription, location)
        try:
            status = client.cancel(url)
        except (ClientError, httpx.HTTPError) as exc:
            fail(exc)
    print_status(status, output)


@click.command()
@click.option("--subscription", "-s", required=True, help="Subscription GUID.")
@click.option("--location", "-l", help="Only this location (default: every location).")
@filter_options
@click.option(
    "--yes", "-y", is_flag=True, help="Do not ask for confirmation (declining it exits 130)."
)
@client_options
def purge(
    subscription: str,
    location: str | None,
    statuses: tuple[str, ...],
    kinds: tuple[str, ...],
    started_after: str | None,
    started_before: str | None,
    ended_after: str | None,
    ended_before: str | None,
    yes: bool,
    endpoint: str,
    token: str | None,
    home: Path | None,
    namespace: str,
    api_version: str,
) -> None:
    """Remove finished operations matching the filters now (Owners only).

    Running operations are never purged. Reads of a purged operation answer 404
    OperationExpired for the tombstone period.
    """
    filters = _filters(statuses, kinds, started_after, started_before, ended_after, ended_before)
    where = f"location {location}" if location else "every location"
    if not yes:
        confirm(
            f"Purge the finished operations of {namespace} in subscription {subscription}, "
            f"{where}, that match the filters?"
        )
    with make_client(endpoint, token, home, namespace, api_version) as client:
        try:
            purged = client.purge(subscription, location, **filters)
        except (ClientError, httpx.HTTPError) as exc:
            fail(exc)
    click.echo(f"purged {purged} operation{'' if purged == 1 else 's'}")

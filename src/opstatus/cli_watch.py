"""``opstatus watch``: an operation's or a scope's changes, live, from the server's event
stream (Server-Sent Events; the client reconnects with Last-Event-ID, so nothing is missed).

One operation: a progress bar until it ends (exit 0 Succeeded, 1 Failed or Canceled).
A subscription (maybe one provider, location or some statuses): a table of the operations
that changed, newest first, redrawn on every event, until interrupted. Where standard output
is not a terminal, or with ``--output lines`` or ``json``, each event is one line instead.
``--max-events`` and ``--timeout`` end a watch from a script, as ``kubectl get -w`` users
end theirs with a count or a time limit: the count reached exits 0, the time limit 3 (the
exit-code table's timeout), as ``wait`` does.
"""

from __future__ import annotations

import json
import queue
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import click
import httpx

from .cli_common import EXIT_FAILED, EXIT_TIMEOUT, client_options, fail, make_client, resolve
from .client import ClientError, OperationEvent, OperationStatus

BAR_WIDTH = 30
CLEAR = "\x1b[H\x1b[2J"


@click.command()
@click.argument("target", required=False)
@click.option("--subscription", "-s", help="Subscription GUID (with an id, or to watch it all).")
@click.option("--location", "-l", help="Location (of the operation; or only this one).")
@click.option("--provider", help="Without TARGET: only this provider's operations.")
@click.option("--status", multiple=True, help="Without TARGET: only changes to this status.")
@click.option("--last-event-id", help="Resume after this event id.")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["live", "lines", "json"]),
    default=None,
    help="live (a bar or a table; the default on a terminal), lines (one per event), or "
    "json (each event's document, one per line).",
)
@click.option(
    "--max-events",
    type=click.IntRange(1),
    default=None,
    help="Stop after this many events (exit 0; an operation that ended exits by its outcome).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Stop after this many seconds (exit 3, unless the operation ended or --max-events "
    "came first). Default: no limit.",
)
@client_options
def watch(
    target: str | None,
    subscription: str | None,
    location: str | None,
    provider: str | None,
    status: tuple[str, ...],
    last_event_id: str | None,
    output: str | None,
    max_events: int | None,
    timeout: float | None,
    endpoint: str,
    token: str | None,
    home: Path | None,
    namespace: str,
    api_version: str,
) -> None:
    """Show changes live: an operation's progress, or every change in a subscription.

    TARGET is an operation id (with --subscription and --location) or its status URL: a
    progress bar until it ends; exit 0 if Succeeded, 1 if Failed or Canceled. Without
    TARGET, every change in --subscription (maybe one --provider, --location, --status)
    as a live table, until interrupted (exit 130), --max-events (exit 0) or --timeout
    (exit 3). --last-event-id 0 starts from the oldest event the server keeps.
    """
    mode = output or ("live" if sys.stdout.isatty() else "lines")
    with make_client(endpoint, token, home, namespace, api_version) as client:
        if target is not None:
            if provider or status:
                raise click.UsageError("--provider and --status apply without TARGET")
            url = resolve(client, target, subscription, location)
        elif not subscription:
            raise click.UsageError("give TARGET, or --subscription to watch a subscription")
        else:
            url = client.events_url(subscription, provider, location, status or None)
        limit = TimeLimit(timeout)
        events = islice(limit.within(client.events(url, last_event_id)), max_events)
        try:
            shown, last = _show(events, mode, single=target is not None)
            if target is not None and last is None and not limit.reached:
                last = client.get(url)  # ended before any event: how?
        except (ClientError, httpx.HTTPError) as exc:
            fail(exc)
    if last is not None and last.terminal:
        sys.exit(0 if last.succeeded else EXIT_FAILED)
    if limit.reached and shown != max_events:
        click.echo(f"opstatus: timed out after {timeout:g} s", err=True)
        sys.exit(EXIT_TIMEOUT)


class TimeLimit:
    """``--timeout`` over a stream that blocks while nothing happens: a thread reads the
    events and hands them over, and the watch stops waiting for them at the deadline (the
    process then exits, and the thread with it)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        #: Whether the deadline ended the events.
        self.reached = False

    def within(self, events: Iterator[OperationEvent]) -> Iterator[OperationEvent]:
        if self.seconds is None:
            yield from events
            return
        handed: queue.Queue[tuple[OperationEvent | None, BaseException | None]] = queue.Queue()

        def read() -> None:
            try:
                for event in events:
                    handed.put((event, None))
                handed.put((None, None))
            except BaseException as exc:  # noqa: BLE001 - raised again in the watch itself
                handed.put((None, exc))

        threading.Thread(target=read, name="opstatus-watch", daemon=True).start()
        deadline = time.monotonic() + self.seconds
        while True:
            try:
                event, error = handed.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                self.reached = True
                return
            if error is not None:
                raise error
            if event is None:
                return
            yield event


def _show(
    events: Iterator[OperationEvent], mode: str, single: bool
) -> tuple[int, OperationStatus | None]:
    """Print the events as ``mode`` asks; how many, and the operation's last state (one
    operation)."""
    table: dict[str, OperationEvent] = {}
    last: OperationStatus | None = None
    shown = 0
    for event in events:
        shown += 1
        last = event.operation
        if mode == "json":
            click.echo(json.dumps(event.data, separators=(",", ":")))
        elif mode == "lines":
            click.echo(line(event))
        elif single:
            click.echo("\r" + bar(event), nl=False)
        else:
            table[event.operation.id] = event
            click.echo(CLEAR + render_table(table), nl=False)
    if single and mode == "live":
        click.echo()
    return shown, last if single else None


def line(event: OperationEvent) -> str:
    op = event.operation
    percent = "" if op.percent_complete is None else f" {op.percent_complete:g}%"
    return f"{event.id} {event.type} {op.name} {op.status}{percent}"


def bar(event: OperationEvent) -> str:
    """``[#########.....]  60%  InProgress  name``."""
    op = event.operation
    percent = 100.0 if op.succeeded else (op.percent_complete or 0.0)
    filled = int(BAR_WIDTH * min(max(percent, 0.0), 100.0) / 100)
    text = (
        f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {percent:5.1f}%  {op.status:<10} {op.name}"
    )
    if op.error_code:
        text += f"  {op.error_code}: {op.error_message or ''}"
    return text


def render_table(table: dict[str, OperationEvent]) -> str:
    """The operations that changed, newest change first, as many as the terminal shows."""
    rows = shutil.get_terminal_size((100, 24)).lines - 3
    newest = sorted(table.values(), key=lambda e: e.data.get("time", ""), reverse=True)
    lines = [f"{'OPERATION':<38} {'STATUS':<11} {'%':>5}  {'LOCATION':<12} {'EVENT':<24} TIME"]
    for event in newest[: max(rows, 1)]:
        op = event.operation
        percent = "" if op.percent_complete is None else f"{op.percent_complete:g}"
        location = str(event.data.get("location", ""))
        time = str(event.data.get("time", ""))
        lines.append(
            f"{op.name[:38]:<38} {op.status:<11} {percent:>5}  {location[:12]:<12} "
            f"{event.type:<24} {time}"
        )
    return "\n".join(lines) + "\n"

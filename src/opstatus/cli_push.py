"""``serve``'s options for pushing changes: the event log, webhooks and event streams.

Every option has an ``OPSTATUS_*`` variable; the command receives them together as ``push``,
keyword arguments of :class:`~opstatus.settings.Settings`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from .settings import parse_duration
from .webhooks import check_secret, parse_networks


def _env(flag: str) -> str:
    return "OPSTATUS_" + flag[2:].upper().replace("-", "_")


def _seconds(ctx: click.Context, param: click.Parameter, value: Any) -> float:
    try:
        return parse_duration(str(value), f"--{(param.name or '').replace('_', '-')}")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _option(flag: str, name: str, text: str, **kwargs: Any) -> Callable[[Any], Any]:
    return click.option(flag, name, envvar=_env(flag), help=f"{text} [env: {_env(flag)}]", **kwargs)


def _duration(flag: str, name: str, default: str, text: str) -> Callable[[Any], Any]:
    return _option(
        flag, name, text, default=default, callback=_seconds, metavar="DURATION", show_default=True
    )


PUSH_OPTIONS = [
    _option(
        "--progress-events-kept",
        "progress_events_kept",
        "Progress events the event log keeps per operation (the newest).",
        type=click.IntRange(1, 100_000),
        default=100,
        show_default=True,
    ),
    _option(
        "--webhook-secret",
        "webhook_secret",
        "Secret (whsec_...) that signs operations' callbacks. [default: made once, kept in "
        "the home folder; see 'opstatus webhook callback-secret']",
        default="",
        show_default=False,
    ),
    _option(
        "--webhook-allow-http",
        "webhook_allow_http",
        "Allow webhooks to plain http URLs.",
        is_flag=True,
        default=False,
    ),
    _option(
        "--webhook-allow-network",
        "webhook_allow_networks",
        "A private, loopback or link-local network webhooks may reach (repeatable; the "
        "variable takes several, space-separated), e.g. 10.0.0.0/8.",
        multiple=True,
    ),
    _duration("--webhook-timeout", "webhook_timeout", "10s", "Time limit of one webhook attempt."),
    _option(
        "--webhook-max-attempts",
        "webhook_max_attempts",
        "Attempts per webhook delivery before it is marked failed.",
        type=click.IntRange(1, 100),
        default=12,
        show_default=True,
    ),
    _duration("--webhook-retry-base", "webhook_retry_base", "1s", "First retry delay."),
    _duration("--webhook-retry-max", "webhook_retry_max", "10m", "Longest retry delay."),
    _option(
        "--webhook-concurrency",
        "webhook_concurrency",
        "Webhook sends in flight at once per server process (0: this process sends none).",
        type=click.IntRange(0, 10_000),
        default=64,
        show_default=True,
    ),
    _duration(
        "--webhook-history", "webhook_history_seconds", "7d", "How long deliveries stay listed."
    ),
    _option(
        "--max-streams",
        "max_streams",
        "Server-Sent Events streams open at once per server process; 503 beyond. Each also "
        "holds a connection: raise --max-connections with it.",
        type=click.IntRange(0, 1_000_000),
        default=10_000,
        show_default=True,
    ),
    _option(
        "--max-streams-per-principal",
        "max_streams_per_principal",
        "Event streams one principal may hold open at once; 429 beyond.",
        type=click.IntRange(0, 1_000_000),
        default=1_000,
        show_default=True,
    ),
    _duration(
        "--stream-heartbeat",
        "stream_heartbeat",
        "15s",
        "Silence before an event stream's heartbeat comment.",
    ),
    _option(
        "--stream-queue",
        "stream_queue",
        "Events queued for a stream that is not keeping up before it is ended (its client "
        "resumes with Last-Event-ID).",
        type=click.IntRange(1, 1_000_000),
        default=1_000,
        show_default=True,
    ),
]


def push_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options; the command receives them as ``push``."""
    names = {"progress_events_kept", "webhook_timeout", "webhook_max_attempts"}
    names |= {"webhook_secret", "webhook_allow_http", "webhook_allow_networks"}
    names |= {"webhook_retry_base", "webhook_retry_max", "webhook_concurrency"}
    names |= {"webhook_history_seconds", "max_streams", "max_streams_per_principal"}
    names |= {"stream_heartbeat", "stream_queue"}

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        push = {name: kwargs.pop(name) for name in list(kwargs) if name in names}
        networks = tuple(n for value in push["webhook_allow_networks"] for n in value.split())
        push["webhook_allow_networks"] = networks
        try:
            parse_networks(networks)
            if push["stream_heartbeat"] < 0.1:
                raise ValueError("--stream-heartbeat must be at least 0.1s")
            if push["webhook_secret"]:
                check_secret(push["webhook_secret"], "--webhook-secret")
        except Exception as exc:  # noqa: BLE001 - ValueError or InvalidInput, both a usage error
            raise click.UsageError(str(getattr(exc, "message", exc))) from None
        return func(push=push, **kwargs)

    for option in reversed(PUSH_OPTIONS):
        wrapper = option(wrapper)
    return wrapper

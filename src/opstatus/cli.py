"""The ``opstatus`` command: run the server, mint tokens, and read, write and wait on operations.

Exit codes: 0 success (``wait``: Succeeded), 1 the operation Failed or was Canceled,
2 usage error, 3 timeout, 4 the service answered with an error or could not be reached.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import auth
from .errors import InvalidInput
from .settings import Settings, default_home

EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_SERVICE = 1, 2, 3, 4

home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="OPSTATUS_HOME",
    default=None,
    help="Server home folder (database, signing key). [env: OPSTATUS_HOME; default: per-user "
    "data folder]",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="opstatus")
def main() -> None:
    """opstatus: track long-running operations and answer Get Operation Status."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="OPSTATUS_HOST",
              help="Address to bind. [env: OPSTATUS_HOST]")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              envvar="OPSTATUS_PORT", help="Port to bind. [env: OPSTATUS_PORT]")
@home_option
@click.option("--store", "store_url", default="", envvar="OPSTATUS_STORE",
              help="Store URL: sqlite:///PATH or memory:. [env: OPSTATUS_STORE; default: "
              "sqlite in the home folder]")
@click.option("--providers", "providers_file", type=click.Path(dir_okay=False, exists=True,
              path_type=Path), envvar="OPSTATUS_PROVIDERS",
              help="TOML file registering more resource providers. [env: OPSTATUS_PROVIDERS]")
@click.option("--retry-after", default=10, show_default=True, type=click.IntRange(0, 600),
              envvar="OPSTATUS_RETRY_AFTER",
              help="Seconds to tell clients between polls. [env: OPSTATUS_RETRY_AFTER]")
@click.option("--public-url", default=None, envvar="OPSTATUS_PUBLIC_URL",
              help="Base URL for absolute links, when behind a proxy. [env: OPSTATUS_PUBLIC_URL]")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(host: str, port: int, home: Path | None, store_url: str, providers_file: Path | None,
          retry_after: int, public_url: str | None, log_level: str) -> None:
    """Run the operation-status server."""
    import uvicorn

    from .http.app import create_app

    settings = Settings(
        home=home or default_home(),
        store_url=store_url,
        providers_file=providers_file,
        retry_after=retry_after,
        public_url=public_url,
    )
    try:
        app = create_app(settings)
    except (ValueError, OSError) as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"opstatus: home {settings.home}, store {settings.resolved_store_url()}",
               err=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http="httptools",
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        date_header=False,
        server_header=False,
        access_log=log_level == "debug",
    )


@main.command()
@click.option("--subject", required=True, help="Who the token is for (its 'sub').")
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice(auth.ROLES, case_sensitive=False),
              help="Reader, Contributor or Owner; repeat to pair with several --scope.")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="/subscriptions/<guid>, or / for every subscription. May repeat.")
@click.option("--expires-in", default=3600, show_default=True, type=click.IntRange(1),
              help="Lifetime in seconds.")
@home_option
def token(subject: str, roles: tuple[str, ...], scopes: tuple[str, ...], expires_in: int,
          home: Path | None) -> None:
    """Print a bearer token signed with the server's key.

    One --role applies to every --scope; otherwise give one --role per --scope.
    """
    if len(roles) != 1 and len(roles) != len(scopes):
        raise click.UsageError("give one --role, or one --role per --scope")
    pairs = [(_canonical_role(roles[0 if len(roles) == 1 else i]), scope)
             for i, scope in enumerate(scopes)]
    key = auth.load_or_create_key(home or default_home())
    try:
        click.echo(auth.mint_token(key, subject, pairs, expires_in))
    except (ValueError, InvalidInput) as exc:
        raise click.UsageError(str(exc)) from exc


def _canonical_role(role: str) -> str:
    return next(r for r in auth.ROLES if r.lower() == role.lower())

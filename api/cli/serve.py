"""``bulkactions serve`` (the HTTP API, with workers and projector on the embedded
default) and ``bulkactions accounts create``."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime

import click
import orjson

from api.cli.common import container, data_dir
from application.accounts import AccountLimits, DuplicateAccountError
from infrastructure.settings import Settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Chunk workers (default: BULK_WORKERS).",
)
@click.option("--no-runtime", is_flag=True, help="API only: workers, relay and projector run elsewhere.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int | None, no_runtime: bool) -> None:
    """Run the HTTP API; on the embedded default also the relay, workers and projector."""
    import uvicorn

    from api.http.app import ApiConfig, create_app
    from api.http.protocol import BoundedHttpToolsProtocol
    from api.runtime_process import RuntimeProcess

    early = Settings(data_dir=data_dir(ctx))
    embedded = early.transport == "inprocess" and not no_runtime
    if embedded:
        _metrics_of_children(early)
    built = container(ctx, create=True, metrics=True)
    settings = built.settings
    started = datetime.now(UTC).isoformat()
    runtime = RuntimeProcess(settings, workers or settings.workers, started) if embedded else None
    # Bind before anything starts, so a taken port is one line and exit 1, and
    # `--port 0` (any free port) can print the port it got: tests and scripts read it
    # from this line instead of guessing a free port that another socket may take first.
    listening = _listen(host, port)
    bound_port = listening.getsockname()[1]
    app = create_app(built.services, ApiConfig.of(settings), runtime)
    shown_host = f"[{host}]" if ":" in host else host
    where = f"serving on http://{shown_host}:{bound_port} (docs: /docs)"
    click.echo(where + (" with embedded relay, workers and projector" if runtime else ""), err=True)
    # With JSON logs uvicorn's own lines go through the root logger's JSON formatter
    # (log_config=None: uvicorn leaves logging as configured) instead of its text format.
    config = uvicorn.Config(
        app,
        host=host,
        port=bound_port,
        log_level="warning",
        access_log=False,
        http=BoundedHttpToolsProtocol,
        log_config=uvicorn.config.LOGGING_CONFIG if settings.log_format == "text" else None,
    )
    uvicorn.Server(config).run(sockets=[listening])


def _metrics_of_children(settings: Settings) -> None:
    """The runtime's processes (workers, projector) write their metrics to files that
    ``/metrics`` adds up; before anything imports the metrics library. A data dir that
    cannot be written is left for the composition root to refuse in its own words."""
    from infrastructure.prometheus import multiprocess_dir, use_multiprocess_dir

    try:
        use_multiprocess_dir(multiprocess_dir(settings.data_dir, settings.metrics_dir))
    except OSError as exc:
        logging.getLogger(__name__).warning("/metrics leaves out the runtime's processes: %s", exc)


def _listen(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listening = socket.socket(family, kind, proto)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return listening


@click.group()
def accounts() -> None:
    """Manage API accounts."""


@accounts.command("create")
@click.argument("name")
@click.option("--requests-per-minute", type=click.IntRange(min=1), default=None)
@click.option("--records-per-day", type=click.IntRange(min=1), default=None)
@click.option("--max-active", type=click.IntRange(min=1), default=None, help="Concurrently active actions.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def create_account(
    ctx: click.Context,
    name: str,
    *,
    requests_per_minute: int | None,
    records_per_day: int | None,
    max_active: int | None,
    as_json: bool,
) -> None:
    """Create an account and print its API key and webhook secret (shown only this once)."""
    built = container(ctx, create=True)
    s = built.settings
    limits = AccountLimits(
        requests_per_minute or s.requests_per_minute,
        records_per_day or s.records_per_day,
        max_active or s.max_active_actions,
    )
    try:
        account, api_key = built.services.accounts.create(name, limits)
    except (DuplicateAccountError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    if as_json:
        click.echo(
            orjson.dumps(
                {
                    "account_id": account.account_id,
                    "name": account.name,
                    "api_key": api_key,
                    "webhook_secret": account.webhook_secret,
                    "limits": {
                        "requests_per_minute": limits.requests_per_minute,
                        "records_per_day": limits.records_per_day,
                        "max_active": limits.max_active_actions,
                    },
                }
            ).decode()
        )
        return
    click.echo(f"account {account.account_id} ({account.name})")
    click.echo(f"API key (shown once, store it now): {api_key}")
    click.echo(f"webhook secret (shown once; verifies the Webhook-Signature of deliveries): {account.webhook_secret}")


@accounts.command("webhook-secret")
@click.argument("account_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def new_webhook_secret(ctx: click.Context, account_id: str, *, as_json: bool) -> None:
    """Give an account a new webhook secret and print it (shown only this once); the
    old one stops signing at once. For accounts made before webhooks, and to rotate."""
    try:
        secret = container(ctx).services.accounts.new_webhook_secret(account_id)
    except LookupError as exc:
        raise click.UsageError(str(exc)) from None
    if as_json:
        click.echo(orjson.dumps({"account_id": account_id, "webhook_secret": secret}).decode())
        return
    click.echo(f"webhook secret of {account_id} (shown once): {secret}")

"""The `webhooks` command: receive SendPilot's events into the workspace ledger."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from campaign_runner.cli.app import EXIT_OK, UserError, cli, user_errors
from campaign_runner.cli.options import workspace_options
from campaign_runner.cli.workspace import settings_ledger
from campaign_runner.config import (
    WEBHOOK_SECRET_ENV,
    Secret,
    find_config,
    load_settings,
    webhook_secrets,
)
from campaign_runner.timestamps import format_timestamp

if TYPE_CHECKING:
    # aiohttp and the receiver are imported when the command runs, so that `validate`
    # on a large file starts fast.
    from campaign_runner.ledger import Ledger
    from campaign_runner.webhooks import WebhookServer

# Beside the stand-in's default 8787, so that a rehearsal can run both on their defaults.
DEFAULT_PORT = 8788


@cli.command()
@workspace_options
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (a tunnel on this machine needs nothing else).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    metavar="SECRET",
    help=f"The webhook's signing secret; repeat it to accept an old and a new one "
    f"(default: ${WEBHOOK_SECRET_ENV}, several separated by commas or spaces).",
)
def webhooks(
    config_path: Path | None, sandbox: bool, host: str, port: int, secrets: tuple[str, ...]
) -> None:
    """Receive SendPilot's webhooks: who accepted, kept in the workspace ledger.

    Serves POST /webhooks/sendpilot until Ctrl-C. Every delivery must be signed with one
    of the secrets (SendPilot's documented Webhook-Signature t=...,s=... form, or the
    Standard Webhooks form with a whsec_ secret) within 5 minutes; others get 401. Each
    event is kept once by its id, durably, before the answer: connection_request.sent and
    .accepted (and the older connection.sent and .accepted) say who was invited and who
    accepted; other events are kept too. Results files are never changed. One line is
    logged per event: its type, sender and id.

    \b
    Examples:
        export SENDPILOT_WEBHOOK_SECRET=whsec_...   # as SendPilot shows it
        campaign-runner webhooks --port 8788
      then expose it, e.g.: cloudflared tunnel --url http://127.0.0.1:8788
      and give SendPilot https://<tunnel host>/webhooks/sendpilot

    \b
    Exit codes: 0 stopped by Ctrl-C or SIGTERM; 2 no secret, the port cannot be had,
    or the workspace ledger is unusable.
    """
    import asyncio

    with user_errors():
        settings = load_settings(find_config(config_path))
    chosen = webhook_secrets(" ".join(secrets)) if secrets else settings.webhooks.secrets
    if not chosen:
        raise UserError(
            f"no webhook secret: set {WEBHOOK_SECRET_ENV} (or pass --secret) to the secret "
            f"SendPilot shows where the webhook is set up"
        )
    location, ledger = settings_ledger(settings, sandbox, read_only=False)
    assert ledger is not None  # opened for writing: created when missing
    try:
        # A Ctrl-C before the signal handlers are in place lands here instead.
        with user_errors(), contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(ledger, chosen, host, port, location))
    finally:
        ledger.close()
    # Ctrl-C is how a receiver is meant to end, so it is a success, not an interruption.
    sys.exit(EXIT_OK)


def _log(line: str) -> None:
    click.echo(f"{format_timestamp(time.time())} {line}")


async def _serve(
    ledger: Ledger, secrets: tuple[Secret, ...], host: str, port: int, location: str
) -> None:
    import asyncio

    from campaign_runner.webhooks import Receiver, WebhookServer, signing_keys

    server = WebhookServer(Receiver(ledger, signing_keys(secrets), log=_log), host, port)
    try:
        await server.start()
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        _banner(server, len(secrets), location)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await server.stop()
    click.echo("webhooks stopped")


def _banner(server: WebhookServer, secrets: int, location: str) -> None:
    click.echo(f"receiving SendPilot webhooks at {server.url}")
    click.echo(f"events are kept in the workspace ledger: {location}")
    click.echo(f"signatures checked against {secrets} secret{'' if secrets == 1 else 's'}")
    click.echo("press Ctrl-C to stop")

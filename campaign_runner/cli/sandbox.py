"""The `sandbox` command: serve the stand-in SendPilot API on loopback."""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
from typing import TYPE_CHECKING

import click

from campaign_runner.cli.app import (
    EXIT_OK,
    UserError,
    cli,
    user_errors,
)
from campaign_runner.config import API_KEY_ENV, DEFAULT_CONFIG_NAME

if TYPE_CHECKING:
    # The sending stack (aiohttp, the runner, the sandbox) is imported by the commands
    # that use it, so that `validate` on a large file starts fast.
    from campaign_runner.sandbox import SandboxConfig


def _id_set(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a --host other than loopback (anyone who can reach it can use the sandbox).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8787,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option("--api-key", default="sandbox-key", show_default=True, help="Key clients must send.")
@click.option(
    "--senders",
    "senders_spec",
    metavar="ID:CAPACITY[,...]",
    help="Senders and their invitations per window "
    "(default: sender_alice:25 premium, sender_bob:25 free).",
)
@click.option("--premium", metavar="IDS", help="Comma-separated premium senders; others are free.")
@click.option("--free", metavar="IDS", help="Comma-separated free senders (notes are dropped).")
@click.option(
    "--already-connected",
    metavar="URL",
    multiple=True,
    help="A profile that answers already_connected (repeatable).",
)
@click.option(
    "--window-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=86400.0,
    show_default=True,
    help="Capacity renewal period.",
)
@click.option("--fault", "faults", metavar="SPEC", multiple=True, help="A fault rule (repeatable).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for faults and ids.")
@click.option("--webhook-url", help="POST signed connection events here.")
@click.option("--webhook-secret", help="Secret that signs webhooks (needed with --webhook-url).")
@click.option(
    "--webhook-signing",
    type=click.Choice(["sendpilot", "standard"]),
    default="sendpilot",
    show_default=True,
    help="Sign as SendPilot documents it (Webhook-Signature: t=...,s=...) or as Standard "
    "Webhooks (webhook-id, -timestamp, -signature; needs a whsec_ secret).",
)
@click.option(
    "--webhook-profile-urls",
    type=click.Choice(["as_sent", "varied"]),
    default="as_sent",
    show_default=True,
    help="Write profiles in events as sent, or in varied pasted forms.",
)
@click.option(
    "--webhook-redeliveries",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Deliver each event this many times more, as SendPilot does when an answer is lost.",
)
@click.option(
    "--accept-share",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of invitations that get accepted.",
)
@click.option(
    "--accept-delay",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds from invitation to acceptance.",
)
def sandbox(
    host: str,
    allow_remote: bool,
    port: int,
    api_key: str,
    senders_spec: str | None,
    premium: str | None,
    free: str | None,
    already_connected: tuple[str, ...],
    window_seconds: float,
    faults: tuple[str, ...],
    seed: int,
    webhook_url: str | None,
    webhook_secret: str | None,
    webhook_signing: str,
    webhook_profile_urls: str,
    webhook_redeliveries: int,
    accept_share: float,
    accept_delay: float,
) -> None:
    """Serve a local stand-in of the SendPilot API, faults included, until Ctrl-C.

    It answers POST /v1/inbox/connect, GET /v1/inbox/senders and GET /v1/senders/quotas
    like the real service (auth, validation, per-sender capacity, already-connected
    profiles, free senders that drop notes), and prints the settings that point
    campaign-runner at it. Nothing leaves this machine; the key is not a secret.

    \b
    Example:
        campaign-runner sandbox --port 8787 --senders alice:20,bob:5 --free bob \\
            --fault error:500:rate=0.1 --fault hang:nth=5

    \b
    Fault SPEC: KIND[:STATUS][:key=value...], checked in order, the first that fires wins.
      error[:STATUS]  answer STATUS (default 500) with a JSON error; nothing is created
      rate_limit      429 "Rate limit exceeded" with Retry-After (retry_after=SECONDS|none)
      latency         wait seconds=S, then answer normally
      hang            create the invitation, then never answer
      drop            create the invitation, then close the connection unanswered
      drop_before     close the connection without creating anything
      malformed       create the invitation, then answer with a broken JSON body
      redirect[:STATUS]  answer STATUS (default 307) with Location: location=URL (default:
                      the request's own URL); nothing is created
      body[:STATUS]   answer STATUS (default 200) with a raw body: text=TEXT (last: takes
                      the rest of the spec), nested=DEPTH, size=BYTES, invalid_utf8=true,
                      else the real answer; echo_key=true puts the caller's key in it;
                      content_type=TYPE serves it as TYPE (text/html: a web page).
                      A 2xx creates the invitation first; any other status creates nothing
    Selectors: route=connect|senders|quotas|*  nth=N (the Nth request to the route)
      sender=ID  recipient=URL|SLUG  times=N (fire at most N times)  rate=P (probability,
      drawn from --seed, so runs repeat exactly).

    \b
    Examples: error:503:times=2  rate_limit:retry_after=2:times=3  hang:nth=5
              latency:seconds=0.5:rate=0.2  drop:recipient=john-doe  redirect:308
              body:200:nested=100000  body:text={"status": "queued"}
              body:404:content_type=text/html:text=<html>Not Found</html>
    """
    import asyncio

    from campaign_runner.sandbox import SandboxConfig, parse_fault_spec, senders_from_spec

    if not allow_remote and not _is_loopback(host):
        raise click.BadParameter(
            f"{host} is not a loopback address; add --allow-remote to serve it anyway",
            param_hint="--host",
        )
    try:
        senders = senders_from_spec(senders_spec, _id_set(premium), _id_set(free) or set())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--senders") from None
    try:
        rules = tuple(parse_fault_spec(spec) for spec in faults)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fault") from None
    try:
        config = SandboxConfig(
            api_key=api_key,
            senders=senders,
            window_seconds=window_seconds,
            already_connected=frozenset(already_connected),
            faults=rules,
            seed=seed,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            webhook_signing=webhook_signing,
            webhook_profile_urls=webhook_profile_urls,
            webhook_redeliveries=webhook_redeliveries,
            accept_share=accept_share,
            accept_delay_seconds=accept_delay,
            announce=True,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    # A Ctrl-C before the signal handlers are in place lands here instead.
    with user_errors(), contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_sandbox(config, host, port, faults))
    # Ctrl-C is how a sandbox is meant to end, so it is a success, not an interruption.
    sys.exit(EXIT_OK)


async def _serve_sandbox(
    config: SandboxConfig, host: str, port: int, fault_specs: tuple[str, ...]
) -> None:
    import asyncio

    from campaign_runner.sandbox import SandboxServer

    server = SandboxServer(config, host=host, port=port)
    try:
        await server.start()
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        _print_sandbox_banner(server.base_url, config, fault_specs)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await server.stop()
    created = len(server.state.invitations)
    counts = ", ".join(f"{r} {o}: {n}" for (r, o), n in sorted(server.state.counters.items()))
    click.echo(
        f"sandbox stopped: {created} invitation{'' if created == 1 else 's'} created"
        + (f" ({counts})" if counts else "")
    )


def _print_sandbox_banner(
    base_url: str, config: SandboxConfig, fault_specs: tuple[str, ...]
) -> None:
    click.echo(f"SendPilot sandbox listening on {base_url} (nothing leaves this machine)")
    click.echo("point campaign-runner at it: in the shell,")
    click.echo(f"  export {API_KEY_ENV}={shlex.quote(config.api_key)}")
    # Not indented, and set apart by blank lines, so that it pastes into a YAML file as
    # it is: "api.base_url: URL" (the dotted form) would be a top-level key named so.
    click.echo(f"and in the YAML config ({DEFAULT_CONFIG_NAME}, or --config FILE):")
    click.echo("")
    click.echo("api:")
    click.echo(f"  base_url: {base_url}")
    click.echo("")
    for s in config.senders:
        kind = "premium" if s.premium else "free"
        per = f"{s.capacity} invitations per {config.window_seconds:g}s"
        click.echo(f"sender {s.id}: {kind}, {per}, {s.status}")
    for spec in fault_specs:
        click.echo(f"fault: {spec}")
    if config.webhook_url:
        click.echo(
            f"webhooks: {config.webhook_url} (accepting {config.accept_share:.0%}, "
            f"signed the {config.webhook_signing} way)"
        )
    click.echo("press Ctrl-C to stop")

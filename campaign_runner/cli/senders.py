"""The `senders` command: what the API and the config say about each sender."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from campaign_runner.cli.app import (
    cli,
    user_errors,
)
from campaign_runner.config import Settings, find_config, load_settings

if TYPE_CHECKING:
    # The sending stack (aiohttp, the runner, the sandbox) is imported by the commands
    # that use it, so that `validate` on a large file starts fast.
    pass


@cli.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="YAML config file.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def senders(config_path: Path | None, as_json: bool) -> None:
    """List the workspace's senders, their status and remaining connection capacity.

    \b
    Example:
        SENDPILOT_API_KEY=... campaign-runner senders --config campaign-runner.yaml
    """
    import asyncio

    with user_errors():
        settings = load_settings(find_config(config_path))
        rows = asyncio.run(_sender_rows(settings))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no senders")
        return
    for r in rows:
        remaining = "?" if r["remaining"] is None else r["remaining"]
        limit = "?" if r["limit"] is None else r["limit"]
        click.echo(
            f"{r['id']}  {r['status']:<13} remaining {remaining} of {limit}"
            f"  resets {r['resets_at'] or '?'}  {r['name']}"
        )


async def _sender_rows(settings: Settings) -> list[dict[str, Any]]:
    import aiohttp

    from campaign_runner.client import SendPilotClient

    settings.require_api_key()
    async with aiohttp.ClientSession() as session:
        client = SendPilotClient.from_settings(session, settings)
        infos = await client.senders()
        quotas, why = await client.quotas_if_available()
    if why:
        click.echo(f"warning: quotas unavailable ({why})", err=True)
    rows = []
    for info in infos:
        quota = quotas.get(info.id)
        configured = settings.sender(info.id)
        rows.append(
            {
                "id": info.id,
                "name": info.name,
                "status": info.status,
                "premium": info.premium,
                "limit": quota.limit if quota else None,
                "remaining": quota.remaining if quota else None,
                "resets_at": quota.resets_at if quota else None,
                "configured_daily_limit": configured.daily_limit if configured else None,
            }
        )
    return rows

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
from campaign_runner.timestamps import parse_iso_time

if TYPE_CHECKING:
    # The sending stack (aiohttp, the runner, the sandbox) is imported by the commands
    # that use it, so that `validate` on a large file starts fast.
    pass


@cli.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="YAML config file.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def senders(config_path: Path | None, as_json: bool) -> None:
    """Show each sender as the config and the API see it, side by side.

    One line per sender the API lists or the config names: its status, the daily and
    weekly limits a run uses (the config's, else pacing.default_daily_limit and
    pacing.default_weekly_limit), what the API reports as remaining and when that resets
    (local time), and its name. Warns about a configured sender the API does not list:
    a run skips it.

    \b
    Example:
        SENDPILOT_API_KEY=... campaign-runner senders --config campaign-runner.yaml
        campaign-runner senders --json
    """
    import asyncio
    import time

    with user_errors():
        settings = load_settings(find_config(config_path))
        rows = asyncio.run(_sender_rows(settings))
    for row in rows:
        if not row["listed"]:
            where = settings.source or "the config"
            click.echo(
                f"warning: sender {row['id']} ({where}) is not listed by GET /inbox/senders: "
                "a run skips it; check its id in SendPilot",
                err=True,
            )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no senders: the API lists none and the config names none")
        return
    for line in _table(rows, time.time()):
        click.echo(line)


COLUMNS = ("id", "status", "daily", "weekly", "remaining", "resets", "name")


def _table(rows: list[dict[str, Any]], now: float) -> list[str]:
    """The rows as aligned text under a header line; numbers right-aligned."""
    cells = [list(COLUMNS)]
    for r in rows:
        remaining = "?" if r["remaining"] is None else str(r["remaining"])
        if r["remaining"] is not None and r["limit"] is not None:
            remaining += f" of {r['limit']}"
        cells.append(
            [
                r["id"],
                r["status"],
                str(r["daily_limit"]) + ("" if r["configured"] else "*"),
                str(r["weekly_limit"]) + ("" if r["configured"] else "*"),
                remaining,
                _resets(r["resets_at"], now),
                r["name"],
            ]
        )
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    numeric = {2, 3}
    lines = [
        "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in cells
    ]
    if not all(r["configured"] for r in rows):
        lines.append("* not in the config: the defaults of pacing.default_daily/weekly_limit")
    return lines


def _resets(resets_at: str | None, now: float) -> str:
    """The API's reset time in local time; as the API wrote it when it cannot be read."""
    from campaign_runner.cli.render import local_time

    if not resets_at:
        return "?"
    moment = parse_iso_time(resets_at)
    return resets_at if moment is None else local_time(moment, now)


async def _sender_rows(settings: Settings) -> list[dict[str, Any]]:
    import aiohttp

    from campaign_runner.client import SendPilotClient

    settings.require_api_key()
    async with aiohttp.ClientSession() as session:
        client = SendPilotClient.from_settings(session, settings)
        infos = {info.id: info for info in await client.senders()}
        quotas, why = await client.quotas_if_available()
    if why:
        click.echo(f"warning: quotas unavailable ({why})", err=True)
    ids = [*infos, *(s.id for s in settings.senders if s.id not in infos)]
    rows = []
    for sender_id in ids:
        info = infos.get(sender_id)
        quota = quotas.get(sender_id)
        configured = settings.sender(sender_id)
        rows.append(
            {
                "id": sender_id,
                "name": info.name if info else "",
                "status": info.status if info else "not listed",
                "premium": info.premium if info else None,
                "limit": quota.limit if quota else None,
                "remaining": quota.remaining if quota else None,
                "resets_at": quota.resets_at if quota else None,
                "configured_daily_limit": configured.daily_limit if configured else None,
                "configured": configured is not None,
                "listed": info is not None,
                "daily_limit": settings.daily_limit(sender_id),
                "weekly_limit": settings.weekly_limit(sender_id),
            }
        )
    return rows

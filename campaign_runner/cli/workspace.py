"""The `workspace` commands: show the ledger, import old results, release people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from campaign_runner.cli.app import (
    UserError,
    cli,
    user_errors,
)
from campaign_runner.cli.options import workspace_options
from campaign_runner.config import Settings, find_config, load_settings

if TYPE_CHECKING:
    # The sending stack (aiohttp, the runner, the sandbox) is imported by the commands
    # that use it, so that `validate` on a large file starts fast.
    from campaign_runner.ledger import Ledger


def open_workspace(
    config_path: Path | None, sandbox: bool, *, read_only: bool
) -> tuple[Settings, str, Ledger | None]:
    """The settings, and where the workspace's ledger is and the ledger itself (None for
    ``read_only`` when it does not exist yet)."""
    with user_errors():
        settings = load_settings(find_config(config_path))
    return (settings, *settings_ledger(settings, sandbox, read_only=read_only))


def settings_ledger(
    settings: Settings, sandbox: bool, *, read_only: bool
) -> tuple[str, Ledger | None]:
    """Where the workspace's ledger of ``settings`` is, and the ledger itself (None for
    ``read_only`` when it does not exist yet)."""
    from campaign_runner.workspace import ledger_location, open_ledger

    with user_errors():
        location = ledger_location(settings, rehearsal=sandbox)
        if location is None:
            raise UserError(
                "which workspace? it is chosen by the API key: set SENDPILOT_API_KEY, or "
                "workspace.database in the config"
            )
        return location, open_ledger(location, read_only=read_only)


@cli.group(invoke_without_command=True)
@workspace_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def workspace(ctx: click.Context, config_path: Path | None, sandbox: bool, as_json: bool) -> None:
    """Show the workspace ledger: every campaign's invitations, shared by all of them.

    The ledger is how campaign-runner keeps its promises per SendPilot workspace, not per
    file: nobody is invited twice and no sender goes past its daily or weekly limit,
    whichever campaign, process or machine sends. Shows where it is, its campaigns and
    their results files, each sender's use today and this week, and people by status.

    \b
    Examples:
        campaign-runner workspace
        campaign-runner workspace import old-campaign.results.csv
        campaign-runner workspace release https://www.linkedin.com/in/jane-doe
    """
    if ctx.invoked_subcommand is not None:
        return
    import time

    settings, location, ledger = open_workspace(config_path, sandbox, read_only=True)
    with user_errors():
        payload = _workspace_payload(location, ledger, settings, time.time())
    if as_json:
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(f"workspace ledger: {location}")
    if ledger is None:
        click.echo("empty: the first run of a campaign creates it")
        return
    click.echo(f"campaigns: {len(payload['campaigns'])}")
    for c in payload["campaigns"]:
        click.echo(f"  {c['name']}  {c['results']}  (since {c['since'][:10]})")
    click.echo("senders (invitations in the rolling day, and week):")
    for sender, use in sorted(payload["senders"].items()):
        click.echo(f"  {sender}  today {use['today']}  this week {use['this_week']}")
    totals = ", ".join(f"{n} {s}" for s, n in sorted(payload["totals"].items())) or "none yet"
    click.echo(f"people: {totals}")


def _workspace_payload(
    location: str, ledger: Ledger | None, settings: Settings, now: float
) -> dict[str, Any]:
    from campaign_runner.timestamps import format_timestamp

    if ledger is None:
        return {"location": location, "campaigns": [], "senders": {}, "totals": {}}
    with ledger:
        campaigns = ledger.campaigns()
        usage = ledger.usage(settings.pacing.window_seconds, now)
        totals = ledger.totals()
    return {
        "location": location,
        "campaigns": [
            {"name": c.name, "results": c.results_path, "since": format_timestamp(c.created_at)}
            for c in campaigns
        ],
        "senders": {
            sender: {
                "today": u.day,
                "this_week": u.week,
                "daily_limit": settings.daily_limit(sender),
                "weekly_limit": settings.weekly_limit(sender),
            }
            for sender, u in usage.items()
        },
        "totals": totals,
    }


@workspace.command("import")
@click.argument(
    "files", metavar="FILE...", nargs=-1, required=True, type=click.Path(path_type=Path)
)
@workspace_options
def workspace_import(files: tuple[Path, ...], config_path: Path | None, sandbox: bool) -> None:
    """Bring results files written before the workspace ledger into it.

    Each file becomes a campaign of the workspace; its invitations then count for every
    campaign (nobody invited twice) and against their senders' limits. A run does this
    by itself the first time it meets a results file; this is for files no run will
    open again. Importing a file twice changes nothing.

    \b
    Example:
        campaign-runner workspace import q3.results.csv q4.results.csv
    """
    import time

    from campaign_runner.journal import load_journal
    from campaign_runner.workspace import bring_in

    _, _, ledger = open_workspace(config_path, sandbox, read_only=False)
    assert ledger is not None
    with ledger, user_errors():
        for path in files:
            state = load_journal(path)
            now = time.time()
            name = path.name.removesuffix(".csv").removesuffix(".results")
            info = ledger.campaign(name, str(path.resolve()), now)
            added = bring_in(ledger, info.id, state, now)
            click.echo(f"{path}: {added} invitations brought in (campaign {info.name!r})")


@workspace.command("release")
@click.argument("urls", metavar="URL...", nargs=-1)
@click.option(
    "--file",
    "from_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A CSV/XLSX whose profile URL column lists the people to release.",
)
@workspace_options
def workspace_release(
    urls: tuple[str, ...], from_file: Path | None, config_path: Path | None, sandbox: bool
) -> None:
    """Let people be invited again, on purpose (after you withdrew their invitation).

    The workspace remembers everyone invited, or maybe invited (unknown), by any of its
    campaigns, so that no campaign invites them twice. Release them here, and the next
    run that lists them invites them again. URLs may be in any form people paste.

    \b
    Examples:
        campaign-runner workspace release https://www.linkedin.com/in/jane-doe
        campaign-runner workspace release --file withdrawn.csv
    """
    import time

    from campaign_runner.prospects import load_prospects
    from campaign_runner.urls import InvalidUrl, normalize_profile_url

    wanted: list[str] = []
    with user_errors():
        for raw in urls:
            try:
                wanted.append(normalize_profile_url(raw))
            except InvalidUrl as exc:
                raise UserError(f"{raw}: {exc.reason}") from None
        if from_file is not None:
            listed = load_prospects(from_file, all_columns=False)
            assert listed.url_column is not None
            for raw in listed.table[listed.url_column].to_pylist():
                try:
                    wanted.append(normalize_profile_url(raw or ""))
                except InvalidUrl:
                    continue
    if not wanted:
        raise click.UsageError("name the people to release: URL... or --file FILE")
    _, _, ledger = open_workspace(config_path, sandbox, read_only=False)
    assert ledger is not None
    with ledger, user_errors():
        released = ledger.release(wanted, time.time())
    click.echo(f"released {released} of {len(set(wanted))}: they may be invited again")

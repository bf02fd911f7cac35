"""The `run` command: plan, confirm, send, record; the embedded stand-in for --sandbox."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from campaign_runner.cli.app import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PROBLEMS,
    UserError,
    cli,
    user_errors,
)
from campaign_runner.cli.options import InputChoice, input_options, resume_command
from campaign_runner.cli.render import Output, no_valid_row
from campaign_runner.cli.terminal import (
    confirm,
    install_signal_handlers,
    interrupt,
    is_tty,
    make_progress,
    make_wait_progress,
)
from campaign_runner.config import Secret, SenderSettings, Settings, find_config, load_settings

if TYPE_CHECKING:
    # The sending stack (aiohttp, the runner, the sandbox) is imported by the commands
    # that use it, so that `validate` on a large file starts fast.
    from campaign_runner.campaign import Plan, RunOptions, Summary
    from campaign_runner.sandbox import SandboxConfig, SandboxServer


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="YAML config file.")
@click.option(
    "--results",
    "results_path",
    type=click.Path(path_type=Path),
    help="Results CSV (default: <input stem>.results.csv beside the input; "
    "<input stem>.sandbox.results.csv with --sandbox).",
)
@click.option("--sandbox", is_flag=True, help="Run against an embedded stand-in SendPilot server.")
@click.option("--dry-run", is_flag=True, help="Print the plan; send nothing, write nothing.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    help="Send at most N invitations this run (with --wait: in all, across its rounds).",
)
@click.option(
    "--wait",
    is_flag=True,
    help="Do not stop while rows remain: when capacity is spent or working hours are "
    "closed, sleep until a sender can send again (re-reading quotas), and go on until "
    "every row is final. With --dry-run: the plan only, and when the next invitation "
    "can leave.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--no-progress", is_flag=True, help="No progress bar or progress lines.")
@click.option("--retry-failed", is_flag=True, help="Send rows recorded as failed again.")
@click.option(
    "--retry-unknown",
    is_flag=True,
    help="Send rows recorded as unknown again (the invitation may already exist).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@input_options
def run(
    input_path: Path,
    config_path: Path | None,
    results_path: Path | None,
    sandbox: bool,
    dry_run: bool,
    limit: int | None,
    wait: bool,
    yes: bool,
    no_progress: bool,
    retry_failed: bool,
    retry_unknown: bool,
    as_json: bool,
    inputs: InputChoice,
) -> None:
    """Send a campaign: one connection request per valid row, paced per sender.

    Validates INPUT, reads senders and their capacity from the API, prints the plan and
    asks for confirmation, then sends, recording every outcome in the results CSV as it
    goes. Run the same command again to continue where it stopped. The plan shows the
    first notes exactly as they will leave, with the sender of each.

    \b
    Examples:
      Rehearse offline against the embedded stand-in server:
        campaign-runner run sample_data/prospects.csv --sandbox
      See the plan, send nothing:
        campaign-runner run prospects.csv --config campaign-runner.yaml --dry-run
      For real (key from the environment, senders from the config):
        export SENDPILOT_API_KEY=...
        campaign-runner run prospects.csv --config campaign-runner.yaml
      Leave it running for days, until every row is final (systemd, tmux):
        campaign-runner run prospects.csv --yes --wait

    With --wait, each sender sends at its own pace (its daily limit over the window or
    its working hours); between rounds the run sleeps until the next sender can send
    (its oldest invitation leaving the rolling window or week, the API's quota reset,
    its working hours opening), showing when and how many rows are left, then plans
    again from the results, the workspace and the API. The results file stays locked
    meanwhile: another run on it is refused (exit 2). Ctrl-C or SIGTERM stops it as
    they stop a run. Without --wait, run it again (from cron, say) to continue.

    \b
    Exit codes (--dry-run exits as the run would leave the campaign):
      0    done: nothing left to send, nothing failed or unknown
      1    finished, but some rows are failed or unknown; or INPUT has no valid row
      2    could not run: usage, config, unusable input, API key rejected, api.base_url
           wrong, results file locked or refused, workspace ledger unusable
      3    stopped with rows still to send: capacity spent, --limit, no usable sender
           (with --wait: --limit, or no sender can ever send them)
      130  interrupted (Ctrl-C, SIGTERM) or not confirmed: run the same command again
    """
    # asyncio is imported by the commands that use it: `validate` starts faster without.
    import asyncio

    from campaign_runner.arrowkit import return_freed_memory
    from campaign_runner.campaign import RunOptions

    return_freed_memory()  # before the big files are read: see its docstring

    out = Output(as_json)
    with user_errors():
        settings = load_settings(find_config(config_path))
    for warning in settings.warnings:
        out.warn(warning)
    options = RunOptions(
        input_path=input_path,
        results_path=results_path,
        url_column=inputs.url_column,
        note_column=inputs.note_column,
        note_template=inputs.note_template,
        sheet=inputs.sheet,
        limit=limit,
        retry_failed=retry_failed,
        retry_unknown=retry_unknown,
        dry_run=dry_run,
        sandbox=sandbox,
        exclude=inputs.exclude,
        wait=wait,
    )
    resume = resume_command(input_path, config_path, results_path, sandbox, inputs, wait=wait)
    must_confirm = not (yes or sandbox or dry_run)
    progress_kind = "none" if (no_progress or as_json) else ("bar" if is_tty() else "log")
    # Until sending starts (and its own handlers take over), SIGTERM is a Ctrl-C: exit 130.
    previous_sigterm = signal.signal(signal.SIGTERM, interrupt)
    try:
        with user_errors():
            summary = asyncio.run(
                _run_campaign(settings, options, sandbox, must_confirm, progress_kind, out)
            )
    except (KeyboardInterrupt, NotConfirmed):
        out.info("stopped before sending started: nothing was sent")
        sys.exit(EXIT_INTERRUPTED)
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
    code = run_exit_code(summary)
    out.summary(summary, resume, code)
    sys.exit(code)


def run_exit_code(summary: Summary) -> int:
    """The run's exit code: the engine's, except that a spreadsheet without a single valid
    row is a problem (1), not a campaign done (0): nothing could have been sent."""
    if summary.exit_code == EXIT_OK and no_valid_row(summary.plan):
        return EXIT_PROBLEMS
    return summary.exit_code


class NotConfirmed(Exception):
    """The user declined the plan: like an interruption before anything was sent."""


async def _run_campaign(
    settings: Settings,
    options: RunOptions,
    sandbox: bool,
    must_confirm: bool,
    progress_kind: str,
    out: Output,
) -> Summary:
    import aiohttp

    from campaign_runner.campaign import Campaign, UntilDone
    from campaign_runner.clock import running_clock

    # The running loop's clock: the system's, except under a test's virtual-time loop.
    clock = running_clock()
    async with contextlib.AsyncExitStack() as stack:
        if sandbox:
            from campaign_runner.sandbox import SandboxServer

            config = _sandbox_config(settings, clock.now)
            server = await stack.enter_async_context(SandboxServer(config))
            settings = _settings_for_sandbox(settings, server)
            out.info(f"sandbox: stand-in SendPilot server at {server.base_url} (loopback only)")
        session = None
        if settings.api.api_key is not None:
            connector = aiohttp.TCPConnector(limit=settings.pacing.concurrency)
            session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
        campaign = await Campaign.prepare(settings, options, session, clock=clock)
        stack.callback(campaign.close)
        out.plan(campaign.plan)
        plan = campaign.plan
        waits = options.wait and not options.dry_run and plan.to_send > 0
        if options.dry_run or (plan.now == 0 and not waits):
            return await campaign.execute()
        # A --wait run that can never send ends at once, saying why: nothing to confirm.
        if must_confirm and (plan.now or plan.next_send_at is not None):
            if not is_tty(stdin=True):
                raise UserError("no terminal to confirm on: add --yes to send without confirmation")
            if not confirm(confirmation(plan, settings.api.base_url, wait=waits)):
                raise NotConfirmed
        if waits:
            until_done = UntilDone(
                campaign, progress=make_wait_progress(progress_kind), on_plan=out.round_plan
            )
            install_signal_handlers(until_done, out)
            return await until_done.execute()
        progress = make_progress(progress_kind)
        install_signal_handlers(campaign, out)
        return await campaign.execute(progress)


def confirmation(plan: Plan, base_url: str, *, wait: bool = False) -> str:
    """The question asked before sending: how many, and where they go."""
    where = f" (workspace {plan.workspace})" if plan.workspace else ""
    if wait and plan.to_send > plan.now:
        return (
            f"Send {plan.to_send} invitations to {base_url}{where}: {plan.now} now, the "
            "rest as capacity renews (--wait)?"
        )
    return f"Send {plan.now} invitations now to {base_url}{where}?"


# The sandbox compresses a day into this many seconds, so that a newcomer sees pacing
# and a finished campaign in well under a minute.
SANDBOX_WINDOW_SECONDS = 20.0


def _sandbox_config(settings: Settings, now: Callable[[], float]) -> SandboxConfig:
    from campaign_runner.sandbox import SandboxConfig, SandboxSender

    if not settings.senders:
        return SandboxConfig(window_seconds=SANDBOX_WINDOW_SECONDS, clock=now)
    senders = tuple(
        SandboxSender(id=s.id, name=s.id, capacity=s.daily_limit, premium=s.premium is not False)
        for s in settings.senders
    )
    return SandboxConfig(senders=senders, window_seconds=SANDBOX_WINDOW_SECONDS, clock=now)


def _settings_for_sandbox(settings: Settings, server: SandboxServer) -> Settings:
    """The settings of a run against ``server``: its URL and key, its senders (so that
    notes are known to reach Premium senders only), and the compressed window."""
    # The stand-in's capacity and kind, over what the config says of the same sender
    # (its warm-up, weekly limit and working hours are rehearsed too).
    senders = tuple(
        dataclasses.replace(
            settings.sender(s.id) or SenderSettings(id=s.id, daily_limit=s.capacity),
            daily_limit=s.capacity,
            premium=s.premium,
        )
        for s in server.sandbox.config.senders
    )
    return dataclasses.replace(
        settings,
        api=dataclasses.replace(
            settings.api, base_url=server.base_url, api_key=Secret(server.api_key)
        ),
        senders=senders,
        pacing=dataclasses.replace(settings.pacing, window_seconds=SANDBOX_WINDOW_SECONDS),
    )

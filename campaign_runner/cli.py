"""The ``campaign-runner`` command line.

Exit codes (a contract: users' scripts and cron jobs depend on them):

====  ==========================================================================
0     done: nothing left to send, nothing failed or unknown (``validate``: all rows valid)
1     finished, but some rows are failed or unknown (``validate``: some invalid/duplicate)
2     could not run: usage, config, unusable input, API key rejected, results file locked
3     stopped with rows still to send: capacity spent, ``--limit``, no usable sender
130   interrupted (Ctrl-C / SIGTERM); run the same command again to continue
====  ==========================================================================

This is the only module that prints to the terminal or exits; everything below it raises
:mod:`campaign_runner.errors` exceptions, which become one-line messages here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from campaign_runner import __version__
from campaign_runner.config import Secret, SenderSettings, Settings, find_config, load_settings
from campaign_runner.errors import CampaignError

if TYPE_CHECKING:
    # The sending stack (aiohttp, the runner, the sandbox) is imported by the commands
    # that use it, so that `validate` on a large file starts fast.
    from campaign_runner.campaign import Campaign, Plan, Progress, RunOptions, Summary
    from campaign_runner.ledger import Ledger
    from campaign_runner.sandbox import SandboxConfig, SandboxServer
    from campaign_runner.validation import Verdicts

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_UNUSABLE = 2
EXIT_STOPPED = 3
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])


class UserError(click.ClickException):
    """A :class:`CampaignError` on its way to the terminal: one line, exit 2, no traceback."""

    exit_code = EXIT_UNUSABLE


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn domain errors into one-line messages with exit code 2."""
    try:
        yield
    except CampaignError as exc:
        raise UserError(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="campaign-runner")
def cli() -> None:
    """Run bulk LinkedIn connection campaigns through the SendPilot API.

    Check a prospect spreadsheet with `validate`, rehearse against a local stand-in
    with `run --sandbox`, then `run` it for real. Every outcome is recorded in a
    results CSV, and running the same command again continues where it stopped.
    """


# -- validate ---------------------------------------------------------------------------

# Problems listed in the text summary; --report and --json carry all of them.
SHOWN_PROBLEMS = 20


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a CSV with one line per row: row, linkedin_url, status, reason, warning.",
)
@click.option("--url-column", help="Column holding the LinkedIn profile URL.")
@click.option("--note-column", help="Column holding the connection note.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="YAML config file.")
@click.option(
    "--exclude",
    "exclude",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A do-not-contact list (CSV/XLSX of profile URLs and/or a company column); "
    "repeatable, added to campaign.exclude of the config.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def validate(
    input_path: Path,
    report_path: Path | None,
    url_column: str | None,
    note_column: str | None,
    config_path: Path | None,
    exclude: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Check a prospect spreadsheet (CSV or XLSX) without sending anything.

    Normalises every LinkedIn profile URL, checks notes against the 300-character limit and
    finds people listed twice. Rows on a do-not-contact list (--exclude, campaign.exclude)
    are `excluded`: intended, not problems. Prints the counts and the first problems as
    FILE:ROW: REASON lines (rows numbered as a spreadsheet shows them, header = 1). Exit
    code 0: every row is valid or excluded; 1: some rows are invalid or duplicate; 2: the
    file (or the config, or a list) cannot be used at all.

    \b
    Example:
        campaign-runner validate prospects.csv --report prospects.report.csv
        campaign-runner validate prospects.csv --exclude do-not-contact.csv
    """
    # Imported here so that other commands do not pay for Arrow at startup.
    from campaign_runner.exclusions import load_exclusions
    from campaign_runner.validation import check_file, write_report

    with user_errors():
        settings = load_settings(find_config(config_path))
        exclusions = load_exclusions([*settings.campaign.exclude, *exclude])
        verdicts = check_file(
            input_path, url_column=url_column, note_column=note_column, exclusions=exclusions
        )
    if report_path is not None:
        try:
            write_report(verdicts, report_path)
        except OSError as exc:
            raise UserError(f"{report_path}: cannot write the report ({exc.strerror})") from None
    for warning in _validate_warnings(verdicts):
        click.echo(f"warning: {warning}", err=True)
    counts = verdicts.counts
    if as_json:
        click.echo(json.dumps(_validate_payload(input_path, verdicts, report_path), indent=2))
    else:
        _print_validate_summary(input_path, verdicts, counts, report_path)
    sys.exit(EXIT_OK if counts["invalid"] + counts["duplicate"] == 0 else EXIT_PROBLEMS)


def _validate_warnings(verdicts: Verdicts) -> list[str]:
    from campaign_runner.validation import FREE_NOTE_LIMIT

    warnings = list(verdicts.notices)
    long_notes = verdicts.count_warnings()
    if long_notes:
        rows = ", ".join(str(w["row"]) for w in verdicts.warnings(limit=5))
        more = ", ..." if long_notes > 5 else ""
        notes = "1 note is" if long_notes == 1 else f"{long_notes} notes are"
        where = "row" if long_notes == 1 else "rows"
        warnings.append(
            f"{notes} over {FREE_NOTE_LIMIT} characters ({where} {rows}{more}): "
            f"LinkedIn free accounts cap notes at {FREE_NOTE_LIMIT}"
        )
    if verdicts.has_notes():
        warnings.append(
            "notes are sent only from LinkedIn Premium accounts: "
            "free accounts send the invitation without the note"
        )
    return warnings


def _print_validate_summary(
    input_path: Path, verdicts: Verdicts, counts: dict[str, int], report_path: Path | None
) -> None:
    total = sum(counts.values())
    problems = counts["invalid"] + counts["duplicate"]
    excluded = f", {counts['excluded']} excluded" if counts["excluded"] else ""
    click.echo(
        f"{input_path}: {total} {'row' if total == 1 else 'rows'}: {counts['valid']} valid, "
        f"{counts['invalid']} invalid, {counts['duplicate']} duplicate{excluded}"
    )
    for problem in verdicts.problems(limit=SHOWN_PROBLEMS):
        click.echo(f"{input_path}:{problem['row']}: {problem['reason']}")
    hidden = problems - SHOWN_PROBLEMS
    if hidden > 0:
        where = f"see {report_path}" if report_path else "list them all with --report FILE"
        click.echo(f"... and {hidden} more problems ({where})")
    if report_path is not None:
        click.echo(f"report: {report_path}")


def _validate_payload(
    input_path: Path, verdicts: Verdicts, report_path: Path | None
) -> dict[str, Any]:
    return {
        "input": str(input_path),
        "rows": int(verdicts.table.num_rows),
        "counts": verdicts.counts,
        "url_column": verdicts.url_column,
        "note_column": verdicts.note_column,
        "sender_column": verdicts.sender_column,
        "problems": [
            {"row": p["row"], "status": p["status"], "reason": p["reason"]}
            for p in verdicts.problems()
        ],
        "excluded": [{"row": p["row"], "reason": p["reason"]} for p in verdicts.excluded()],
        "warnings": [{"row": w["row"], "warning": w["warning"]} for w in verdicts.warnings()],
        "notices": list(verdicts.notices),
        "report": str(report_path) if report_path is not None else None,
    }


# -- run, senders ---------------------------------------------------------------------


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
@click.option("--limit", type=click.IntRange(min=0), help="Send at most N invitations this run.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--no-progress", is_flag=True, help="No progress bar or progress lines.")
@click.option("--retry-failed", is_flag=True, help="Send rows recorded as failed again.")
@click.option(
    "--retry-unknown",
    is_flag=True,
    help="Send rows recorded as unknown again (the invitation may already exist).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@click.option("--url-column", help="Column holding the LinkedIn profile URL.")
@click.option("--note-column", help="Column holding the connection note.")
@click.option(
    "--exclude",
    "exclude",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A do-not-contact list (CSV/XLSX of profile URLs and/or a company column); "
    "repeatable, added to campaign.exclude of the config.",
)
def run(
    input_path: Path,
    config_path: Path | None,
    results_path: Path | None,
    sandbox: bool,
    dry_run: bool,
    limit: int | None,
    yes: bool,
    no_progress: bool,
    retry_failed: bool,
    retry_unknown: bool,
    as_json: bool,
    url_column: str | None,
    note_column: str | None,
    exclude: tuple[Path, ...],
) -> None:
    """Send a campaign: one connection request per valid row, paced per sender.

    Validates INPUT, reads senders and their capacity from the API, prints the plan and
    asks for confirmation, then sends, recording every outcome in the results CSV as it
    goes. Run the same command again to continue where it stopped.

    \b
    Rehearse offline against the embedded stand-in server:
        campaign-runner run sample_data/prospects.csv --sandbox
    For real (key from the environment, senders from the config):
        export SENDPILOT_API_KEY=...
        campaign-runner run prospects.csv --config campaign-runner.yaml
    """
    # asyncio is imported by the commands that use it: `validate` starts faster without.
    import asyncio

    from campaign_runner.arrowkit import return_freed_memory
    from campaign_runner.campaign import RunOptions

    return_freed_memory()  # before the big files are read: see its docstring

    out = _Output(as_json)
    with user_errors():
        settings = load_settings(find_config(config_path))
    for warning in settings.warnings:
        out.warn(warning)
    options = RunOptions(
        input_path=input_path,
        results_path=results_path,
        url_column=url_column,
        note_column=note_column,
        limit=limit,
        retry_failed=retry_failed,
        retry_unknown=retry_unknown,
        dry_run=dry_run,
        sandbox=sandbox,
        exclude=exclude,
    )
    resume = _resume_command(
        input_path, config_path, results_path, sandbox, url_column, note_column, exclude
    )
    must_confirm = not (yes or sandbox or dry_run)
    progress_kind = "none" if (no_progress or as_json) else ("bar" if _is_tty() else "log")
    # Until sending starts (and its own handlers take over), SIGTERM is a Ctrl-C: exit 130.
    previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with user_errors():
            summary = asyncio.run(
                _run_campaign(settings, options, sandbox, must_confirm, progress_kind, out)
            )
    except (KeyboardInterrupt, _NotConfirmed):
        out.info("stopped before sending started: nothing was sent")
        sys.exit(EXIT_INTERRUPTED)
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
    out.summary(summary, resume)
    sys.exit(summary.exit_code)


class _NotConfirmed(Exception):
    """The user declined the plan: like an interruption before anything was sent."""


async def _run_campaign(
    settings: Settings,
    options: RunOptions,
    sandbox: bool,
    must_confirm: bool,
    progress_kind: str,
    out: _Output,
) -> Summary:
    import aiohttp

    from campaign_runner.campaign import Campaign

    async with contextlib.AsyncExitStack() as stack:
        if sandbox:
            from campaign_runner.sandbox import SandboxServer

            server = await stack.enter_async_context(SandboxServer(_sandbox_config(settings)))
            settings = _settings_for_sandbox(settings, server)
            out.info(f"sandbox: stand-in SendPilot server at {server.base_url} (loopback only)")
        session = None
        if settings.api.api_key is not None:
            connector = aiohttp.TCPConnector(limit=settings.pacing.concurrency)
            session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
        campaign = await Campaign.prepare(settings, options, session)
        stack.callback(campaign.close)
        out.plan(campaign.plan)
        if options.dry_run or campaign.plan.now == 0:
            return await campaign.execute()
        if must_confirm:
            if not _is_tty(stdin=True):
                raise UserError("no terminal to confirm on: add --yes to send without confirmation")
            if not _confirm(f"Send {campaign.plan.now} invitations now?"):
                raise _NotConfirmed
        progress = _make_progress(progress_kind)
        _install_signal_handlers(campaign, out)
        return await campaign.execute(progress)


def _confirm(question: str) -> bool:
    """Ask on the terminal; Ctrl-C or Ctrl-D there means no."""
    # asyncio.run's own SIGINT handler would only cancel the main task, which cannot
    # happen while input() blocks: restore Python's, so that Ctrl-C interrupts the prompt.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return click.confirm(question, default=False)
    except click.Abort:
        return False
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _install_signal_handlers(campaign: Campaign, out: _Output) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    received = 0

    def on_signal() -> None:
        nonlocal received
        received += 1
        if received == 1:
            out.info(
                "stopping: no new invitations; waiting for those in flight "
                "(press Ctrl-C again to quit at once)"
            )
            campaign.request_stop()
        else:
            # Every request that may have left has a durable `pending` line: the next run
            # records those rows as `unknown`, so quitting now loses nothing.
            out.info("quitting at once; rows in flight will be recorded as unknown next run")
            os._exit(EXIT_INTERRUPTED)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)


def _make_progress(kind: str) -> Progress:
    from campaign_runner.engine import SilentProgress
    from campaign_runner.progress import BarProgress, LogProgress

    if kind == "bar":
        return BarProgress()
    if kind == "log":
        return LogProgress()
    return SilentProgress()


def _is_tty(stdin: bool = False) -> bool:
    stream = sys.stdin if stdin else sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# The sandbox compresses a day into this many seconds, so that a newcomer sees pacing
# and a finished campaign in well under a minute.
SANDBOX_WINDOW_SECONDS = 20.0


def _sandbox_config(settings: Settings) -> SandboxConfig:
    from campaign_runner.sandbox import SandboxConfig, SandboxSender

    if not settings.senders:
        return SandboxConfig(window_seconds=SANDBOX_WINDOW_SECONDS)
    senders = tuple(
        SandboxSender(id=s.id, name=s.id, capacity=s.daily_limit, premium=s.premium is not False)
        for s in settings.senders
    )
    return SandboxConfig(senders=senders, window_seconds=SANDBOX_WINDOW_SECONDS)


def _settings_for_sandbox(settings: Settings, server: SandboxServer) -> Settings:
    """The settings of a run against ``server``: its URL and key, its senders (so that
    notes are known to reach Premium senders only), and the compressed window."""
    senders = tuple(
        SenderSettings(id=s.id, daily_limit=s.capacity, premium=s.premium)
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


def _resume_command(
    input_path: Path,
    config_path: Path | None,
    results_path: Path | None,
    sandbox: bool,
    url_column: str | None,
    note_column: str | None,
    exclude: tuple[Path, ...] = (),
) -> list[str]:
    words = ["campaign-runner", "run", str(input_path)]
    if config_path is not None:
        words += ["--config", str(config_path)]
    if results_path is not None:
        words += ["--results", str(results_path)]
    if url_column:
        words += ["--url-column", url_column]
    if note_column:
        words += ["--note-column", note_column]
    for path in exclude:
        words += ["--exclude", str(path)]
    if sandbox:
        words.append("--sandbox")
    return words


class _Output:
    """Human text to stdout, or (with --json) human text to stderr and JSON to stdout."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def info(self, message: str) -> None:
        click.echo(message, err=self.as_json)

    def warn(self, message: str) -> None:
        click.echo(f"warning: {message}", err=True)

    def plan(self, plan: Plan) -> None:
        for warning in plan.warnings:
            self.warn(warning)
        if plan.rehearsal:
            self.info(
                "rehearsal: invitations go to the stand-in server, not to LinkedIn; "
                f"results in {plan.results_path}"
            )
        if plan.repaired:
            self.warn(plan.repaired)
        if plan.recovered_pending:
            self.warn(
                f"{plan.recovered_pending} rows were being sent when the last run stopped; "
                "recorded as unknown (the invitation may exist). Re-send them on purpose "
                "with --retry-unknown"
            )
        counts = plan.counts
        excluded = counts.get("excluded", 0)
        excluded_text = f", {excluded} excluded (do-not-contact)" if excluded else ""
        self.info(
            f"{plan.input_path}: {counts.get('valid', 0)} valid, {counts.get('invalid', 0)} "
            f"invalid, {counts.get('duplicate', 0)} duplicate rows{excluded_text}; "
            f"{plan.already_done} already done (results: {plan.results_path})"
        )
        for row, reason in plan.problems:
            self.info(f"{plan.input_path}:{row}: {reason}")
        hidden = counts.get("invalid", 0) + counts.get("duplicate", 0) - len(plan.problems)
        if hidden > 0:
            self.info(f"... and {hidden} more: campaign-runner validate {plan.input_path}")
        if plan.already_invited:
            self.info(
                f"{plan.already_invited} already invited by another campaign of the workspace: "
                "not invited again (see their lines in the results)"
            )
        if plan.workspace:
            self.info(f"workspace ledger: {plan.workspace}")
        self.info(f"plan: {plan.to_send} to send, {plan.now} now, {plan.later} later")
        for s in plan.senders:
            if s.skipped:
                self.info(f"  {s.sender_id}: skipped ({s.skipped})")
                continue
            api = "" if s.api_remaining is None else f", API reports {s.api_remaining} left"
            pace = (
                f"one every {_duration(s.interval_seconds)}" if s.capacity else "no capacity left"
            )
            kind = {True: ", Premium", False: ", free: notes are dropped", None: ""}[s.premium]
            week = f", {s.used_in_week} of {s.weekly_limit} this week" if s.weekly_limit else ""
            others = (
                f", other campaigns used {s.others_day} today and {s.others_week} this week"
                if s.others_day or s.others_week
                else ""
            )
            self.info(
                f"  {s.sender_id}: {s.capacity} now (limit {s.daily_limit}, "
                f"{s.used_in_window} used in the window{week}{others}{api}{kind}); {pace}"
            )
        if plan.now and plan.estimated_seconds is not None:
            took = _duration(plan.estimated_seconds)
            self.info(f"the {plan.now} invitations of this run take about {took}")
        if plan.later:
            if plan.windows_needed:
                self.info(
                    f"at current limits, the whole campaign needs about {plan.windows_needed} "
                    f"capacity windows of {_duration(plan.window_seconds)}"
                )
            else:
                self.info("no usable sender: nothing can be sent with the current senders")

    def summary(self, summary: Summary, resume: list[str]) -> None:
        command = shlex.join(resume)
        renews = (
            datetime.fromtimestamp(summary.renews_at, tz=UTC).isoformat(timespec="seconds")
            if summary.renews_at
            else None
        )
        if self.as_json:
            payload = {
                "input": str(summary.plan.input_path),
                "results": str(summary.plan.results_path),
                "validation": summary.plan.counts,
                "this_run": dict(summary.this_run),
                "totals": dict(summary.final),
                "remaining": summary.remaining,
                "interrupted": summary.interrupted,
                "stopped_reason": summary.stopped_reason or None,
                "exit_code": summary.exit_code,
                "capacity_renews_at": renews,
                "resume_command": command,
            }
            click.echo(json.dumps(payload, indent=2, sort_keys=True))
            return
        this_run = ", ".join(f"{v} {k}" for k, v in sorted(summary.this_run.items())) or "nothing"
        totals = ", ".join(f"{v} {k}" for k, v in sorted(summary.final.items())) or "nothing yet"
        if summary.stopped_reason:
            self.info(f"stopped early: {summary.stopped_reason}")
        self.info(f"this run: {this_run}")
        self.info(f"campaign so far: {totals}; {summary.remaining} still to send")
        self.info(f"results: {summary.plan.results_path}")
        if summary.final.get("unknown"):
            self.info(
                f"{summary.final['unknown']} rows are unknown (the invitation may exist): check "
                f"them in SendPilot, then to send them again: {command} --retry-unknown"
            )
        if summary.final.get("failed"):
            self.info(f"to try failed rows again: {command} --retry-failed")
        if renews and (summary.remaining or summary.interrupted):
            self.info(f"capacity renews from {renews}")
        # Always the last line, so that scripts and people find it in the same place.
        self.info(f"to continue: {command}")


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "never"
    if seconds < 90:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f} days"


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


# -- workspace -------------------------------------------------------------------------


def _workspace_options(func: F) -> F:
    """--config and --sandbox, shared by the workspace commands."""
    func = click.option(
        "--sandbox", is_flag=True, help="The rehearsals' ledger instead of the workspace's."
    )(func)
    return click.option(
        "--config", "config_path", type=click.Path(path_type=Path), help="YAML config file."
    )(func)


def _open_workspace(
    config_path: Path | None, sandbox: bool, *, read_only: bool
) -> tuple[str, Ledger | None]:
    from campaign_runner.workspace import ledger_location, open_ledger

    with user_errors():
        settings = load_settings(find_config(config_path))
        location = ledger_location(settings, rehearsal=sandbox)
        if location is None:
            raise UserError(
                "which workspace? it is chosen by the API key: set SENDPILOT_API_KEY, or "
                "workspace.database in the config"
            )
        return location, open_ledger(location, read_only=read_only)


@cli.group(invoke_without_command=True)
@_workspace_options
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

    location, ledger = _open_workspace(config_path, sandbox, read_only=True)
    with user_errors():
        settings = load_settings(find_config(config_path))
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
@_workspace_options
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
    from campaign_runner.workspace import import_lines

    _, ledger = _open_workspace(config_path, sandbox, read_only=False)
    assert ledger is not None
    with ledger, user_errors():
        for path in files:
            state = load_journal(path)
            now = time.time()
            name = path.name.removesuffix(".csv").removesuffix(".results")
            info = ledger.campaign(name, str(path.resolve()), now)
            added = ledger.import_lines(info.id, import_lines(state, now))
            click.echo(f"{path}: {added} invitations brought in (campaign {info.name!r})")


@workspace.command("release")
@click.argument("urls", metavar="URL...", nargs=-1)
@click.option(
    "--file",
    "from_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A CSV/XLSX whose profile URL column lists the people to release.",
)
@_workspace_options
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
    _, ledger = _open_workspace(config_path, sandbox, read_only=False)
    assert ledger is not None
    with ledger, user_errors():
        released = ledger.release(wanted, time.time())
    click.echo(f"released {released} of {len(set(wanted))}: they may be invited again")


# -- sandbox ---------------------------------------------------------------------------


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
                      else the real answer; echo_key=true puts the caller's key in it.
                      A 2xx creates the invitation first; any other status creates nothing
    Selectors: route=connect|senders|quotas|*  nth=N (the Nth request to the route)
      sender=ID  recipient=URL|SLUG  times=N (fire at most N times)  rate=P (probability,
      drawn from --seed, so runs repeat exactly).

    \b
    Examples: error:503:times=2  rate_limit:retry_after=2:times=3  hang:nth=5
              latency:seconds=0.5:rate=0.2  drop:recipient=john-doe  redirect:308
              body:200:nested=100000  body:text={"status": "queued"}
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
    click.echo("point campaign-runner at it with:")
    click.echo(f"  export SENDPILOT_API_KEY={config.api_key}")
    click.echo(f"  api.base_url: {base_url}")
    for s in config.senders:
        kind = "premium" if s.premium else "free"
        per = f"{s.capacity} invitations per {config.window_seconds:g}s"
        click.echo(f"sender {s.id}: {kind}, {per}, {s.status}")
    for spec in fault_specs:
        click.echo(f"fault: {spec}")
    if config.webhook_url:
        click.echo(f"webhooks: {config.webhook_url} (accepting {config.accept_share:.0%})")
    click.echo("press Ctrl-C to stop")

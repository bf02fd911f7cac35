"""Gather what a report reads, then make it: the I/O beside the pure :mod:`.report`.

The invitations come from the results files named, or, with none, from the whole
workspace ledger; the acceptances always from the ledger (the webhook receiver records
them there, never in a results file). A rehearsal's results files are read with the
rehearsals' ledger, a real campaign's with the workspace's; the two are never mixed.
With the input spreadsheet, the report also knows each row's note and what is left to
send: a dry run's plan (:meth:`Campaign.prepare` with ``dry_run``), which opens nothing
for writing and asks no API.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from campaign_runner.config import Settings
from campaign_runner.errors import JournalError, LedgerError
from campaign_runner.export import ExportTable, export_table
from campaign_runner.journal import ROW_VERDICTS, JournalState, load_journal
from campaign_runner.ledger import Acceptance, Invitation, Ledger
from campaign_runner.planning import API_COLUMN, API_SANDBOX
from campaign_runner.prospects import load_prospects
from campaign_runner.report import (
    Left,
    NoteKey,
    Report,
    acceptance_times,
    build_report,
    dropped_notes,
    notes_of_input,
    results_invitations,
)
from campaign_runner.validation import Verdicts, check_prospects, settings_rules
from campaign_runner.workspace import ledger_location, open_ledger


@dataclass(frozen=True)
class ReportOptions:
    results: tuple[Path, ...] = ()  # none: the whole workspace
    input_path: Path | None = None
    url_column: str | None = None
    note_column: str | None = None
    note_template: str | None = None
    sheet: str | None = None
    exclude: tuple[Path, ...] = ()
    sandbox: bool = False  # the rehearsals' ledger (implied by a rehearsal's results)
    export: bool = False  # build the export table (needs input_path)


@dataclass(frozen=True)
class Made:
    report: Report
    source: str  # where the invitations came from, for people
    workspace: str  # the ledger the acceptances came from ('' when there is none)
    warnings: tuple[str, ...]
    export: ExportTable | None = None


async def make_report(settings: Settings, options: ReportOptions, now: float) -> Made:
    """Read the results files (or the workspace ledger), the acceptances and the input,
    and make the report (and the export table, when asked)."""
    if options.export and options.input_path is None:
        raise ValueError("an export needs the input")
    warnings: list[str] = []
    states = [_load(path) for path in options.results]
    rehearsal = _rehearsal(states, options.sandbox)
    location = ledger_location(settings, rehearsal=rehearsal)
    if location is None and not states:
        raise LedgerError(
            "which workspace? it is chosen by the API key: set SENDPILOT_API_KEY or "
            "workspace.database in the config, or name the results files to report on"
        )
    ledger = open_ledger(location, read_only=True) if location else None
    with contextlib.ExitStack() as stack:
        if ledger is not None:
            stack.enter_context(ledger)
        if ledger is None:
            warnings.append(
                "no workspace ledger"
                + (f" at {location} yet" if location else " known (no API key)")
                + ": acceptances are unknown (campaign-runner webhooks records them)"
            )
        invitations = _invitations(states, ledger, now)
        acceptances: list[Acceptance] = ledger.acceptances() if ledger is not None else []
    source = (
        "results " + ", ".join(str(s.path) for s in states)
        if states
        else f"workspace ledger {location}"
    )
    notes: dict[str, NoteKey] | None = None
    left = None
    export = None
    if options.input_path is not None:
        dropped = set().union(*(dropped_notes(s) for s in states)) if states else set()
        prospects = load_prospects(
            options.input_path,
            url_column=options.url_column,
            note_column=options.note_column,
            sheet=options.sheet,
            all_columns=True,
        )
        exclusions, template = settings_rules(settings, options.note_template, options.exclude)
        verdicts = check_prospects(prospects, exclusions, template)
        own = prospects.table[prospects.note_column] if prospects.note_column else None
        notes = notes_of_input(verdicts, own, dropped)
        left = await _left(settings, options, states, rehearsal, verdicts)
        if options.export:
            export = export_table(
                prospects, verdicts, _by_url(invitations), acceptance_times(acceptances)
            )
    report = build_report(
        invitations,
        acceptances,
        now=now,
        notes=notes,
        zone=settings.pacing.hours.zone,
        left=left,
    )
    return Made(report, source, location or "", tuple(warnings), export)


def _load(path: Path) -> JournalState:
    if not path.is_file():
        raise JournalError(f"{path}: no such results file")
    return load_journal(path)


def _rehearsal(states: list[JournalState], sandbox: bool) -> bool:
    """Whether the report reads the rehearsals' ledger: asked for, or the results files
    are a rehearsal's. Real and rehearsal results are never reported together."""
    written = [s for s in states if s.lines]
    rehearsed = [s.path for s in written if API_SANDBOX in s.distinct(API_COLUMN)]
    real = [s.path for s in written if s.path not in rehearsed]
    if rehearsed and real:
        raise JournalError(
            f"{rehearsed[0]} is a --sandbox rehearsal's, {real[0]} a real campaign's: "
            "report on them separately"
        )
    if sandbox and real:
        raise JournalError(f"{real[0]} holds real invitations: leave out --sandbox")
    return sandbox or bool(rehearsed)


def _invitations(states: list[JournalState], ledger: Ledger | None, now: float) -> list[Invitation]:
    if states:
        return [inv for s in states for inv in results_invitations(s, now)]
    return ledger.invitations() if ledger is not None else []


def _by_url(invitations: list[Invitation]) -> dict[str, Invitation]:
    """One invitation per person for the export: a send outcome over a row verdict."""
    found: dict[str, Invitation] = {}
    for inv in invitations:
        if inv.url and (inv.url not in found or found[inv.url].status in ROW_VERDICTS):
            found[inv.url] = inv
    return found


async def _left(
    settings: Settings,
    options: ReportOptions,
    states: list[JournalState],
    rehearsal: bool,
    verdicts: Verdicts,
) -> Left:
    """What is left to send from the input, and when it goes: a dry run's plan."""
    from campaign_runner.campaign import Campaign, RunOptions

    assert options.input_path is not None
    results = states[0].path if len(states) == 1 else None  # else the input's own
    run = RunOptions(
        input_path=options.input_path,
        results_path=results,
        url_column=options.url_column,
        note_column=options.note_column,
        note_template=options.note_template,
        sheet=options.sheet,
        dry_run=True,
        sandbox=rehearsal,
        exclude=options.exclude,
    )
    campaign = await Campaign.prepare(settings, run, None, verdicts=verdicts)
    summary = await campaign.execute()
    plan = summary.plan
    return Left(
        input_path=str(plan.input_path),
        to_send=plan.to_send,
        now=plan.now,
        later=plan.later,
        estimated_seconds=plan.estimated_seconds,
        windows_needed=plan.windows_needed,
        window_seconds=plan.window_seconds,
        renews_at=summary.renews_at,
        warnings=_left_warnings(settings, plan.warnings) if plan.to_send else (),
        next_send_at=plan.next_send_at,
        next_send_why=plan.next_send_why,
    )


def _left_warnings(settings: Settings, said: tuple[str, ...]) -> tuple[str, ...]:
    """The plan's warnings, but the config's own (the command says those once)."""
    warnings = [w for w in said if w not in settings.warnings]
    no_senders = "the config names no senders: what is left is planned without any " + (
        "(the report asks no API; list them under senders: in the config)"
    )
    if not settings.senders and not any("no sender to plan with" in w for w in warnings):
        warnings.append(no_senders)
    return tuple(warnings)

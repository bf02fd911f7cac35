"""A campaign run: prepare (validate, ask the API, read the results, plan), then execute.

:meth:`Campaign.prepare` does the I/O that planning needs and nothing else: it validates
the spreadsheet, asks the API for senders and quotas, opens and locks the results file
(refusing one that belongs to the other kind of run: a rehearsal's for a real run, or a
real one for a rehearsal), hands everything to :func:`~campaign_runner.planning.plan_run`,
and appends the records the plan asks for. :meth:`Campaign.execute` hands the plan to the
:class:`~campaign_runner.engine.Engine`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import aiohttp

from campaign_runner.capacity import pacing_interval
from campaign_runner.client import SendPilotClient
from campaign_runner.clock import Clock, running_clock
from campaign_runner.config import API_KEY_ENV, Settings
from campaign_runner.engine import Engine, Progress, SilentProgress, Summary
from campaign_runner.errors import JournalError
from campaign_runner.journal import Journal, JournalState, load_journal
from campaign_runner.ledger import Ledger, SenderLimits
from campaign_runner.ledger.session import LedgerSession
from campaign_runner.planning import (
    EXTRA_COLUMNS,
    ApiView,
    Plan,
    RowChoice,
    WorkspaceView,
    default_results_path,
    plan_run,
    results_file_problem,
    select_rows,
)
from campaign_runner.validation import check_with_settings
from campaign_runner.workspace import bring_in, ledger_location, open_ledger

__all__ = ["Campaign", "Plan", "Progress", "RunOptions", "SilentProgress", "Summary"]


@dataclass(frozen=True)
class RunOptions:
    input_path: Path
    results_path: Path | None = None  # None: beside the input (see default_results_path)
    url_column: str | None = None
    note_column: str | None = None
    note_template: str | None = None  # None: the config's campaign.note_template
    sheet: str | None = None  # the workbook's sheet, by name or number (XLSX)
    limit: int | None = None
    retry_failed: bool = False
    retry_unknown: bool = False
    dry_run: bool = False
    # Invitations go to the stand-in server. Also true when the API answers as the
    # stand-in does, whatever the flag says.
    sandbox: bool = False
    # Do-not-contact lists, on top of the config's campaign.exclude.
    exclude: tuple[Path, ...] = ()


class Campaign:
    """One run of a campaign; build it with :meth:`prepare`."""

    def __init__(self, settings: Settings, options: RunOptions, engine: Engine) -> None:
        self.settings = settings
        self.options = options
        self.plan = engine.plan
        self._engine = engine

    @classmethod
    async def prepare(
        cls,
        settings: Settings,
        options: RunOptions,
        session: aiohttp.ClientSession | None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> Campaign:
        """Validate, ask the API, read the results and the workspace, and plan. Takes the
        results lock unless this is a dry run; call :meth:`close` (or :meth:`execute`) to
        release it."""
        clock = clock or running_clock()
        verdicts = check_with_settings(
            options.input_path,
            settings,
            url_column=options.url_column,
            note_column=options.note_column,
            note_template=options.note_template,
            sheet=options.sheet,
            exclude=options.exclude,
        )
        client, api = await _ask_api(settings, session, options.dry_run)
        rehearsal = options.sandbox or (client is not None and client.stand_in)
        results_path = options.results_path or default_results_path(options.input_path, rehearsal)
        location = ledger_location(settings, rehearsal=rehearsal)
        ledger = open_ledger(location, read_only=options.dry_run) if location else None
        journal = None
        try:
            if options.dry_run:
                state = load_journal(results_path)
                _accept(state, rehearsal=rehearsal)
            else:
                journal = Journal.open(
                    results_path,
                    extra_columns=EXTRA_COLUMNS,
                    clock=clock.now,
                    accept=partial(_accept, rehearsal=rehearsal),
                )
                state = journal.state
            now = clock.now()
            choice = RowChoice(options.retry_failed, options.retry_unknown, options.limit)
            selection = select_rows(
                verdicts=verdicts, state=state, choice=choice, rehearsal=rehearsal
            )
            campaign_id = None
            if ledger is not None:
                campaign_id = _register(ledger, options, results_path, state, journal, now)
            workspace = None
            if ledger is not None:
                warming = [s.id for s in settings.senders if s.warmup is not None]
                workspace = WorkspaceView(
                    location=ledger.location,
                    campaign_id=campaign_id,
                    holders=ledger.holders(selection.urls),
                    usage=ledger.usage(settings.pacing.window_seconds, now),
                    windows_sent=ledger.windows_sent(warming, settings.pacing.window_seconds, now)
                    if warming
                    else {},
                )
            planned = plan_run(
                verdicts=verdicts,
                state=state,
                selection=selection,
                api=api,
                workspace=workspace,
                settings=settings,
                choice=choice,
                input_path=options.input_path,
                results_path=results_path,
                rehearsal=rehearsal,
                now=now,
            )
            if journal is not None:
                journal.append_many(planned.records)
        except BaseException:
            if journal is not None:
                journal.close()
            if ledger is not None:
                ledger.close()
            raise
        claims = None
        if ledger is not None and campaign_id is not None and journal is not None:
            claims = LedgerSession(
                ledger,
                campaign_id,
                _limits(planned.plan),
                settings.pacing.window_seconds,
                clock.now,
            )
        engine = Engine(
            settings,
            planned,
            client,
            journal,
            limit=options.limit,
            clock=clock,
            rng=rng or random.Random(),
            claims=claims,
            ledger=ledger,
        )
        return cls(settings, options, engine)

    def request_stop(self) -> None:
        """Stop starting requests; those in flight finish and are recorded."""
        self._engine.request_stop()

    def close(self) -> None:
        """Release the results file (only needed when :meth:`execute` is not called)."""
        self._engine.close()

    async def execute(self, progress: Progress | None = None) -> Summary:
        """Send what the plan allows now and return what happened (see
        :meth:`Engine.execute`)."""
        return await self._engine.execute(progress)


async def _ask_api(
    settings: Settings, session: aiohttp.ClientSession | None, dry_run: bool
) -> tuple[SendPilotClient | None, ApiView]:
    """The client, and what the API says about senders and quotas (nothing offline)."""
    if session is None or settings.api.api_key is None:
        if not dry_run:
            settings.require_api_key()  # a real run needs the API: raises without a key
        unasked = ""
        if settings.api.api_key is None:
            unasked = f"{API_KEY_ENV} is not set (nor api.api_key in the config)"
        return None, ApiView(senders=None, quotas={}, unasked=unasked)
    client = SendPilotClient.from_settings(session, settings)
    senders = await client.senders()
    quotas, why = await client.quotas_if_available()
    return client, ApiView(senders=senders, quotas=quotas, quotas_problem=why)


def _register(
    ledger: Ledger,
    options: RunOptions,
    results_path: Path,
    state: JournalState,
    journal: Journal | None,
    now: float,
) -> int | None:
    """This campaign's id in the workspace (None for a dry run of a new one). A results
    file the workspace has never seen brings its earlier invitations in on first use."""
    key = str(results_path.resolve())
    info = ledger.find_campaign(key)
    if journal is None:
        return info.id if info is not None else None
    if info is None:
        info = ledger.campaign(options.input_path.stem, key, now)
    if not ledger.imported(info.id):
        bring_in(ledger, info.id, state, now)
    return info.id


def _limits(plan: Plan) -> dict[str, SenderLimits]:
    return {
        s.sender_id: SenderLimits(
            daily_limit=s.daily_limit,
            weekly_limit=s.weekly_limit,
            # The sender's own pace over a whole window (or its open hours), for every
            # campaign together.
            interval_seconds=pacing_interval(s.daily_limit, s.spread_seconds),
        )
        for s in plan.senders
    }


def _accept(state: JournalState, *, rehearsal: bool) -> None:
    problem = results_file_problem(state, rehearsal)
    if problem:
        raise JournalError(problem)

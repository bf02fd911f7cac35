"""A campaign run: prepare (validate, ask the API, read the results, plan), then execute.

:meth:`Campaign.prepare` does the I/O that planning needs and nothing else: it validates
the spreadsheet, asks the API for senders and quotas, opens and locks the results file
(refusing one that belongs to the other kind of run: a rehearsal's for a real run, or a
real one for a rehearsal), hands everything to :func:`~campaign_runner.planning.plan_run`,
and appends the records the plan asks for. :meth:`Campaign.execute` hands the plan to the
:class:`~campaign_runner.engine.Engine`.

:class:`UntilDone` is ``run --wait``: rounds of prepare and execute, idling between them
until a sender can send again, until every row is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

import aiohttp

from campaign_runner.capacity import RECHECK_SECONDS, pacing_interval
from campaign_runner.client import SendPilotClient
from campaign_runner.clock import Clock, running_clock
from campaign_runner.config import API_KEY_ENV, Settings
from campaign_runner.engine import Engine, Progress, SilentProgress, Summary
from campaign_runner.errors import ApiError, AuthError, JournalError, LedgerError
from campaign_runner.journal import ALREADY_INVITED, Journal, JournalState, KeptLock, load_journal
from campaign_runner.ledger import Ledger, SenderLimits
from campaign_runner.ledger.session import LedgerSession
from campaign_runner.planning import (
    EXTRA_COLUMNS,
    ApiView,
    Plan,
    RowChoice,
    WorkspaceView,
    at_own_pace,
    default_results_path,
    plan_run,
    results_file_problem,
    select_rows,
)
from campaign_runner.validation import Verdicts, check_with_settings
from campaign_runner.workspace import bring_in, ledger_location, open_ledger

__all__ = [
    "Campaign",
    "Plan",
    "Progress",
    "RunOptions",
    "SilentProgress",
    "Summary",
    "UntilDone",
    "WaitProgress",
]

# The longest single sleep of an idle period. Between two, the wall clock is read again:
# after the machine slept (monotonic time stands still meanwhile) or the clock was set,
# the wait ends at most this long after its wall-clock moment.
IDLE_CHUNK_SECONDS = 300.0
# Wall time and monotonic time that part by more than this over one sleep mean the clock
# was set, or the machine slept: the next moment is planned again from the new time.
CLOCK_JUMP_SECONDS = 60.0
# After a failed attempt to plan the next round (the API or the ledger out of reach, as
# after waking up before the network is back), the first pause; it doubles, up to
# RECHECK_SECONDS.
RETRY_SECONDS = 60.0


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
    # run --wait (see UntilDone): senders keep their own pace, and the results file's lock
    # is kept after the run for the next round (Campaign.hand_over_lock).
    wait: bool = False


class Campaign:
    """One run of a campaign; build it with :meth:`prepare`."""

    def __init__(
        self,
        settings: Settings,
        options: RunOptions,
        engine: Engine,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        kept: KeptLock | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.plan = engine.plan
        self.session = session
        self.clock = clock or running_clock()
        self.rng = rng
        self._engine = engine
        self._kept = kept

    @classmethod
    async def prepare(
        cls,
        settings: Settings,
        options: RunOptions,
        session: aiohttp.ClientSession | None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        kept: KeptLock | None = None,
        verdicts: Verdicts | None = None,
    ) -> Campaign:
        """Validate, ask the API, read the results and the workspace, and plan. Takes the
        results lock unless this is a dry run (taking over ``kept``, the lock an earlier
        round kept); call :meth:`close` (or :meth:`execute`) to release it. ``verdicts``:
        the input as the caller checked it already, with the same options (``report``),
        so that it is not read twice."""
        clock = clock or running_clock()
        if verdicts is None:
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
                    kept=kept,
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
            held = journal.keep_lock() if journal is not None and options.wait else None
        except BaseException:
            if journal is not None:
                if kept is not None:
                    # A --wait round that cannot be planned (the ledger unreachable) tries
                    # again later: the results file stays locked meanwhile.
                    with contextlib.suppress(JournalError):
                        kept.refill(journal.keep_lock())
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
        if options.wait:
            planned = at_own_pace(planned)
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
            end_at=_round_end(planned.plan, now) if options.wait else None,
        )
        return cls(settings, options, engine, session=session, clock=clock, rng=rng, kept=held)

    def request_stop(self) -> None:
        """Stop starting requests; those in flight finish and are recorded."""
        self._engine.request_stop()

    def close(self) -> None:
        """Release the results file (only needed when :meth:`execute` is not called, or
        with ``wait``, whose kept lock outlasts :meth:`execute`)."""
        try:
            self._engine.close()
        finally:
            if self._kept is not None:
                self._kept.close()

    def hand_over_lock(self) -> KeptLock | None:
        """The results file's lock kept for the next round (``wait``), now the caller's to
        pass to the next :meth:`prepare` or to close."""
        kept, self._kept = self._kept, None
        return kept

    async def execute(self, progress: Progress | None = None) -> Summary:
        """Send what the plan allows now and return what happened (see
        :meth:`Engine.execute`)."""
        summary = await self._engine.execute(progress)
        if self.plan.now == 0:
            summary.next_send_at = self.plan.next_send_at
        return summary


class WaitProgress(Progress, Protocol):
    """What the terminal layer shows of a ``run --wait``: its rounds of sending (one
    :meth:`start` each, :meth:`close` once at the end), and its idle periods."""

    def waiting(self, until: float, left: int) -> None:
        """Idle until ``until`` (epoch seconds), with ``left`` rows still to send."""
        ...


class UntilDone:
    """``run --wait``: send what the plan allows, idle until a sender can send again,
    plan again (re-reading the results, the workspace and the API's quotas), until every
    row is final; then end as a single run would have.

    Idling sleeps toward a wall-clock moment in chunks of at most
    :data:`IDLE_CHUNK_SECONDS`, reading the wall clock after each: windows and working
    hours are wall-clock times, while the pace of each round comes from the monotonic
    clock and, at its start, from the invitations already recorded, so that however far
    the clock jumps, no sender bursts. The results file stays locked across idle periods
    (:meth:`Campaign.hand_over_lock`): a second run on it is refused meanwhile. A
    ``limit`` counts across all rounds. A round that could send but sent nothing (a sender
    the API says is spent, a Retry-After longer than the run waits), or in which the API
    stopped a sender, is followed by a pause before the next (at most an hour), so that no
    loop spins. It ends with rows still to
    send when no sender ever can send them again (``stopped_reason`` says why), when the
    limit is reached, or when :meth:`request_stop` is called (``interrupted``).
    """

    def __init__(
        self,
        first: Campaign,
        *,
        progress: WaitProgress | None = None,
        on_plan: Callable[[Plan], None] | None = None,
    ) -> None:
        self._campaign = first
        self._progress: WaitProgress = progress or _SilentWait()
        self._on_plan = on_plan or (lambda plan: None)
        self._stop = asyncio.Event()
        self._kept: KeptLock | None = None
        self._this_run: Counter[str] = Counter()
        limit = first.options.limit
        self._left = limit  # of --limit, for the rounds to come (None: no limit)

    def request_stop(self) -> None:
        """Stop: no new invitations, those in flight finish; an idle period ends at once."""
        self._stop.set()
        self._campaign.request_stop()

    async def execute(self) -> Summary:
        """Run rounds until the campaign is done or stops (see the class docstring)."""
        try:
            return await self._rounds()
        finally:
            try:
                self._progress.close()
                self._campaign.close()
            finally:
                if self._kept is not None:
                    self._kept.close()

    async def _rounds(self) -> Summary:
        campaign = self._campaign
        while True:
            plan = campaign.plan
            self._kept = campaign.hand_over_lock()
            if self._stop.is_set():  # stopped while the round was being planned
                campaign.request_stop()
                return self._end(await campaign.execute(), interrupted=True)
            sending = plan.now > 0
            summary = await campaign.execute(_Round(self._progress) if sending else None)
            self._count(summary)
            if summary.interrupted:
                return self._end(summary)
            if summary.remaining == 0 or self._left == 0:
                return self._end(summary)
            if self._stop.is_set():
                return self._end(summary, interrupted=True)
            now = campaign.clock.now()
            if summary.reached_end_at or (
                sending and any(summary.this_run.values()) and not summary.api_stopped
            ):
                # It sent, or a sender closed at its start can send now: plan again at once.
                target = now
            elif sending:
                # It could send but sent nothing, or the API stopped a sender that the next
                # plan would send from again at once: say why not before trying again.
                target = now + min(RECHECK_SECONDS, plan.window_seconds)
            elif plan.next_send_at is None:
                summary.stopped_reason = f"no sender can send again: {plan.next_send_why}"
                return self._end(summary)
            else:
                target = plan.next_send_at
            if target > now and not await self._idle(target, summary.remaining):
                return self._end(summary, interrupted=True, next_send_at=target)
            prepared = await self._prepare()
            if prepared is None:
                return self._end(summary, interrupted=True)
            campaign = prepared

    def _count(self, summary: Summary) -> None:
        self._this_run.update(summary.this_run)
        if self._left is not None:
            # What the engine counts against --limit: rows it started that ended, not
            # those another campaign of the workspace had invited meanwhile.
            started = sum(summary.this_run.values()) - summary.this_run[ALREADY_INVITED]
            self._left = max(0, self._left - started)

    def _end(
        self, summary: Summary, *, interrupted: bool = False, next_send_at: float | None = None
    ) -> Summary:
        """The last round's summary, with every round's rows counted."""
        return dataclasses.replace(
            summary,
            this_run=Counter(self._this_run),
            interrupted=summary.interrupted or interrupted,
            next_send_at=summary.next_send_at if next_send_at is None else next_send_at,
        )

    async def _prepare(self) -> Campaign | None:
        """The next round, planned afresh; None when stopped first. Trouble reaching the
        API or the ledger (it worked on the first round) is waited out."""
        first = self._campaign
        options = dataclasses.replace(first.options, limit=self._left)
        pause = min(RETRY_SECONDS, first.settings.pacing.window_seconds)
        while True:
            try:
                campaign = await Campaign.prepare(
                    first.settings,
                    options,
                    first.session,
                    clock=first.clock,
                    rng=first.rng,
                    kept=self._kept,
                )
            except AuthError:
                raise  # a rejected key needs a person
            except (ApiError, LedgerError) as exc:
                self._progress.notice(f"cannot plan the next round ({exc}); trying again")
                if not await self._sleep(pause):
                    return None
                pause = min(pause * 2, RECHECK_SECONDS)
                continue
            self._campaign = campaign
            self._on_plan(campaign.plan)
            return campaign

    async def _idle(self, target: float, left: int) -> bool:
        """Wait until the wall clock reaches ``target``, or it jumps; False when stopped."""
        clock = self._campaign.clock
        self._progress.waiting(target, left)
        while True:
            wall, mono = clock.now(), clock.monotonic()
            if wall >= target:
                return True
            if not await self._sleep(min(target - wall, IDLE_CHUNK_SECONDS)):
                return False
            moved = (clock.now() - wall) - (clock.monotonic() - mono)
            if abs(moved) > CLOCK_JUMP_SECONDS:
                self._progress.notice(
                    f"the clock moved {moved:+.0f}s while waiting (it was set, or the "
                    "machine slept): planning again"
                )
                return True

    async def _sleep(self, seconds: float) -> bool:
        """Sleep ``seconds`` on the clock unless stopped first; False when stopped."""
        if self._stop.is_set():
            return False
        sleeper = asyncio.ensure_future(self._campaign.clock.sleep(seconds))
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopper.cancel()
        return not self._stop.is_set()


class _Round:
    """One round's progress: the run's display, left open when the round ends."""

    def __init__(self, display: WaitProgress) -> None:
        self._display = display

    def start(self, total: int, sender_ids: list[str]) -> None:
        self._display.start(total, sender_ids)

    def advance(self, sender_id: str, status: str) -> None:
        self._display.advance(sender_id, status)

    def notice(self, message: str) -> None:
        self._display.notice(message)

    def close(self) -> None:
        pass


class _SilentWait(SilentProgress):
    def waiting(self, until: float, left: int) -> None:
        pass


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


# A --wait round that ends to take in a sender lasts at least this long: each round plans
# afresh (a million rows: seconds of CPU), and a sender may join a few minutes late.
MIN_ROUND_SECONDS = 300.0


def _round_end(plan: Plan, now: float) -> float:
    """When a --wait round stops starting turns, so that a sender closed at its start
    (working hours not yet open, capacity spent) is taken in once it can send, rather
    than after every other sender's day (the engine brings it closer for a sender whose
    hours close during the round); infinity: when its work or capacity ends."""
    if plan.next_join_at is None or plan.now == 0:
        return math.inf
    return max(plan.next_join_at, now + MIN_ROUND_SECONDS)


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

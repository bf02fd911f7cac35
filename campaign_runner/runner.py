"""The campaign: plan, fan out, pace, record, stop cleanly.

:meth:`Campaign.prepare` validates the spreadsheet, reads the results journal (turning
rows left ``pending`` by a crash into ``unknown``), asks the API for senders and quotas,
and works out what can be sent now. :meth:`Campaign.execute` then runs one loop per
sender: wait for the sender's next paced slot, take the next row (its own pinned rows
first, then the shared queue, so that senders with more capacity take more rows), and
send it in a task bounded by the global concurrency cap.

The one promise that matters: an invitation is never sent twice. Before a request leaves,
a ``pending`` line is durable in the journal; any outcome that leaves doubt is recorded
as ``unknown`` and only re-sent with ``--retry-unknown``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiohttp
import pyarrow as pa
import pyarrow.compute as pc

from campaign_runner.client import ConnectResult, ResultKind, SenderInfo, SendPilotClient
from campaign_runner.config import Settings
from campaign_runner.errors import ApiError, AuthError
from campaign_runner.journal import (
    ALREADY_CONNECTED,
    CAPACITY_STATUSES,
    DEFERRED,
    FAILED,
    PENDING,
    SENT,
    UNKNOWN,
    Journal,
    JournalRecord,
    JournalState,
    load_journal,
)
from campaign_runner.pacing import Backoff, SenderPacer, pacing_interval, remaining_capacity
from campaign_runner.retry import RetryPolicy
from campaign_runner.validation import STATUS_VALID, Verdicts, check_file

EXTRA_COLUMNS = ("note_delivered",)
PLAN_PROBLEMS = 10  # problem rows shown in a plan; `validate` lists them all


class Progress(Protocol):
    """What the runner tells the terminal layer while it works."""

    def start(self, total: int, sender_ids: list[str]) -> None: ...

    def advance(self, sender_id: str, status: str) -> None: ...

    def notice(self, message: str) -> None: ...

    def close(self) -> None: ...


class SilentProgress:
    def start(self, total: int, sender_ids: list[str]) -> None:
        pass

    def advance(self, sender_id: str, status: str) -> None:
        pass

    def notice(self, message: str) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class RunOptions:
    input_path: Path
    results_path: Path
    url_column: str | None = None
    note_column: str | None = None
    limit: int | None = None
    retry_failed: bool = False
    retry_unknown: bool = False
    dry_run: bool = False


@dataclass(frozen=True)
class SenderPlan:
    sender_id: str
    name: str
    status: str
    daily_limit: int
    used_in_window: int
    api_remaining: int | None
    capacity: int  # invitations it may send in this run
    interval_seconds: float
    premium: bool | None
    skipped: str = ""  # why it will not send, or ''

    @property
    def usable(self) -> bool:
        return not self.skipped and self.capacity > 0


@dataclass(frozen=True)
class Plan:
    input_path: Path
    results_path: Path
    counts: dict[str, int]  # validation: valid / invalid / duplicate
    already_done: int  # valid rows with a final outcome in the results
    to_send: int  # valid rows this run would try
    now: int  # of those, how many fit in current capacity (and --limit)
    later: int
    senders: tuple[SenderPlan, ...]
    window_seconds: float
    estimated_seconds: float | None  # until the `now` rows are sent, at the paced rate
    windows_needed: int | None  # capacity windows to send everything (None: never)
    warnings: tuple[str, ...] = ()
    recovered_pending: int = 0  # rows left `pending` by a crash, now recorded `unknown`
    repaired: str = ""  # an unfinished last line an interrupted run left, now cut off
    problems: tuple[tuple[int, str], ...] = ()  # the first invalid/duplicate rows: (row, reason)


@dataclass
class Summary:
    plan: Plan
    this_run: Counter[str] = field(default_factory=Counter)
    final: Counter[str] = field(default_factory=Counter)  # over all valid rows of the input
    remaining: int = 0  # valid rows still to send
    interrupted: bool = False
    stopped_reason: str = ""  # why the run stopped before its capacity or work ran out
    renews_at: float | None = None  # epoch seconds when some capacity frees up again

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        if self.remaining > 0:
            return 3
        if self.final[FAILED] or self.final[UNKNOWN]:
            return 1
        return 0


@dataclass(frozen=True)
class _Ledger:
    """What the journal said at planning time, as far as the end of the run needs it."""

    counts: Counter[str]  # valid rows per recorded status ('' for none yet)
    renews_at: float | None  # when the oldest send still in the window leaves it
    last_sent: dict[str, float]  # per sender, its latest invitation in the window


@dataclass
class _Work:
    row: int
    url: str
    note: str
    pinned: str
    prior_attempts: int = 0
    initial: str = ""  # its status in the results when the run started ('' for none)
    status: str = ""  # its status now, once this run recorded an outcome

    def record(
        self,
        sender_id: str,
        status: str,
        *,
        request_id: str = "",
        error: str = "",
        attempts: int = 0,
        note_delivered: str = "",
    ) -> JournalRecord:
        """A results line for this row; ``attempts`` counts this run's, added to earlier ones."""
        return JournalRecord(
            row=self.row,
            linkedin_url=self.url,
            sender_id=sender_id,
            status=status,
            request_id=request_id,
            error=error,
            attempts=self.prior_attempts + attempts,
            extra={"note_delivered": note_delivered},
        )


class Campaign:
    """One run of a campaign; build it with :meth:`prepare`."""

    def __init__(
        self,
        settings: Settings,
        options: RunOptions,
        plan: Plan,
        work: list[_Work],
        ledger: _Ledger,
        client: SendPilotClient | None,
        journal: Journal | None,
        *,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.settings = settings
        self.options = options
        self.plan = plan
        self._work = work
        self._ledger = ledger
        self._first_send_at: float | None = None
        self._client = client
        self._journal = journal
        self._clock = clock
        self._rng = rng
        self._policy = RetryPolicy.from_settings(settings.retry, rng)
        self._stop = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._abort: ApiError | None = None  # why the API refused the whole run
        self._halted = ""  # why the run stopped early on its own (not an interruption)
        self._premium = {s.sender_id: s.premium for s in plan.senders}

    # -- planning ---------------------------------------------------------------------

    @classmethod
    async def prepare(
        cls,
        settings: Settings,
        options: RunOptions,
        session: aiohttp.ClientSession | None,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> Campaign:
        """Validate, read the journal, ask the API, and plan. Takes the results lock
        unless this is a dry run; call :meth:`close` (or :meth:`execute`) to release it."""
        validation = check_file(
            options.input_path, url_column=options.url_column, note_column=options.note_column
        )
        journal = None
        if not options.dry_run:
            journal = Journal.open(options.results_path, extra_columns=EXTRA_COLUMNS, clock=clock)
        try:
            return await cls._prepare(
                settings, options, session, validation, journal, clock, rng or random.Random()
            )
        except BaseException:
            if journal is not None:
                journal.close()
            raise

    @classmethod
    async def _prepare(
        cls,
        settings: Settings,
        options: RunOptions,
        session: aiohttp.ClientSession | None,
        validation: Verdicts,
        journal: Journal | None,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> Campaign:
        state = journal.state if journal is not None else load_journal(options.results_path)
        recovered = _recover_pending(state, journal)
        is_valid = pc.equal(validation.table["status"], STATUS_VALID)
        if journal is not None:
            _record_problems(validation.table.filter(pc.invert(is_valid)), state, journal)

        client = None
        if session is not None and settings.api.api_key is not None:
            client = SendPilotClient.from_settings(session, settings)
        elif not options.dry_run:
            settings.require_api_key()  # a real run needs the API: raises without a key
        warnings: list[str] = list(settings.warnings)
        window = settings.pacing.window_seconds
        used = Counter(state.used_capacity(clock() - window))
        # Rows a crash left pending were just recorded `unknown`: they count too.
        used.update(recovered.values())
        senders = await _plan_senders(settings, client, used, warnings)

        todo, counts = _rows_to_send(validation.table, is_valid, state, recovered, options)
        work, strays = _work_items(todo, {s.sender_id for s in senders})
        for stray in strays:
            counts[stray.initial] -= 1
            counts[FAILED] += 1
        if journal is not None and strays:
            # Pinned to a sender this workspace does not have: such a row can never be
            # sent as it is, so say so in the results rather than wait forever.
            journal.append_many(
                [
                    w.record(
                        w.pinned,
                        FAILED,
                        error=f"sender_id {w.pinned!r} is not a sender of this workspace",
                    )
                    for w in strays
                ]
            )

        now = _sendable_now(work, senders)
        if options.limit is not None:
            now = min(now, options.limit)
        plan = Plan(
            input_path=options.input_path,
            results_path=options.results_path,
            counts=validation.counts,
            already_done=sum(counts.values()) - len(work),
            to_send=len(work),
            now=now,
            later=len(work) - now,
            senders=tuple(senders),
            window_seconds=window,
            estimated_seconds=_estimate_seconds(now, senders),
            windows_needed=_windows_needed(len(work), senders, now),
            warnings=tuple(warnings),
            recovered_pending=len(recovered),
            repaired=state.repair,
            problems=tuple(
                (p["row"], p["reason"]) for p in validation.problems(limit=PLAN_PROBLEMS)
            ),
        )
        return cls(
            settings,
            options,
            plan,
            work,
            _Ledger(
                counts=counts,
                renews_at=state.next_renewal(clock() - window, window),
                last_sent=state.last_sent(clock() - window),
            ),
            client,
            journal,
            clock=clock,
            rng=rng,
        )

    # -- execution --------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop starting requests; those in flight finish and are recorded."""
        self._stop.set()
        # Sender loops wait on pacing for up to an interval (an hour, for 24 a day):
        # cancel them rather than make every wait race the stop event.
        for loop in self._loops:
            loop.cancel()

    def _halt(self, reason: str) -> None:
        self._halted = self._halted or reason
        self.request_stop()

    def close(self) -> None:
        """Release the results file (only needed when :meth:`execute` is not called)."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    async def execute(self, progress: Progress | None = None) -> Summary:
        """Send what the plan allows now and return what happened.

        Raises :class:`ApiError` (:class:`AuthError` for 401/403) when the API refuses the
        run as a whole mid-way: the run stops at once, and the row that met the refusal is
        recorded ``deferred``.
        """
        progress = progress or SilentProgress()
        summary = Summary(plan=self.plan)
        try:
            if not self.options.dry_run and self.plan.now > 0:
                await self._run(progress, summary)
        finally:
            progress.close()
            if self._journal is not None:
                await self._journal.aclose()
                self._journal = None
        if self._abort is not None:
            raise self._abort
        self._finish(summary)
        return summary

    async def _run(self, progress: Progress, summary: Summary) -> None:
        now = self._clock()
        pacers = [
            SenderPacer(
                s.sender_id,
                s.capacity,
                self.plan.window_seconds,
                jitter=self.settings.pacing.jitter,
                rng=self._rng,
                first_delay=self._ledger.last_sent.get(s.sender_id, -math.inf)
                + s.interval_seconds
                - now,
            )
            for s in self.plan.senders
            if s.usable
        ]
        usable = {p.sender_id for p in pacers}
        concurrency = self.settings.pacing.concurrency
        run = _Run(
            campaign=self,
            progress=progress,
            summary=summary,
            shared=deque(w for w in self._work if not w.pinned),
            pinned={sid: deque(w for w in self._work if w.pinned == sid) for sid in usable},
            http=asyncio.Semaphore(concurrency),
            # Rows whose `pending` line is being made durable wait outside the HTTP cap,
            # so that no request slot idles on an fsync: up to 2x concurrency rows are
            # between their pending line and their outcome (a crash leaves them unknown).
            slots=asyncio.Semaphore(2 * concurrency),
            backoff=Backoff(),
            budget=self.options.limit if self.options.limit is not None else math.inf,
        )
        progress.start(self.plan.now, sorted(usable))
        self._loops = [run.track(run.sender_loop(p), run.loops) for p in pacers]
        if self._stop.is_set():
            self.request_stop()
        # Wait for the loops, then for the sends they started; the first error of
        # either stops the run and is raised once everything has settled.
        if self._loops:
            await asyncio.wait(self._loops)
        while run.sends:
            await asyncio.wait(set(run.sends))
        if run.error is not None:
            raise run.error
        summary.stopped_reason = self._halted
        summary.interrupted = (
            self._stop.is_set() and self._abort is None and not self._halted and not run.done
        )

    def _finish(self, summary: Summary) -> None:
        final = Counter(self._ledger.counts)
        for work in self._work:
            if work.status:
                final[work.initial] -= 1
                final[work.status] += 1
        summary.final = Counter({k: v for k, v in final.items() if k})
        summary.remaining = final[""] + final[DEFERRED]
        window = self.plan.window_seconds
        first_send = self._first_send_at
        candidates = [
            t
            for t in (self._ledger.renews_at, None if first_send is None else first_send + window)
            if t is not None
        ]
        summary.renews_at = min(candidates) if candidates else None

    async def _send(self, work: _Work, pacer: SenderPacer, run: _Run) -> str:
        """Send one row (retrying what may be retried) and journal the outcome.

        The ``pending`` line is durable before the request leaves. The outcome line is
        queued without waiting for its fsync: if it is lost in a crash, the row reads as
        ``pending`` and becomes ``unknown``, which is safe.
        """
        assert self._client is not None and self._journal is not None
        sender_id = pacer.sender_id
        note_delivered = self._note_delivered(work.note, sender_id)
        await self._journal.append_async(
            work.record(sender_id, PENDING, note_delivered=note_delivered)
        )
        result, attempt = None, 0
        # A row whose pending line is durable but whose request has no slot yet is
        # deferred at once on a stop, so that a second Ctrl-C leaves only requests that
        # may really have left in doubt.
        if await _take_unless_stopped(run.http, self._stop):
            try:
                result, attempt = await self._attempt(work, sender_id, run)
            finally:
                run.http.release()
        if result is None:
            pacer.refund()
            status, error, request_id = DEFERRED, "stopped before sending", ""
        else:
            status, error = self._outcome(result, pacer, run)
            request_id = result.request_id
        work.status = status
        if status in CAPACITY_STATUSES and self._first_send_at is None:
            self._first_send_at = self._clock()
        run.journal_later(
            work.record(
                sender_id,
                status,
                request_id=request_id,
                error=error,
                attempts=attempt,
                note_delivered=note_delivered if status == SENT else "",
            )
        )
        return status

    async def _attempt(
        self, work: _Work, sender_id: str, run: _Run
    ) -> tuple[ConnectResult | None, int]:
        """Send, retrying what the policy retries; the last result (``None`` if a stop
        came before the first attempt) and the number of attempts made."""
        assert self._client is not None
        attempt = 0
        result: ConnectResult | None = None
        while True:
            # The API's own rate limit concerns the key, so it pauses every sender,
            # first attempts included.
            if run.backoff.paused:
                await _unless_stopped(run.backoff.wait(), self._stop)
            if self._stop.is_set():
                return result, attempt
            attempt += 1
            result = await self._client.connect(sender_id, work.url, work.note or None)
            if result.kind is ResultKind.RATE_LIMITED:
                pause = self._policy.delay(result, attempt)
                if pause > self._policy.max_delay:
                    # Waiting hours inside a run (a cron job's, say) helps nobody: stop,
                    # and let the next run continue once the API is ready.
                    self._halt(f"the API asked to pause for {pause:.0f}s (Retry-After)")
                    return result, attempt
                run.backoff.push(pause)
            if not self._policy.should_retry(result, attempt):
                return result, attempt
            if result.kind is not ResultKind.RATE_LIMITED:
                await _unless_stopped(
                    asyncio.sleep(self._policy.delay(result, attempt)), self._stop
                )

    def _outcome(self, result: ConnectResult, pacer: SenderPacer, run: _Run) -> tuple[str, str]:
        """The journal status and error text for a final result; gives back the sender's
        slot when no invitation can have been created."""
        kind = result.kind
        if kind is ResultKind.ACCEPTED:
            if result.status == SENT:
                return SENT, result.message
            if result.status == ALREADY_CONNECTED:
                pacer.refund()
                return ALREADY_CONNECTED, result.message
            # Success with a status word we do not know: the invitation probably exists,
            # but only a person can tell. Never re-sent automatically.
            return UNKNOWN, f"the API answered success with status {result.status!r}"
        if kind is ResultKind.AMBIGUOUS:
            return UNKNOWN, result.message
        pacer.refund()
        if kind in (ResultKind.AUTH, ResultKind.MISCONFIGURED):
            error_type = AuthError if kind is ResultKind.AUTH else ApiError
            self._abort = self._abort or error_type(result.message, result.http_status)
            self.request_stop()
            return DEFERRED, result.message
        if kind is ResultKind.DAILY_LIMIT:
            pacer.exhaust()
            run.progress.notice(f"sender {pacer.sender_id}: daily connection limit reached")
            return DEFERRED, result.message
        if kind is not ResultKind.REJECTED and self._stop.is_set():
            return DEFERRED, f"stopped before a retry: {result.message}"
        return FAILED, result.message

    def _note_delivered(self, note: str, sender_id: str) -> str:
        if not note:
            return ""
        premium = self._premium.get(sender_id)
        if premium is None:
            return "if premium"
        return "yes" if premium else "no (free sender)"


@dataclass
class _Run:
    """Mutable state of one :meth:`Campaign._run`, shared by the sender loops."""

    campaign: Campaign
    progress: Progress
    summary: Summary
    shared: deque[_Work]
    pinned: dict[str, deque[_Work]]
    http: asyncio.Semaphore  # requests in flight: pacing.concurrency
    slots: asyncio.Semaphore  # rows started and not yet finished
    backoff: Backoff
    budget: float
    loops: set[asyncio.Task[None]] = field(default_factory=set)  # one per sender
    sends: set[asyncio.Task[None]] = field(default_factory=set)  # one per row in flight
    started: int = 0
    error: BaseException | None = None  # the first error of a loop or a send

    @property
    def done(self) -> bool:
        return not self.shared and not any(self.pinned.values())

    def _has_work(self, sender_id: str) -> bool:
        return bool(self.pinned[sender_id] or self.shared)

    def _take(self, sender_id: str) -> _Work | None:
        own = self.pinned[sender_id]
        if own:
            return own.popleft()
        return self.shared.popleft() if self.shared else None

    def _give_back(self, work: _Work, sender_id: str) -> None:
        (self.pinned[sender_id] if work.pinned else self.shared).appendleft(work)

    def _may_start(self, pacer: SenderPacer) -> bool:
        return self._may_use_turn(pacer) and pacer.has_capacity

    def _may_use_turn(self, pacer: SenderPacer) -> bool:
        # A taken turn already holds its slot, so capacity is not asked again here.
        return (
            not self.campaign._stop.is_set() and self.started < self.budget and not pacer.exhausted
        )

    async def sender_loop(self, pacer: SenderPacer) -> None:
        """Take turns for one sender until its capacity, the work or the budget runs out.

        :meth:`Campaign.request_stop` cancels it wherever it waits.
        """
        while self._may_start(pacer):
            if not self._has_work(pacer.sender_id):
                # Rows in flight may come back (another sender's daily limit): wait for them.
                if not self.sends:
                    return
                await asyncio.wait(set(self.sends), return_when=asyncio.FIRST_COMPLETED)
                continue
            if not await pacer.take_turn():
                return
            try:
                await self.slots.acquire()
            except asyncio.CancelledError:
                pacer.refund()
                raise
            work = self._take(pacer.sender_id)
            if work is None or not self._may_use_turn(pacer):
                self.slots.release()
                pacer.refund()
                if work is None:
                    continue
                self._give_back(work, pacer.sender_id)
                return
            self.started += 1
            self.track(self._send(work, pacer), self.sends)

    def track(
        self, coro: Coroutine[object, object, None], group: set[asyncio.Task[None]]
    ) -> asyncio.Task[None]:
        """Run ``coro`` as a task of this run, in ``group`` until it ends; its error, if
        any, stops the run."""
        task = asyncio.create_task(coro)
        group.add(task)
        task.add_done_callback(group.discard)
        task.add_done_callback(self._settled)
        return task

    def _settled(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and self.error is None:
            # A journal that cannot be written (disk full) must stop the campaign, not
            # leave it taking paced turns that it can no longer record.
            self.error = error
            self.campaign.request_stop()

    def journal_later(self, record: JournalRecord) -> None:
        journal = self.campaign._journal
        assert journal is not None
        journal.append_nowait(record)

    async def _send(self, work: _Work, pacer: SenderPacer) -> None:
        try:
            status = await self.campaign._send(work, pacer, self)
        finally:
            self.slots.release()
        if status == DEFERRED:
            self._give_back(work, pacer.sender_id)
            self.started -= 1
        else:
            self.summary.this_run[status] += 1
            self.progress.advance(pacer.sender_id, status)


async def _unless_stopped(
    awaitable: Coroutine[object, object, object], stop: asyncio.Event
) -> bool:
    """Await ``awaitable`` unless a stop is requested first; whether it completed.

    When the stop comes first the awaitable is cancelled, unless it completed in the same
    instant: a semaphore it acquired is then held, and the caller must release it.
    """
    if stop.is_set():
        awaitable.close()
        return False
    task = asyncio.ensure_future(awaitable)
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return task.done() and not task.cancelled()


async def _take_unless_stopped(slots: asyncio.Semaphore, stop: asyncio.Event) -> bool:
    """Acquire ``slots`` unless a stop comes first; ``True`` when held."""
    if not slots.locked():
        await slots.acquire()  # free now: no need to race the stop
        return True
    return await _unless_stopped(slots.acquire(), stop)


# -- planning helpers ---------------------------------------------------------------


async def _plan_senders(
    settings: Settings,
    client: SendPilotClient | None,
    used: dict[str, int],
    warnings: list[str],
) -> list[SenderPlan]:
    window = settings.pacing.window_seconds
    if client is None:
        return [
            _sender_plan(
                s.id,
                name="",
                status="offline",
                daily_limit=s.daily_limit,
                used=used.get(s.id, 0),
                api_remaining=None,
                premium=s.premium,
                window=window,
            )
            for s in settings.senders
        ]
    infos = {s.id: s for s in await client.senders()}
    quotas, why = await client.quotas_if_available()
    if why:
        warnings.append(f"quotas unavailable, using configured limits only ({why})")
    wanted = [s.id for s in settings.senders] if settings.senders else list(infos)
    plans = []
    for sender_id in wanted:
        configured = settings.sender(sender_id)
        limit = configured.daily_limit if configured else settings.pacing.default_daily_limit
        info = infos.get(sender_id)
        quota = quotas.get(sender_id)
        premium = configured.premium if configured else None
        if premium is None and info is not None:
            premium = info.premium
        skipped = _skip_reason(info)
        if skipped:
            warnings.append(f"sender {sender_id}: {skipped}; skipped")
        plans.append(
            _sender_plan(
                sender_id,
                name=info.name if info else "",
                status=info.status if info else "not found",
                daily_limit=limit,
                used=used.get(sender_id, 0),
                api_remaining=quota.remaining if quota else None,
                premium=premium,
                window=window,
                skipped=skipped,
            )
        )
    return plans


def _skip_reason(info: SenderInfo | None) -> str:
    if info is None:
        return "not a sender of this workspace (GET /inbox/senders does not list it)"
    if info.status != "active":
        return f"status is {info.status}"
    return ""


def _sender_plan(
    sender_id: str,
    *,
    name: str,
    status: str,
    daily_limit: int,
    used: int,
    api_remaining: int | None,
    premium: bool | None,
    window: float,
    skipped: str = "",
) -> SenderPlan:
    capacity = 0 if skipped else remaining_capacity(daily_limit, used, api_remaining)
    return SenderPlan(
        sender_id=sender_id,
        name=name,
        status=status,
        daily_limit=daily_limit,
        used_in_window=used,
        api_remaining=api_remaining,
        capacity=capacity,
        interval_seconds=pacing_interval(capacity, window),
        premium=premium,
        skipped=skipped,
    )


def _rows_to_send(
    table: pa.Table,
    is_valid: pa.ChunkedArray,
    state: JournalState,
    recovered: dict[str, str],
    options: RunOptions,
) -> tuple[pa.Table, Counter[str]]:
    """The valid rows this run sends (with their recorded status and attempts), and the
    valid rows counted by recorded status.

    Matched in Arrow, so that resuming a finished million-row campaign builds no
    million-entry dict, no Python object per row, and no copy of the valid rows.
    """
    sendable = {"", DEFERRED}
    if options.retry_failed:
        sendable.add(FAILED)
    if options.retry_unknown:
        sendable.add(UNKNOWN)
    statuses, attempts = state.lookup(table["linkedin_url"])
    # Chosen while crash-left rows still read `pending`: even with --retry-unknown, rows
    # a crash just left in doubt wait for a person to check them, so that a cron line
    # with the flag never re-sends them unseen.
    to_do = pc.and_(is_valid, pc.is_in(statuses, value_set=pa.array(sorted(sendable))))
    if recovered:
        was_pending = pc.is_in(table["linkedin_url"], value_set=pa.array(list(recovered)))
        statuses = pc.if_else(was_pending, UNKNOWN, statuses)
    counts = Counter(_value_counts(statuses.filter(is_valid)))
    todo = table.select(["row", "linkedin_url", "note", "sender_id"]).filter(to_do)
    todo = todo.append_column("attempts", attempts.filter(to_do))
    return todo.append_column("status", statuses.filter(to_do)), counts


def _work_items(todo: pa.Table, known_senders: set[str]) -> tuple[list[_Work], list[_Work]]:
    """The rows to send as work items, and the strays pinned to an unknown sender."""
    work: list[_Work] = []
    strays: list[_Work] = []
    for item in todo.to_pylist():
        row = _Work(
            row=item["row"],
            url=item["linkedin_url"],
            note=item["note"],
            pinned=item["sender_id"],
            prior_attempts=item["attempts"],
            initial=item["status"],
        )
        (strays if row.pinned and row.pinned not in known_senders else work).append(row)
    return work, strays


def _sendable_now(work: list[_Work], senders: list[SenderPlan]) -> int:
    """How many rows the current capacity can take: pinned rows only by their sender,
    the others by whatever capacity the pinned rows leave."""
    capacity = {s.sender_id: s.capacity for s in senders if s.usable}
    pinned = Counter(w.pinned for w in work if w.pinned)
    now = 0
    for sender_id, rows in pinned.items():
        taken = min(rows, capacity.get(sender_id, 0))
        now += taken
        if sender_id in capacity:
            capacity[sender_id] -= taken
    shared = sum(1 for w in work if not w.pinned)
    return now + min(shared, sum(capacity.values()))


def _estimate_seconds(now: int, senders: list[SenderPlan]) -> float | None:
    rate = sum(1.0 / s.interval_seconds for s in senders if s.usable)
    if now == 0 or rate == 0:
        return None if now else 0.0
    # The first invitation of every sender leaves at once; the rest at the combined rate.
    return max(0.0, (now - sum(1 for s in senders if s.usable)) / rate)


def _windows_needed(to_send: int, senders: list[SenderPlan], now: int) -> int | None:
    """Capacity windows (this one included) to send everything; ``None``: never, with
    these senders."""
    if to_send == 0:
        return 0
    later = to_send - now
    if later <= 0:
        return 1
    per_window = sum(s.daily_limit for s in senders if not s.skipped)
    return 1 + math.ceil(later / per_window) if per_window else None


def _recover_pending(state: JournalState, journal: Journal | None) -> dict[str, str]:
    """Rows a crash left ``pending``: the request may have left, so they become ``unknown``
    (dated when they were sent, for the capacity window). Returns ``{url: sender_id}``."""
    pending = state.pending()
    if pending.empty:
        return {}
    records = [
        JournalRecord(
            row=int(row),
            linkedin_url=url,
            sender_id=sender,
            status=UNKNOWN,
            error="interrupted while sending (crash or kill): the invitation may exist",
            attempts=int(attempts) + 1,
            timestamp=timestamp,
        )
        for row, url, sender, attempts, timestamp in zip(
            pending["row"],
            pending["linkedin_url"],
            pending["sender_id"],
            pending["attempts"],
            pending["timestamp"],
            strict=True,
        )
    ]
    if journal is not None:
        journal.append_many(records)
    return {r.linkedin_url: r.sender_id for r in records}


def _record_problems(rejected: pa.Table, state: JournalState, journal: Journal) -> None:
    """Record invalid and duplicate rows once, so the results file accounts for every row."""
    if rejected.num_rows == 0:
        return
    problems = rejected.select(["row", "linkedin_url", "status", "reason"]).to_pandas()
    seen = state.problems
    if not seen.empty:
        key = ["row", "status", "linkedin_url"]
        merged = problems.merge(seen[key].drop_duplicates(), on=key, how="left", indicator=True)
        problems = merged[merged["_merge"] == "left_only"]
    journal.append_many(
        [
            JournalRecord(row=int(row), linkedin_url=url, sender_id="", status=status, error=reason)
            for row, url, status, reason in zip(
                problems["row"],
                problems["linkedin_url"],
                problems["status"],
                problems["reason"],
                strict=True,
            )
        ]
    )


def _value_counts(values: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    return {d["values"]: d["counts"] for d in pc.value_counts(values).to_pylist()}

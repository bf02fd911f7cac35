"""Executing a plan: one scheduler of next-due senders, a bounded number of requests in flight.

The senders wait in a heap ordered by the time of their next paced turn (the limiter of
each, :class:`~campaign_runner.pacing.SenderPacer`, has the last word). The scheduler
sleeps until the first of them is due, or until something changes (a send ends, a row
comes back), and starts that sender's turn: a task that takes the sender's next row (its
own pinned rows first, then the shared ones, so that senders with more capacity take
more), claims it in the workspace and starts its send within the global concurrency cap.
When its request leaves (a slow API may keep it waiting for a request slot), the sender
goes back on the heap for its next slot, paced from then if it left late.
Nothing waits per sender: a thousand idle senders cost a thousand heap entries, and a send
that ends wakes one scheduler, not every sender. A sender with no row it could take is set
aside until one comes back (another sender reached its daily limit, say), and a turn that
created no invitation (already connected, a rejected row, a failure) is handed back and
used again while rows remain. The rows themselves stay in Arrow until they are due
(:mod:`campaign_runner.work`).

The one promise that matters: an invitation is never sent twice. Before a request leaves,
a ``pending`` line is durable in the journal; any outcome that leaves doubt is recorded
as ``unknown`` and only re-sent with ``--retry-unknown``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import random
from collections import Counter
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from campaign_runner.client import ConnectResult, ResultKind, SendPilotClient
from campaign_runner.clock import Clock
from campaign_runner.config import Settings
from campaign_runner.errors import ApiError, AuthError
from campaign_runner.hours import WorkingHours
from campaign_runner.journal import (
    ALREADY_CONNECTED,
    ALREADY_INVITED,
    CAPACITY_STATUSES,
    DEFERRED,
    FAILED,
    PENDING,
    SENT,
    UNKNOWN,
    Journal,
    JournalRecord,
)
from campaign_runner.ledger import Claim, ClaimRequest, Ledger, Settle, Verdict
from campaign_runner.ledger.session import LedgerSession
from campaign_runner.pacing import Backoff, SenderPacer
from campaign_runner.planning import (
    API_COLUMN,
    API_SANDBOX,
    API_SENDPILOT,
    NOTE_DELIVERED,
    NOTE_DROPPED,
    Plan,
    Planned,
)
from campaign_runner.retry import RetryPolicy
from campaign_runner.timestamps import format_timestamp
from campaign_runner.work import RowQueue, WorkItem


class Progress(Protocol):
    """What the engine tells the terminal layer while it works."""

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


@dataclass
class Summary:
    plan: Plan
    this_run: Counter[str] = field(default_factory=Counter)
    final: Counter[str] = field(default_factory=Counter)  # over all valid rows of the input
    remaining: int = 0  # valid rows still to send
    interrupted: bool = False
    stopped_reason: str = ""  # why the run stopped before its capacity or work ran out
    renews_at: float | None = None  # epoch seconds when some capacity frees up again
    # When the next invitation can leave, if the plan could say (campaign.py sets it).
    next_send_at: float | None = None
    # Senders the API stopped for the run (daily limit, disconnected): what the next
    # plan may not know yet, when the quotas route does not say.
    api_stopped: set[str] = field(default_factory=set)
    # The run stopped starting turns at its `end_at` (a sender closed at planning time can
    # send now): plan again at once.
    reached_end_at: bool = False

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
class _Outcome:
    status: str
    error: str
    # Whether this run may send the row again (another sender, a later turn). A row whose
    # retries against the API's rate limit ran out waits for the next run instead.
    requeue: bool = False


class Engine:
    """Sends what a :class:`Planned` run allows now; build one per run."""

    def __init__(
        self,
        settings: Settings,
        planned: Planned,
        client: SendPilotClient | None,
        journal: Journal | None,
        *,
        limit: int | None,
        clock: Clock,
        rng: random.Random,
        claims: LedgerSession | None = None,
        ledger: Ledger | None = None,
        end_at: float | None = None,
    ) -> None:
        self.settings = settings
        self._claims = claims  # the workspace's claims on people and sender slots
        self._ledger = ledger  # closed at the end of the run
        self.plan = planned.plan
        self._work = planned.work
        self._recorded = planned.recorded
        self._client = client
        self._journal = journal
        self._limit = limit
        self._clock = clock
        self._rng = rng
        self._marks = {API_COLUMN: API_SANDBOX if self.plan.rehearsal else API_SENDPILOT}
        self._first_send_at: float | None = None
        self._policy = RetryPolicy.from_settings(settings.retry, rng)
        self._stop = asyncio.Event()
        self._active: _Run | None = None
        # How this run changed the rows' statuses: {status: +n or -n}, as outcomes come.
        self._changes: Counter[str] = Counter()
        self._abort: ApiError | None = None  # why the API refused the whole run
        self._halted = ""  # why the run stopped early on its own (not an interruption)
        self._premium = {s.sender_id: s.premium for s in self.plan.senders}
        # Wall time at which no further turn starts (the run ends once its sends are
        # recorded); None: the run ends when its work or capacity does.
        self._end_at = end_at

    def request_stop(self) -> None:
        """Stop starting requests; those in flight finish and are recorded."""
        self._stop.set()
        # The scheduler waits for the next paced turn for up to an interval (an hour, for
        # 24 a day): cancel it and the turns under way rather than make every wait race
        # the stop event.
        if self._active is not None:
            self._active.cancel_waits()

    def _halt(self, reason: str) -> None:
        self._halted = self._halted or reason
        self.request_stop()

    def close(self) -> None:
        """Release the results file and the ledger (only needed when :meth:`execute` is
        not called)."""
        try:
            if self._journal is not None:
                journal, self._journal = self._journal, None
                journal.close()
        finally:
            self._close_ledger()

    def _close_ledger(self) -> None:
        if self._ledger is not None:
            ledger, self._ledger = self._ledger, None
            ledger.close()

    async def execute(self, progress: Progress | None = None) -> Summary:
        """Send what the plan allows now and return what happened.

        Raises :class:`ApiError` (:class:`AuthError` for 401/403) when the API refuses the
        run as a whole mid-way: the run stops at once, and the row that met the refusal is
        recorded ``deferred``.
        """
        progress = progress or SilentProgress()
        summary = Summary(plan=self.plan)
        try:
            if self._journal is not None and self.plan.now > 0:
                await self._run(progress, summary)
        finally:
            progress.close()
            try:
                if self._claims is not None:
                    await self._claims.aclose()
                if self._journal is not None:
                    journal, self._journal = self._journal, None
                    await journal.aclose()
            finally:
                self._close_ledger()
        if self._abort is not None:
            raise self._abort
        self._finish(summary)
        return summary

    async def _run(self, progress: Progress, summary: Summary) -> None:
        now = self._clock.now()
        pacers = {
            s.sender_id: SenderPacer(
                s.sender_id,
                s.capacity,
                s.spread_seconds,
                jitter=self.settings.pacing.jitter,
                rng=self._rng,
                first_delay=self._recorded.last_sent.get(s.sender_id, -math.inf)
                + s.interval_seconds
                - now,
                clock=self._clock,
            )
            for s in self.plan.senders
            if s.usable
        }
        concurrency = self.settings.pacing.concurrency
        run = _Run(
            engine=self,
            progress=progress,
            summary=summary,
            rows=self._work.queue(),
            pacers=pacers,
            hours={sid: self.settings.working_hours(sid) for sid in pacers},
            http=asyncio.Semaphore(concurrency),
            # Rows whose `pending` line is being made durable wait outside the HTTP cap,
            # so that no request slot idles on an fsync: up to 2x concurrency rows are
            # between their pending line and their outcome (a crash leaves them unknown).
            slots=asyncio.Semaphore(2 * concurrency),
            backoff=Backoff(self._clock),
            budget=self._limit if self._limit is not None else math.inf,
        )
        progress.start(self.plan.now, sorted(pacers))
        self._active = run
        try:
            await run.execute()
        finally:
            self._active = None
        if run.error is not None:
            raise run.error
        summary.stopped_reason = self._halted
        summary.interrupted = (
            self._stop.is_set() and self._abort is None and not self._halted and not run.done
        )

    def _set_status(self, work: WorkItem, status: str) -> None:
        self._changes[work.status or work.initial] -= 1
        self._changes[status] += 1
        work.status = status

    def _finish(self, summary: Summary) -> None:
        final = Counter(self._recorded.counts)
        final.update(self._changes)
        summary.final = Counter({k: v for k, v in final.items() if k and v})
        summary.remaining = final[""] + final[DEFERRED]
        window = self.plan.window_seconds
        first_send = self._first_send_at
        candidates = [
            t
            for t in (self._recorded.renews_at, None if first_send is None else first_send + window)
            if t is not None
        ]
        summary.renews_at = min(candidates) if candidates else None

    def _extra(self, note_delivered: str) -> Mapping[str, str]:
        return {NOTE_DELIVERED: note_delivered, **self._marks}

    async def _send(
        self,
        work: WorkItem,
        pacer: SenderPacer,
        run: _Run,
        claim_id: int | None,
        leaving: asyncio.Future[None] | None = None,
    ) -> _Outcome:
        """Send one claimed row (retrying what may be retried) and record the outcome.

        The claim (see :meth:`claim_turn`) and the ``pending`` line are durable before the
        request leaves. The outcome line and the claim's outcome are queued without
        waiting: if one is lost in a crash, the row reads as ``pending`` and becomes
        ``unknown``, which is safe. ``leaving`` is resolved once the request has its slot
        and leaves (or will not leave): the sender's turn lasts until then.
        """
        try:
            return await self._send_once(work, pacer, run, claim_id, leaving)
        finally:
            if leaving is not None and not leaving.done():
                leaving.set_result(None)

    async def _send_once(
        self,
        work: WorkItem,
        pacer: SenderPacer,
        run: _Run,
        claim_id: int | None,
        leaving: asyncio.Future[None] | None,
    ) -> _Outcome:
        assert self._client is not None and self._journal is not None
        sender_id = pacer.sender_id
        note_delivered = self._note_delivered(work.note, sender_id)
        try:
            await self._journal.append_async(
                work.record(sender_id, PENDING, extra=self._extra(note_delivered))
            )
        except BaseException:
            self._settle(claim_id, DEFERRED, "", "not sent: the results file could not take it")
            raise
        result, attempt = None, 0
        why_not = "stopped before sending"
        # A row whose pending line is durable but whose request has no slot yet is
        # deferred at once on a stop, so that a second Ctrl-C leaves only requests that
        # may really have left in doubt.
        if await _take_unless_stopped(run.http, self._stop):
            try:
                # A request that waited for its slot (the API slow, every slot taken) may
                # find the sender's hours over; and its sender's next turn is paced from
                # now, so that two of its invitations never leave closer than its pace.
                pacer.leaves()
                if leaving is not None and not leaving.done():
                    leaving.set_result(None)
                if run.hours[sender_id].is_open(self._clock.now()):
                    result, attempt = await self._attempt(work, sender_id, run)
                else:
                    why_not = "not sent: the sender's working hours ended while it waited"
            finally:
                run.http.release()
        if result is None:
            pacer.refund()
            outcome = _Outcome(DEFERRED, why_not, requeue=True)
            request_id = ""
        else:
            outcome = self._outcome(result, pacer, run)
            request_id = result.request_id
        self._set_status(work, outcome.status)
        if outcome.status in CAPACITY_STATUSES and self._first_send_at is None:
            self._first_send_at = self._clock.now()
        run.journal_later(
            work.record(
                sender_id,
                outcome.status,
                extra=self._extra(note_delivered if outcome.status == SENT else ""),
                request_id=request_id,
                error=outcome.error,
                attempts=attempt,
            )
        )
        self._settle(claim_id, outcome.status, request_id, outcome.error)
        return outcome

    async def claim_turn(
        self, work: WorkItem, pacer: SenderPacer, run: _Run
    ) -> tuple[WorkItem | None, int | None]:
        """Claim a person and the sender's slot in the workspace for this turn.

        Returns the row to send and its claim, or ``(None, None)`` when the turn ends
        without one. A person another campaign invited after the plan was made is
        recorded ``already_invited`` and the turn goes to the next row at once; a slot
        another campaign took first is waited for, in the sender's loop, so that no turn
        of this sender slips past it; a sender the workspace has spent stops for the run.
        """
        assert self._claims is not None
        try:
            claimed = await self._claim_turn(work, pacer, run)
            run.claiming.pop(pacer.sender_id, None)
            return claimed
        except asyncio.CancelledError:
            # Stopped while claiming or waiting for the slot: the row was not sent and
            # goes back, so that the run knows it is left (and says it was interrupted).
            pacer.refund()
            run.give_back(run.claiming.pop(pacer.sender_id, work), pacer.sender_id)
            raise

    async def _claim_turn(
        self, work: WorkItem, pacer: SenderPacer, run: _Run
    ) -> tuple[WorkItem | None, int | None]:
        assert self._claims is not None
        waited = False
        while True:
            run.claiming[pacer.sender_id] = work
            claim = await self._claim(ClaimRequest(work.url, pacer.sender_id, work.row))
            if claim.verdict is Verdict.CLAIMED:
                if waited:
                    pacer.rest()
                return work, claim.claim_id
            if claim.verdict is Verdict.TAKEN:
                self._record_taken(work, claim, run, pacer.sender_id)
                following = None if self._stop.is_set() else run.take(pacer.sender_id)
                if following is None:
                    pacer.refund()
                    return None, None
                work = following
                continue
            if claim.verdict is Verdict.FULL:
                pacer.exhaust()
                run.give_back(work, pacer.sender_id)
                run.progress.notice(
                    f"sender {pacer.sender_id}: its limit is spent across the workspace"
                )
                return None, None
            # WAIT: another campaign took the sender's slot; its pace holds for both.
            waited = True
            delay = (claim.not_before or 0.0) - self._clock.now()
            if not await _unless_stopped(self._clock.sleep(max(0.0, delay)), self._stop):
                pacer.refund()
                run.give_back(work, pacer.sender_id)
                return None, None

    async def _claim(self, request: ClaimRequest) -> Claim:
        assert self._claims is not None
        pending = asyncio.ensure_future(self._claims.claim(request))
        try:
            return await asyncio.shield(pending)
        except asyncio.CancelledError:
            # Stopped while the claim was being committed: if it was granted, let the
            # person go again, since no request will leave for it.
            granted = await pending
            self._settle(granted.claim_id, DEFERRED, "", "stopped before sending")
            raise

    def _record_taken(self, work: WorkItem, claim: Claim, run: _Run, sender_id: str) -> None:
        holder = claim.holder
        assert holder is not None
        when = format_timestamp(holder.at)[:10]
        error = f"{holder.status} by campaign {holder.campaign!r} on {when}"
        self._set_status(work, ALREADY_INVITED)
        run.journal_later(
            work.record(holder.sender_id, ALREADY_INVITED, extra=self._marks, error=error)
        )
        run.count(ALREADY_INVITED, sender_id)

    def _settle(self, claim_id: int | None, status: str, request_id: str, error: str) -> None:
        if claim_id is not None and self._claims is not None:
            self._claims.settle_nowait(Settle(claim_id, status, request_id, error))

    async def _attempt(
        self, work: WorkItem, sender_id: str, run: _Run
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
                    self._clock.sleep(self._policy.delay(result, attempt)), self._stop
                )

    def _outcome(self, result: ConnectResult, pacer: SenderPacer, run: _Run) -> _Outcome:
        """The journal status and error text for a final result; gives back the sender's
        slot when no invitation can have been created."""
        kind = result.kind
        if kind is ResultKind.ACCEPTED:
            if result.status == SENT:
                return _Outcome(SENT, result.message)
            if result.status == ALREADY_CONNECTED:
                pacer.refund()
                return _Outcome(ALREADY_CONNECTED, result.message)
            # Success with a status word we do not know: the invitation probably exists,
            # but only a person can tell. Never re-sent automatically.
            return _Outcome(UNKNOWN, f"the API answered success with status {result.status!r}")
        if kind is ResultKind.AMBIGUOUS:
            return _Outcome(UNKNOWN, result.message)
        pacer.refund()
        if kind in (ResultKind.AUTH, ResultKind.MISCONFIGURED):
            error_type = AuthError if kind is ResultKind.AUTH else ApiError
            self._abort = self._abort or error_type(result.message, result.http_status)
            self.request_stop()
            return _Outcome(DEFERRED, result.message, requeue=True)
        if kind in (ResultKind.DAILY_LIMIT, ResultKind.SENDER_UNAVAILABLE):
            run.summary.api_stopped.add(pacer.sender_id)
        if kind is ResultKind.DAILY_LIMIT:
            pacer.exhaust()
            run.progress.notice(f"sender {pacer.sender_id}: daily connection limit reached")
            return _Outcome(DEFERRED, result.message, requeue=True)
        if kind is ResultKind.SENDER_UNAVAILABLE:
            # Its shared rows go to the other senders; its pinned ones wait for it.
            pacer.exhaust()
            run.progress.notice(f"sender {pacer.sender_id}: unavailable ({result.message})")
            return _Outcome(DEFERRED, result.message, requeue=True)
        if kind is not ResultKind.REJECTED and self._stop.is_set():
            return _Outcome(DEFERRED, f"stopped before a retry: {result.message}", requeue=True)
        if kind is ResultKind.RATE_LIMITED:
            # Retries ran out against the API's own rate limit: nothing was created, and
            # the row is not at fault. The next run sends it; this one does not insist.
            return _Outcome(DEFERRED, f"rate limited, retries ran out: {result.message}")
        return _Outcome(FAILED, result.message)

    def _note_delivered(self, note: str, sender_id: str) -> str:
        if not note:
            return ""
        premium = self._premium.get(sender_id)
        if premium is None:
            return "if premium"
        return "yes" if premium else NOTE_DROPPED


@dataclass
class _Run:
    """Mutable state of one :meth:`Engine._run`: the senders' heap, the rows, the tasks."""

    engine: Engine
    progress: Progress
    summary: Summary
    rows: RowQueue
    pacers: dict[str, SenderPacer]
    hours: dict[str, WorkingHours]
    http: asyncio.Semaphore  # requests in flight: pacing.concurrency
    slots: asyncio.Semaphore  # rows started and not yet finished
    backoff: Backoff
    budget: float
    turns: set[asyncio.Task[None]] = field(default_factory=set)  # from a sender's slot to its send
    sends: set[asyncio.Task[None]] = field(default_factory=set)  # one per row in flight
    started: int = 0
    error: BaseException | None = None  # the first error of a turn or a send
    # The row each sender's turn is claiming in the workspace (claims may move on to the
    # next row when a person is taken): what a stop gives back.
    claiming: dict[str, WorkItem] = field(default_factory=dict)
    # (monotonic time of the next turn, order of arrival, sender id): the senders due next.
    _due: list[tuple[float, int, str]] = field(default_factory=list)
    # Senders with turns left but no row they could take, until one comes back (in the
    # order they became idle), and senders whose turns are all taken, until one of their
    # sends hands its turn back.
    _no_work: dict[str, None] = field(default_factory=dict)
    _no_capacity: set[str] = field(default_factory=set)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _order: itertools.count[int] = field(default_factory=itertools.count)
    _scheduler: asyncio.Task[None] | None = None

    @property
    def done(self) -> bool:
        """Every row has been taken; none came back."""
        return not self.rows

    def take(self, sender_id: str) -> WorkItem | None:
        return self.rows.take(sender_id)

    def give_back(self, work: WorkItem, sender_id: str) -> None:
        """Put a row back at the front of its queue, and wake a sender that can take it:
        its own for a pinned row, the longest idle one for a shared row."""
        self.rows.give_back(work)
        if work.pinned:
            if self._no_work.pop(work.pinned, False) is None:
                self._place(self.pacers[work.pinned])
        else:
            # Senders that stopped taking turns while idle leave the set here, once each.
            while self._no_work:
                longest = next(iter(self._no_work))
                del self._no_work[longest]
                pacer = self.pacers[longest]
                if self._may_go_on(pacer):
                    self._place(pacer)
                    break
        self._changed.set()

    def _place(self, pacer: SenderPacer) -> None:
        """Where a sender waits for its next turn: on the heap when it has a turn and a
        row to take; aside until a turn is handed back, or a row comes back; nowhere once
        it can take no more turns in this run."""
        sender_id = pacer.sender_id
        if not self._may_go_on(pacer):
            return
        if not pacer.has_capacity:
            self._no_capacity.add(sender_id)
        elif not self.rows.has_work(sender_id):
            self._no_work[sender_id] = None
        else:
            self._schedule(pacer)

    def _turn_handed_back(self, pacer: SenderPacer) -> None:
        """A send of ``pacer`` ended: a turn it handed back may let it go on."""
        if pacer.sender_id in self._no_capacity and pacer.has_capacity:
            self._no_capacity.discard(pacer.sender_id)
            self._place(pacer)

    async def execute(self) -> None:
        """Run the scheduler, then wait for the sends it started; the first error of a
        turn or a send stops the run and is raised once everything has settled."""
        for pacer in self.pacers.values():
            self._place(pacer)
        self._scheduler = asyncio.create_task(self._run_scheduler())
        if self.engine._stop.is_set():
            self.cancel_waits()
        with contextlib.suppress(asyncio.CancelledError):
            await self._scheduler
        while self.turns or self.sends:
            await asyncio.wait(self.turns | self.sends)

    def cancel_waits(self) -> None:
        """On a stop: end the scheduler's wait and every turn not yet sending."""
        if self._scheduler is not None:
            self._scheduler.cancel()
        for turn in self.turns:
            turn.cancel()

    def _may_take_turns(self, pacer: SenderPacer) -> bool:
        return self._may_go_on(pacer) and self.started < self.budget

    def _may_go_on(self, pacer: SenderPacer) -> bool:
        """Whether the sender may take turns in this run again: the budget (--limit) may
        come back, with a row handed back, but a stop or the API's limit does not."""
        return not self.engine._stop.is_set() and not pacer.exhausted

    def _schedule(self, pacer: SenderPacer) -> None:
        heapq.heappush(self._due, (pacer.due, next(self._order), pacer.sender_id))

    async def _run_scheduler(self) -> None:
        """Start each sender's turn when it is due, until the work, the capacity or the
        budget runs out. Sleeps until the first sender is due, or until a change (a send
        ended, a row came back, a turn put its sender back) may make something due."""
        clock = self.engine._clock
        while not self.engine._stop.is_set():
            self._changed.clear()
            if self.done and not self.turns and not self.sends:
                return  # every row is final: no sender waits out its next slot for nothing
            end_at = self.engine._end_at
            if end_at is not None and clock.now() >= end_at:
                self.summary.reached_end_at = True
                return
            if not self._due or self.started >= self.budget:
                if not (self.turns or self.sends):
                    return  # nothing left that could change what can be sent
                # A row handed back may bring a sender, or the budget, back.
                await self._changed.wait()
                continue
            due, _, sender_id = self._due[0]
            if not self._may_go_on(self.pacers[sender_id]):
                # At its daily limit, say: let it go now, not at its next paced slot.
                heapq.heappop(self._due)
                continue
            delay = due - clock.monotonic()
            if end_at is not None:
                delay = min(delay, end_at - clock.now())
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._changed.wait()
                continue
            heapq.heappop(self._due)
            self._begin(self.pacers[sender_id])

    def _begin(self, pacer: SenderPacer) -> None:
        """The sender is due: start its turn, set it aside, or let it go for this run."""
        sender_id = pacer.sender_id
        if not self._may_take_turns(pacer):
            return
        hours = self.hours[sender_id]
        now = self.engine._clock.now()
        if not hours.is_open(now):
            # A plain run sends only inside the sender's working hours; what is left
            # waits for the next run. A run that ends to take senders in (--wait) ends
            # when these hours open again, at the latest.
            self.progress.notice(
                f"sender {sender_id}: its working hours are over; the next "
                f"window opens {hours.describe(now)}"
            )
            if self.engine._end_at is not None:
                self.engine._end_at = min(self.engine._end_at, hours.next_open(now))
            return
        if pacer.has_capacity and self.rows.has_work(sender_id):
            self.track(self._turn(pacer), self.turns)
        else:
            self._place(pacer)

    async def _turn(self, pacer: SenderPacer) -> None:
        """One turn of a sender: its paced slot, a row, the workspace's claim, the send.

        :meth:`Engine.request_stop` cancels it wherever it waits, before the send starts.
        """
        try:
            await self._take_turn(pacer)
        finally:
            # The request has left, or the turn gave up: wait for the next one.
            self._place(pacer)
            self._changed.set()

    async def _take_turn(self, pacer: SenderPacer) -> None:
        if not await pacer.take_turn():
            return  # exhausted while it waited
        if not self.hours[pacer.sender_id].is_open(self.engine._clock.now()):
            pacer.refund()  # the turn came after closing time; the next one says so
            return
        try:
            await self.slots.acquire()
        except asyncio.CancelledError:
            pacer.refund()
            raise
        work = self.take(pacer.sender_id)
        if work is None or not self._may_take_turns(pacer):
            self.slots.release()
            pacer.refund()
            if work is not None:
                self.give_back(work, pacer.sender_id)
            return
        # Counted before the claim is awaited, so that no other sender's turn starts a
        # row past --limit meanwhile.
        self.started += 1
        claim_id = None
        if self.engine._claims is not None:
            try:
                claimed, claim_id = await self.engine.claim_turn(work, pacer, self)
            except BaseException:
                self.started -= 1
                self.slots.release()
                raise
            if claimed is None:
                self.started -= 1
                self.slots.release()
                return
            work = claimed
        leaving = asyncio.get_running_loop().create_future()
        self.track(self._send(work, pacer, claim_id, leaving), self.sends)
        # The turn lasts until the request leaves: a sender has one request at most
        # waiting for a slot, and its next turn is paced from when this one left.
        await asyncio.shield(leaving)

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
            # A journal that cannot be written (disk full, a replaced file) must stop the
            # campaign, not leave it taking paced turns that it can no longer record.
            self.error = error
            self.engine.request_stop()
        self._changed.set()

    def journal_later(self, record: JournalRecord) -> None:
        journal = self.engine._journal
        assert journal is not None
        journal.append_nowait(record)

    async def _send(
        self,
        work: WorkItem,
        pacer: SenderPacer,
        claim_id: int | None,
        leaving: asyncio.Future[None],
    ) -> None:
        try:
            outcome = await self.engine._send(work, pacer, self, claim_id, leaving)
        finally:
            self.slots.release()
            self._turn_handed_back(pacer)
        if outcome.requeue:
            self.give_back(work, pacer.sender_id)
            self.started -= 1
        else:
            self.count(outcome.status, pacer.sender_id)

    def count(self, status: str, sender_id: str) -> None:
        """One row of this run is final: count it, and show it."""
        self.summary.this_run[status] += 1
        self.progress.advance(sender_id, status)


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
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()  # cancelled from outside: leave nothing waiting behind
        stopper.cancel()
        raise
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

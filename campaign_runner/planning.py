"""Planning a run: what it will send, from whom, and what it records first. Pure: no I/O.

:func:`plan_run` is a function of the verdicts on the spreadsheet, what the results file
says, what the API said about senders and quotas, the settings and the time. It returns
the :class:`Plan` a person reads before anything is sent, the work items the engine sends,
and the records to append before sending: rows a crash left ``pending`` (now ``unknown``,
since the request may have left), invalid and duplicate rows not yet recorded, and rows
pinned to a sender the workspace does not have (``failed``).

Rehearsals: every line a run writes says in its ``api`` column whether the invitation went
to the stand-in server (``sandbox``) or to SendPilot (``sendpilot``; a line without the
column was written before it existed, by a real run). :func:`results_file_problem` keeps
the two apart: a rehearsal's ``sent`` is not a real invitation, and a real results file
must not be mixed with a rehearsal's.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from campaign_runner.capacity import SenderSpending, next_slot, pacing_interval, remaining_capacity
from campaign_runner.client import Quota, SenderInfo
from campaign_runner.config import Settings
from campaign_runner.journal import (
    ALREADY_CONNECTED,
    ALREADY_INVITED,
    DEFERRED,
    FAILED,
    SENT,
    UNKNOWN,
    JournalRecord,
    JournalState,
)
from campaign_runner.ledger import WEEK_WINDOWS, Holder, SenderUsage
from campaign_runner.timestamps import format_timestamp, parse_iso_time
from campaign_runner.validation import STATUS_VALID, Verdicts
from campaign_runner.work import WorkItem, WorkRows

NOTE_DELIVERED = "note_delivered"
# Its value for a note a free sender did not deliver (the invitation went without it).
NOTE_DROPPED = "no (free sender)"
API_COLUMN = "api"
EXTRA_COLUMNS = (NOTE_DELIVERED, API_COLUMN)
API_SANDBOX = "sandbox"
API_SENDPILOT = "sendpilot"
PLAN_PROBLEMS = 10  # problem rows shown in a plan; `validate` lists them all
CLOCK_SLACK = 1.0  # seconds a date may lie ahead of now before it is taken for a clock step
PREVIEW_NOTES = 3  # rows whose note and sender a plan shows before anything is sent


def default_results_path(input_path: Path, rehearsal: bool) -> Path:
    """``<stem>.results.csv`` beside the input; ``<stem>.sandbox.results.csv`` for a
    rehearsal, so that it never writes the file a real run reads."""
    kind = ".sandbox" if rehearsal else ""
    return input_path.with_name(f"{input_path.stem}{kind}.results.csv")


def results_file_problem(state: JournalState, rehearsal: bool) -> str:
    """Why this run must not use this results file ('' when it may)."""
    marks = state.distinct(API_COLUMN) if state.lines else set()
    real = {m for m in marks if m != API_SANDBOX}
    if rehearsal and real:
        return (
            f"{state.path} holds real invitations (written without --sandbox): a rehearsal "
            "never writes into a real campaign's results; leave out --results or name "
            "another file"
        )
    if not rehearsal and API_SANDBOX in marks:
        return (
            f"{state.path} was written by a --sandbox rehearsal, whose invitations went to "
            "the stand-in server, not to LinkedIn: give the real campaign its own results "
            "file (leave out --results, or name another file)"
        )
    return ""


@dataclass(frozen=True)
class SenderPlan:
    sender_id: str
    name: str
    status: str
    daily_limit: int
    used_in_window: int  # every campaign's, in the rolling window (the day)
    api_remaining: int | None
    capacity: int  # invitations it may send in this run
    interval_seconds: float
    premium: bool | None
    skipped: str = ""  # why it will not send, or ''
    weekly_limit: int = 0  # always set by planning; 0 only in a hand-made SenderPlan
    used_in_week: int = 0  # every campaign's, in the rolling week
    others_day: int = 0  # of the day's, what other campaigns of the workspace used
    others_week: int = 0
    # What its capacity is spread over: the window, or the window's open hours.
    spread_seconds: float = 0.0

    @property
    def usable(self) -> bool:
        return not self.skipped and self.capacity > 0


@dataclass(frozen=True)
class NotePreview:
    """One of the first rows a run sends: its note as it will leave, and who sends it.

    ``sender_id`` is the sender predicted to take the row; ``exact`` says whether that is
    certain (a pinned row, or a single sender that can send now). Otherwise it is the
    engine's order at an even pace, which jitter, a sender at its daily limit or another
    campaign's claims may change: the row goes to the first free sender. ``''``: no sender
    can take it in this run.
    """

    row: int
    url: str
    note: str  # exactly as it will leave ('' = no note)
    sender_id: str
    exact: bool
    premium: bool | None  # the sender's: whether it delivers notes (None: not known)


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
    rehearsal: bool = False  # invitations go to the stand-in server, not to SendPilot
    workspace: str = ""  # where the workspace ledger is ('' when there is none)
    columns: tuple[str, ...] = ()  # which columns (sheet, header row) were used, said
    already_invited: int = 0  # valid rows held by another invitation of the workspace
    preview: tuple[NotePreview, ...] = ()  # the first rows this run sends, in order
    # When the next invitation can leave (epoch seconds): this run's first one when `now`
    # is not 0; otherwise when a sender can send again (its capacity renewed, its quota
    # reset, its working hours open). None: nothing to send, or no sender ever can.
    next_send_at: float | None = None
    next_send_why: str = ""  # why not before then ('' when it is now), or why never
    # When the first sender that cannot send in this run (its hours closed, its capacity
    # spent) can, while others send: where `run --wait` ends a round to take it in.
    next_join_at: float | None = None


@dataclass(frozen=True)
class Recorded:
    """What the results file said at planning time, as far as the end of the run needs it."""

    counts: Counter[str]  # valid rows per recorded status ('' for none yet)
    renews_at: float | None  # when the oldest send still in the window leaves it
    last_sent: dict[str, float]  # per sender, its latest invitation in the window


@dataclass(frozen=True)
class ApiView:
    """What the API said before planning; ``senders`` is None when it was not asked."""

    senders: list[SenderInfo] | None
    quotas: dict[str, Quota]
    quotas_problem: str = ""  # why quotas are unavailable, or ''
    unasked: str = ""  # why the API was not asked (a dry run without a key), or ''


@dataclass(frozen=True)
class WorkspaceView:
    """What the workspace ledger said at planning time."""

    location: str
    campaign_id: int | None  # this campaign's (None: never registered, a dry run)
    holders: Mapping[str, Holder]  # the live attempts on the URLs this run would send
    usage: Mapping[str, SenderUsage]
    windows_sent: Mapping[str, int] = field(default_factory=dict)  # of warming-up senders


@dataclass(frozen=True)
class Selection:
    """The valid rows a run would send, before the workspace has its say."""

    todo: pa.Table  # row, linkedin_url, note, sender_id, attempts, status
    counts: Counter[str]  # valid rows by recorded status ('' for none)
    recovered: dict[str, str]  # {url: sender_id} of rows a crash left pending
    records: list[JournalRecord]  # recovery and new problem lines, to append first
    marks: Mapping[str, str]

    @property
    def urls(self) -> list[str]:
        urls: list[str] = self.todo["linkedin_url"].to_pylist()
        return urls


@dataclass(frozen=True)
class Planned:
    plan: Plan
    work: WorkRows  # the rows to send, in input order
    recorded: Recorded
    records: list[JournalRecord]  # to append before sending, in this order


@dataclass(frozen=True)
class RowChoice:
    """Which recorded rows a run sends again, on top of new and deferred ones."""

    retry_failed: bool = False
    retry_unknown: bool = False
    limit: int | None = None


def select_rows(
    *, verdicts: Verdicts, state: JournalState, choice: RowChoice, rehearsal: bool
) -> Selection:
    """The rows a run would send from what the results file says, and the records the run
    appends first (rows a crash left ``pending`` become ``unknown``; new problem rows)."""
    marks = {API_COLUMN: API_SANDBOX if rehearsal else API_SENDPILOT}
    recovered, recovery = _recover_pending(state, marks)
    is_valid = pc.equal(verdicts.table["status"], STATUS_VALID)
    records = recovery + _new_problems(verdicts.table.filter(pc.invert(is_valid)), state, marks)
    todo, counts = _rows_to_send(verdicts.table, is_valid, state, recovered, choice)
    return Selection(todo=todo, counts=counts, recovered=recovered, records=records, marks=marks)


def plan_run(
    *,
    verdicts: Verdicts,
    state: JournalState,
    selection: Selection,
    api: ApiView,
    workspace: WorkspaceView | None,
    settings: Settings,
    choice: RowChoice,
    input_path: Path,
    results_path: Path,
    rehearsal: bool,
    now: float,
) -> Planned:
    """The plan of one run, its work items and the records it appends first."""
    marks = selection.marks
    records = list(selection.records)
    counts = Counter(selection.counts)
    warnings: list[str] = list(settings.warnings)
    if api.quotas_problem:
        warnings.append(f"quotas unavailable, using configured limits only ({api.quotas_problem})")
    if api.unasked:
        warnings.append(_unasked_warning(api.unasked, settings))
    window = settings.pacing.window_seconds
    spent = _Spent.of(state, selection, workspace, window, now)
    for sender, when in sorted(spent.ahead.items()):
        warnings.append(
            f"sender {sender}: its last invitation is dated {format_timestamp(when)}, "
            f"{when - now:.0f}s from now (was the clock set back?): pacing from now"
        )
    warmed = workspace.windows_sent if workspace is not None else {}
    senders = _plan_senders(settings, api, spent, warnings, warmed, now)

    todo = selection.todo
    held: list[JournalRecord] = []
    if workspace is not None and workspace.holders:
        todo, held, was = _held_elsewhere(todo, workspace, marks)
        counts.subtract(was)
        counts[ALREADY_INVITED] += len(held)
        records += _unrecorded(held, state)
    work, strays = _split_strays(todo, {s.sender_id for s in senders})
    for stray in strays:
        counts[stray.initial] -= 1
        counts[FAILED] += 1
    # Pinned to a sender this workspace does not have: such a row can never be sent as it
    # is, so say so in the results rather than wait forever.
    records += [
        w.record(
            w.pinned,
            FAILED,
            extra=marks,
            error=f"sender_id {w.pinned!r} is not a sender of this workspace",
        )
        for w in strays
    ]

    sendable = _sendable_now(work, senders)
    if choice.limit is not None:
        sendable = min(sendable, choice.limit)
    plan = Plan(
        input_path=input_path,
        results_path=results_path,
        counts=verdicts.counts,
        already_done=sum(counts.values()) - len(work),
        to_send=len(work),
        now=sendable,
        later=len(work) - sendable,
        senders=tuple(senders),
        window_seconds=window,
        estimated_seconds=_estimate_seconds(sendable, senders),
        windows_needed=_windows_needed(len(work), senders, sendable),
        warnings=tuple(warnings),
        recovered_pending=len(selection.recovered),
        repaired=state.repair,
        problems=tuple((p["row"], p["reason"]) for p in verdicts.problems(limit=PLAN_PROBLEMS)),
        rehearsal=rehearsal,
        workspace=workspace.location if workspace is not None else "",
        columns=verdicts.column_notes,
        already_invited=len(held),
        preview=_preview(work, senders, spent.last_sent, now, choice.limit),
    )
    next_at, next_why, join_at = _next_send(
        work, senders, state, workspace, api, settings, spent, now
    )
    plan = replace(
        plan,
        next_send_at=next_at,
        next_send_why=next_why,
        next_join_at=join_at,
        # Senders outside their working hours send in later windows all the same.
        windows_needed=_windows_needed(len(work), [_open_later(s) for s in senders], sendable),
    )
    recorded = Recorded(counts=counts, renews_at=spent.renews_at, last_sent=spent.last_sent)
    return Planned(plan=plan, work=work, recorded=recorded, records=records)


def at_own_pace(planned: Planned) -> Planned:
    """The plan with each usable sender sending at its own pace, one invitation per its
    daily limit over its window (or open hours), instead of spreading what capacity is
    left over a whole window: for ``run --wait``, which comes back as capacity renews.

    A rolling window renews one invitation at a time: spread over a window, the one
    renewed slot would wait most of a window to leave. At the sender's own pace no window
    ever holds more than its limit, and planning counts the limit itself on every round.
    """
    senders = tuple(_at_own_pace(s) for s in planned.plan.senders)
    plan = replace(
        planned.plan,
        senders=senders,
        estimated_seconds=_estimate_seconds(planned.plan.now, list(senders)),
    )
    return replace(planned, plan=plan)


def _at_own_pace(sender: SenderPlan) -> SenderPlan:
    if not sender.usable:
        return sender
    interval = pacing_interval(sender.daily_limit, sender.spread_seconds)
    # The engine paces `capacity` over `spread_seconds`: spread it over that many intervals.
    return replace(sender, interval_seconds=interval, spread_seconds=interval * sender.capacity)


def _open_later(sender: SenderPlan) -> SenderPlan:
    """The sender as a later window sees it: skipped now only for its working hours
    (its status is the API's good word, or unknown offline), it is not skipped then."""
    if sender.skipped and sender.status in ("active", "offline"):
        return replace(sender, skipped="")
    return sender


def _next_send(
    work: WorkRows,
    senders: list[SenderPlan],
    state: JournalState,
    workspace: WorkspaceView | None,
    api: ApiView,
    settings: Settings,
    spent: _Spent,
    now: float,
) -> tuple[float | None, str, float | None]:
    """When the next invitation can leave, and why not before (see ``Plan.next_send_at``):
    the earliest of the senders that have a row to send; and the earliest of those that
    cannot send in this run (``Plan.next_join_at``)."""
    if not len(work):
        return None, "", None
    per_sender = work.pinned_counts()
    shared = per_sender.pop("", 0) > 0
    pinned = set(per_sender)
    window = settings.pacing.window_seconds
    lines = state.capacity_lines()
    day = lines.oldest(now - window)
    week = lines.oldest(now - WEEK_WINDOWS * window)
    usage = workspace.usage if workspace is not None else {}
    best: tuple[float, str] | None = None
    join_at: float | None = None
    never: list[str] = []
    for s in senders:
        if not (shared or s.sender_id in pinned):
            continue
        if s.usable:
            first = spent.last_sent.get(s.sender_id, -math.inf) + s.interval_seconds
            moment, why = max(now, first), ""
        else:
            used = usage.get(s.sender_id)
            spending = SenderSpending(
                daily_limit=s.daily_limit,
                used_in_window=s.used_in_window,
                weekly_limit=s.weekly_limit,
                used_in_week=s.used_in_week,
                api_remaining=s.api_remaining,
                resets_at=_epoch(api.quotas.get(s.sender_id)),
                oldest_in_window=_earliest(
                    day.get(s.sender_id), used.oldest_in_day if used else None
                ),
                oldest_in_week=_earliest(
                    week.get(s.sender_id), used.oldest_in_week if used else None
                ),
                last_sent=spent.last_sent.get(s.sender_id),
            )
            if s.status == "rate_limited":
                # The API's own word: spent until its quota resets.
                spending = replace(spending, api_remaining=0)
            elif _open_later(s).skipped:
                never.append(f"sender {s.sender_id}: {s.skipped}")
                continue
            hours = settings.working_hours(s.sender_id)
            found, why = next_slot(spending, hours, window, s.spread_seconds, now)
            if found is None:
                never.append(f"sender {s.sender_id}: {why}")
                continue
            moment = found
            join_at = moment if join_at is None else min(join_at, moment)
        if best is None or moment < best[0]:
            best = (moment, f"sender {s.sender_id}: {why}" if why else "")
    if best is None:
        return None, "; ".join(never) or "no sender to send with", None
    return best[0], best[1], join_at


def _epoch(quota: Quota | None) -> float | None:
    """When the API says a quota resets, in epoch seconds (None: not said, or unreadable)."""
    if quota is None or not quota.resets_at:
        return None
    return parse_iso_time(quota.resets_at)


def _earliest(*moments: float | None) -> float | None:
    known = [m for m in moments if m is not None]
    return min(known) if known else None


def _unasked_warning(why: str, settings: Settings) -> str:
    if settings.senders:
        return (
            f"{why}: planned from the config's senders and limits, without the API's "
            "word on their status and quotas"
        )
    return f"{why}: no sender to plan with (list them under senders: in the config)"


def _preview(
    work: WorkRows,
    senders: list[SenderPlan],
    last_sent: Mapping[str, float],
    now: float,
    limit: int | None,
) -> tuple[NotePreview, ...]:
    """The first rows the engine sends and the sender of each, as far as it can be told.

    Replays the engine's order at an even pace: the sender whose next slot comes first
    (its first one an interval after its last invitation, as the engine's pacers wait)
    takes its own pinned row, else the next shared row; ties go to the plan's order. Rows
    no sender can take in this run follow, with their pinned sender or none.
    """
    wanted = min(PREVIEW_NOTES, len(work) if limit is None else limit)
    usable = [s for s in senders if s.usable]
    # No queue gives more than `wanted` rows, so only that many of each are looked at:
    # the preview of a million-row campaign costs as little as that of a small one.
    pinned = {s.sender_id: work.first(wanted, s.sender_id) for s in usable}
    shared = work.first(wanted, "")
    due = {
        s.sender_id: max(0.0, last_sent.get(s.sender_id, -math.inf) + s.interval_seconds - now)
        for s in usable
    }
    left = {s.sender_id: s.capacity for s in usable}
    chosen: list[tuple[WorkItem, str]] = []
    while len(chosen) < wanted:
        ready = [s for s in usable if left[s.sender_id] and (pinned[s.sender_id] or shared)]
        if not ready:
            break
        sender = min(ready, key=lambda s: due[s.sender_id])  # min() keeps the first of ties
        sid = sender.sender_id
        chosen.append(((pinned[sid] or shared).pop(0), sid))
        left[sid] -= 1
        due[sid] += sender.interval_seconds
    taken = {w.row for w, _ in chosen}
    # Rows no sender takes in this run are among the first `wanted + len(chosen)`.
    for w in work.head(wanted + len(chosen)):
        if len(chosen) >= wanted:
            break
        if w.row not in taken:
            chosen.append((w, w.pinned))
    premium = {s.sender_id: s.premium for s in senders}
    return tuple(
        NotePreview(
            row=w.row,
            url=w.url,
            note=w.note,
            sender_id=sid,
            exact=bool(w.pinned) or (len(usable) == 1 and bool(sid)),
            premium=premium.get(sid),
        )
        for w, sid in chosen
    )


@dataclass(frozen=True)
class _Spent:
    """Each sender's spending in the day and the week, as the results file and the
    workspace ledger see it: each is a lower bound of the truth, so the larger wins."""

    day: Mapping[str, int]
    week: Mapping[str, int]
    others_day: Mapping[str, int]
    others_week: Mapping[str, int]
    last_sent: dict[str, float]
    renews_at: float | None
    # Senders whose last invitation is dated ahead of now: the clock was set back.
    ahead: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        state: JournalState,
        selection: Selection,
        workspace: WorkspaceView | None,
        window: float,
        now: float,
    ) -> _Spent:
        lines = state.capacity_lines()
        day = Counter(lines.used(now - window))
        week = Counter(lines.used(now - WEEK_WINDOWS * window))
        # Rows a crash left pending are recorded `unknown` before sending: they count too.
        day.update(selection.recovered.values())
        week.update(selection.recovered.values())
        last_sent = lines.last_sent(now - window)
        renewals = [lines.next_renewal(now - window, window)]
        others_day: dict[str, int] = {}
        others_week: dict[str, int] = {}
        usage = workspace.usage if workspace is not None else {}
        mine = workspace.campaign_id if workspace is not None else None
        for sender, used in usage.items():
            day[sender] = max(day[sender], used.day)
            week[sender] = max(week[sender], used.week)
            others_day[sender] = sum(n for c, n in used.day_by_campaign.items() if c != mine)
            others_week[sender] = sum(n for c, n in used.week_by_campaign.items() if c != mine)
            if used.last_at is not None and used.last_at >= now - window:
                last_sent[sender] = max(last_sent.get(sender, used.last_at), used.last_at)
            if used.oldest_in_day is not None:
                renewals.append(used.oldest_in_day + window)
        known = [r for r in renewals if r is not None]
        # A date ahead of now means the clock was set back since: pace from now rather
        # than wait, silently, for that moment to come round again.
        ahead = {s: t for s, t in last_sent.items() if t > now + CLOCK_SLACK}
        for sender in ahead:
            last_sent[sender] = now
        renews_at = min(known) if known else None
        return cls(day, week, others_day, others_week, last_sent, renews_at, ahead)


def _held_elsewhere(
    todo: pa.Table, workspace: WorkspaceView, marks: Mapping[str, str]
) -> tuple[pa.Table, list[JournalRecord], Counter[str]]:
    """Rows whose person another live attempt holds: another campaign's, or this one's
    own ``sent``/``already_connected`` that the results file does not show. Returns the
    rows left to send, the lines that say so, and the held rows' recorded statuses."""
    # Only the held rows reach Python: a hash lookup in Arrow finds them among the rest.
    mine = workspace.campaign_id
    holding = {
        url: holder
        for url, holder in workspace.holders.items()
        if not (holder.campaign_id == mine and holder.status not in (SENT, ALREADY_CONNECTED))
    }
    is_held = pc.is_in(todo["linkedin_url"], value_set=pa.array(list(holding), pa.string()))
    held: list[JournalRecord] = []
    was: Counter[str] = Counter()
    for item in todo.filter(is_held).select(["row", "linkedin_url", "status"]).to_pylist():
        url = item["linkedin_url"]
        holder = holding[url]
        was[item["status"]] += 1
        when = format_timestamp(holder.at)[:10]
        own = holder.campaign_id == mine
        who = "this campaign" if own else f"campaign {holder.campaign!r}"
        note = ", though this results file does not show it" if own else ""
        held.append(
            JournalRecord(
                row=int(item["row"]),
                linkedin_url=url,
                sender_id=holder.sender_id,
                status=ALREADY_INVITED,
                error=f"{holder.status} by {who} on {when}{note}",
                extra=marks,
            )
        )
    return _keep(todo, pc.invert(is_held)), held, was


def _unrecorded(records: list[JournalRecord], state: JournalState) -> list[JournalRecord]:
    """The verdict lines the results file does not have yet (one per row and reason)."""
    seen = state.problems
    if seen.empty or not records:
        return records
    known = set(zip(seen["row"], seen["status"], seen["linkedin_url"], seen["error"], strict=True))
    return [r for r in records if (r.row, r.status, r.linkedin_url, r.error) not in known]


def _plan_senders(
    settings: Settings,
    api: ApiView,
    spent: _Spent,
    warnings: list[str],
    warmed: Mapping[str, int],
    now: float,
) -> list[SenderPlan]:
    window = settings.pacing.window_seconds
    if api.senders is None:
        wanted: list[str] = [s.id for s in settings.senders]
        infos: dict[str, SenderInfo] = {}
    else:
        infos = {s.id: s for s in api.senders}
        wanted = [s.id for s in settings.senders] if settings.senders else list(infos)
    plans = []
    for sender_id in wanted:
        configured = settings.sender(sender_id)
        info = infos.get(sender_id)
        quota = api.quotas.get(sender_id)
        premium = configured.premium if configured else None
        if premium is None and info is not None:
            premium = info.premium
        skipped = "" if api.senders is None else _skip_reason(info)
        hours = settings.working_hours(sender_id)
        if not skipped and not hours.is_open(now):
            skipped = f"outside its working hours: the next window opens {hours.describe(now)}"
        if skipped:
            warnings.append(f"sender {sender_id}: {skipped}; skipped")
        status = "offline" if api.senders is None else (info.status if info else "not found")
        plans.append(
            _sender_plan(
                sender_id,
                name=info.name if info else "",
                status=status,
                daily_limit=_daily_limit(settings, sender_id, warmed, warnings),
                weekly_limit=settings.weekly_limit(sender_id),
                spent=spent,
                api_remaining=quota.remaining if quota else None,
                premium=premium,
                # A day's invitations are spread over its open hours, not the whole day.
                window=window * hours.open_fraction,
                skipped=skipped,
            )
        )
    return plans


def _daily_limit(
    settings: Settings, sender_id: str, warmed: Mapping[str, int], warnings: list[str]
) -> int:
    """The sender's limit today: its daily_limit, or less while it warms up."""
    limit = settings.daily_limit(sender_id)
    configured = settings.sender(sender_id)
    if configured is None or configured.warmup is None:
        return limit
    windows = warmed.get(sender_id, 0)
    today = configured.warmup.limit(limit, windows)
    if today < limit:
        warm = configured.warmup
        warnings.append(
            f"sender {sender_id}: warming up, {today} this window (started at {warm.start}, "
            f"+{warm.step} for each of the {windows} windows it sent in, up to {limit})"
        )
    return today


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
    weekly_limit: int,
    spent: _Spent,
    api_remaining: int | None,
    premium: bool | None,
    window: float,
    skipped: str = "",
) -> SenderPlan:
    day, week = spent.day.get(sender_id, 0), spent.week.get(sender_id, 0)
    capacity = 0
    if not skipped:
        capacity = min(
            remaining_capacity(daily_limit, day, api_remaining),
            max(0, weekly_limit - week),
        )
    return SenderPlan(
        sender_id=sender_id,
        name=name,
        status=status,
        daily_limit=daily_limit,
        used_in_window=day,
        api_remaining=api_remaining,
        capacity=capacity,
        interval_seconds=pacing_interval(capacity, window),
        premium=premium,
        skipped=skipped,
        weekly_limit=weekly_limit,
        used_in_week=week,
        others_day=spent.others_day.get(sender_id, 0),
        others_week=spent.others_week.get(sender_id, 0),
        spread_seconds=window,
    )


def _rows_to_send(
    table: pa.Table,
    is_valid: pa.ChunkedArray,
    state: JournalState,
    recovered: dict[str, str],
    choice: RowChoice,
) -> tuple[pa.Table, Counter[str]]:
    """The valid rows this run sends (with their recorded status and attempts), and the
    valid rows counted by recorded status.

    Matched in Arrow, so that resuming a finished million-row campaign builds no
    million-entry dict, no Python object per row, and no copy of the valid rows.
    """
    sendable = {"", DEFERRED}
    if choice.retry_failed:
        sendable.add(FAILED)
    if choice.retry_unknown:
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
    todo = table.select(["row", "linkedin_url", "note", "sender_id"])
    todo = todo.append_column("attempts", attempts).append_column("status", statuses)
    return _keep(todo, to_do), counts


def _split_strays(todo: pa.Table, known_senders: set[str]) -> tuple[WorkRows, list[WorkItem]]:
    """The rows to send, and the strays pinned to an unknown sender (as work items: only
    they become Python objects here)."""
    pinned = todo["sender_id"]
    known = pa.array(["", *sorted(known_senders)], pa.string())
    is_stray = pc.invert(pc.is_in(pinned, value_set=known))
    strays = WorkRows(todo.filter(is_stray)).head(todo.num_rows)
    return WorkRows(_keep(todo, pc.invert(is_stray))), strays


def _keep(table: pa.Table, mask: pa.ChunkedArray) -> pa.Table:
    """``table.filter(mask)``, without the copy when every row is kept: a new million-row
    campaign keeps them all, and each copy of its URLs and notes costs 200 MB."""
    if pc.all(mask, skip_nulls=False).as_py():
        return table
    return table.filter(mask)


def _sendable_now(work: WorkRows, senders: list[SenderPlan]) -> int:
    """How many rows the current capacity can take: pinned rows only by their sender,
    the others by whatever capacity the pinned rows leave."""
    capacity = {s.sender_id: s.capacity for s in senders if s.usable}
    per_sender = work.pinned_counts()
    shared = per_sender.pop("", 0)
    now = 0
    for sender_id, rows in per_sender.items():
        taken = min(rows, capacity.get(sender_id, 0))
        now += taken
        if sender_id in capacity:
            capacity[sender_id] -= taken
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


def _recover_pending(
    state: JournalState, marks: Mapping[str, str]
) -> tuple[dict[str, str], list[JournalRecord]]:
    """Rows a crash left ``pending``: the request may have left, so they become ``unknown``
    (dated when they were sent, for the capacity window). Returns ``{url: sender_id}`` and
    the records that say so."""
    pending = state.pending()
    if pending.empty:
        return {}, []
    records = [
        JournalRecord(
            row=int(row),
            linkedin_url=url,
            sender_id=sender,
            status=UNKNOWN,
            error="interrupted while sending (crash or kill): the invitation may exist",
            attempts=int(attempts) + 1,
            timestamp=timestamp,
            extra=marks,
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
    return {r.linkedin_url: r.sender_id for r in records}, records


def _new_problems(
    rejected: pa.Table, state: JournalState, marks: Mapping[str, str]
) -> list[JournalRecord]:
    """Invalid and duplicate rows not yet recorded, so the results file accounts for every
    row once."""
    if rejected.num_rows == 0:
        return []
    problems = rejected.select(["row", "linkedin_url", "status", "reason"]).to_pandas()
    seen = state.problems
    if not seen.empty:
        key = ["row", "status", "linkedin_url"]
        merged = problems.merge(seen[key].drop_duplicates(), on=key, how="left", indicator=True)
        problems = merged[merged["_merge"] == "left_only"]
    return [
        JournalRecord(
            row=int(row), linkedin_url=url, sender_id="", status=status, error=reason, extra=marks
        )
        for row, url, status, reason in zip(
            problems["row"],
            problems["linkedin_url"],
            problems["status"],
            problems["reason"],
            strict=True,
        )
    ]


def _value_counts(values: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    return {d["values"]: d["counts"] for d in pc.value_counts(values).to_pylist()}

"""``run --wait``: rounds of sending and idling until every row is final, in virtual time.

Each campaign here runs for days of virtual time against the stand-in (in the same loop),
in well under a second of real time. What is asserted is counted from the stand-in's own
record of invitations: when each left, from which sender, and how many in any window.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import fcntl
import io
import itertools
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import SandboxFactory
from helpers import (
    invited,
    latest,
    prospects,
    read_results,
    settings_for,
    start_at,
    url,
    with_hours,
    working_hours,
)

from campaign_runner.campaign import Campaign, RunOptions, Summary, UntilDone
from campaign_runner.capacity import RENEWAL_STEP, SenderSpending, next_slot
from campaign_runner.clock import VirtualClock
from campaign_runner.config import Settings
from campaign_runner.errors import JournalLockedError, LedgerError
from campaign_runner.hours import WorkingHours
from campaign_runner.journal import parse_timestamp
from campaign_runner.sandbox import FaultRule, SandboxSender, SandboxServer
from campaign_runner.workspace import ledger_location

DAY = 86_400.0
HOUR = 3_600.0


def roomy(*ids: str) -> tuple[SandboxSender, ...]:
    # The stand-in never refuses: every limit seen here is campaign-runner's own.
    return tuple(SandboxSender(i, capacity=10_000) for i in ids)


class Shown:
    """A run --wait display that remembers what it was told."""

    def __init__(self) -> None:
        self.waits: list[tuple[float, int]] = []
        self.notices: list[str] = []

    def start(self, total: int, sender_ids: list[str]) -> None:
        pass

    def advance(self, sender_id: str, status: str) -> None:
        pass

    def notice(self, message: str) -> None:
        self.notices.append(message)

    def waiting(self, until: float, left: int) -> None:
        self.waits.append((until, left))

    def close(self) -> None:
        pass


async def start_run(
    settings: Settings,
    input_path: Path,
    results: Path,
    clock: VirtualClock,
    shown: Shown | None = None,
    **options: Any,
) -> tuple[UntilDone, aiohttp.ClientSession]:
    """A run --wait prepared (its first plan made) and ready to execute."""
    run, _, session = await prepare_run(settings, input_path, results, clock, shown, **options)
    return run, session


async def prepare_run(
    settings: Settings,
    input_path: Path,
    results: Path,
    clock: VirtualClock,
    shown: Shown | None = None,
    **options: Any,
) -> tuple[UntilDone, Campaign, aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    chosen = RunOptions(input_path=input_path, results_path=results, wait=True, **options)
    first = await Campaign.prepare(settings, chosen, session, clock=clock)
    return UntilDone(first, progress=shown), first, session


async def until_done(
    settings: Settings, input_path: Path, results: Path, clock: VirtualClock, **options: Any
) -> Summary:
    run, session = await start_run(settings, input_path, results, clock, **options)
    async with session:
        return await run.execute()


def sent_at(server: SandboxServer, sender: str | None = None) -> list[float]:
    """When the stand-in created each invitation (of ``sender``), in order."""
    return [i.created_at for i in server.state.invitations if sender in (None, i.sender_id)]


def most_in_any_window(times: list[float], window: float) -> int:
    """The most invitations in any half-open span of ``window`` seconds."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + window) - n for n, t in enumerate(times)), default=0)


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def with_pacing(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, pacing=dataclasses.replace(settings.pacing, **changes))


# -- when a sender can send again (pure) --------------------------------------------------


ALWAYS = WorkingHours()
NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("spending", "expected", "why"),
    [
        # Capacity left, nothing sent yet: now.
        (SenderSpending(4, 1, 100, 1), NOW, ""),
        # The day is spent: the oldest invitation leaves the rolling window.
        (
            SenderSpending(4, 4, 100, 4, oldest_in_window=NOW - 20 * HOUR),
            NOW + 4 * HOUR + RENEWAL_STEP,
            "its daily limit is spent",
        ),
        # The week is spent, though today is not: the week's oldest leaves the week.
        (
            SenderSpending(4, 1, 10, 10, oldest_in_week=NOW - 6 * DAY),
            NOW + DAY + RENEWAL_STEP,
            "its weekly limit is spent",
        ),
        # The API says the quota is spent: its resetsAt.
        (SenderSpending(4, 1, 100, 1, api_remaining=0, resets_at=NOW + 600), NOW + 600.01, "API"),
        # ... and without a reset time: asked again in an hour.
        (SenderSpending(4, 1, 100, 1, api_remaining=0), NOW + HOUR, "API"),
        # Its own pace after its last invitation: a day over four.
        (SenderSpending(4, 1, 100, 1, last_sent=NOW - HOUR), NOW + 5 * HOUR, "pace"),
        # A spent day with no dated invitation to leave: looked at again in an hour.
        (SenderSpending(4, 4, 100, 4), NOW + HOUR, "its daily limit is spent"),
        (SenderSpending(0, 0, 100, 0), None, "its limit is 0"),
    ],
)
def test_next_slot(spending: SenderSpending, expected: float | None, why: str) -> None:
    moment, reason = next_slot(spending, ALWAYS, DAY, DAY, NOW)
    assert moment == (None if expected is None else pytest.approx(expected, abs=1e-3))
    assert why in reason


def test_next_slot_waits_for_the_working_hours_after_the_renewal() -> None:
    # Renewed at 20:00 UTC on a Friday; the sender works mon-fri 09:00-18:00 in Berlin.
    hours = working_hours("09:00-18:00", "mon-fri", "Europe/Berlin")
    friday = datetime(2023, 11, 17, 20, 0, tzinfo=UTC).timestamp()
    spending = SenderSpending(4, 4, 100, 4, oldest_in_window=friday - DAY)
    moment, why = next_slot(spending, hours, DAY, 9 * HOUR, friday)
    assert moment == datetime(2023, 11, 20, 8, 0, tzinfo=UTC).timestamp()  # Mon 09:00 CET
    assert why == "its working hours open Mon 09:00 Europe/Berlin"


# -- rounds across windows ------------------------------------------------------------------


async def test_a_campaign_over_several_windows_finishes_every_row_within_the_limits(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    server = await sandbox(senders=roomy("a", "b"), clock=virtual_clock.now, window_seconds=DAY)
    settings = settings_for(server, [("a", 3), ("b", 2)], window=DAY)
    input_path = prospects(tmp_path / "p.csv", 12)
    started = virtual_clock.now()
    summary = await until_done(settings, input_path, tmp_path / "r.csv", virtual_clock)

    assert (summary.this_run, summary.remaining, summary.exit_code) == ({"sent": 12}, 0, 0)
    assert invited(server) == {url(n): 1 for n in range(12)}
    a, b = ([round((t - started) / HOUR, 3) for t in sent_at(server, s)] for s in ("a", "b"))
    # Each at its own pace (a day over its limit) from the start, across the windows:
    # a renewed slot leaves as soon as its oldest invitation has left the window.
    assert a == [0, 8, 16, 24, 32, 40, 48]
    assert b == [0, 12, 24, 36, 48]
    for sender, limit in (("a", 3), ("b", 2)):
        assert most_in_any_window(sent_at(server, sender), DAY) == limit
    # The quotas were asked again on every round (one per renewal, here).
    assert server.state.requests["quotas"] >= 6


async def test_closed_working_hours_wait_for_monday_s_opening_and_spread_the_day(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    # Saturday noon UTC; the sender works mon-fri 09:00-18:00 Berlin, four a day.
    saturday = datetime(2023, 11, 18, 12, 0, tzinfo=UTC).timestamp()
    start_at(virtual_clock, saturday)
    server = await sandbox(senders=roomy("a"), clock=virtual_clock.now, window_seconds=DAY)
    settings = with_hours(
        settings_for(server, [("a", 4)], window=DAY),
        working_hours("09:00-18:00", "mon-fri", "Europe/Berlin"),
    )
    input_path = prospects(tmp_path / "p.csv", 6)
    shown = Shown()

    run, campaign, session = await prepare_run(
        settings, input_path, tmp_path / "r.csv", virtual_clock, shown
    )
    first = campaign.plan
    async with session:
        summary = await run.execute()

    assert first.now == 0
    monday = datetime(2023, 11, 20, 8, 0, tzinfo=UTC).timestamp()  # 09:00 in Berlin
    assert first.next_send_at == monday
    assert first.next_send_why == "sender a: its working hours open Mon 09:00 Europe/Berlin"
    assert shown.waits[0] == (monday, 6)
    assert summary.this_run == {"sent": 6}
    # Nine hours over four: one every 2h15, from the opening; never a burst at 09:00.
    hours_after = [round((t - monday) / HOUR, 3) for t in sent_at(server)]
    assert hours_after == [0, 2.25, 4.5, 6.75, 24, 26.25]


async def test_the_quota_s_resets_at_is_when_the_next_round_starts(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    # The stand-in allows two a day in fixed windows from its start; the config ten in a
    # rolling day: the API's quota binds, and its resetsAt says when it renews.
    server = await sandbox(
        senders=(SandboxSender("a", capacity=2),), clock=virtual_clock.now, window_seconds=DAY
    )
    opened = virtual_clock.now()
    await virtual_clock.sleep(10 * HOUR)
    settings = settings_for(server, [("a", 10)], window=DAY)
    input_path = prospects(tmp_path / "p.csv", 6)
    summary = await until_done(settings, input_path, tmp_path / "r.csv", virtual_clock)

    assert summary.this_run == {"sent": 6}
    hours = [round((t - opened) / HOUR, 2) for t in sent_at(server)]
    assert hours == [10, 12.4, 24, 26.4, 48, 50.4]
    assert server.state.counters[("connect", "daily_limit")] == 0  # never asked in vain


async def test_a_limit_counts_across_rounds_and_ends_with_3(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    server = await sandbox(senders=roomy("a"), clock=virtual_clock.now, window_seconds=DAY)
    settings = settings_for(server, [("a", 2)], window=DAY)
    input_path = prospects(tmp_path / "p.csv", 6)
    summary = await until_done(settings, input_path, tmp_path / "r.csv", virtual_clock, limit=3)

    assert (summary.this_run, summary.remaining, summary.exit_code) == ({"sent": 3}, 3, 3)
    assert len(server.state.invitations) == 3


async def test_no_sender_that_can_ever_send_ends_at_once_saying_why(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    server = await sandbox(
        senders=(SandboxSender("a", capacity=10, status="disconnected"),),
        clock=virtual_clock.now,
    )
    settings = settings_for(server, [("a", 10)], window=DAY)
    started = virtual_clock.monotonic()
    summary = await until_done(
        settings, prospects(tmp_path / "p.csv", 3), tmp_path / "r.csv", virtual_clock
    )

    assert summary.exit_code == 3
    assert summary.stopped_reason == "no sender can send again: sender a: status is disconnected"
    assert virtual_clock.monotonic() - started < 1


# -- the clock, stops and the lock ------------------------------------------------------------


@pytest.mark.parametrize("step", [3 * DAY, -6 * HOUR], ids=["forward", "back"])
async def test_a_clock_step_while_idle_is_noticed_and_never_makes_a_burst(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock, step: float
) -> None:
    # Two a day: 00h and 12h, then idle toward 24h; at 14h the wall clock is stepped.
    server = await sandbox(senders=roomy("a"), clock=virtual_clock.now, window_seconds=DAY)
    settings = settings_for(server, [("a", 2)], window=DAY)
    input_path = prospects(tmp_path / "p.csv", 5)
    shown = Shown()
    run, session = await start_run(settings, input_path, tmp_path / "r.csv", virtual_clock, shown)
    started = virtual_clock.monotonic()

    async def step_the_clock() -> float:
        await virtual_clock.sleep(14 * HOUR)
        virtual_clock.loop.epoch += step
        return virtual_clock.monotonic()

    async with session:
        stepper = asyncio.ensure_future(step_the_clock())
        summary = await run.execute()
    stepped = await stepper

    assert summary.this_run == {"sent": 5}
    assert any("the clock moved" in n for n in shown.notices), shown.notices
    # Wall-clock gaps (the stand-in's clock was stepped too): never under the pace.
    assert min(gaps(sent_at(server))) >= DAY / 2 - 1
    assert most_in_any_window(sent_at(server), DAY) == 2
    # Monotonic time of the first invitation after the step.
    third = sent_at(server)[2] - virtual_clock.loop.epoch - started
    if step > 0:
        # Three days on, the window is empty: it sends within a chunk of the step.
        assert stepped - started <= third <= stepped - started + 300 + 1
    else:
        # Set back six hours: the oldest leaves the window six hours later by the clock.
        assert third == pytest.approx(30 * HOUR, abs=1)


async def test_a_stop_while_idle_ends_at_once_with_130_and_nothing_lost(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    server = await sandbox(senders=roomy("a"), clock=virtual_clock.now, window_seconds=DAY)
    settings = settings_for(server, [("a", 2)], window=DAY)
    input_path = prospects(tmp_path / "p.csv", 5)
    results = tmp_path / "r.csv"
    shown = Shown()
    run, session = await start_run(settings, input_path, results, virtual_clock, shown)
    async with session:
        task = asyncio.ensure_future(run.execute())
        await virtual_clock.sleep(18 * HOUR)  # idle since 12h, toward 24h
        assert shown.waits and not task.done()
        # Meanwhile the results file stays locked: a second run is refused.
        with pytest.raises(JournalLockedError):
            await Campaign.prepare(
                settings, RunOptions(input_path=input_path, results_path=results), session
            )
        stopped = virtual_clock.monotonic()
        run.request_stop()
        summary = await task
    assert virtual_clock.monotonic() - stopped < 1
    assert (summary.interrupted, summary.exit_code, summary.this_run) == (True, 130, {"sent": 2})
    assert summary.next_send_at == pytest.approx(shown.waits[-1][0])
    assert [line["status"] for line in latest(results).values()].count("sent") == 2
    # Released once the run ended: the same command continues, on schedule.
    again = await until_done(settings, input_path, results, virtual_clock)
    assert again.this_run == {"sent": 3}
    assert min(gaps(sent_at(server))) >= DAY / 2 - 1
    assert invited(server) == {url(n): 1 for n in range(5)}


async def test_a_round_that_can_send_but_sends_nothing_pauses_before_the_next(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    # The quotas route is broken and the stand-in's capacity is one a day: after the first,
    # each round meets "daily limit" at once. It must not spin: one try per hour at most.
    server = await sandbox(
        senders=(SandboxSender("a", capacity=1),),
        clock=virtual_clock.now,
        window_seconds=DAY,
        faults=(FaultRule("error", route="quotas", status=404),),
    )
    settings = settings_for(server, [("a", 24)], window=DAY)
    input_path = prospects(tmp_path / "p.csv", 3)
    results = tmp_path / "r.csv"
    run, session = await start_run(settings, input_path, results, virtual_clock)
    async with session:
        task = asyncio.ensure_future(run.execute())
        await virtual_clock.sleep(DAY + HOUR / 2)
        run.request_stop()
        summary = await task

    assert summary.this_run == {"sent": 2}  # one in each of the stand-in's two windows
    _, lines = read_results(results)
    refused = [parse_timestamp(x["timestamp"]) for x in lines if x["status"] == "deferred"]
    assert len(refused) == server.state.counters[("connect", "daily_limit")]
    assert 1 < len(refused) <= 24
    assert min(gaps(refused)) >= HOUR - 1  # never sooner than an hour after the last


async def test_own_pace_is_the_engine_s_and_the_workspace_s_interval_stays(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    # Half the day spent: a plain run spreads the two left over the day (12h apart); a
    # --wait round sends them at the sender's own pace (6h), and comes back for more.
    server = await sandbox(senders=roomy("a"), clock=virtual_clock.now, window_seconds=DAY)
    settings = settings_for(server, [("a", 4)], window=DAY)
    results = tmp_path / "r.csv"
    await until_done(settings, prospects(tmp_path / "p.csv", 2), results, virtual_clock)
    more = prospects(tmp_path / "q.csv", 2, start=10)
    async with aiohttp.ClientSession() as session:
        for wait, interval in ((False, DAY / 2), (True, DAY / 4)):
            options = RunOptions(input_path=more, results_path=tmp_path / "q.csv.r", wait=wait)
            campaign = await Campaign.prepare(settings, options, session, clock=virtual_clock)
            (sender,) = campaign.plan.senders
            assert (sender.capacity, sender.interval_seconds) == (2, interval)
            campaign.close()


# -- what is shown while idle ---------------------------------------------------------------


@pytest.fixture
def utc() -> Iterator[None]:
    """The machine's local time is UTC."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "UTC")
        time.tzset()
        yield
    time.tzset()


def test_the_log_says_once_per_change_when_the_next_invitation_leaves(utc: None) -> None:
    from campaign_runner.progress import LogProgress

    monday = datetime(2026, 11, 30, 9, 0, tzinfo=UTC).timestamp()
    stream = io.StringIO()
    log = LogProgress(stream)
    log.start(2, ["a"])
    log.advance("a", "sent")
    log.waiting(monday, 12)
    log.waiting(monday, 12)  # the same again: not said twice
    log.waiting(monday + 1, 12)  # rounded up to the minute
    log.start(1, ["a"])  # the next round adds to the count
    log.advance("a", "sent")
    log.waiting(monday + DAY, 11)
    log.close()
    assert stream.getvalue().splitlines() == [
        "progress: 0/2 (a=0)",
        "waiting: next invitation at Mon 2026-11-30 09:00 (UTC); 12 left",
        "waiting: next invitation at Mon 2026-11-30 09:01 (UTC); 12 left",
        "progress: 1/2 sent=1 (a=1)",
        "waiting: next invitation at Tue 2026-12-01 09:00 (UTC); 11 left",
        "progress: 2/2 sent=2 (a=2)",
    ]


def test_the_bar_says_when_the_next_invitation_leaves(utc: None) -> None:
    from campaign_runner.progress import BarProgress

    stream = io.StringIO()
    bar = BarProgress(stream)
    bar.start(1, ["a"])
    bar.advance("a", "sent")
    bar.waiting(datetime(2026, 11, 30, 9, 0, tzinfo=UTC).timestamp(), 4)
    bar.close()
    last = stream.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("waiting:")
    assert " 1/5 " in last
    assert last.endswith("next invitation at Mon 2026-11-30 09:00 (UTC); 4 left]")


async def test_a_sender_whose_hours_open_mid_round_joins_it_then(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    # Monday 08:00 UTC: Berlin opens (09:00), New York not before 14:00 UTC. The Berlin
    # sender sends until 16:00 UTC; the New York one starts at its own opening, not then.
    monday = datetime(2023, 11, 13, 8, 0, tzinfo=UTC).timestamp()
    start_at(virtual_clock, monday)
    server = await sandbox(senders=roomy("eu", "us"), clock=virtual_clock.now, window_seconds=DAY)
    settings = with_hours(
        settings_for(server, [("eu", 8), ("us", 8)], window=DAY),
        working_hours("09:00-17:00", "mon-fri", "Europe/Berlin"),
        us=working_hours("09:00-17:00", "mon-fri", "America/New_York"),
    )
    input_path = prospects(tmp_path / "p.csv", 16)
    summary = await until_done(settings, input_path, tmp_path / "r.csv", virtual_clock)

    assert summary.this_run == {"sent": 16}
    eu = [round((t - monday) / HOUR, 3) for t in sent_at(server, "eu")]
    us = [round((t - monday) / HOUR, 3) for t in sent_at(server, "us")]
    assert eu == [0, 1, 2, 3, 4, 5, 6, 7]  # one an hour, 09:00-17:00 Berlin
    assert us == [6, 7, 8, 9, 10, 11, 12, 13]  # from 09:00 New York (14:00 UTC) on


def locked_elsewhere(path: Path) -> bool:
    """Whether another open file holds ``path``'s lock (flock: per open file, so a fresh
    open in this process contends like another process)."""
    with path.open("rb") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return False


async def test_a_round_that_cannot_be_planned_keeps_the_results_file_locked(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    server = await sandbox(senders=roomy("a"), clock=virtual_clock.now, window_seconds=DAY)
    settings = settings_for(server, [("a", 2)], window=DAY)
    input_path = prospects(tmp_path / "p.csv", 5)
    results = tmp_path / "r.csv"
    options = RunOptions(input_path=input_path, results_path=results, wait=True)
    async with aiohttp.ClientSession() as session:
        first = await Campaign.prepare(settings, options, session, clock=virtual_clock)
        kept = first.hand_over_lock()
        first.close()
        assert kept is not None and locked_elsewhere(results)
        # The ledger breaks where it is read after the results file is open: its
        # campaigns become a view of a table that is not there.
        location = ledger_location(settings, rehearsal=False)
        assert location is not None
        with sqlite3.connect(location) as db:
            db.executescript(
                "ALTER TABLE campaigns RENAME TO campaigns_kept;"
                "CREATE VIEW campaigns AS SELECT * FROM nowhere;"
            )
        with pytest.raises(LedgerError):
            await Campaign.prepare(settings, options, session, clock=virtual_clock, kept=kept)
        assert locked_elsewhere(results)  # still this run's while it waits to try again
        with sqlite3.connect(location) as db:
            db.executescript("DROP VIEW campaigns; ALTER TABLE campaigns_kept RENAME TO campaigns;")
        again = await Campaign.prepare(settings, options, session, clock=virtual_clock, kept=kept)
        assert again.plan.now == 2
        again.close()
    assert not locked_elsewhere(results)


async def test_a_sender_whose_hours_close_mid_round_is_back_when_they_open(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    # Monday 12:00 UTC. "office" works 09:00-18:00 UTC, nine a day; "always" has no hours
    # and sends all day. Office closes at 18:00 while always goes on: on Tuesday office
    # is back at 09:00, not whenever always's round happens to end.
    monday = datetime(2023, 11, 13, 12, 0, tzinfo=UTC).timestamp()
    start_at(virtual_clock, monday)
    server = await sandbox(
        senders=roomy("office", "always"), clock=virtual_clock.now, window_seconds=DAY
    )
    settings = with_hours(
        settings_for(server, [("office", 9), ("always", 24)], window=DAY),
        office=working_hours("09:00-18:00", "mon-fri"),
    )
    input_path = prospects(tmp_path / "p.csv", 50)
    summary = await until_done(settings, input_path, tmp_path / "r.csv", virtual_clock, limit=40)

    assert summary.this_run == {"sent": 40}
    tuesday = [
        round((t - monday) / HOUR - 21, 3)  # hours after Tuesday 09:00
        for t in sent_at(server, "office")
        if t >= monday + 21 * HOUR
    ]
    assert tuesday[:3] == [0, 1, 2]

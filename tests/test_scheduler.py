"""The engine's scheduler and row queues: many senders, fair shares, takeover, lazy rows.

Counted from the stand-in's own record of invitations, in virtual time.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from conftest import SandboxFactory
from helpers import (
    prospects,
    run_campaign,
    settings_for,
    start_at,
    url,
    with_hours,
    working_hours,
    write_prospects,
)

from campaign_runner.campaign import Campaign, RunOptions
from campaign_runner.clock import VirtualClock
from campaign_runner.sandbox import FaultRule, SandboxSender
from campaign_runner.work import BATCH, WorkItem, WorkRows


def work(n: int, pinned: str = "") -> WorkItem:
    return WorkItem(row=n + 2, url=url(n), note=f"hi {n}", pinned=pinned)


# -- row queues ------------------------------------------------------------------------------


def test_a_sender_takes_its_own_rows_first_then_the_shared_ones_in_input_order() -> None:
    rows = WorkRows.of([work(0), work(1, "a"), work(2), work(3, "b"), work(4, "a")])
    queue = rows.queue()
    assert len(queue) == 5
    taken = [queue.take("a") for _ in range(3)]
    assert [w.row for w in taken if w] == [3, 6, 2]  # a's pinned rows, then the shared
    assert queue.has_work("b") and queue.has_work("c")  # b's own row, and a shared one
    assert [w.row for w in (queue.take("c"), queue.take("b")) if w] == [4, 5]
    assert len(queue) == 0 and queue.take("a") is None and not queue.has_work("a")


def test_a_row_given_back_is_the_next_one_taken_from_its_queue() -> None:
    queue = WorkRows.of([work(0), work(1), work(2, "a")]).queue()
    first = queue.take("b")
    pinned = queue.take("a")
    assert first is not None and pinned is not None
    queue.give_back(first)
    queue.give_back(pinned)
    assert len(queue) == 3
    assert [w.row for w in (queue.take("a"), queue.take("a"), queue.take("a")) if w] == [4, 2, 3]


def test_rows_become_objects_only_a_batch_at_a_time() -> None:
    # 20,000 rows: taking one makes one batch of work items, not one per row.
    items = [work(n, "a" if n % 4 == 0 else "") for n in range(20_000)]
    rows = WorkRows.of(items)
    del items
    gc.collect()
    before = sum(isinstance(o, WorkItem) for o in gc.get_objects())
    queue = rows.queue()
    taken = queue.take("b")
    made = sum(isinstance(o, WorkItem) for o in gc.get_objects()) - before
    assert taken is not None and taken.row == 3  # the first shared row
    assert 1 <= made <= BATCH
    assert rows.pinned_counts() == Counter({"": 15_000, "a": 5_000})
    assert [w.row for w in rows.first(2, "a")] == [2, 6]


# -- the scheduler ---------------------------------------------------------------------------


async def test_two_hundred_senders_share_the_rows_evenly_in_virtual_time(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    ids = [f"s{n:03}" for n in range(200)]
    server = await sandbox(
        senders=tuple(SandboxSender(i, capacity=100) for i in ids),
        clock=virtual_clock.now,
        window_seconds=3_600,
    )
    input_path = prospects(tmp_path / "p.csv", 1_000)
    settings = settings_for(server, [(i, 5) for i in ids], window=3_600, concurrency=16)
    _, summary = await run_campaign(settings, input_path, tmp_path / "r.csv", clock=virtual_clock)

    assert summary.this_run == {"sent": 1_000} and summary.exit_code == 0
    assert server.state.duplicates() == {}
    per_sender = Counter(i.sender_id for i in server.state.invitations)
    assert per_sender == {i: 5 for i in ids}
    # Each sender one every 720 s: never two within its interval.
    by_sender = sorted(server.state.invitations, key=lambda i: (i.sender_id, i.created_at))
    for _, invitations in itertools.groupby(by_sender, key=lambda i: i.sender_id):
        times = [i.created_at for i in invitations]
        assert min(b - a for a, b in itertools.pairwise(times)) >= 720 - 1e-6


async def test_a_sender_with_no_pinned_rows_takes_the_shared_backlog(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    # a has ten rows of its own and ten shared rows wait: b takes all of the shared
    # ones while a works through its own, rather than leave them to a.
    server = await sandbox(
        senders=(SandboxSender("a", capacity=50), SandboxSender("b", capacity=50)),
        clock=virtual_clock.now,
        window_seconds=1_000,
    )
    rows = [(url(n), "", "a") for n in range(10)] + [(url(n), "", "") for n in range(10, 20)]
    header = ("linkedin_url", "note", "sender_id")
    input_path = write_prospects(tmp_path / "p.csv", rows, header=header)
    settings = settings_for(server, [("a", 10), ("b", 10)], window=1_000)
    _, summary = await run_campaign(settings, input_path, tmp_path / "r.csv", clock=virtual_clock)

    assert summary.this_run == {"sent": 20}
    sent_by = {i.linkedin_url: i.sender_id for i in server.state.invitations}
    assert {u for u, s in sent_by.items() if s == "a"} == {url(n) for n in range(10)}
    assert {u for u, s in sent_by.items() if s == "b"} == {url(n) for n in range(10, 20)}


async def test_a_sender_disconnected_mid_run_leaves_its_shared_rows_to_the_others(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    # Turns go a, b, c, a, b, c, a: a sends two of its four pinned rows, is cut off at the
    # run's seventh request, and its other pinned rows wait for it; b and c send every
    # shared row.
    server = await sandbox(
        senders=tuple(SandboxSender(i, capacity=50) for i in "abc"),
        faults=(FaultRule("disconnect", sender="a", nth=7),),
        clock=virtual_clock.now,
        window_seconds=1_000,
    )
    pinned = [url(n) for n in range(100, 104)]
    rows = [(url(n), "", "") for n in range(18)] + [(u, "", "a") for u in pinned]
    header = ("linkedin_url", "note", "sender_id")
    input_path = write_prospects(tmp_path / "p.csv", rows, header=header)
    settings = settings_for(server, [("a", 10), ("b", 10), ("c", 10)], window=1_000)
    _, summary = await run_campaign(settings, input_path, tmp_path / "r.csv", clock=virtual_clock)

    assert server.state.counters[("connect", "sender_disconnected")] == 1
    by_sender = Counter(i.sender_id for i in server.state.invitations)
    assert by_sender["a"] == 2 and by_sender["b"] + by_sender["c"] == 18
    invited = {i.linkedin_url for i in server.state.invitations}
    assert invited == {url(n) for n in range(18)} | set(pinned[:2])
    assert server.state.duplicates() == {}
    # Nothing a could not send is failed: it is left for a later run.
    assert (summary.final["failed"], summary.remaining, summary.exit_code) == (0, 2, 3)


@pytest.mark.parametrize("limit", [1, 7])
async def test_the_limit_holds_across_many_senders(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock, limit: int
) -> None:
    ids = [f"s{n}" for n in range(20)]
    server = await sandbox(
        senders=tuple(SandboxSender(i, capacity=100) for i in ids), clock=virtual_clock.now
    )
    input_path = prospects(tmp_path / "p.csv", 50)
    settings = settings_for(server, [(i, 10) for i in ids], window=100, concurrency=8)
    _, summary = await run_campaign(
        settings, input_path, tmp_path / "r.csv", clock=virtual_clock, limit=limit
    )
    assert summary.this_run == {"sent": limit}
    assert len(server.state.invitations) == limit


async def test_the_limit_is_reached_when_a_row_comes_back_after_every_turn_was_taken(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    # --limit 2: both turns are taken at once; a's row comes back (a is disconnected),
    # and b must send it rather than the run end one short.
    server = await sandbox(
        senders=(SandboxSender("a", capacity=50), SandboxSender("b", capacity=50)),
        faults=(FaultRule("disconnect", sender="a", nth=1),),
        clock=virtual_clock.now,
        window_seconds=1_000,
    )
    input_path = prospects(tmp_path / "p.csv", 6)
    settings = settings_for(server, [("a", 10), ("b", 10)], window=1_000)
    _, summary = await run_campaign(
        settings, input_path, tmp_path / "r.csv", clock=virtual_clock, limit=2
    )
    assert summary.this_run == {"sent": 2}
    assert [i.sender_id for i in server.state.invitations] == ["b", "b"]


async def test_a_saturated_api_never_lets_a_sender_s_invitations_leave_closer_than_its_pace(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    # Eight senders, one request slot, every answer 20 s late: turns wait for the slot,
    # some long, some not. s7 is due every 200 s, the others every 111 s; 72 turns come
    # faster than one slot takes them. Each request leaves 20 s before the stand-in
    # records it, so the record's gaps are the departures' gaps.
    ids = [f"s{n}" for n in range(8)]
    server = await sandbox(
        senders=tuple(SandboxSender(i, capacity=1_000) for i in ids),
        faults=(FaultRule("latency", seconds=20),),
        clock=virtual_clock.now,
        window_seconds=1_000,
    )
    limits = [(i, 5 if i == "s7" else 9) for i in ids]
    settings = settings_for(server, limits, window=1_000, concurrency=1, timeout=100)
    input_path = prospects(tmp_path / "p.csv", 68)
    _, summary = await run_campaign(settings, input_path, tmp_path / "r.csv", clock=virtual_clock)

    assert summary.this_run == {"sent": 68}
    for sender_id, limit in limits:
        times = [i.created_at for i in server.state.invitations if i.sender_id == sender_id]
        gap = min(b - a for a, b in itertools.pairwise(times))
        assert gap >= 1_000 / limit - 1e-6, (sender_id, gap)


async def test_a_request_that_waited_past_closing_time_does_not_leave(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    # Open 09:00-10:00 UTC; two senders due every 150 s; one request slot and answers
    # ten minutes late: by 10:00 turns are still waiting for the slot. They are deferred,
    # not sent after closing time.
    monday = datetime(2023, 11, 13, 9, 0, tzinfo=UTC).timestamp()
    start_at(virtual_clock, monday)
    server = await sandbox(
        senders=tuple(SandboxSender(i, capacity=100) for i in "ab"),
        faults=(FaultRule("latency", seconds=600),),
        clock=virtual_clock.now,
        window_seconds=86_400,
    )
    input_path = prospects(tmp_path / "p.csv", 20)
    settings = with_hours(
        settings_for(server, [("a", 24), ("b", 24)], window=86_400, concurrency=1, timeout=900),
        working_hours("09:00-10:00"),
    )
    _, summary = await run_campaign(settings, input_path, tmp_path / "r.csv", clock=virtual_clock)

    left_at = [i.created_at - 600 for i in server.state.invitations]
    assert left_at and max(left_at) < monday + 3_600
    assert summary.this_run["sent"] == len(left_at) == 6  # 09:00, 09:10, ... 09:50
    assert summary.remaining == 20 - 6


async def test_a_stop_while_waiting_for_another_campaign_s_slot_leaves_the_row_to_send(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    # Both campaigns plan before either sends. "first" sends from a at t0; a paces at one
    # per 500 s across the workspace, so "second"'s claim waits for a's slot. Stopped
    # while it waits: nothing is sent, and the run says it was interrupted, with its row
    # still to send.
    server = await sandbox(
        senders=(SandboxSender("a", capacity=100),), clock=virtual_clock.now, window_seconds=1_000
    )
    settings = settings_for(server, [("a", 2)], window=1_000)

    async def prepare(name: str, start: int) -> Campaign:
        options = RunOptions(
            input_path=prospects(tmp_path / f"{name}.csv", 1, start=start),
            results_path=tmp_path / f"{name}.results.csv",
        )
        return await Campaign.prepare(settings, options, session, clock=virtual_clock)

    async with aiohttp.ClientSession() as session:
        first, second = await prepare("first", 0), await prepare("second", 100)
        assert (await first.execute()).this_run == {"sent": 1}
        running = asyncio.ensure_future(second.execute())
        await virtual_clock.sleep(100)  # its claim waits until 500 s
        assert not running.done()
        second.request_stop()
        summary = await running
    assert len(server.state.invitations) == 1
    assert (summary.interrupted, summary.remaining, summary.exit_code) == (True, 1, 130)

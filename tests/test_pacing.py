"""Pacing in virtual time: each turn is checked at the exact virtual second it is due."""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass, field

import aiohttp
import pytest
from conftest import SandboxFactory

from campaign_runner.capacity import pacing_interval, remaining_capacity
from campaign_runner.client import ResultKind, SendPilotClient
from campaign_runner.clock import EPOCH, VirtualClock
from campaign_runner.config import Secret
from campaign_runner.pacing import Backoff, SenderPacer
from campaign_runner.sandbox import SandboxSender


@pytest.mark.parametrize(
    ("limit", "used", "api", "expected"),
    [
        (25, 0, None, 25),
        (25, 10, None, 15),
        (25, 30, None, 0),  # over the ceiling already (limit lowered): never negative
        (25, 0, 5, 5),  # the API knows of sends we did not make
        (25, 20, 10, 5),  # our own ceiling is the tighter one
        (25, 0, -1, 0),
        (0, 0, 10, 0),
    ],
)
def test_remaining_capacity(limit: int, used: int, api: int | None, expected: int) -> None:
    assert remaining_capacity(limit, used, api) == expected


def test_interval_spreads_capacity_over_the_window() -> None:
    assert pacing_interval(24, 86400) == 3600
    assert pacing_interval(0, 86400) == math.inf


@dataclass
class RecordingClock:
    """The virtual clock, noting each sleep asked of it: shows the pacer uses its clock."""

    clock: VirtualClock
    slept: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.clock.now()

    def monotonic(self) -> float:
        return self.clock.monotonic()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await self.clock.sleep(seconds)


async def turns(pacer: SenderPacer, clock: VirtualClock) -> list[float]:
    """The virtual moments of every turn the pacer gives until its capacity is spent."""
    times = []
    while await pacer.take_turn():
        times.append(clock.monotonic())
    return times


async def test_turns_are_spread_evenly_over_the_window(virtual_clock: VirtualClock) -> None:
    pacer = SenderPacer("s1", capacity=4, window_seconds=100, clock=virtual_clock)
    assert await turns(pacer, virtual_clock) == [0.0, 25.0, 50.0, 75.0]
    assert not pacer.has_capacity
    assert virtual_clock.monotonic() == 75.0  # a spent pacer says so at once


async def test_a_day_of_turns_runs_in_virtual_time(virtual_clock: VirtualClock) -> None:
    pacer = SenderPacer("s1", capacity=24, window_seconds=86_400)
    assert await turns(pacer, virtual_clock) == [3600.0 * k for k in range(24)]


async def test_a_fast_pace_does_not_stall_on_rounding(virtual_clock: VirtualClock) -> None:
    # 100 a second: aiolimiter's leak leaves residues of 1e-16 here, which it waits to
    # drain at a moment that rounds to now (virtual time moves on by a least step).
    pacer = SenderPacer("s1", capacity=100, window_seconds=1.0)
    times = await asyncio.wait_for(turns(pacer, virtual_clock), timeout=2)
    assert times == pytest.approx([0.01 * k for k in range(100)], abs=1e-9)


async def test_jitter_delays_each_turn_by_its_draw_within_the_bound(
    virtual_clock: VirtualClock,
) -> None:
    clock = RecordingClock(virtual_clock)
    pacer = SenderPacer(
        "s1", capacity=4, window_seconds=100, jitter=0.5, rng=random.Random(7), clock=clock
    )
    times = await turns(pacer, virtual_clock)
    replay = random.Random(7)
    draws = [replay.uniform(0.0, 0.5 * 25) for _ in range(4)]
    assert clock.slept == draws
    assert all(0.0 <= d <= 12.5 for d in draws)
    # The jitter is added to the slot, not to the pace: each turn's slot stays k * 25.
    assert times == pytest.approx([25.0 * k + d for k, d in enumerate(draws)], abs=1e-9)


async def test_the_first_turn_waits_out_the_first_delay(virtual_clock: VirtualClock) -> None:
    clock = RecordingClock(virtual_clock)
    pacer = SenderPacer("s1", capacity=2, window_seconds=100, first_delay=30, clock=clock)
    assert await turns(pacer, virtual_clock) == [30.0, 80.0]
    assert clock.slept == [30.0]  # once, before the first turn only


async def test_a_refunded_slot_is_used_at_its_pace_not_at_once(
    virtual_clock: VirtualClock,
) -> None:
    pacer = SenderPacer("s1", capacity=3, window_seconds=300, clock=virtual_clock)
    assert await pacer.take_turn()
    pacer.refund()  # the turn created no invitation
    assert pacer.left == 3
    assert await turns(pacer, virtual_clock) == [100.0, 200.0, 300.0]


async def test_refund_never_goes_above_capacity_and_exhaust_ends_the_turns(
    virtual_clock: VirtualClock,
) -> None:
    pacer = SenderPacer("s1", capacity=2, window_seconds=20)
    assert await pacer.take_turn()
    pacer.refund()
    pacer.refund()
    assert pacer.left == 2
    pacer.exhaust()
    assert not await pacer.take_turn()


async def test_exhaust_while_waiting_spends_the_turn(virtual_clock: VirtualClock) -> None:
    pacer = SenderPacer("s1", capacity=3, window_seconds=30)
    assert await pacer.take_turn()
    waiting = asyncio.create_task(pacer.take_turn())
    await asyncio.sleep(5)
    pacer.exhaust()  # the API said "daily limit" meanwhile
    assert await waiting is False
    assert virtual_clock.monotonic() == 10.0


async def test_cancelled_turn_gives_its_slot_back(virtual_clock: VirtualClock) -> None:
    pacer = SenderPacer("s1", capacity=3, window_seconds=300)  # one every 100 s
    assert await pacer.take_turn()
    waiting = asyncio.create_task(pacer.take_turn())
    await asyncio.sleep(50)
    assert pacer.left == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert pacer.left == 2
    assert virtual_clock.monotonic() == 50.0


def test_zero_capacity_sender_never_gets_a_turn() -> None:
    pacer = SenderPacer("s1", capacity=0, window_seconds=10)
    assert asyncio.run(pacer.take_turn()) is False


async def test_backoff_waits_until_the_longest_pause_ends(virtual_clock: VirtualClock) -> None:
    backoff = Backoff(virtual_clock)
    await backoff.wait()
    assert virtual_clock.monotonic() == 0.0  # no pause in force: no wait at all
    backoff.push(5)
    backoff.push(2)  # a shorter pause never shortens a longer one
    assert backoff.paused
    await backoff.wait()
    assert virtual_clock.monotonic() == 5.0
    assert not backoff.paused


async def test_a_push_during_a_wait_extends_it(virtual_clock: VirtualClock) -> None:
    backoff = Backoff(virtual_clock)
    backoff.push(5)
    waiter = asyncio.create_task(backoff.wait())
    await asyncio.sleep(3)
    backoff.push(10)  # a second 429 while everyone waits
    await waiter
    assert virtual_clock.monotonic() == 13.0


async def test_backoff_defaults_to_the_running_loops_clock(virtual_clock: VirtualClock) -> None:
    backoff = Backoff()  # how the runner makes it: on a virtual loop, virtual all the same
    backoff.push(60)
    await backoff.wait()
    assert virtual_clock.monotonic() == 60.0


async def test_paced_invitations_reach_the_stand_in_at_their_virtual_moments(
    virtual_clock: VirtualClock, sandbox: SandboxFactory
) -> None:
    # The stand-in, the client and the pacer share one virtual loop and one wall clock:
    # a day of a sender's pacing, and the stand-in's renewal of its window, in no real time.
    day = 86_400.0
    server = await sandbox(senders=(SandboxSender("s1", capacity=2),), clock=virtual_clock.now)
    urls = [f"https://www.linkedin.com/in/prospect-{n}" for n in range(4)]
    async with aiohttp.ClientSession() as session:
        client = SendPilotClient(session, server.base_url, Secret(server.api_key), 5)
        pacer = SenderPacer("s1", capacity=2, window_seconds=day, clock=virtual_clock)
        kinds = []
        while await pacer.take_turn():
            kinds.append((await client.connect("s1", urls[len(kinds)], None)).kind)
        assert kinds == [ResultKind.ACCEPTED, ResultKind.ACCEPTED]
        assert (await client.connect("s1", urls[2], None)).kind is ResultKind.DAILY_LIMIT
        await virtual_clock.sleep(day - virtual_clock.monotonic())
        assert (await client.connect("s1", urls[3], None)).kind is ResultKind.ACCEPTED
    assert [i.created_at - EPOCH for i in server.state.invitations] == [0.0, day / 2, day]

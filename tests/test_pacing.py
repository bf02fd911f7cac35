from __future__ import annotations

import asyncio
import itertools
import math

import pytest

from campaign_runner.capacity import pacing_interval, remaining_capacity
from campaign_runner.pacing import Backoff, SenderPacer


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


async def test_pacer_never_exceeds_capacity_and_keeps_the_interval() -> None:
    # A compressed window: 5 invitations over 0.25 s, i.e. one every 50 ms.
    pacer = SenderPacer("s1", capacity=5, window_seconds=0.25)
    loop = asyncio.get_running_loop()
    times = []
    while await pacer.take_turn():
        times.append(loop.time())
    assert len(times) == 5
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Never faster than the interval (the limiter may be a hair early on coarse clocks).
    assert min(gaps) >= 0.05 * 0.9
    assert not pacer.has_capacity


async def test_refund_and_exhaust() -> None:
    pacer = SenderPacer("s1", capacity=2, window_seconds=0.02)
    assert await pacer.take_turn()
    pacer.refund()
    assert pacer.left == 2
    pacer.refund()  # never above capacity
    assert pacer.left == 2
    pacer.exhaust()
    assert not await pacer.take_turn()


async def test_cancelled_turn_gives_its_slot_back() -> None:
    pacer = SenderPacer("s1", capacity=3, window_seconds=300)  # one every 100 s
    assert await pacer.take_turn()
    waiting = asyncio.create_task(pacer.take_turn())
    await asyncio.sleep(0)
    assert pacer.left == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert pacer.left == 2


def test_zero_capacity_sender_never_gets_a_turn() -> None:
    pacer = SenderPacer("s1", capacity=0, window_seconds=10)
    assert asyncio.run(pacer.take_turn()) is False


async def test_backoff_waits_until_the_longest_pause_ends() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    backoff = Backoff(clock=lambda: now[0], sleep=sleep)
    await backoff.wait()
    assert slept == []  # no pause in force: no wait at all
    backoff.push(5)
    backoff.push(2)  # a shorter pause never shortens a longer one
    await backoff.wait()
    assert slept == [5.0]
    assert now[0] == 105.0

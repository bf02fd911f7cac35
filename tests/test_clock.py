"""The clocks: the system's, and a virtual loop that jumps to its next timer.

Each virtual test checks the exact virtual moment something happened, and, where a real
wait would go unnoticed otherwise, that it took (almost) no real time.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from campaign_runner.clock import (
    EPOCH,
    SystemClock,
    VirtualClock,
    VirtualTimeLoop,
    hold_time,
    run,
    running_clock,
)

WEEK = 7 * 86_400.0


async def test_a_virtual_week_of_sleep_takes_milliseconds(virtual_clock: VirtualClock) -> None:
    started = time.perf_counter()
    await asyncio.sleep(WEEK)  # past asyncio's one-day cap on a single wait, seven times
    assert time.perf_counter() - started < 0.5
    assert virtual_clock.monotonic() == WEEK
    assert virtual_clock.now() == EPOCH + WEEK


async def test_the_clock_sleeps_on_the_loop(virtual_clock: VirtualClock) -> None:
    loop = asyncio.get_running_loop()
    await virtual_clock.sleep(2.5)
    assert loop.time() == 2.5
    assert running_clock() == virtual_clock


async def test_timers_fire_in_order_at_their_virtual_moments(virtual_clock: VirtualClock) -> None:
    loop = asyncio.get_running_loop()
    fired: list[tuple[str, float]] = []
    for name, delay in [("c", 30.0), ("a", 10.0), ("b", 20.0)]:
        loop.call_later(delay, lambda name=name: fired.append((name, loop.time())))
    await asyncio.sleep(60)
    assert fired == [("a", 10.0), ("b", 20.0), ("c", 30.0)]


async def test_a_timer_set_for_now_fires_once_the_clock_has_moved(
    virtual_clock: VirtualClock,
) -> None:
    # Code that waits for the clock to move on (as aiolimiter does to drain a rounding
    # residue) must not spin for ever in virtual time.
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.03)
    start = loop.time()
    moved: asyncio.Future[float | None] = loop.create_future()
    tries = iter(range(1000))

    def until_the_clock_moves() -> None:
        if loop.time() > start:
            moved.set_result(loop.time())
        elif next(tries, None) is None:
            moved.set_result(None)  # gave up: time stood still
        else:
            loop.call_at(start, until_the_clock_moves)

    loop.call_at(start, until_the_clock_moves)
    assert await moved == math.nextafter(start, math.inf)


async def test_wait_for_times_out_at_the_virtual_deadline(virtual_clock: VirtualClock) -> None:
    loop = asyncio.get_running_loop()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.sleep(10), timeout=3)
    assert loop.time() == 3.0
    async with asyncio.timeout(4):
        await asyncio.sleep(1)  # within its deadline: no timeout
    assert loop.time() == 4.0


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query["seconds"]))
    return web.Response(text="late")


@pytest.fixture
async def slow_server() -> AsyncIterator[str]:
    """An aiohttp server on loopback, in the test's loop, whose answer takes ?seconds=."""
    app = web.Application()
    app.router.add_get("/slow", _slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/slow"
    await runner.cleanup()


async def test_a_request_over_loopback_takes_no_virtual_time(
    virtual_clock: VirtualClock, slow_server: str
) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with aiohttp.ClientSession() as session:
        async with session.get(slow_server, params={"seconds": "0"}) as response:
            assert await response.text() == "late"
        assert loop.time() == start
        async with session.get(slow_server, params={"seconds": "1.5"}) as response:
            assert await response.text() == "late"
        assert loop.time() == start + 1.5


async def test_a_client_read_timeout_fires_at_the_virtual_deadline(
    virtual_clock: VirtualClock, slow_server: str
) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    timeout = aiohttp.ClientTimeout(sock_connect=1, sock_read=2)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        with pytest.raises(aiohttp.ServerTimeoutError):
            async with session.get(slow_server, params={"seconds": "10"}) as response:
                await response.read()
        assert loop.time() == start + 2.0


async def test_a_to_thread_call_holds_virtual_time(virtual_clock: VirtualClock) -> None:
    # Without the loop knowing of the thread, it would jump to wait_for's deadline first.
    started = time.perf_counter()
    result = await asyncio.wait_for(asyncio.to_thread(_real_work, 0.05), timeout=1)
    assert result == "done"
    assert time.perf_counter() - started >= 0.05  # the thread's work was real
    assert virtual_clock.monotonic() == 0.0


def _real_work(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


async def test_a_threads_call_soon_threadsafe_wakes_the_loop(virtual_clock: VirtualClock) -> None:
    # No timer at all: the loop blocks for real on its selector until the thread reports.
    loop = asyncio.get_running_loop()
    reported: asyncio.Future[str] = loop.create_future()

    def report() -> None:
        time.sleep(0.05)
        loop.call_soon_threadsafe(reported.set_result, "written")

    threading.Thread(target=report).start()
    assert await reported == "written"
    assert loop.time() == 0.0


async def test_a_hold_keeps_time_still_until_the_thread_reports(
    virtual_clock: VirtualClock,
) -> None:
    loop = asyncio.get_running_loop()
    timer = asyncio.ensure_future(asyncio.sleep(10))  # a timer the loop could jump to
    reported: asyncio.Future[float] = loop.create_future()
    hold = hold_time()

    def settle() -> None:
        hold.release()
        reported.set_result(loop.time())

    def write() -> None:
        time.sleep(0.05)  # an fsync, say
        loop.call_soon_threadsafe(settle)

    threading.Thread(target=write).start()
    assert await reported == 0.0
    await timer
    assert loop.time() == 10.0


async def test_an_unknown_thread_may_report_after_a_jump(virtual_clock: VirtualClock) -> None:
    # What a hold prevents: a thread the loop does not know of reports at a later virtual
    # moment. (This one waits, for real, on a timer of the loop: it could not be held.)
    loop = asyncio.get_running_loop()
    go = threading.Event()
    loop.call_later(7, go.set)
    reported: asyncio.Future[float] = loop.create_future()

    def wait_then_report() -> None:
        go.wait(timeout=10)
        loop.call_soon_threadsafe(lambda: reported.set_result(loop.time()))

    threading.Thread(target=wait_then_report).start()
    assert await reported == 7.0


async def test_a_hold_is_a_context_and_a_no_op_on_other_loops() -> None:
    assert not isinstance(asyncio.get_running_loop(), VirtualTimeLoop)
    with hold_time() as hold:
        hold.release()  # twice is harmless
    assert isinstance(running_clock(), SystemClock)


@pytest.mark.virtual_time
async def test_the_marker_alone_gives_a_virtual_loop() -> None:
    await asyncio.sleep(3600)
    assert asyncio.get_running_loop().time() == 3600.0


def test_run_starts_wall_time_at_the_given_epoch() -> None:
    async def main() -> tuple[float, float]:
        clock = running_clock()
        assert isinstance(clock, VirtualClock)
        await clock.sleep(3600)
        return clock.now(), clock.monotonic()

    started = time.perf_counter()
    assert run(main(), start=1_000_000.0) == (1_003_600.0, 3600.0)
    assert time.perf_counter() - started < 0.5


def test_system_clock_outside_a_loop() -> None:
    clock = SystemClock()
    before, now, after = time.time(), clock.now(), time.time()
    assert before <= now <= after
    before, monotonic, after = time.monotonic(), clock.monotonic(), time.monotonic()
    assert before <= monotonic <= after


async def test_system_clock_reads_and_sleeps_on_the_running_loop() -> None:
    loop = asyncio.get_running_loop()
    clock = SystemClock()
    before = loop.time()
    await clock.sleep(0.01)  # a real sleep, kept short
    assert loop.time() - before >= 0.01
    before, monotonic, after = loop.time(), clock.monotonic(), loop.time()
    assert before <= monotonic <= after

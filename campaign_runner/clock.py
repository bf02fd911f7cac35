"""One clock for wall time, monotonic time and waiting: the system's, or a virtual one.

Code that reads the time or waits takes a :class:`Clock`: ``now()`` is wall time in epoch
seconds (timestamps, capacity windows), ``monotonic()`` is the running event loop's time
(pacing, deadlines), ``sleep()`` waits on that loop. :class:`SystemClock` is the real one.

:class:`VirtualTimeLoop` is an asyncio event loop whose ``time()`` is virtual: whenever it
has nothing to do but wait for a timer, it jumps to that timer instead of blocking. All
that waits on the loop's timers then runs in virtual time, unchanged: ``asyncio.sleep``,
``asyncio.wait_for`` and ``asyncio.timeout``, aiolimiter (``loop.time()`` and
``loop.call_at``), aiohttp's client and server timeouts. A week of pacing takes
milliseconds. A timer set for the present moves the clock on by its least step (about
1e-16 relative), as real time would have moved, so that code which waits for the clock to
move does not spin. :class:`VirtualClock` reads such a loop, and :func:`run` is ``asyncio.run``
on one, for code outside pytest (a CLI subprocess in a soak test).

What virtual time means for I/O and threads:

- Sockets are real. Before it jumps, the loop polls its selector a few times without
  waiting, so that bytes sent over loopback within the process (which the kernel has
  delivered by the time ``send`` returns) are read first: a request to a server in the
  same loop takes no virtual time. Data from another process or host arrives in real
  time, and timers may fire "early" meanwhile: keep real peers out of virtual tests.
- A thread's work takes no virtual time *while the loop knows it is under way*: the loop
  does not jump while a :meth:`~asyncio.loop.run_in_executor` future (``asyncio.to_thread``,
  ``getaddrinfo``) is pending, nor while a :class:`TimeHold` is held; it blocks for real
  until the thread's ``call_soon_threadsafe`` wakes it. A thread it does not know of (one
  started by hand that reports with ``call_soon_threadsafe``) may report after the loop
  has jumped: it still wakes the loop, but at a later virtual moment. Take a
  :func:`hold_time` for such work when the moment matters (the results journal's writer
  thread is one: a hold per queued record, released where the batch is settled); never
  hold the loop for work that itself waits on the loop's timers, which would never fire.
- Threads that read ``time.time()`` or ``time.monotonic()`` themselves see real time:
  give them the clock's ``now`` instead.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import selectors
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, TypeVarTuple

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# 2023-11-14T22:13:20Z, the tests' FakeClock start: a round, recent wall time for virtual runs.
EPOCH = 1_700_000_000.0

# Zero-timeout polls of the selector before virtual time jumps. One was enough for loopback
# in this project's tests; a few more cost microseconds and leave a margin for a busy machine.
IDLE_POLLS = 5

# How long (real seconds) one wait on a held loop lasts before the holds are looked at
# again, for a hold released without a call_soon_threadsafe to wake the loop.
HELD_WAIT = 0.05


class Clock(Protocol):
    """Wall time, the event loop's monotonic time, and a wait on that loop."""

    def now(self) -> float:
        """Wall time in epoch seconds: timestamps, capacity windows, working hours."""
        ...

    def monotonic(self) -> float:
        """Seconds on the running loop's clock: pacing intervals, deadlines, back-off."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the running loop."""
        ...


@dataclass(frozen=True)
class SystemClock:
    """The real clock: ``time.time()``, the running loop's ``time()``, ``asyncio.sleep``."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            # No loop running: the clock asyncio's own loops use.
            return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class WallClock(SystemClock):
    """The real loop's time and waits, with wall time read from ``wall``: for a test that
    holds the date still (or steps it) while pacing runs in real time."""

    wall: Callable[[], float] = time.time

    def now(self) -> float:
        return self.wall()


@dataclass(frozen=True)
class VirtualClock:
    """A :class:`VirtualTimeLoop`'s clock: wall time is the loop's epoch plus its time."""

    loop: VirtualTimeLoop

    def now(self) -> float:
        return self.loop.epoch + self.loop.time()

    def monotonic(self) -> float:
        return self.loop.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def running_clock() -> Clock:
    """The clock of the running loop: a :class:`VirtualClock` on a virtual loop, else real."""
    loop = asyncio.get_running_loop()
    return VirtualClock(loop) if isinstance(loop, VirtualTimeLoop) else SystemClock()


class TimeHold:
    """Virtual time stands still until :meth:`release` (or the ``with`` block's end).

    Release it from the loop's thread, in the callback the thread sent; or from the thread
    *after* its ``call_soon_threadsafe``, never before: in between, the loop would jump.
    Releasing twice is harmless.
    """

    def __init__(self, timeline: _Timeline | None) -> None:
        self._timeline = timeline
        if timeline is not None:
            timeline.hold()

    def release(self) -> None:
        timeline, self._timeline = self._timeline, None
        if timeline is not None:
            timeline.release()

    def __enter__(self) -> TimeHold:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def hold_time(loop: asyncio.AbstractEventLoop | None = None) -> TimeHold:
    """Keep ``loop`` (the running one by default) from jumping while a thread's report is due.

    For a thread the loop does not start itself, such as a writer thread that answers with
    ``call_soon_threadsafe``. On any loop but a :class:`VirtualTimeLoop` it does nothing.
    """
    loop = loop or asyncio.get_running_loop()
    return TimeHold(loop._timeline if isinstance(loop, VirtualTimeLoop) else None)


class _Timeline:
    """The virtual time and what keeps it from moving; shared by the loop and its selector."""

    def __init__(self) -> None:
        self.now = 0.0
        self._holds = 0
        # Holds are taken and released from other threads too: += is no atomic step.
        self._lock = threading.Lock()

    def hold(self) -> None:
        with self._lock:
            self._holds += 1

    def release(self) -> None:
        with self._lock:
            self._holds -= 1

    @property
    def held(self) -> bool:
        return self._holds > 0


class _VirtualSelector(selectors.BaseSelector):
    """A real selector whose waits for a timer become jumps of the timeline.

    The loop calls ``select(timeout)`` with the time to its next timer, ``0`` when
    callbacks are ready, or ``None`` when it has no timer at all. Only the first kind is
    changed: ``None`` still blocks for real, since only I/O or a thread can wake such a loop.
    """

    def __init__(self, timeline: _Timeline, idle_polls: int) -> None:
        self._timeline = timeline
        self._idle_polls = idle_polls
        self._real = selectors.DefaultSelector()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout <= 0:
            return self._real.select(timeout)
        for _ in range(self._idle_polls):
            # Holds first, then the poll: a thread releases only after its
            # call_soon_threadsafe, so a release seen here means that the wake-up byte is
            # already in the self-pipe, and the poll below sees it.
            if self._timeline.held:
                return self._real.select(HELD_WAIT)
            events = self._real.select(0)
            if events:
                return events
        self._timeline.now += timeout
        return []

    def register(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> Mapping[FileDescriptorLike, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop in virtual time: it starts at 0.0 and jumps to each timer it waits for.

    ``epoch`` is the wall time at virtual 0.0, for :class:`VirtualClock`. See the module's
    docstring for what virtual time means for sockets and threads.
    """

    def __init__(self, *, epoch: float = EPOCH, idle_polls: int = IDLE_POLLS) -> None:
        if idle_polls < 1:
            raise ValueError(f"idle_polls must be at least 1, not {idle_polls}")
        self.epoch = epoch
        self._timeline = _Timeline()
        super().__init__(_VirtualSelector(self._timeline, idle_polls))

    def time(self) -> float:
        return self._timeline.now

    def call_at(
        self,
        when: float,
        callback: Callable[[*Ts], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        # A timer set for the present (or the past) moves the clock on by its least step
        # first. Real time always moves between two loop iterations, and code relies on it:
        # aiolimiter's leak can leave a residue of 1e-16 that it schedules a wake-up to
        # drain, at a moment that rounds to now; in time that stood still it would spin
        # there for ever. The timer stays due, so it still fires at the next iteration.
        if when <= self._timeline.now:
            self._timeline.now = when = math.nextafter(self._timeline.now, math.inf)
        return super().call_at(when, callback, *args, context=context)

    def run_in_executor(
        self, executor: Executor | None, func: Callable[[*Ts], T], *args: *Ts
    ) -> asyncio.Future[T]:
        # The loop waits for the thread instead of jumping past it. The hold ends when the
        # future is done (in the loop's thread, after the thread's result arrived) or
        # cancelled (nobody waits for the thread any more).
        future = super().run_in_executor(executor, func, *args)
        hold = TimeHold(self._timeline)
        future.add_done_callback(lambda _: hold.release())
        return future


def run(main: Coroutine[Any, Any, T], *, start: float = EPOCH, debug: bool | None = None) -> T:
    """``asyncio.run(main)`` in virtual time, with wall time starting at ``start``.

    Inside ``main``, :func:`running_clock` gives the :class:`VirtualClock` to pass on.
    """
    with asyncio.Runner(debug=debug, loop_factory=lambda: VirtualTimeLoop(epoch=start)) as runner:
        return runner.run(main)

"""Per-sender pacing, and the back-off shared by all senders.

A sender's capacity for this run (:mod:`campaign_runner.capacity`) is spread evenly over
the window's open hours by one :class:`aiolimiter.AsyncLimiter` per sender, allowing one
invitation per interval: a sender never bursts, and never goes past its capacity, however
many rows are waiting.

The API's own rate limits (429 with ``Retry-After``) pause *every* sender through one
shared :class:`Backoff`, since they are about the key, not the LinkedIn account.

Both wait on the :class:`~campaign_runner.clock.Clock` they are given (the system's by
default). The limiter itself reads the running loop's time, which is the clock's
``monotonic()``: on a :class:`~campaign_runner.clock.VirtualTimeLoop` all of it runs in
virtual time.
"""

from __future__ import annotations

import asyncio
import math
import random

from aiolimiter import AsyncLimiter

from campaign_runner.capacity import pacing_interval
from campaign_runner.clock import Clock, SystemClock


class SenderPacer:
    """One sender's turn-taking: a limiter for the pace, a counter for the capacity.

    Create it inside the running event loop (aiolimiter binds to the loop it first sees).
    ``left`` is reserved when a turn is taken and given back with :meth:`refund` when the
    turn is not used to create an invitation. ``clock`` waits out ``first_delay`` and the
    jitter; use one whose ``monotonic()`` is the loop's time, as the limiter reads that.
    """

    def __init__(
        self,
        sender_id: str,
        capacity: int,
        window_seconds: float,
        *,
        jitter: float = 0.0,
        rng: random.Random | None = None,
        first_delay: float = 0.0,
        clock: Clock | None = None,
    ) -> None:
        self.sender_id = sender_id
        self._clock = clock or SystemClock()
        # In monotonic time: the first turn waits ``first_delay`` (a new run keeps the
        # spacing from the last invitation of the one before, instead of sending at
        # once), and the limiter's latest slot.
        self._not_before = self._clock.monotonic() + max(0.0, first_delay)
        self._last_slot = -math.inf
        self._turn_end = -math.inf  # when the latest turn was ready to send
        self.capacity = capacity
        self.left = capacity
        self.exhausted = False
        self.interval = pacing_interval(capacity, window_seconds)
        self.jitter = jitter
        self._limiter = AsyncLimiter(1, self.interval) if capacity > 0 else None
        self._rng = rng or random.Random()

    @property
    def due(self) -> float:
        """When the next turn may begin, in monotonic time: what a scheduler waits for
        before calling :meth:`take_turn`, which then finds the limiter ready."""
        return max(self._not_before, self._last_slot + self.interval)

    @property
    def has_capacity(self) -> bool:
        """Whether a further turn can be taken."""
        return self.left > 0 and not self.exhausted

    async def take_turn(self) -> bool:
        """Wait for this sender's next slot; ``False`` when its capacity is spent.

        A ``True`` turn holds a reserved slot: use it, or :meth:`refund` it.
        """
        if not self.has_capacity or self._limiter is None:
            return False
        self.left -= 1
        try:
            if (delay := self._not_before - self._clock.monotonic()) > 0:
                await self._clock.sleep(delay)
            await self._limiter.acquire()
            # The limiter counts from here, and so does `due`; the jitter below moves this
            # send only, so the average pace stays one per interval.
            self._last_slot = self._clock.monotonic()
            if self.jitter > 0:
                await self._clock.sleep(self._rng.uniform(0.0, self.jitter * self.interval))
            self._turn_end = self._clock.monotonic()
        except asyncio.CancelledError:
            self.left += 1
            raise
        # The API may have said "daily limit" while this turn was waiting.
        return not self.exhausted

    def leaves(self) -> None:
        """The turn's request leaves now. When it left much later than its turn (it
        waited for a request slot: the API slow, every slot taken), the next turn is a
        whole interval from now, not from the turn, so that the wait never lets two
        invitations leave closer than the pace."""
        now = self._clock.monotonic()
        slack = min(1.0, 0.1 * self.interval) if math.isfinite(self.interval) else 1.0
        if now - self._turn_end > slack:
            self._not_before = max(self._not_before, now + self.interval)

    def rest(self) -> None:
        """Keep the next turn a whole interval away from now: an invitation that had to
        wait for another campaign's slot must not be followed at once by the next one,
        which the limiter would allow, since it counts from when the turn was taken."""
        if math.isfinite(self.interval):
            self._not_before = max(self._not_before, self._clock.monotonic() + self.interval)

    def refund(self) -> None:
        """Give back a reserved slot that created no invitation."""
        self.left = min(self.capacity, self.left + 1)

    def exhaust(self) -> None:
        """The API says this sender's daily limit is reached: no more turns this run."""
        self.exhausted = True
        self.left = 0


class Backoff:
    """A pause shared by all senders, for the API's own rate limits, on ``clock``'s time."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._until = -math.inf

    @property
    def paused(self) -> bool:
        """Whether a pause is in force now."""
        return self._until > self._clock.monotonic()

    def push(self, seconds: float) -> None:
        """Pause everyone for at least ``seconds`` from now."""
        self._until = max(self._until, self._clock.monotonic() + seconds)

    async def wait(self) -> None:
        """Return once no pause is in force."""
        while (delay := self._until - self._clock.monotonic()) > 0:
            await self._clock.sleep(delay)

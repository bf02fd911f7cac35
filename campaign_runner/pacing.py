"""Per-sender pacing, and the back-off shared by all senders.

A sender's capacity for this run (:mod:`campaign_runner.capacity`) is spread evenly over
``window_seconds`` by one :class:`aiolimiter.AsyncLimiter` per sender, allowing one
invitation per interval: a sender never bursts, and never goes past its capacity, however
many rows are waiting.

The API's own rate limits (429 with ``Retry-After``) pause *every* sender through one
shared :class:`Backoff`, since they are about the key, not the LinkedIn account.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from aiolimiter import AsyncLimiter

from campaign_runner.capacity import pacing_interval


class SenderPacer:
    """One sender's turn-taking: a limiter for the pace, a counter for the capacity.

    Create it inside the running event loop (aiolimiter binds to the loop it first sees).
    ``left`` is reserved when a turn is taken and given back with :meth:`refund` when the
    turn is not used to create an invitation.
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
    ) -> None:
        self.sender_id = sender_id
        # Seconds before the first turn: a new run keeps the spacing from the last
        # invitation of the one before, instead of sending at once.
        self._first_delay = first_delay
        self.capacity = capacity
        self.left = capacity
        self.exhausted = False
        self.interval = pacing_interval(capacity, window_seconds)
        self.jitter = jitter
        self._limiter = AsyncLimiter(1, self.interval) if capacity > 0 else None
        self._rng = rng or random.Random()

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
            if self._first_delay > 0:
                await asyncio.sleep(self._first_delay)
                self._first_delay = 0.0
            await self._limiter.acquire()
            if self.jitter > 0:
                await asyncio.sleep(self._rng.uniform(0.0, self.jitter * self.interval))
        except asyncio.CancelledError:
            self.left += 1
            raise
        # The API may have said "daily limit" while this turn was waiting.
        return not self.exhausted

    def refund(self) -> None:
        """Give back a reserved slot that created no invitation."""
        self.left = min(self.capacity, self.left + 1)

    def exhaust(self) -> None:
        """The API says this sender's daily limit is reached: no more turns this run."""
        self.exhausted = True
        self.left = 0


class Backoff:
    """A pause shared by all senders, for the API's own rate limits."""

    def __init__(
        self,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._until = 0.0

    def _now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    @property
    def paused(self) -> bool:
        """Whether a pause is in force now."""
        return self._until > self._now()

    def push(self, seconds: float) -> None:
        """Pause everyone for at least ``seconds`` from now."""
        self._until = max(self._until, self._now() + seconds)

    async def wait(self) -> None:
        """Return once no pause is in force."""
        while (delay := self._until - self._now()) > 0:
            await self._sleep(delay)

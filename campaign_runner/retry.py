"""Which failures are retried, and how long to wait before the next attempt.

A policy object, separate from the request loop (after inyutin/aiohttp_retry), so that
the rules are in one place and tested without a network:

- retried: the request never left (:attr:`ResultKind.NOT_SENT`), 5xx, 429 rate limits;
- never retried: anything ambiguous (the invitation may exist), 4xx rejections, auth
  failures and the daily connection limit, which the runner handles at the sender level.

Waits are capped exponential back-off with *full jitter* (AWS architecture blog,
"Exponential Backoff And Jitter"): ``uniform(0, min(cap, base * 2**(attempt-1)))``.
A ``Retry-After`` header wins over the computed wait, since the server knows best.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from campaign_runner.client import ConnectResult, ResultKind
from campaign_runner.config import RetrySettings

RETRYABLE = frozenset({ResultKind.NOT_SENT, ResultKind.SERVER_ERROR, ResultKind.RATE_LIMITED})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    @classmethod
    def from_settings(
        cls, settings: RetrySettings, rng: random.Random | None = None
    ) -> RetryPolicy:
        return cls(
            max_attempts=settings.max_attempts,
            base_delay=settings.base_delay_seconds,
            max_delay=settings.max_delay_seconds,
            rng=rng or random.Random(),
        )

    def should_retry(self, result: ConnectResult, attempt: int) -> bool:
        """Whether ``result``, the outcome of attempt number ``attempt`` (1-based), is retried."""
        return result.kind in RETRYABLE and attempt < self.max_attempts

    def delay(self, result: ConnectResult, attempt: int) -> float:
        """Seconds to wait after attempt number ``attempt`` (1-based) failed with ``result``."""
        if result.retry_after is not None:
            return result.retry_after
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return self.rng.uniform(0.0, ceiling)

from __future__ import annotations

import random

import pytest

from campaign_runner.client import ConnectResult, ResultKind, parse_retry_after
from campaign_runner.config import RetrySettings
from campaign_runner.retry import RetryPolicy


@pytest.mark.parametrize(
    ("kind", "retried"),
    [
        (ResultKind.NOT_SENT, True),
        (ResultKind.SERVER_ERROR, True),
        (ResultKind.RATE_LIMITED, True),
        (ResultKind.ACCEPTED, False),
        (ResultKind.REJECTED, False),
        (ResultKind.AUTH, False),
        (ResultKind.DAILY_LIMIT, False),
        # The invitation may exist: re-sending could invite twice.
        (ResultKind.AMBIGUOUS, False),
    ],
)
def test_which_outcomes_are_retried(kind: ResultKind, retried: bool) -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(ConnectResult(kind), attempt=1) is retried


def test_attempts_are_capped() -> None:
    policy = RetryPolicy(max_attempts=3)
    result = ConnectResult(ResultKind.SERVER_ERROR)
    assert [policy.should_retry(result, n) for n in (1, 2, 3, 4)] == [True, True, False, False]


def test_full_jitter_stays_under_the_capped_exponential_ceiling() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=8.0, rng=random.Random(7))
    result = ConnectResult(ResultKind.NOT_SENT)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (9, 8.0)]:
        delays = [policy.delay(result, attempt) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        # Full jitter spreads over the whole range, not just near the ceiling.
        assert min(delays) < ceiling * 0.2 < ceiling * 0.8 < max(delays)


def test_retry_after_wins_over_backoff() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=2.0, rng=random.Random(1))
    result = ConnectResult(ResultKind.RATE_LIMITED, retry_after=30.0)
    assert policy.delay(result, attempt=1) == 30.0


def test_same_seed_same_delays() -> None:
    result = ConnectResult(ResultKind.SERVER_ERROR)
    a = RetryPolicy(rng=random.Random(42))
    b = RetryPolicy(rng=random.Random(42))
    assert [a.delay(result, n) for n in range(1, 6)] == [b.delay(result, n) for n in range(1, 6)]


def test_from_settings() -> None:
    policy = RetryPolicy.from_settings(
        RetrySettings(max_attempts=2, base_delay_seconds=0.5, max_delay_seconds=3)
    )
    assert (policy.max_attempts, policy.base_delay, policy.max_delay) == (2, 0.5, 3.0)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        ("2.5", 2.5),
        ("-3", 0.0),
        ("soon", None),
        # HTTP date, 90 seconds after the reference time below.
        ("Fri, 27 Nov 2026 00:01:30 GMT", 90.0),
        ("Fri, 27 Nov 2026 00:00:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = 1795737600.0  # 2026-11-27T00:00:00Z
    assert parse_retry_after(header, now=now) == expected

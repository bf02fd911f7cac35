"""Capacity accounting: how many invitations each sender may still send, and how fast.

A sender's capacity for this run is the smallest of its own ceilings (``daily_limit``
minus what the workspace sent from it in the last ``window_seconds``, ``weekly_limit``
minus the same over seven windows) and what the API's quota reports as remaining. That
capacity is spread evenly over the window's open hours (the whole window without working
hours, :mod:`campaign_runner.hours`): one invitation per
:func:`pacing_interval`, so a sender never bursts, and a new run keeps the spacing from
the last invitation of the run before (:meth:`CapacityLines.last_sent`). Capacity frees up
as the oldest invitation in the window leaves it (:meth:`CapacityLines.next_renewal`);
:func:`next_slot` says when a sender that cannot send now can send again.

What counts: every line whose invitation (may have) left, ``sent`` and ``unknown``, with
its timestamp; a line whose date was lost counts as recent, so that a sender is never
pushed past its limit because a date was unreadable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaign_runner.hours import WorkingHours
from campaign_runner.ledger.base import WEEK_WINDOWS
from campaign_runner.timestamps import CANONICAL_TS, format_timestamp, parse_timestamp

# Past a renewal by this much, the invitation has left the window (or the quota has
# reset) for certain: stamps have millisecond resolution, and a parsed one may round down.
RENEWAL_STEP = 0.01
# When nobody can say when capacity frees up (a quota spent without a reset time, a
# `rate_limited` status, spending without readable dates), ask again after this long at
# most (or one window, where that is shorter).
RECHECK_SECONDS = 3600.0


def remaining_capacity(daily_limit: int, used_in_window: int, api_remaining: int | None) -> int:
    """Invitations a sender may still send now: own ceiling, capped by the API's word."""
    own = max(0, daily_limit - used_in_window)
    return own if api_remaining is None else min(own, max(0, api_remaining))


def pacing_interval(capacity: int, window_seconds: float) -> float:
    """Seconds between two invitations of a sender that spreads ``capacity`` over a window."""
    return window_seconds / capacity if capacity > 0 else math.inf


@dataclass(frozen=True)
class SenderSpending:
    """What decides when one sender can send again: its limits, what it spent in the
    rolling day and week, the API's word, and when its spending leaves the windows."""

    daily_limit: int
    used_in_window: int
    weekly_limit: int
    used_in_week: int
    api_remaining: int | None = None
    resets_at: float | None = None  # when the API says its quota resets (epoch seconds)
    oldest_in_window: float | None = None  # the day's oldest invitation
    oldest_in_week: float | None = None
    last_sent: float | None = None  # its latest invitation


def next_slot(
    spending: SenderSpending,
    hours: WorkingHours,
    window_seconds: float,
    spread_seconds: float,
    now: float,
) -> tuple[float | None, str]:
    """When the sender's next invitation can leave (epoch seconds), and why not before.

    The latest of: the day's oldest invitation leaving the rolling window, when the day's
    limit is spent; the same for the week; the API's quota reset, when the API says none
    remain; one interval of the sender's own pace (its daily limit over ``spread_seconds``)
    after its last invitation; then moved to the next opening of its working hours. None
    when it never can (a limit of 0). When more than one invitation must leave first (a
    limit lowered under what was spent), this is the earliest moment it may be: plan again
    then. A renewal whose moment is unknown is looked at again after
    :data:`RECHECK_SECONDS` (or a window, where shorter).
    """
    if spending.daily_limit <= 0 or spending.weekly_limit <= 0:
        return None, "its limit is 0"
    recheck = now + min(RECHECK_SECONDS, window_seconds)
    moment, why = now, ""
    if spending.used_in_window >= spending.daily_limit:
        moment, why = _later(
            moment,
            why,
            _leaves(spending.oldest_in_window, window_seconds, recheck),
            "its daily limit is spent until its oldest invitation leaves the window",
        )
    if spending.used_in_week >= spending.weekly_limit:
        week = WEEK_WINDOWS * window_seconds
        moment, why = _later(
            moment,
            why,
            _leaves(spending.oldest_in_week, week, recheck),
            "its weekly limit is spent until its oldest invitation leaves the week",
        )
    if spending.api_remaining is not None and spending.api_remaining <= 0:
        resets = recheck
        if spending.resets_at is not None and spending.resets_at + RENEWAL_STEP > now:
            resets = spending.resets_at + RENEWAL_STEP
        moment, why = _later(moment, why, resets, "the API reports its quota spent until it resets")
    if spending.last_sent is not None:
        paced = spending.last_sent + pacing_interval(spending.daily_limit, spread_seconds)
        moment, why = _later(moment, why, paced, "it keeps its pace after its last invitation")
    opens = hours.next_open(moment)
    if opens > moment:
        moment, why = opens, f"its working hours open {hours.describe(moment)}"
    return moment, why


def _leaves(oldest: float | None, window: float, recheck: float) -> float:
    return recheck if oldest is None else oldest + window + RENEWAL_STEP


def _later(moment: float, why: str, candidate: float, because: str) -> tuple[float, str]:
    return (candidate, because) if candidate > moment else (moment, why)


@dataclass(frozen=True)
class CapacityLines:
    """The invitations that count against capacity: ``sender_id`` and ``timestamp`` each,
    timestamps as written (the journal's own are canonical ISO 8601 UTC with ms)."""

    table: pa.Table

    def used(self, since_epoch: float, *, count_undated: bool = True) -> dict[str, int]:
        """Per ``sender_id``, how many lines since ``since_epoch`` used capacity.

        Counts every line whose timestamp is at or after ``since_epoch`` (millisecond
        resolution). A line with
        a missing or unreadable timestamp counts when ``count_undated`` (the default: never
        push a sender past its limit because a date was lost).
        """
        senders, stamps = self.table["sender_id"], self.table["timestamp"]
        if len(stamps) == 0:
            return {}
        recent = _at_or_after(stamps, since_epoch, count_undated)
        counts = pc.value_counts(pc.filter(senders, recent))
        return {str(item["values"]): int(item["counts"]) for item in counts.to_pylist()}

    def last_sent(self, since_epoch: float) -> dict[str, float]:
        """Per ``sender_id``, when (epoch seconds) its latest capacity-using line at or
        after ``since_epoch`` was written. Only the journal's own timestamps are read."""
        lines = self.table.filter(pc.match_substring_regex(self.table["timestamp"], CANONICAL_TS))
        since = format_timestamp(since_epoch)
        latest = lines.group_by("sender_id").aggregate([("timestamp", "max")]).to_pylist()
        return {
            str(item["sender_id"]): parse_timestamp(str(item["timestamp_max"]))
            for item in latest
            if str(item["timestamp_max"]) >= since
        }

    def oldest(self, since_epoch: float) -> dict[str, float]:
        """Per ``sender_id``, when (epoch seconds) its oldest capacity-using line at or
        after ``since_epoch`` was written: the first to leave the window. Only the
        journal's own timestamps are read; a line dated otherwise leaves unseen, so the
        sender may free up earlier than this says, never later."""
        lines = self.table.filter(pc.match_substring_regex(self.table["timestamp"], CANONICAL_TS))
        lines = lines.filter(
            pc.greater_equal(lines["timestamp"], pa.scalar(format_timestamp(since_epoch)))
        )
        oldest = lines.group_by("sender_id").aggregate([("timestamp", "min")]).to_pylist()
        return {
            str(item["sender_id"]): parse_timestamp(str(item["timestamp_min"])) for item in oldest
        }

    def next_renewal(self, since_epoch: float, window_seconds: float) -> float | None:
        """When capacity next frees up: the oldest capacity-using line at or after
        ``since_epoch`` plus ``window_seconds`` (epoch seconds), or None if there is none.

        Lines without a readable timestamp never leave the window and are ignored here.
        """
        stamps = self.table["timestamp"]
        if len(stamps) == 0:
            return None
        recent = pc.filter(stamps, _at_or_after(stamps, since_epoch, count_undated=False))
        if len(recent) == 0:
            return None
        # Canonical stamps sort as strings, so only their minimum needs parsing.
        canonical = pc.match_substring_regex(recent, CANONICAL_TS)
        candidates = pc.filter(recent, pc.invert(canonical)).to_pylist()
        if pc.any(canonical).as_py():
            candidates.append(pc.min(pc.filter(recent, canonical)).as_py())
        parsed = pd.to_datetime(
            pd.Series(candidates, dtype=object), utc=True, format="ISO8601", errors="coerce"
        ).dropna()
        if parsed.empty:
            return None
        oldest: pd.Timestamp = parsed.min()
        return float(oldest.timestamp()) + window_seconds


def _at_or_after(stamps: pa.Array, since_epoch: float, count_undated: bool) -> pa.Array:
    # Canonical stamps compare as strings (fixed width, UTC); others are parsed.
    canonical = pc.match_substring_regex(stamps, CANONICAL_TS)
    result = pc.greater_equal(stamps, pa.scalar(format_timestamp(since_epoch)))
    if pc.all(canonical).as_py():
        return result
    odd = np.flatnonzero(~canonical.to_numpy(zero_copy_only=False))
    parsed = pd.to_datetime(
        pd.Series(stamps.take(pa.array(odd)).to_pylist(), dtype=object),
        utc=True,
        format="ISO8601",
        errors="coerce",
    )
    since = pd.Timestamp(int(since_epoch * 1000), unit="ms", tz="UTC")
    odd_ok = np.where(parsed.isna().to_numpy(), count_undated, (parsed >= since).to_numpy())
    values = result.to_numpy(zero_copy_only=False).copy()
    values[odd] = odd_ok
    return pa.array(values, pa.bool_())

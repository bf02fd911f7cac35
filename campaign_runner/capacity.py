"""Capacity accounting: how many invitations each sender may still send, and how fast.

A sender's capacity for this run is the smallest of its own ceilings (``daily_limit``
minus what the workspace sent from it in the last ``window_seconds``, ``weekly_limit``
minus the same over seven windows) and what the API's quota reports as remaining. That
capacity is spread evenly over the window's open hours (the whole window without working
hours, :mod:`campaign_runner.hours`): one invitation per
:func:`pacing_interval`, so a sender never bursts, and a new run keeps the spacing from
the last invitation of the run before (:meth:`CapacityLines.last_sent`). Capacity frees up
as the oldest invitation in the window leaves it (:meth:`CapacityLines.next_renewal`).

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

from campaign_runner.timestamps import CANONICAL_TS, format_timestamp, parse_timestamp


def remaining_capacity(daily_limit: int, used_in_window: int, api_remaining: int | None) -> int:
    """Invitations a sender may still send now: own ceiling, capped by the API's word."""
    own = max(0, daily_limit - used_in_window)
    return own if api_remaining is None else min(own, max(0, api_remaining))


def pacing_interval(capacity: int, window_seconds: float) -> float:
    """Seconds between two invitations of a sender that spreads ``capacity`` over a window."""
    return window_seconds / capacity if capacity > 0 else math.inf


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

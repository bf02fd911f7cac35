"""Working hours: when a sender's invitations may leave.

``pacing.hours`` (``"09:00-18:00"``; default the whole day), ``pacing.days`` (``"mon-fri"``,
``"mon,wed,fri"``; default every day) and ``pacing.timezone`` (an IANA name; default the
machine's), each overridable per sender. A span that ends before it starts runs past
midnight (``"22:00-02:00"``) and belongs to the day it starts on. Times are wall-clock times
in the timezone, so a window keeps its local hours across daylight-saving changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class WorkingHours:
    """Open from ``start`` to ``end`` (local times) on ``days`` (0 = Monday)."""

    start: time = time(0, 0)
    end: time = time(0, 0)  # equal to start: the whole day
    days: frozenset[int] = frozenset(range(7))
    zone: tzinfo | None = None  # None: the machine's local timezone

    @property
    def always(self) -> bool:
        return self.start == self.end and len(self.days) == 7

    @property
    def open_fraction(self) -> float:
        """The share of an open day that is open: what a day's invitations spread over."""
        if self.start == self.end:
            return 1.0
        span = _minutes(self.end) - _minutes(self.start)
        return (span % (24 * 60)) / (24 * 60)

    def is_open(self, epoch: float) -> bool:
        return self.always or self._span_at(epoch) is not None

    def next_open(self, epoch: float) -> float:
        """The moment (epoch seconds) the next span opens; ``epoch`` itself when open."""
        if self.is_open(epoch):
            return epoch
        local = self._local(epoch).date()
        for offset in range(8):
            opens, _ = self._span_of(local + timedelta(days=offset))
            if opens is not None and opens > epoch:
                return opens
        raise ValueError("working hours with no open day")  # pragma: no cover - parsed away

    def describe(self, epoch: float) -> str:
        """``Mon 09:00 Europe/Berlin``: when the next window opens, for people."""
        moment = datetime.fromtimestamp(self.next_open(epoch), self.zone)
        name = getattr(self.zone, "key", None) or moment.strftime("%Z") or "local time"
        return f"{moment:%a %H:%M} {name}"

    def _local(self, epoch: float) -> datetime:
        return datetime.fromtimestamp(epoch, self.zone)

    def _span_of(self, day: date) -> tuple[float | None, float]:
        """The open span starting on local date ``day`` (None when that day is closed)."""
        if day.weekday() not in self.days:
            return None, 0.0
        opens = datetime.combine(day, self.start, self.zone)
        length = (_minutes(self.end) - _minutes(self.start)) % (24 * 60) or 24 * 60
        closes = opens + timedelta(minutes=length)
        # Local wall times: timestamp() resolves them in the zone (DST included).
        return opens.timestamp(), closes.timestamp()

    def _span_at(self, epoch: float) -> tuple[float, float] | None:
        local = self._local(epoch).date()
        for back in (0, 1):  # a span from yesterday may run past midnight
            opens, closes = self._span_of(local - timedelta(days=back))
            if opens is not None and opens <= epoch < closes:
                return opens, closes
        return None


def parse_hours(text: str | None, where: str) -> tuple[time, time]:
    """``"09:00-18:00"`` -> (start, end); ValueError naming ``where`` when malformed."""
    if text is None or not text.strip():
        return time(0, 0), time(0, 0)
    match = _SPAN.match(text)
    if not match:
        raise ValueError(f"{where}: {text!r} is not a span like '09:00-18:00'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or (h1 == 24 and m1) or (h2 == 24 and m2):
        raise ValueError(f"{where}: {text!r} holds a time that does not exist")
    return time(h1 % 24, m1), time(h2 % 24, m2)


def parse_days(text: str | None, where: str) -> frozenset[int]:
    """``"mon-fri"``, ``"mon,wed,fri"``, ``"sat-sun"`` -> weekday numbers (0 = Monday)."""
    if text is None or not text.strip():
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        try:
            a = DAYS.index(first[:3])
            b = DAYS.index(last[:3]) if last else a
        except ValueError:
            raise ValueError(
                f"{where}: {text!r}: days are mon, tue, wed, thu, fri, sat, sun"
            ) from None
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(days)


def parse_zone(name: str | None, where: str) -> tzinfo | None:
    """An IANA timezone, or None for the machine's own."""
    if name is None or not name.strip():
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{where}: {name!r} is not an IANA timezone (e.g. Europe/Berlin)"
        ) from None


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute

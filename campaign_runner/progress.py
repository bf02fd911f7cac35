"""Progress display for ``run``: part of the terminal layer, used only by ``cli.py``.

On a terminal: a tqdm bar with per-sender counts and an ETA. Elsewhere (cron, CI, a
pipe): a plain log line at most every ``interval`` seconds, and one at the end, so that
a log file shows a campaign's progress without carriage-return noise.

``run --wait`` uses one display for all its rounds: each round's :meth:`start` adds to it,
and :meth:`waiting` says, while it idles, when the next invitation leaves and how many
rows are left (on the bar; in a log, one line each time that changes).
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TextIO

from tqdm import tqdm


class BarProgress:
    """tqdm bar: ``sending: 40%|████  | 8/20 [00:16<00:24] sender_a=4 sender_b=4 failed=0``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._bar: tqdm[None] | None = None
        self._per_sender: Counter[str] = Counter()
        self._statuses: Counter[str] = Counter()

    def start(self, total: int, sender_ids: list[str]) -> None:
        for sender_id in sender_ids:
            self._per_sender.setdefault(sender_id, 0)
        if self._bar is None:
            self._bar = tqdm(total=total, desc="sending", unit="inv", file=self._stream, leave=True)
            return
        self._bar.total = self._bar.n + total  # a round of run --wait: the same bar goes on
        self._bar.set_description("sending", refresh=False)
        self._bar.set_postfix(self._postfix(), refresh=True)

    def advance(self, sender_id: str, status: str) -> None:
        self._per_sender[sender_id] += 1
        self._statuses[status] += 1
        if self._bar is not None:
            self._bar.set_postfix(self._postfix(sender_id), refresh=False)
            self._bar.update(1)

    def waiting(self, until: float, left: int) -> None:
        """The bar says ``waiting`` and ``next invitation at Mon 2026-11-30 09:00 (CET);
        12 left``."""
        if self._bar is None:
            self._bar = tqdm(total=left, desc="waiting", unit="inv", file=self._stream, leave=True)
        self._bar.total = self._bar.n + left
        self._bar.set_description("waiting", refresh=False)
        self._bar.set_postfix_str(f"next invitation at {moment_text(until)}; {left} left")

    def _postfix(self, latest: str = "") -> dict[str, int]:
        return {**_senders_shown(self._per_sender, latest), **self._statuses}

    def notice(self, message: str) -> None:
        if self._bar is not None:
            self._bar.write(message, file=self._stream)
        else:
            print(message, file=self._stream)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class LogProgress:
    """Plain periodic lines for logs: ``progress: 8/20 sent=7 failed=1 (sender_a=4 ...)``."""

    def __init__(
        self,
        stream: TextIO | None = None,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream or sys.stderr
        self._interval = interval
        self._clock = clock
        self._total = 0
        self._done = 0
        self._last = 0.0
        self._per_sender: Counter[str] = Counter()
        self._statuses: Counter[str] = Counter()
        self._waiting = ""  # the last waiting line written

    def start(self, total: int, sender_ids: list[str]) -> None:
        self._total = self._done + total  # a round of run --wait adds to the earlier ones
        self._last = self._clock()
        for sender_id in sender_ids:
            self._per_sender.setdefault(sender_id, 0)
        self._waiting = ""
        self._write()

    def advance(self, sender_id: str, status: str) -> None:
        self._done += 1
        self._per_sender[sender_id] += 1
        self._statuses[status] += 1
        if self._clock() - self._last >= self._interval:
            self._write()

    def notice(self, message: str) -> None:
        print(message, file=self._stream, flush=True)

    def waiting(self, until: float, left: int) -> None:
        """``waiting: next invitation at Mon 2026-11-30 09:00 (CET); 12 left``, once."""
        line = f"waiting: next invitation at {moment_text(until)}; {left} left"
        if line != self._waiting:
            self._waiting = line
            print(line, file=self._stream, flush=True)

    def close(self) -> None:
        if self._total:
            self._write()
            self._total = 0

    def _write(self) -> None:
        self._last = self._clock()
        statuses = " ".join(f"{k}={v}" for k, v in sorted(self._statuses.items()))
        shown = _senders_shown(self._per_sender)
        senders = " ".join(f"{k}={v}" for k, v in sorted(shown.items()))
        senders = f" ({senders})" if senders else ""
        line = f"progress: {self._done}/{self._total} {statuses}{senders}".replace("  ", " ")
        print(line, file=self._stream, flush=True)


# Beyond this many senders, progress shows how many sent, not each one's count: an agency's
# thousand accounts would make every line a page long (and every update cost as much).
SENDERS_SHOWN = 8


def _senders_shown(per_sender: Counter[str], latest: str = "") -> Mapping[str, int]:
    """Each sender's count, or (with many senders) the latest one's alone."""
    if len(per_sender) <= SENDERS_SHOWN:
        return per_sender
    return {latest: per_sender[latest]} if latest else {}


def moment_text(epoch: float) -> str:
    """``Mon 2026-11-30 09:00 (CET)``: a moment in the machine's local time and zone,
    rounded up to the minute so that it is never early."""
    moment = datetime.fromtimestamp(math.ceil(epoch / 60) * 60).astimezone()
    return f"{moment:%a %Y-%m-%d %H:%M} ({moment.tzname()})"

"""Progress display for ``run``: part of the terminal layer, used only by ``cli.py``.

On a terminal: a tqdm bar with per-sender counts and an ETA. Elsewhere (cron, CI, a
pipe): a plain log line at most every ``interval`` seconds, and one at the end, so that
a log file shows a campaign's progress without carriage-return noise.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
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
        self._per_sender = Counter({s: 0 for s in sender_ids})
        self._bar = tqdm(total=total, desc="sending", unit="inv", file=self._stream, leave=True)

    def advance(self, sender_id: str, status: str) -> None:
        self._per_sender[sender_id] += 1
        self._statuses[status] += 1
        if self._bar is not None:
            postfix = {**_senders_shown(self._per_sender, sender_id), **self._statuses}
            self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(1)

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

    def start(self, total: int, sender_ids: list[str]) -> None:
        self._total = total
        self._last = self._clock()
        self._per_sender = Counter({s: 0 for s in sender_ids})
        self._write()

    def advance(self, sender_id: str, status: str) -> None:
        self._done += 1
        self._per_sender[sender_id] += 1
        self._statuses[status] += 1
        if self._clock() - self._last >= self._interval:
            self._write()

    def notice(self, message: str) -> None:
        print(message, file=self._stream, flush=True)

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

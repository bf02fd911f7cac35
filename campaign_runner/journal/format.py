"""The results file's format: columns, status words, timestamps, and the one cell encoder.

A contract with users, their spreadsheets and other tools:

* UTF-8 without a byte-order mark (one is accepted on read), ``\\n`` line endings (``\\r\\n``
  is accepted on read), quoting by the :mod:`csv` rules (``QUOTE_MINIMAL``, plus a bare CR),
  so notes and API messages with commas, quotes and newlines round-trip.
* Header ``row,linkedin_url,sender_id,status,request_id,error,attempts,timestamp`` followed
  by any extra columns. The header is fixed when the file is created; an existing header in
  another order is kept and written in its order.
* ``timestamp`` is ISO 8601 UTC with milliseconds (``2026-11-27T10:00:00.123Z``).
* Every cell a spreadsheet would execute gets a leading apostrophe (:mod:`csvio`). Reading
  removes that apostrophe again (from every column), which is also what a spreadsheet shows,
  so ``sender_id`` ``@team`` written and read back is ``@team``. The one ambiguity: a value
  that *really* starts with an apostrophe followed by ``= + - @`` tab or CR loses the
  apostrophe on read. ``linkedin_url`` is a normalised ``https`` URL and is never escaped.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from campaign_runner.csvio import FORMULA_START_CLASS, escape_cell
from campaign_runner.errors import JournalError
from campaign_runner.timestamps import CANONICAL_TS, format_timestamp, parse_timestamp

__all__ = ["CANONICAL_TS", "format_timestamp", "parse_timestamp"]  # re-exported, see timestamps

JOURNAL_COLUMNS: tuple[str, ...] = (
    "row",
    "linkedin_url",
    "sender_id",
    "status",
    "request_id",
    "error",
    "attempts",
    "timestamp",
)

PENDING = "pending"
SENT = "sent"
ALREADY_CONNECTED = "already_connected"
FAILED = "failed"
UNKNOWN = "unknown"
INVALID = "invalid"
DUPLICATE = "duplicate"
# Taken for sending but certainly not sent (daily limit reached, key rejected, stopped
# before a retry): sent by a later run like a row never tried.
DEFERRED = "deferred"
# On a do-not-contact list: never invited (a verdict on the row, derived again each run).
EXCLUDED = "excluded"
# Invited (or maybe invited) by another campaign of the workspace: not invited again.
ALREADY_INVITED = "already_invited"

STATUSES: tuple[str, ...] = (
    PENDING,
    SENT,
    ALREADY_CONNECTED,
    FAILED,
    UNKNOWN,
    INVALID,
    DUPLICATE,
    DEFERRED,
    EXCLUDED,
    ALREADY_INVITED,
)
FINAL_STATUSES: frozenset[str] = frozenset(STATUSES) - {PENDING, DEFERRED}
# Outcomes where an invitation (may have) left: they use up the sender's daily capacity.
CAPACITY_STATUSES: frozenset[str] = frozenset({SENT, UNKNOWN})
# Verdicts about a spreadsheet row rather than about the prospect behind it: derived again
# by every run, so they never hide what was sent to the prospect.
ROW_VERDICTS: frozenset[str] = frozenset({INVALID, DUPLICATE, EXCLUDED, ALREADY_INVITED})


@dataclass(frozen=True)
class JournalRecord:
    """One line of the results journal.

    ``timestamp`` is filled from the journal's clock when empty; ``extra`` holds values for
    extra columns declared when the journal was opened (missing ones are written empty).
    """

    row: int
    linkedin_url: str
    sender_id: str
    status: str
    request_id: str = ""
    error: str = ""
    attempts: int = 0
    timestamp: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown journal status {self.status!r}; expected one of {STATUSES}")


# --------------------------------------------------------------------------- header


def normalise_name(name: str) -> str:
    """A header name as the journal knows it."""
    # Hand-made headers often carry stray spaces or capitals; extras keep their spelling.
    cleaned = name.strip()
    return cleaned.lower() if cleaned.lower() in JOURNAL_COLUMNS else cleaned


def parse_header(path: Path, raw: bytes) -> tuple[str, ...]:
    """The normalised column names of a header line; raises on bad UTF-8 or repeats."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JournalError(f"{path}:1: header is not valid UTF-8") from exc
    fields = next(csv.reader([text.rstrip("\r\n")]), [])
    names = tuple(normalise_name(name) for name in fields)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise JournalError(f"{path}:1: column {dupes[0]!r} appears more than once in the header")
    return names


def canonical_header(extra: Sequence[str] = ()) -> bytes:
    """The header line a new results file gets."""
    return encode_rows([[*JOURNAL_COLUMNS, *extra]])


# --------------------------------------------------------------------------- cells


def quote(cell: str) -> str:
    """A cell quoted as the format requires (no formula escaping)."""
    # QUOTE_MINIMAL, plus a bare CR: Python 3.11's csv writer leaves "\r" unquoted when the
    # line terminator is "\n", and every reader then splits the record there.
    if "," in cell or '"' in cell or "\n" in cell or "\r" in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


# A cell matching this may need an apostrophe (csvio.escape_cell) or quotes (quote).
_NEEDS_CARE = re.compile("^" + FORMULA_START_CLASS + r'|[,"\n\r]')
_NEEDS_QUOTES = re.compile(r'[,"\n\r]')


def cell(value: str) -> str:
    """The one cell encoder: ``quote(escape_cell(value))``, with one regex search for the
    common clean value."""
    if _NEEDS_CARE.search(value) is None:
        return value
    return quote(escape_cell(value))


def encode_rows(rows: Sequence[Sequence[str]]) -> bytes:
    """Lines of already-escaped cells, quoted and joined."""
    return "".join(",".join(map(quote, row)) + "\n" for row in rows).encode("utf-8")


class LineEncoder:
    """Turns records into the exact bytes of their lines, for one file's header."""

    def __init__(self, path: Path, columns: tuple[str, ...], clock: Callable[[], float]) -> None:
        self._path = path
        self._columns = columns
        self._clock = clock
        self._extra = frozenset(columns) - frozenset(JOURNAL_COLUMNS)
        # The fast encoder writes the standard columns first, then the extras in order.
        base_first = columns[: len(JOURNAL_COLUMNS)] == JOURNAL_COLUMNS
        self._extra_order = columns[len(JOURNAL_COLUMNS) :] if base_first else None
        self._stamp_cache: tuple[int, str] = (-1 << 62, "")

    def encode(self, records: Sequence[JournalRecord]) -> bytes:
        """The lines of ``records``, timestamps taken now where a record has none."""
        if self._extra_order is None:  # a hand-made header order: the careful path
            return encode_rows([self._cells(r) for r in records])
        return "".join([self._line(r) for r in records]).encode("utf-8")

    def _cells(self, record: JournalRecord) -> list[str]:
        # The careful encoder: every cell escaped. The fast one (_line) must equal it.
        self._check_extra(record)
        values = {
            "row": str(record.row),
            "linkedin_url": record.linkedin_url,
            "sender_id": record.sender_id,
            "status": record.status,
            "request_id": record.request_id,
            "error": record.error,
            "attempts": str(record.attempts),
            "timestamp": record.timestamp or format_timestamp(self._clock()),
            **record.extra,
        }
        return [escape_cell(values.get(name, "")) for name in self._columns]

    def _check_extra(self, record: JournalRecord) -> None:
        if record.extra and not self._extra.issuperset(record.extra):
            unknown = sorted(set(record.extra) - self._extra)
            raise ValueError(f"{self._path}: no extra column(s) {unknown} in the header")

    def _line(self, record: JournalRecord) -> str:
        """One encoded line, skipping the checks that cannot change a cell.

        ``row``/``attempts`` are integers and ``status`` a known word, so none can start a
        formula or need quotes; our own timestamps and plain ``https://`` URLs neither.
        """
        self._check_extra(record)
        stamp = record.timestamp
        stamp = cell(stamp) if stamp else self._stamp(self._clock())
        url = record.linkedin_url
        if not url.startswith("https://") or _NEEDS_QUOTES.search(url):
            url = cell(url)
        line = (
            f"{record.row},{url},{cell(record.sender_id)},{record.status},"
            f"{cell(record.request_id)},{cell(record.error)},{record.attempts},{stamp}"
        )
        extra = record.extra
        for name in self._extra_order or ():
            line += "," + cell(extra.get(name, ""))
        return line + "\n"

    def _stamp(self, epoch: float) -> str:
        # Same result as format_timestamp; only the milliseconds change within a second.
        millis = int(epoch * 1000)
        second, ms = divmod(millis, 1000)
        cached = self._stamp_cache
        if cached[0] != second:
            moment = datetime.fromtimestamp(second, UTC)
            cached = self._stamp_cache = (second, f"{moment:%Y-%m-%dT%H:%M:%S}.")
        return f"{cached[1]}{ms:03d}Z"

"""The results journal: an append-only CSV that says what happened to every prospect.

Format (a contract with users, their spreadsheets and other tools):

* UTF-8 without a byte-order mark (one is accepted on read), ``\\n`` line endings (``\\r\\n``
  is accepted on read), quoting by the :mod:`csv` module (``QUOTE_MINIMAL``), so notes and
  API messages with commas, quotes and newlines round-trip.
* Header ``row,linkedin_url,sender_id,status,request_id,error,attempts,timestamp`` followed
  by any extra columns. The header is fixed when the file is created; an existing header in
  another order is kept and written in its order.
* ``timestamp`` is ISO 8601 UTC with milliseconds (``2026-11-27T10:00:00.123Z``).
* Every cell a spreadsheet would execute gets a leading apostrophe (:mod:`csvio`). Reading
  removes that apostrophe again (from every column), which is also what a spreadsheet shows,
  so ``sender_id`` ``@team`` written and read back is ``@team``. The one ambiguity: a value
  that *really* starts with an apostrophe followed by ``= + - @`` tab or CR loses the
  apostrophe on read. ``linkedin_url`` is a normalised ``https`` URL and is never escaped.

Durability: each :meth:`Journal.append` is one ``write`` followed by ``fdatasync`` before it
returns; :meth:`Journal.append_many` shares one write and one sync between several records,
and so do records queued together by :meth:`Journal.append_async` (which waits for its
record) and :meth:`Journal.append_nowait` (which does not): one writer thread takes whatever
is queued, writes it and syncs it (group commit). A crash can therefore only tear the *last*
record. On read a torn last record is ignored (``JournalState.torn_last_line``); on open it
is cut off so the next record starts on a clean line. A last line without its newline that is
nevertheless a complete record (a file saved by hand) is kept, and terminated on open.

Identity: ``linkedin_url`` is the prospect across runs; the latest line per URL wins.
``invalid`` and ``duplicate`` are verdicts about a spreadsheet *row*, so they never hide a
send outcome (``pending``/``sent``/``already_connected``/``failed``/``unknown``) of the same
URL: a row that duplicates an already-sent prospect must not make that prospect look unsent.
Lines with an empty ``linkedin_url`` (a cell that was not a URL at all) are keyed by ``row``.

Locking: :meth:`Journal.open` takes an exclusive ``flock`` on the results file itself; the
kernel drops it when the process dies, so ``kill -9`` leaves no stale lock.
"""

from __future__ import annotations

import asyncio
import csv
import fcntl
import io
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from campaign_runner.csvio import FORMULA_START_CLASS, PLAIN_NUMBER, escape_cell
from campaign_runner.errors import JournalError, JournalLockedError

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

STATUSES: tuple[str, ...] = (
    PENDING,
    SENT,
    ALREADY_CONNECTED,
    FAILED,
    UNKNOWN,
    INVALID,
    DUPLICATE,
    DEFERRED,
)
FINAL_STATUSES: frozenset[str] = frozenset(STATUSES) - {PENDING, DEFERRED}
# Outcomes where an invitation (may have) left: they use up the sender's daily capacity.
CAPACITY_STATUSES: frozenset[str] = frozenset({SENT, UNKNOWN})
# Verdicts about a spreadsheet row rather than about the prospect behind it.
ROW_VERDICTS: frozenset[str] = frozenset({INVALID, DUPLICATE})

_REQUIRED = ("linkedin_url", "status")
_INT_COLUMNS = ("row", "attempts")
_CANONICAL_TS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"
_ESCAPED = "^'" + FORMULA_START_CLASS
_ESCAPED_NUMBER = "^'" + PLAIN_NUMBER + "$"
# A torn record is one record: a "torn" tail larger than this is a broken quote instead.
_MAX_TORN_BYTES = 1 << 20
_RECORD_START = re.compile(rb"\n\d+,https?://")
_CHUNK = 1 << 24


def format_timestamp(epoch: float) -> str:
    """Format seconds since the epoch as the journal's ISO 8601 UTC timestamp with ms."""
    millis = int(epoch * 1000)
    moment = datetime.fromtimestamp(millis // 1000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}Z"


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


# --------------------------------------------------------------------------- file layout


@dataclass(frozen=True)
class _Layout:
    """Where the header ends and where the trustworthy records end."""

    columns: tuple[str, ...]  # normalised header names
    header_end: int  # offset of the first data byte
    data_end: int  # offset after the last complete record
    torn: bool  # bytes after data_end are a torn record (or a torn header)
    unterminated: bool  # the last record is complete but lacks its newline


def _normalise_name(name: str) -> str:
    # Hand-made headers often carry stray spaces or capitals; extras keep their spelling.
    cleaned = name.strip()
    return cleaned.lower() if cleaned.lower() in JOURNAL_COLUMNS else cleaned


def _parse_header(path: Path, raw: bytes) -> tuple[str, ...]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JournalError(f"{path}:1: header is not valid UTF-8") from exc
    fields = next(csv.reader([text.rstrip("\r\n")]), [])
    names = tuple(_normalise_name(name) for name in fields)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise JournalError(f"{path}:1: column {dupes[0]!r} appears more than once in the header")
    return names


def _canonical_header(extra: Sequence[str] = ()) -> bytes:
    return _encode_rows([[*JOURNAL_COLUMNS, *extra]])


def _count_quotes(f: io.BufferedReader, end: int) -> int:
    # Quote parity says whether an offset is inside a quoted field ("" keeps the parity).
    f.seek(0)
    buf = bytearray(_CHUNK)
    total, left = 0, end
    while left > 0:
        got = f.readinto(buf)
        if not got:
            break
        used = min(got, left)
        total += int(np.count_nonzero(np.frombuffer(buf, np.uint8, used) == 34))
        left -= used
    return total


def _line_at(f: io.BufferedReader, offset: int) -> int:
    """1-based line number of the byte at ``offset``."""
    f.seek(0)
    return f.read(offset).count(b"\n") + 1


def _layout(path: Path, f: io.BufferedReader, size: int) -> _Layout:
    """Read the header and classify the end of the file (clean, torn or unterminated)."""
    f.seek(0)
    head = f.read(min(size, 1 << 16))
    newline = head.find(b"\n")
    if newline < 0:
        return _headerless_layout(path, head, size)
    columns = _parse_header(path, head[: newline + 1])
    header_end = newline + 1
    f.seek(size - 1)
    ends_clean = f.read(1) == b"\n"
    quotes = _count_quotes(f, size)
    if ends_clean and quotes % 2 == 0:
        return _Layout(columns, header_end, size, torn=False, unterminated=False)
    start = _last_record_start(path, f, size, header_end, quotes)
    f.seek(start)
    tail = f.read(size - start)
    if quotes % 2 == 0 and _is_complete_record(tail, columns):
        return _Layout(columns, header_end, size, torn=False, unterminated=True)
    if len(tail) > _MAX_TORN_BYTES or _RECORD_START.search(tail):
        line = _line_at(f, start)
        raise JournalError(f"{path}:{line}: unterminated quoted field")
    return _Layout(columns, header_end, start, torn=True, unterminated=False)


def _headerless_layout(path: Path, head: bytes, size: int) -> _Layout:
    # No newline at all: either a header torn during creation, or a header saved without
    # its newline (then there are no records).
    canonical = _canonical_header()
    if size < len(canonical) and canonical.startswith(head.removeprefix(b"\xef\xbb\xbf")):
        return _Layout((), 0, 0, torn=True, unterminated=False)
    columns = _parse_header(path, head)
    return _Layout(columns, size, size, torn=False, unterminated=True)


def _last_record_start(
    path: Path, f: io.BufferedReader, size: int, header_end: int, quotes: int
) -> int:
    """Offset where the last record begins: after the last newline outside quotes."""
    window_start = max(header_end, size - _MAX_TORN_BYTES - 1)
    f.seek(window_start)
    window = f.read(size - window_start)
    pos = len(window)
    while True:
        pos = window.rfind(b"\n", 0, pos)
        if pos < 0:
            if window_start == header_end:
                return header_end
            raise JournalError(f"{path}:{_line_at(f, window_start)}: unterminated quoted field")
        after = window.count(b'"', pos)
        if (quotes - after) % 2 == 0:
            return window_start + pos + 1


def _is_complete_record(tail: bytes, columns: tuple[str, ...]) -> bool:
    try:
        text = tail.decode("utf-8")
    except UnicodeDecodeError:
        return False
    records = list(csv.reader(io.StringIO(text, newline="")))
    if len(records) != 1 or len(records[0]) != len(columns) or "status" not in columns:
        return False
    return records[0][columns.index("status")].strip().lower() in STATUSES


# --------------------------------------------------------------------------- writing


def _quote(cell: str) -> str:
    # QUOTE_MINIMAL, plus a bare CR: Python 3.11's csv writer leaves "\r" unquoted when the
    # line terminator is "\n", and every reader then splits the record there.
    if "," in cell or '"' in cell or "\n" in cell or "\r" in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


# A cell matching this may need an apostrophe (csvio.escape_cell) or quotes (_quote).
_NEEDS_CARE = re.compile("^" + FORMULA_START_CLASS + r'|[,"\n\r]')
_NEEDS_QUOTES = re.compile(r'[,"\n\r]')


def _cell(value: str) -> str:
    """``_quote(escape_cell(value))``, with one regex search for the common clean value."""
    if _NEEDS_CARE.search(value) is None:
        return value
    return _quote(escape_cell(value))


def _encode_rows(rows: Sequence[Sequence[str]]) -> bytes:
    return "".join(",".join(map(_quote, row)) + "\n" for row in rows).encode("utf-8")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(path: Path) -> None:
    # Makes a new or replaced directory entry durable, not only the file's contents.
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_holder(fd: int) -> int | None:
    """Best effort (Linux): the pid holding a flock on ``fd``'s file, from /proc/locks."""
    st = os.fstat(fd)
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == wanted:
            return int(parts[4]) if parts[4].isdigit() else None
    return None


def _lock(fd: int, path: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _lock_holder(fd)
        who = f" (pid {holder})" if holder is not None else ""
        raise JournalLockedError(
            f"{path}: another campaign-runner run is using this results file{who}"
        ) from None


# A queued record's bytes, and the future of its awaiting caller (None: not awaited).
_Queued = tuple[bytes, "asyncio.Future[None] | None"]


class Journal:
    """An open, locked results journal that appends durable records.

    Create it with :meth:`Journal.open`. Appends from plain code (:meth:`append`,
    :meth:`append_many`) and from coroutines (:meth:`append_async`) may be mixed; each path
    keeps its own call order.
    """

    def __init__(
        self, path: Path, fd: int, columns: tuple[str, ...], fsync: bool, clock: Callable[[], float]
    ) -> None:
        self.path = path
        self.columns = columns
        self._fd = fd
        self._fsync = fsync
        self._clock = clock
        self._extra = frozenset(columns) - frozenset(JOURNAL_COLUMNS)
        self._write_lock = threading.Lock()
        self._broken: OSError | None = None
        self._closed = False
        self._lost: Exception | None = None  # a failed append_nowait nobody was told of yet
        # Group commit: records queued for the writer thread, and how many await settling.
        self._inbox: queue.SimpleQueue[_Queued | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsettled = 0
        # The fast encoder writes the standard columns first, then the extras in order.
        base_first = columns[: len(JOURNAL_COLUMNS)] == JOURNAL_COLUMNS
        self._extra_order = columns[len(JOURNAL_COLUMNS) :] if base_first else None
        self._stamp_cache: tuple[int, str] = (-1 << 62, "")

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        extra_columns: Sequence[str] = (),
        fsync: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> Journal:
        """Open (creating if needed) and lock the results file at ``path``.

        A missing or empty file gets the header ``JOURNAL_COLUMNS + extra_columns``. An
        existing file keeps its header when it has every needed column; otherwise it is
        rewritten once (atomically) with the missing columns added. A torn last record is
        cut off. Raises :class:`JournalLockedError` if another process (or another open
        journal in this process) holds the file, :class:`JournalError` if it is unusable.
        """
        path = Path(path)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise JournalError(f"{path}: cannot open the results file: {exc.strerror}") from exc
        try:
            _lock(fd, path)
            fd, columns = _prepare(path, fd, tuple(extra_columns), fsync)
        except OSError as exc:
            os.close(fd)
            raise JournalError(f"{path}: cannot prepare the results file: {exc.strerror}") from exc
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, columns, fsync, clock)

    # -- encoding

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
        return [escape_cell(values.get(name, "")) for name in self.columns]

    def _check_extra(self, record: JournalRecord) -> None:
        if record.extra and not self._extra.issuperset(record.extra):
            unknown = sorted(set(record.extra) - self._extra)
            raise ValueError(f"{self.path}: no extra column(s) {unknown} in the header")

    def _line(self, record: JournalRecord) -> str:
        """One encoded line, skipping the checks that cannot change a cell.

        ``row``/``attempts`` are integers and ``status`` a known word, so none can start a
        formula or need quotes; our own timestamps and plain ``https://`` URLs neither.
        """
        self._check_extra(record)
        stamp = record.timestamp
        stamp = _cell(stamp) if stamp else self._stamp(self._clock())
        url = record.linkedin_url
        if not url.startswith("https://") or _NEEDS_QUOTES.search(url):
            url = _cell(url)
        line = (
            f"{record.row},{url},{_cell(record.sender_id)},{record.status},"
            f"{_cell(record.request_id)},{_cell(record.error)},{record.attempts},{stamp}"
        )
        extra = record.extra
        for name in self._extra_order or ():
            line += "," + _cell(extra.get(name, ""))
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

    def encode(self, records: Sequence[JournalRecord]) -> bytes:
        """The exact bytes :meth:`append_many` would write for ``records``."""
        if self._extra_order is None:  # a hand-made header order: the careful path
            return _encode_rows([self._cells(r) for r in records])
        return "".join([self._line(r) for r in records]).encode("utf-8")

    # -- writing

    def _write(self, data: bytes) -> None:
        with self._write_lock:
            self._check_usable()
            try:
                _write_all(self._fd, data)
                if self._fsync:
                    os.fdatasync(self._fd)
            except OSError as exc:
                self._broken = exc
                raise JournalError(
                    f"{self.path}: cannot write the results file: {exc.strerror}"
                ) from exc

    def _check_usable(self) -> None:
        if self._closed:
            raise JournalError(f"{self.path}: the results file is closed")
        if self._broken is not None:
            # After a failed write or fsync the file's state is unknown (fsyncgate):
            # refuse to continue rather than pretend later records are durable.
            raise JournalError(f"{self.path}: an earlier write failed: {self._broken.strerror}")

    def append(self, record: JournalRecord) -> None:
        """Write one record and make it durable (write, then fdatasync) before returning."""
        self._write(self.encode([record]))

    def append_many(self, records: Sequence[JournalRecord]) -> None:
        """Write several records with one write and one fdatasync (group commit)."""
        if records:
            self._write(self.encode(records))

    async def append_async(self, record: JournalRecord) -> None:
        """Append from a coroutine; returns once the record is durable.

        Records queued at the same moment (by this and :meth:`append_nowait`) share one write
        and one sync, done by the journal's writer thread so the event loop keeps running.
        Records reach the file in the order of the calls. A write error is raised to every
        caller whose record was in the failed batch. If the caller is cancelled, its record
        is still written.
        """
        self._raise_lost()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._enqueue(loop, self.encode([record]), done)  # timestamp taken now, in call order
        await done

    def append_nowait(self, record: JournalRecord) -> None:
        """Queue a record for the next group commit without waiting for it (no task needed).

        Call it from the event loop. It is written in call order with :meth:`append_async`
        records. A write error is not lost: the journal then refuses further appends, and the
        error is raised once, by the next :meth:`append_nowait`, :meth:`append_async`,
        :meth:`aflush` or :meth:`aclose` (unless a caller awaiting a record of the same batch
        got it already). :meth:`aflush` and :meth:`aclose` wait for it.
        """
        self._raise_lost()
        self._check_usable()
        self._enqueue(asyncio.get_running_loop(), self.encode([record]), None)

    def _raise_lost(self) -> None:
        lost, self._lost = self._lost, None
        if lost is not None:
            raise lost

    def _enqueue(
        self, loop: asyncio.AbstractEventLoop, data: bytes, done: asyncio.Future[None] | None
    ) -> None:
        if self._unsettled and loop is not self._loop:
            raise RuntimeError("records are still queued from another event loop")
        self._loop = loop
        self._unsettled += 1
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._writer_main, name=f"journal {self.path.name}", daemon=True
            )
            self._writer.start()
        self._inbox.put((data, done))

    def _writer_main(self) -> None:
        # One long-lived thread: it starts the next batch as soon as a sync ends, without
        # waiting for the event loop to schedule a task (and skips to_thread's hop).
        inbox = self._inbox
        while True:
            first = inbox.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while True:
                try:
                    item = inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            data = b"".join(data for data, _ in batch)
            error: Exception | None = None
            if data:
                try:
                    self._write(data)
                except Exception as exc:  # handed to the waiting callers
                    error = exc
            try:
                assert self._loop is not None
                self._loop.call_soon_threadsafe(self._settle, batch, error)
            except RuntimeError:
                return  # the loop is gone: nobody is left to tell
            if stop:
                return

    def _settle(self, batch: list[_Queued], error: Exception | None) -> None:
        self._unsettled -= len(batch)
        told = False
        for _, done in batch:
            if done is None or done.done():
                continue  # not awaited, or a cancelled caller: written all the same
            if error is not None:
                done.set_exception(error)
                told = True
            else:
                done.set_result(None)
        if told:
            self._lost = None  # a caller now knows the journal failed
        elif error is not None and any(done is None for _, done in batch):
            self._lost = self._lost or error

    # -- closing

    async def aflush(self) -> None:
        """Wait until every queued record (awaited or not) is durable.

        Raises the write error of a record queued by :meth:`append_nowait`, if any.
        """
        if self._unsettled:
            loop = asyncio.get_running_loop()
            marker: asyncio.Future[None] = loop.create_future()
            self._enqueue(loop, b"", marker)  # written after everything queued before it
            await asyncio.shield(marker)
        self._raise_lost()

    async def aclose(self) -> None:
        """Flush the queue, then close (releases the lock), also when the flush raises."""
        try:
            await self.aflush()
        finally:
            if not self._unsettled:
                self.close()

    def close(self) -> None:
        """Close the file and release the lock. Raises if async records are still queued."""
        if self._closed:
            return
        if self._unsettled:
            raise RuntimeError("records are still queued; use `await journal.aclose()`")
        if self._writer is not None:
            self._inbox.put(None)
            self._writer.join()
            self._writer = None
        with self._write_lock:
            self._closed = True
            os.close(self._fd)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Journal:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _prepare(
    path: Path, fd: int, extra: tuple[str, ...], fsync: bool
) -> tuple[int, tuple[str, ...]]:
    """Make the locked file ready for appends; returns the (possibly new) fd and its columns."""
    size = os.fstat(fd).st_size
    if size == 0:
        return fd, _write_header(path, fd, extra, fsync)
    with open(fd, "rb", closefd=False) as f:
        layout = _layout(path, f, size)
    if not layout.columns:  # header torn while the file was being created
        os.ftruncate(fd, 0)
        return fd, _write_header(path, fd, extra, fsync)
    _require_columns(path, layout.columns)
    if layout.torn:
        os.ftruncate(fd, layout.data_end)
    elif layout.unterminated:
        _write_all(fd, b"\n")
    if fsync and (layout.torn or layout.unterminated):
        os.fdatasync(fd)
    wanted = (*JOURNAL_COLUMNS, *extra)
    if all(name in layout.columns for name in wanted):
        return fd, layout.columns
    return _upgrade(path, fd, layout, extra, fsync)


def _write_header(path: Path, fd: int, extra: tuple[str, ...], fsync: bool) -> tuple[str, ...]:
    columns = (*JOURNAL_COLUMNS, *(c for c in extra if c not in JOURNAL_COLUMNS))
    _write_all(fd, _canonical_header(columns[len(JOURNAL_COLUMNS) :]))
    if fsync:
        os.fsync(fd)
        _fsync_dir(path)
    return columns


def _upgrade(
    path: Path, fd: int, layout: _Layout, extra: tuple[str, ...], fsync: bool
) -> tuple[int, tuple[str, ...]]:
    """Rewrite a file whose header lacks columns, atomically, keeping every value.

    Appending rows with more fields than the header would corrupt the file, so a hand-made
    file without (say) ``timestamp`` is copied once into the full layout.
    """
    old = layout.columns
    extras = [c for c in old if c not in JOURNAL_COLUMNS]
    extras += [c for c in extra if c not in extras and c not in JOURNAL_COLUMNS]
    columns = (*JOURNAL_COLUMNS, *extras)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    new_fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        # Lock before the rename, so the file at `path` is never unlocked.
        fcntl.flock(new_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _write_all(new_fd, _canonical_header(extras))
        for chunk in _rewritten_chunks(path, layout, columns):
            _write_all(new_fd, chunk)
        if fsync:
            os.fsync(new_fd)
        os.replace(tmp, path)
        if fsync:
            _fsync_dir(path)
    except BaseException:
        os.close(new_fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return new_fd, columns


def _rewritten_chunks(path: Path, layout: _Layout, columns: tuple[str, ...]) -> Iterator[bytes]:
    positions = [layout.columns.index(c) if c in layout.columns else -1 for c in columns]
    batch: list[list[str]] = []
    for _, fields in _records(path, layout):
        batch.append([escape_cell(fields[i]) if i >= 0 else "" for i in positions])
        if len(batch) >= 10_000:
            yield _encode_rows(batch)
            batch = []
    yield _encode_rows(batch)


def _records(path: Path, layout: _Layout) -> Iterator[tuple[int, list[str]]]:
    """Slow, exact reader: (first line number, fields) per record; raises on bad field counts."""
    with open(path, "rb") as raw:
        raw.seek(layout.header_end)
        body = raw.read(layout.data_end - layout.header_end)
    text = body.decode("utf-8", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    header_lines = 1
    end_line = header_lines
    for fields in reader:
        start, end_line = end_line + 1, reader.line_num + header_lines
        if not fields:
            continue  # blank line
        if len(fields) != len(layout.columns):
            raise JournalError(
                f"{path}:{start}: expected {len(layout.columns)} fields, found {len(fields)}"
            )
        if any("\udc80" <= ch <= "\udcff" for value in fields for ch in value):
            raise JournalError(f"{path}:{start}: not valid UTF-8")
        yield start, fields


def _require_columns(path: Path, columns: tuple[str, ...]) -> None:
    missing = [c for c in _REQUIRED if c not in columns]
    if missing:
        shown = ", ".join(repr(c) for c in columns) or "none"
        raise JournalError(
            f"{path}: not a results file: no {missing[0]!r} column (columns: {shown})"
        )


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class JournalState:
    """What a results file says: the latest line per prospect, plus capacity accounting.

    Every line is kept in Arrow; the pandas views are built on first use only, so a resume
    that asks :meth:`lookup`, :meth:`used_capacity`, :meth:`next_renewal`, :meth:`pending`
    and :attr:`problems` never converts the whole file to pandas.

    ``latest`` has one line per ``linkedin_url`` (see the module docstring for the rule),
    in file order of the winning line, with columns ``JOURNAL_COLUMNS`` plus any extra
    columns, ``row``/``attempts`` as integers and every other column as strings.
    ``problems`` holds every ``invalid``/``duplicate`` line (same columns), one per
    (row, status, linkedin_url), the last one winning, so a rerun can skip recording them again.
    """

    path: Path
    lines: int
    torn_last_line: bool
    _table: pa.Table = field(repr=False)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self._table.column_names)

    @cached_property
    def latest(self) -> pd.DataFrame:
        """One line per prospect as a DataFrame (built on first use, then kept)."""
        return _latest(self._table)

    @cached_property
    def problems(self) -> pd.DataFrame:
        """Every row verdict, one per (row, status, linkedin_url), the last one winning."""
        verdicts: pd.DataFrame = self._table.filter(_is_verdict(self._table["status"])).to_pandas()
        verdicts = verdicts.drop_duplicates(["row", "status", "linkedin_url"], keep="last")
        return verdicts.reset_index(drop=True)

    def status_by_url(self) -> pd.Series:
        """Latest *send outcome* per ``linkedin_url``: a Series of statuses indexed by URL.

        ``invalid``/``duplicate`` lines are left out: they judge a spreadsheet row, which the
        runner re-validates on every run, and must not stop the prospect's own row from being
        sent (a duplicate recorded before the original row was sent, a row fixed by hand).
        Lines with an empty URL are left out too. Builds :attr:`latest`; prefer
        :meth:`lookup` for large files.
        """
        latest = self.latest
        keep = (latest["linkedin_url"] != "") & ~latest["status"].isin(sorted(ROW_VERDICTS))
        known = latest[keep]
        return pd.Series(known["status"].to_numpy(), index=known["linkedin_url"], name="status")

    def lookup(self, urls: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
        """Latest send outcome of each URL: ``(statuses, attempts)``, aligned with ``urls``.

        Same rule as :meth:`status_by_url` (row verdicts and empty URLs are not prospect
        statuses); a URL without a send outcome (or null) gets ``""`` and ``0``. Computed in
        Arrow with one hash lookup, so a million URLs against a million lines stay cheap.
        """
        if not pa.types.is_string(urls.type):
            urls = pc.cast(urls, pa.string())
        lines = self._outcome_lines_newest_first
        # Newest first, so the first match (the one index_in reports) is the latest line.
        found = pc.index_in(urls, value_set=_flat(self._table["linkedin_url"].take(lines)))
        line = pc.take(lines, found)
        statuses = pc.fill_null(pc.take(self._table["status"], line), "")
        attempts = pc.fill_null(pc.take(self._table["attempts"], line), 0)
        return _flat(statuses), _flat(attempts)

    @cached_property
    def _outcome_lines_newest_first(self) -> pa.Array:
        # Lines that can be a prospect's status: a send outcome with a URL.
        keep = pc.and_(
            pc.invert(_is_verdict(self._table["status"])),
            pc.not_equal(self._table["linkedin_url"], ""),
        )
        indices = np.flatnonzero(_to_numpy(keep))[::-1]
        return pa.array(indices, pa.int64())

    def pending(self) -> pd.DataFrame:
        """Prospects whose latest line is ``pending``: a run stopped while they were in flight."""
        table = self._table
        status = table["status"]
        candidates = np.flatnonzero(_to_numpy(pc.equal(status, PENDING)))
        if len(candidates) == 0:
            none: pd.DataFrame = table.slice(0, 0).to_pandas()
            return none
        # Only lines of the same prospects can outrank a pending line: look at those alone.
        keys = _keys(table)
        wanted = pc.unique(keys.take(pa.array(candidates)))
        related = pc.and_(pc.is_in(keys, value_set=wanted), pc.invert(_is_verdict(status)))
        lines = np.flatnonzero(_to_numpy(related))
        # Send outcomes outrank verdicts, so the last related line per key is the latest.
        last = pd.Series(lines).groupby(_to_numpy(keys.take(pa.array(lines))), sort=False).max()
        winners = np.sort(last.to_numpy())
        winners = winners[_to_numpy(pc.equal(status.take(pa.array(winners)), PENDING))]
        pending: pd.DataFrame = table.take(pa.array(winners, pa.int64())).to_pandas()
        return pending

    def used_capacity(self, since_epoch: float, *, count_undated: bool = True) -> dict[str, int]:
        """Per ``sender_id``, how many lines since ``since_epoch`` used capacity.

        Counts every line (not only the latest) whose status is ``sent`` or ``unknown`` and
        whose timestamp is at or after ``since_epoch`` (millisecond resolution). A line with
        a missing or unreadable timestamp counts when ``count_undated`` (the default: never
        push a sender past its limit because a date was lost).
        """
        keep = self._capacity_lines
        senders = pc.filter(self._table["sender_id"], keep)
        stamps = pc.filter(self._table["timestamp"], keep)
        if len(stamps) == 0:
            return {}
        recent = _at_or_after(stamps, since_epoch, count_undated)
        counts = pc.value_counts(pc.filter(senders, recent))
        return {str(item["values"]): int(item["counts"]) for item in counts.to_pylist()}

    def last_sent(self, since_epoch: float) -> dict[str, float]:
        """Per ``sender_id``, when (epoch seconds) its latest capacity-using line at or
        after ``since_epoch`` was written. Only the journal's own timestamps are read."""
        keep = pc.and_(
            self._capacity_lines, pc.match_substring_regex(self._table["timestamp"], _CANONICAL_TS)
        )
        lines = pa.table(
            {
                "sender_id": pc.filter(self._table["sender_id"], keep),
                "timestamp": pc.filter(self._table["timestamp"], keep),
            }
        )
        since = format_timestamp(since_epoch)
        latest = lines.group_by("sender_id").aggregate([("timestamp", "max")]).to_pylist()
        return {
            str(item["sender_id"]): _epoch(str(item["timestamp_max"]))
            for item in latest
            if str(item["timestamp_max"]) >= since
        }

    @cached_property
    def _capacity_lines(self) -> pa.Array:
        return pc.is_in(self._table["status"], value_set=pa.array(sorted(CAPACITY_STATUSES)))

    def next_renewal(self, since_epoch: float, window_seconds: float) -> float | None:
        """When capacity next frees up: the oldest capacity-using line at or after
        ``since_epoch`` plus ``window_seconds`` (epoch seconds), or None if there is none.

        Lines without a readable timestamp never leave the window and are ignored here.
        """
        stamps = pc.filter(self._table["timestamp"], self._capacity_lines)
        if len(stamps) == 0:
            return None
        recent = pc.filter(stamps, _at_or_after(stamps, since_epoch, count_undated=False))
        if len(recent) == 0:
            return None
        # Canonical stamps sort as strings, so only their minimum needs parsing.
        canonical = pc.match_substring_regex(recent, _CANONICAL_TS)
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


def _epoch(stamp: str) -> float:
    """Epoch seconds of one of our own timestamps (``2026-11-27T10:00:00.123Z``)."""
    when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return when.timestamp()


def _at_or_after(stamps: pa.Array, since_epoch: float, count_undated: bool) -> pa.Array:
    # Canonical stamps compare as strings (fixed width, UTC); others are parsed.
    canonical = pc.match_substring_regex(stamps, _CANONICAL_TS)
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


def load_journal(path: Path) -> JournalState:
    """Read a results file (ours, hand-written or from another tool) into a JournalState.

    A missing or empty file is an empty state. Missing optional columns get defaults (``""``,
    ``0``), extra columns are kept, blank lines ignored, statuses compared case-insensitively,
    apostrophe escapes removed. A torn last record is ignored and reported. Raises
    :class:`JournalError` naming the file (and line) when it cannot be used.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return _empty_state(path, JOURNAL_COLUMNS, torn=False)
    except OSError as exc:
        raise JournalError(f"{path}: cannot read the results file: {exc.strerror}") from exc
    if size == 0:
        return _empty_state(path, JOURNAL_COLUMNS, torn=False)
    try:
        with open(path, "rb") as f:
            layout = _layout(path, f, size)
        if not layout.columns:
            return _empty_state(path, JOURNAL_COLUMNS, torn=True)
        _require_columns(path, layout.columns)
        table = _read_table(path, layout)
    except OSError as exc:
        raise JournalError(f"{path}: cannot read the results file: {exc.strerror}") from exc
    table = _normalise(path, layout, table)
    return _state(path, table, layout.torn)


def _read_table(path: Path, layout: _Layout) -> pa.Table:
    names = list(layout.columns)
    read = pacsv.ReadOptions(column_names=names, use_threads=True)
    parse = pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=True)
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    if layout.header_end == layout.data_end:
        return pa.table({n: pa.array([], pa.string()) for n in names})
    try:
        if layout.torn:
            with pa.memory_map(str(path)) as mapped:
                body = mapped.read_buffer(layout.data_end).slice(layout.header_end)
                return pacsv.read_csv(pa.BufferReader(body), read, parse, convert)
        with pa.OSFile(str(path)) as source:
            source.seek(layout.header_end)
            return pacsv.read_csv(source, read, parse, convert)
    except pa.ArrowInvalid as exc:
        for _ in _records(path, layout):  # raises with the line number when it can
            pass
        raise JournalError(f"{path}: cannot read the results file: {exc}") from exc


def _normalise(path: Path, layout: _Layout, table: pa.Table) -> pa.Table:
    n = table.num_rows
    columns = [*JOURNAL_COLUMNS, *(c for c in table.column_names if c not in JOURNAL_COLUMNS)]
    arrays: dict[str, pa.Array] = {}
    for name in columns:
        if name not in table.column_names:
            arrays[name] = (
                pa.array(np.zeros(n, np.int64))
                if name in _INT_COLUMNS
                else pa.array([""] * n, pa.string())
            )
            continue
        col = _unescape(table[name])
        if name in _INT_COLUMNS:
            col = _to_int(path, layout, name, col)
        elif name == "status":
            col = _check_status(path, layout, col)
        elif name == "linkedin_url":
            col = _canonical_urls(col)
        arrays[name] = col
    return pa.table(arrays)


# What campaign-runner itself writes: https://www.linkedin.com/in/<lower-case slug>.
_CANONICAL_URL = r"^https://www\.linkedin\.com/in/([a-z0-9._~!$&'()*+,;=:@-]|%[0-9A-F]{2})+$"


def _canonical_urls(col: pa.Array) -> pa.Array:
    """URLs in the canonical form the runner matches on.

    A results file written by hand or by another tool may hold ``linkedin.com/in/Jane/``
    for a prospect the input lists as ``https://www.linkedin.com/in/jane``; without this,
    the prospect would look new and be invited again. Only the rare non-canonical cells
    are normalised; one that cannot be stays as written (it matches nothing, and still
    counts against its sender's capacity).
    """
    from campaign_runner.validation import normalize_urls  # the loader stays light

    odd = pc.invert(pc.match_substring_regex(col, _CANONICAL_URL))
    odd = pc.and_(odd, pc.not_equal(col, ""))
    if not pc.any(odd).as_py():
        return col
    if isinstance(col, pa.ChunkedArray):
        col, odd = col.combine_chunks(), odd.combine_chunks()
    written = col.filter(odd)
    fixed, reasons = normalize_urls(written)
    fixed = pc.if_else(pc.equal(reasons, ""), fixed, written)
    return pc.replace_with_mask(col, odd, fixed.combine_chunks())


def _unescape(col: pa.Array) -> pa.Array:
    if not pc.any(pc.starts_with(col, "'")).as_py():
        return col
    escaped = pc.and_(
        pc.match_substring_regex(col, _ESCAPED),
        pc.invert(pc.match_substring_regex(col, _ESCAPED_NUMBER)),
    )
    return pc.if_else(escaped, pc.utf8_slice_codeunits(col, 1), col)


def _to_int(path: Path, layout: _Layout, name: str, col: pa.Array) -> pa.Array:
    try:
        return pc.cast(col, pa.int64())  # the journal's own files: plain digits throughout
    except pa.ArrowInvalid:
        pass
    trimmed = pc.utf8_trim_whitespace(col)
    filled = pc.if_else(pc.equal(trimmed, ""), "0", trimmed)
    good = pc.match_substring_regex(filled, r"^[+-]?\d{1,18}$")
    if not pc.all(good, min_count=0).as_py():
        index = int(np.flatnonzero(~good.to_numpy(zero_copy_only=False))[0])
        value = col[index].as_py()
        raise JournalError(
            f"{path}:{_record_line(path, layout, index)}: {name} {value!r} is not a whole number"
        )
    # Arrow's integer parser rejects a leading plus sign.
    return pc.cast(pc.replace_substring_regex(filled, r"^\+", ""), pa.int64())


def _check_status(path: Path, layout: _Layout, col: pa.Array) -> pa.Array:
    known = pa.array(STATUSES)
    if not pc.all(pc.is_in(col, value_set=known), min_count=0).as_py():
        col = pc.utf8_lower(pc.utf8_trim_whitespace(col))
        good = pc.is_in(col, value_set=known)
        if not pc.all(good, min_count=0).as_py():
            index = int(np.flatnonzero(~good.to_numpy(zero_copy_only=False))[0])
            value = col[index].as_py()
            raise JournalError(
                f"{path}:{_record_line(path, layout, index)}: unknown status {value!r} "
                f"(expected one of: {', '.join(STATUSES)})"
            )
    return col


def _record_line(path: Path, layout: _Layout, index: int) -> int:
    for number, (line, _) in enumerate(_records(path, layout)):
        if number == index:
            return line
    return 0  # unreachable for an index from the same file


def _state(path: Path, table: pa.Table, torn: bool) -> JournalState:
    return JournalState(path=path, lines=table.num_rows, torn_last_line=torn, _table=table)


def _is_verdict(status: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return pc.is_in(status, value_set=pa.array(sorted(ROW_VERDICTS)))


def _to_numpy(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False))


def _flat(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _keys(table: pa.Table) -> pa.ChunkedArray | pa.Array:
    """The prospect key of each line: its URL, or its row when the URL is empty."""
    url = table["linkedin_url"]
    no_url = pc.equal(url, "")
    if not pc.any(no_url).as_py():
        return url
    by_row = pc.binary_join_element_wise("\x00row", pc.cast(table["row"], pa.string()), "")
    return pc.if_else(no_url, by_row, url)


def _latest(table: pa.Table) -> pd.DataFrame:
    """One line per prospect: the last send outcome, else the last row verdict."""
    n = table.num_rows
    # Lines without a URL cannot be a prospect: they are keyed by their spreadsheet row.
    codes, uniques = pd.factorize(_keys(table).to_pandas(), sort=False)
    verdict = _is_verdict(table["status"])
    # A send outcome outranks a row verdict; among equals the later line wins.
    score = np.arange(n, dtype=np.int64) + np.where(verdict.to_numpy(zero_copy_only=False), 0, n)
    best = np.full(len(uniques), -1, dtype=np.int64)
    np.maximum.at(best, codes, score)
    if len(uniques) == n:  # one line per prospect: nothing to drop
        latest: pd.DataFrame = table.to_pandas()
        return latest
    winners = np.sort(best % n) if n else best
    latest = table.take(pa.array(winners)).to_pandas()
    return latest


def _empty_state(path: Path, columns: Sequence[str], torn: bool) -> JournalState:
    empty = pa.table(
        {c: pa.array([], pa.int64() if c in _INT_COLUMNS else pa.string()) for c in columns}
    )
    return _state(path, empty, torn)

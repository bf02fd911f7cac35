"""The end of a results file: clean, unterminated, or cut short by an interrupted append.

The journal appends whole lines and a crash can only tear the *last* one (see
:mod:`.writer`). Such a tail is a prefix of a line in the journal's own encoding, and
cutting it off loses nothing: the journal writes a ``pending`` line, durably, before a
request leaves, so a torn ``pending`` line belongs to a request that never left, and a
torn outcome line follows a complete ``pending`` line of the same person (who then reads
as ``unknown``, never re-invited). Verdict lines (``invalid``, ``duplicate``) are derived
again by every run.

Anything else at the end of the file was written by a person or another tool: a line
without its last field, a stray quote, an outcome with no ``pending`` line before it. Such
a line is never cut: :func:`tail_problem` names it, and the file is refused as it is.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from campaign_runner.errors import JournalError
from campaign_runner.journal.format import (
    DUPLICATE,
    INVALID,
    PENDING,
    STATUSES,
    canonical_header,
    parse_header,
)
from campaign_runner.urls import could_start_canonical

REQUIRED = ("linkedin_url", "status")
# A torn record is one record: a "torn" tail larger than this is a broken quote instead.
_MAX_TORN_BYTES = 1 << 20
_RECORD_START = re.compile(rb"\n\d+,https?://")
_CHUNK = 1 << 24
_TIMESTAMP_SHAPE = "dddd-dd-ddTdd:dd:dd.dddZ"
# Lines whose loss is harmless: the request never left, or the run derives them again.
_CUTTABLE = frozenset({PENDING, INVALID, DUPLICATE})


@dataclass(frozen=True)
class Tail:
    """The unfinished last line of a results file, as far as it goes."""

    line: int  # 1-based line number where it starts
    fields: tuple[str, ...]  # its fields; the last one may be cut short
    columns: tuple[str, ...]
    shape_problem: str = ""  # why it cannot be the start of one of our lines, or ''

    def value(self, column: str) -> str | None:
        """The complete value of ``column``, or None where the line was cut before it ended.

        The last field counts as complete only where no longer status word starts with it,
        since every other cut field could have gone on.
        """
        if column not in self.columns:
            return None
        index = self.columns.index(column)
        if index < len(self.fields) - 1:
            return self.fields[index]
        if index == len(self.fields) - 1 and column == "status":
            word = self.fields[index]
            if word in STATUSES and not any(s != word and s.startswith(word) for s in STATUSES):
                return word
        return None

    def describe(self) -> str:
        status, row = self.value("status"), self.value("row")
        what = f"a {status!r} line" if status else "a line"
        return f"{what}{f' for row {row}' if row else ''}"


@dataclass(frozen=True)
class Layout:
    """Where the header ends, where the trustworthy records end, and what follows them."""

    columns: tuple[str, ...]  # normalised header names
    header_end: int  # offset of the first data byte
    data_end: int  # offset after the last complete record
    unterminated: bool  # the last record is complete but lacks its newline
    tail: Tail | None = None  # an unfinished last line after data_end
    header_torn: bool = False  # the header itself was cut while the file was created

    @property
    def torn(self) -> bool:
        return self.tail is not None or self.header_torn


def read_layout(path: Path, f: io.BufferedReader, size: int) -> Layout:
    """Read the header and classify the end of the file; raises on a broken quote."""
    f.seek(0)
    head = f.read(min(size, 1 << 16))
    newline = head.find(b"\n")
    if newline < 0:
        return _headerless_layout(path, head, size)
    columns = parse_header(path, head[: newline + 1])
    header_end = newline + 1
    f.seek(size - 1)
    ends_clean = f.read(1) == b"\n"
    quotes = _count_quotes(f, size)
    if ends_clean and quotes % 2 == 0:
        return Layout(columns, header_end, size, unterminated=False)
    start = _last_record_start(path, f, size, header_end, quotes)
    f.seek(start)
    tail = f.read(size - start)
    if quotes % 2 == 0 and _is_complete_record(tail, columns):
        return Layout(columns, header_end, size, unterminated=True)
    line = line_at(f, start)
    if len(tail) > _MAX_TORN_BYTES or _RECORD_START.search(tail):
        raise JournalError(f"{path}:{line}: unterminated quoted field")
    return Layout(columns, header_end, start, unterminated=False, tail=_tail(tail, line, columns))


def tail_problem(tail: Tail, has_pending: Callable[[str], bool]) -> str:
    """Why ``tail`` cannot be an interrupted append of the journal's own ('' if it can).

    ``has_pending(url)`` says whether an earlier line records that URL as ``pending``.
    """
    if tail.shape_problem:
        return tail.shape_problem
    status = tail.value("status")
    if status is None or status in _CUTTABLE:
        return ""
    url = tail.value("linkedin_url")
    if url and has_pending(url):
        return ""
    return (
        f"a {status!r} line with no 'pending' line for that profile before it, which "
        "campaign-runner always writes first"
    )


def refusal(path: Path, tail: Tail, problem: str) -> JournalError:
    """The error for a last line that is not ours to cut."""
    return JournalError(
        f"{path}:{tail.line}: the last line is not a complete record, nor an unfinished "
        f"write of campaign-runner's own ({problem}); nothing was changed: complete the "
        "line or delete it, then run again"
    )


def repair_note(path: Path, tail: Tail) -> str:
    """What cutting ``tail`` means, for the plan."""
    return (
        f"{path}:{tail.line}: removed {tail.describe()} that an interrupted run left "
        "unfinished (nothing it recorded is lost: the request had not left, or its "
        "'pending' line is kept)"
    )


def _tail(raw: bytes, line: int, columns: tuple[str, ...]) -> Tail:
    try:
        # Not final: an append cut inside a multi-byte character is still ours.
        text = codecs.getincrementaldecoder("utf-8")().decode(raw, final=False)
    except UnicodeDecodeError:
        return Tail(line, (), columns, "it is not valid UTF-8")
    fields, problem = _fields(text)
    if not problem and len(fields) > len(columns):
        problem = f"it has {len(fields)} fields and the header {len(columns)}"
    if not problem:
        problem = _typed_problem(fields, columns)
    return Tail(line, tuple(fields), columns, problem)


def _fields(text: str) -> tuple[list[str], str]:
    """Split a line prefix as the journal's encoder writes fields: plain, or quoted with
    doubled quotes inside. A quote anywhere else is not the encoder's."""
    fields: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            value, i, closed = _quoted(text, i + 1)
            fields.append(value)
            if not closed or i == n:
                return fields, ""
            if text[i] != ",":
                return fields, 'a quote (") in the middle of a field'
            i += 1
            continue
        comma = text.find(",", i)
        value = text[i:] if comma < 0 else text[i:comma]
        if '"' in value:
            return fields, 'a quote (") in the middle of a field'
        if "\r" in value:
            return fields, "a carriage return outside quotes"
        fields.append(value)
        if comma < 0:
            return fields, ""
        i = comma + 1


def _quoted(text: str, i: int) -> tuple[str, int, bool]:
    """The quoted field starting after the quote at ``i - 1``: (value, end, closed)."""
    parts: list[str] = []
    while True:
        close = text.find('"', i)
        if close < 0:
            parts.append(text[i:])
            return "".join(parts), len(text), False
        if text.startswith('"', close + 1):
            parts.append(text[i : close + 1])
            i = close + 2
            continue
        parts.append(text[i:close])
        return "".join(parts), close + 1, True


def _typed_problem(fields: list[str], columns: tuple[str, ...]) -> str:
    """Whether each field has the form the encoder gives that column (the last may be cut)."""
    for index, value in enumerate(fields):
        cut = index == len(fields) - 1
        name = columns[index]
        if name in ("row", "attempts") and not (value.isdigit() or (cut and not value)):
            return f"{name} {value!r} is not a whole number"
        if name == "status" and not any(
            s.startswith(value) if cut else s == value for s in STATUSES
        ):
            return f"unknown status {value!r}"
        if name == "linkedin_url" and value and not could_start_canonical(value):
            return f"linkedin_url {value!r} is not in the form campaign-runner writes"
        if name == "timestamp" and not _timestamp_prefix(value, whole=not cut):
            return f"timestamp {value!r} is not in the form campaign-runner writes"
    return ""


def _timestamp_prefix(value: str, *, whole: bool) -> bool:
    if len(value) > len(_TIMESTAMP_SHAPE) or (whole and len(value) != len(_TIMESTAMP_SHAPE)):
        return False
    return all(
        ch.isdigit() if shape == "d" else ch == shape
        for ch, shape in zip(value, _TIMESTAMP_SHAPE, strict=False)
    )


def _headerless_layout(path: Path, head: bytes, size: int) -> Layout:
    # No newline at all: either a header torn during creation, or a header saved without
    # its newline (then there are no records).
    canonical = canonical_header()
    if size < len(canonical) and canonical.startswith(head.removeprefix(b"\xef\xbb\xbf")):
        return Layout((), 0, 0, unterminated=False, header_torn=True)
    columns = parse_header(path, head)
    return Layout(columns, size, size, unterminated=True)


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


def line_at(f: io.BufferedReader, offset: int) -> int:
    """1-based line number of the byte at ``offset``."""
    f.seek(0)
    return f.read(offset).count(b"\n") + 1


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
            raise JournalError(f"{path}:{line_at(f, window_start)}: unterminated quoted field")
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


def records(path: Path, layout: Layout) -> Iterator[tuple[int, list[str]]]:
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


def require_columns(path: Path, columns: tuple[str, ...]) -> None:
    """Refuse a file that lacks the columns every results file needs."""
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        shown = ", ".join(repr(c) for c in columns) or "none"
        raise JournalError(
            f"{path}: not a results file: no {missing[0]!r} column (columns: {shown})"
        )

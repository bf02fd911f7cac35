"""Prospect spreadsheet -> columns of text: CSV (any common export) and Excel workbooks.

What real exports look like, and what this module does about it:

* Encodings: UTF-8 with or without BOM; Windows-1252 (then Latin-1) when the bytes are not
  UTF-8; UTF-16 with BOM ("Unicode text" from Excel). Only a small head of the file is
  sniffed; a UTF-8 error further down is caught from the reader and the file read again.
* Delimiters ``,`` ``;`` and tab, guessed from the header line (quoted parts ignored), and
  Excel's ``sep=;`` first line. CRLF, quoted cells with newlines and doubled quotes.
* Every cell is text, exactly as written: no ``NaN``/``NULL``/``True`` conversion and no
  stripping (``dtype=str, keep_default_na=False`` in pandas terms).
* Rows are numbered as a spreadsheet shows them (header = 1, first prospect = 2); a quoted
  multi-line cell is one row, a blank line is a row (with empty cells). Lines at the very
  end of a file that are blank or empty in every column (``,,,``: Google Sheets and Excel
  leave them) are not rows.

CSV goes through Arrow's multi-threaded reader (``pyarrow.csv``), reading only the columns
asked for: it is several times faster than pandas' parser on million-row files.

Workbooks (:mod:`campaign_runner.xlsx`): a sheet by name or number, else the first with a
URL column; title rows above the header skipped (and said); numbers and dates as the
sheet shows them; a URL cell showing other text ("View profile") yields its link. Rows
keep the numbers the sheet shows; empty rows are left out.

Columns are found by name among common aliases, ignoring case, spaces, ``_`` and ``-``.
A plural or CRM-style name (``Notes``, ``Comments``) is never taken as the note: exports
keep internal remarks there. What was chosen, and columns that may have been meant, are
said in :attr:`Prospects.column_notes`; a missing column's error suggests the closest.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import re
import shlex
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from campaign_runner import xlsx
from campaign_runner.errors import ColumnNotFoundError, InputError

if TYPE_CHECKING:
    import pandas as pd

# Aliases, most specific first: the first alias present wins. Compared after _canonical().
URL_ALIASES = (
    "linkedin_url",
    "linkedin_profile_url",
    "person_linkedin_url",
    "linkedin_profile",
    "linkedin_link",
    "profile_url",
    "profileUrl",
    "linkedin",
    "li_url",
    "profile",
    "url",
)
NOTE_ALIASES = (
    "note",
    "connection_note",
    "connection_message",
    "invitation_note",
    "invitation_message",
    "invite_note",
    "message",
)
# Never taken as the note, only mentioned: a plural or CRM-style name is where exports keep
# internal remarks ("DO NOT CONTACT - lawyer involved"), not words meant for the prospect.
CRM_NOTE_NAMES = ("notes", "comment", "comments", "remark", "remarks", "description")
# Parts of a column name that suggest notes meant for the prospect, in several languages.
NOTE_HINTS = (
    "note",
    "message",
    "msg",
    "nachricht",
    "notiz",
    "bemerkung",
    "kommentar",
    "anschreiben",
    "icebreaker",
    "opener",
    "opening",
    "intro",
    "greeting",
    "personali",
    "firstline",
    "pitch",
    "mensaje",
    "mensagem",
    "messaggio",
    "bericht",
    "comment",
    "remark",
    "description",
)
NO_URL = "LinkedIn URL"  # what a ColumnNotFoundError wants when no URL column is found
# How many rows below the header are looked at to find columns that hold LinkedIn URLs.
SAMPLE_ROWS = 50
SENDER_ALIASES = ("sender_id", "senderId", "sender")
COMPANY_ALIASES = (
    "company",
    "company_name",
    "current_company",
    "organization",
    "organisation",
    "account_name",
    "account",
    "employer",
)

HEAD_BYTES = 64 * 1024
# Arrow reads this much per thread-task; larger blocks cost memory, smaller ones overhead.
BLOCK_BYTES = 4 << 20

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_DELIMITERS = (",", ";", "\t")
_QUOTED = re.compile(r'"[^"]*"')
_SEP_LINE = re.compile(r"sep=(.)\s*$", re.IGNORECASE)
_LOOKS_LIKE_URL = re.compile(r"(https?://|www\.|linkedin\.com/)", re.IGNORECASE)


@dataclass(frozen=True)
class Prospects:
    """The prospect rows of one spreadsheet, every cell as text.

    ``table`` holds the columns that were read (all of them, or only the URL, note and
    sender columns when the loader was asked for just those), under their header names as
    written (duplicate names get ``.1``, ``.2``). ``rows`` holds each row's spreadsheet row
    number. ``warnings`` are things the user should hear about but that do not stop a run.
    ``column_notes`` say, one sentence each, which sheet and columns were read and which
    were not ("profile URL from 'Person Linkedin Url'", "no note column: invitations go
    without a note", "column 'Nachricht' may hold notes: use --note-column Nachricht to
    send it"): the commands print them before anything is sent.
    """

    source: Path
    columns: tuple[str, ...]
    url_column: str | None  # None only when loaded with require_url=False
    note_column: str | None
    sender_column: str | None
    table: pa.Table
    rows: pa.Array
    warnings: tuple[str, ...] = ()
    company_column: str | None = None
    column_notes: tuple[str, ...] = ()
    sheet: str | None = None  # the workbook sheet read; None for CSV

    def __len__(self) -> int:
        return int(self.table.num_rows)

    @property
    def frame(self) -> pd.DataFrame:
        """The rows as a pandas DataFrame of strings (``str`` dtype), one column per column read."""
        frame: pd.DataFrame = self.table.to_pandas()
        return frame


def load_prospects(
    path: Path,
    url_column: str | None = None,
    note_column: str | None = None,
    *,
    sheet: str | int | None = None,
    all_columns: bool = True,
    require_url: bool = True,
) -> Prospects:
    """Read a prospect CSV or XLSX file into :class:`Prospects`.

    ``sheet`` picks a workbook's sheet by name or 1-based number; by default the first
    sheet with a URL column is read (else the first). Up to ``TITLE_ROWS`` title rows above
    a sheet's header are skipped, when a row below them names a URL column. Numbers and
    dates are read as the sheet shows them, and a URL cell showing other text ("View
    profile") yields the link behind it.

    The URL and note columns are found among common aliases unless named (``url_column``,
    ``note_column``: exact name first, then ignoring case and spaces); an optional sender
    column (``sender_id``, ``senderId``, ``sender``) is picked up too. With
    ``all_columns=False`` only those columns are read, which is what validation needs and
    much cheaper for large files. Raises :class:`InputError` for a file that cannot be used
    (missing, empty, not a spreadsheet, ragged rows) and :class:`ColumnNotFoundError` when
    no URL column is found, naming the columns that were (unless ``require_url`` is
    false, as for do-not-contact lists that may hold only companies). Those errors suggest
    the closest columns, and for a missing URL column the columns and sheets that hold
    LinkedIn URLs.
    """
    path = Path(path)
    head = _read_head(path)
    if head.startswith(b"PK\x03\x04"):
        return _load_xlsx(path, url_column, note_column, sheet, all_columns, require_url)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise InputError(path, "old Excel .xls format: save it as .xlsx or CSV (UTF-8)")
    if sheet is not None:
        raise InputError(path, f"sheet {sheet!r} asked for, but a CSV file has no sheets")
    return _load_csv(path, head, url_column, note_column, all_columns, require_url)


# -- columns ----------------------------------------------------------------------------


def _canonical(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", name).casefold()


# Public for note templates, whose placeholders name columns by this same rule.
canonical_name = _canonical


@dataclass(frozen=True)
class _Columns:
    url: str | None
    note: str | None
    sender: str | None
    warnings: tuple[str, ...]
    company: str | None = None

    def wanted(self) -> list[str]:
        return [c for c in (self.url, self.note, self.sender, self.company) if c]


def _find_column(
    path: Path, names: Sequence[str], wanted: str, explicit: str | None, aliases: Iterable[str]
) -> str | None:
    if explicit is not None:
        if explicit in names:
            return explicit
        matches = [n for n in names if _canonical(n) == _canonical(explicit)]
        if not matches:
            error = ColumnNotFoundError(path, repr(explicit), list(names))
            raise _with_hint(error, _closest_hint(explicit, names, wanted))
        return matches[0]
    by_canonical: dict[str, str] = {}
    for name in names:
        by_canonical.setdefault(_canonical(name), name)
    for alias in aliases:
        if _canonical(alias) in by_canonical:
            return by_canonical[_canonical(alias)]
    return None


def _closest(word: str, names: Sequence[str], cutoff: float = 0.6) -> list[str]:
    """Column names closest to ``word``, compared as columns are (case, spaces, ``_``)."""
    by_canonical: dict[str, str] = {}
    for name in names:
        by_canonical.setdefault(_canonical(name), name)
    close = get_close_matches(_canonical(word), list(by_canonical), n=3, cutoff=cutoff)
    return [by_canonical[c] for c in close]


def _closest_hint(word: str, names: Sequence[str], wanted: str) -> str:
    close = _closest(word, names)
    if not close:
        return f"asked for as the {wanted} column"
    return f"did you mean {' or '.join(repr(c) for c in close)}? (asked for as the {wanted} column)"


def _with_hint(error: ColumnNotFoundError, hint: str) -> ColumnNotFoundError:
    """The same error with a suggestion after its one line (errors.py draws no hint)."""
    if hint:
        error.reason = f"{error.reason}; {hint}"
        error.args = (f"{error.path}: {error.reason}",)
    return error


def _url_values_hint(columns: Mapping[str, Sequence[str]]) -> str:
    """The columns whose first cells hold LinkedIn profile URLs, with the flag to use one."""
    holding = []
    for name, cells in columns.items():
        filled = [c for c in cells if c.strip()]
        hits = sum(1 for c in filled if "linkedin.com/" in c.lower())
        if hits and 2 * hits >= len(filled):
            holding.append(name)
    if not holding:
        return ""
    said = " and ".join(repr(n) for n in holding)
    verb = "holds" if len(holding) == 1 else "hold"
    return f"{said} {verb} LinkedIn URLs: use --url-column {shlex.quote(holding[0])}"


def _url_name_hint(names: Sequence[str]) -> str:
    close: list[str] = []
    for alias in URL_ALIASES:
        close += [c for c in _closest(alias, names, cutoff=0.75) if c not in close]
    if not close:
        return ""
    shown = " or ".join(repr(c) for c in close[:3])
    return f"did you mean {shown}? (use --url-column {shlex.quote(close[0])})"


def _choose_columns(
    path: Path,
    names: Sequence[str],
    url_column: str | None,
    note_column: str | None,
    require_url: bool = True,
) -> _Columns:
    url = _find_column(path, names, "URL", url_column, URL_ALIASES)
    if url is None and require_url:
        if any(_LOOKS_LIKE_URL.search(n) for n in names):
            raise InputError(
                path,
                "the first row looks like data, not a header: add a header row "
                "with a column named linkedin_url",
                row=1,
            )
        raise ColumnNotFoundError(path, NO_URL, list(names))  # hints added by the caller
    note = _find_column(path, names, "note", note_column, NOTE_ALIASES)
    sender = _find_column(path, names, "sender", None, SENDER_ALIASES)
    company = _find_column(path, names, "company", None, COMPANY_ALIASES)
    spaced = [n for n in names if n != n.strip()]
    notes = tuple(
        f"{path}: column {n!r} has spaces around its name (matched as {n.strip()!r})"
        for n in spaced
    )
    return _Columns(url=url, note=note, sender=sender, warnings=notes, company=company)


def _column_notes(
    names: Sequence[str],
    cols: _Columns,
    url_details: Sequence[str] = (),
    note_details: Sequence[str] = (),
) -> list[str]:
    """The columns used and the ones that may be meant, one sentence each."""
    notes = [f"profile URL from {cols.url!r}", *url_details] if cols.url else []
    if cols.note is not None:
        notes += [f"note from {cols.note!r}", *note_details]
    else:
        notes.append("no note column: invitations go without a note")
    used = set(cols.wanted())
    for name in names:
        canonical = _canonical(name)
        if name in used or not canonical or not any(h in canonical for h in NOTE_HINTS):
            continue
        flag = f"use --note-column {shlex.quote(name)} to send it"
        instead = f" instead of {cols.note!r}" if cols.note is not None else ""
        if canonical in CRM_NOTE_NAMES or canonical.rstrip("s") in CRM_NOTE_NAMES:
            notes.append(
                f"column {name!r} is not taken as the note (a name like this often holds "
                f"internal remarks): {flag}{instead}"
            )
        else:
            notes.append(f"column {name!r} may hold notes: {flag}{instead}")
    if cols.sender is not None:
        notes.append(f"sender from {cols.sender!r}")
    return notes


def _unique_names(names: Sequence[str]) -> list[str]:
    """Header names made unique the way pandas does it (``a``, ``a.1``, ``a.2``)."""
    seen: dict[str, int] = {}
    result: list[str] = []
    taken = set(names)
    for name in names:
        if name not in seen:
            seen[name] = 0
            result.append(name)
            continue
        count = seen[name]
        while True:
            count += 1
            candidate = f"{name}.{count}"
            if candidate not in taken:
                break
        seen[name] = count
        taken.add(candidate)
        result.append(candidate)
    return result


# -- CSV --------------------------------------------------------------------------------


def _read_head(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, not a spreadsheet") from None
    except OSError as exc:
        raise InputError(path, f"cannot read ({exc.strerror})") from None
    if not head.strip():
        raise InputError(path, "the file is empty")
    return head


@dataclass(frozen=True)
class _CsvFormat:
    encoding: str
    delimiter: str
    skip_lines: int  # a leading ``sep=;`` line
    header: list[str]


def _sniff_encoding(path: Path, head: bytes) -> str:
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    sample = head[:4096]
    if sample.count(0) > len(sample) // 4:
        # UTF-16 without a BOM: ASCII text leaves every other byte zero.
        if sample[1::2].count(0) > len(sample) // 4:
            return "utf-16-le"
        if sample[0::2].count(0) > len(sample) // 4:
            return "utf-16-be"
    if _looks_binary(sample):
        raise InputError(path, "not a spreadsheet (binary content); expected CSV or XLSX")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _looks_binary(sample: bytes) -> bool:
    controls = sum(sample.count(b) for b in (*range(0, 9), 11, 12, *range(14, 32)))
    return controls > max(8, len(sample) // 20)


def _sniff_format(path: Path, head: bytes) -> _CsvFormat:
    encoding = _sniff_encoding(path, head)
    text = _decode_head(head, encoding)
    first_line = text.split("\n", 1)[0].rstrip("\r")
    skip = 0
    sep = _SEP_LINE.fullmatch(first_line)
    if sep:
        delimiter, skip = sep.group(1), 1
        text = text.split("\n", 1)[1] if "\n" in text else ""
        first_line = text.split("\n", 1)[0].rstrip("\r")
    else:
        unquoted = _QUOTED.sub("", first_line)
        counts = {d: unquoted.count(d) for d in _DELIMITERS}
        delimiter = max(_DELIMITERS, key=lambda d: counts[d]) if any(counts.values()) else ","
    try:
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except StopIteration:
        header = []
    except csv.Error as exc:
        raise InputError(path, f"cannot read the header row: {exc}", row=1) from None
    if not any(h.strip() for h in header):
        raise InputError(path, "the first row (the header) is empty", row=1)
    return _CsvFormat(encoding, delimiter, skip, header)


def _decode_head(head: bytes, encoding: str) -> str:
    codec = "utf-8-sig" if encoding == "utf-8" else encoding
    if codec.startswith("utf-16"):
        head = head[: len(head) - len(head) % 2]
    text: str = codecs.getincrementaldecoder(codec)(errors="replace").decode(head, final=False)
    return text


def _load_csv(
    path: Path,
    head: bytes,
    url_column: str | None,
    note_column: str | None,
    all_columns: bool,
    require_url: bool,
) -> Prospects:
    fmt = _sniff_format(path, head)
    names = _unique_names(fmt.header)
    try:
        cols = _choose_columns(path, names, url_column, note_column, require_url)
    except ColumnNotFoundError as exc:
        if exc.wanted != NO_URL:
            raise
        hint = _url_values_hint(_csv_sample(head, fmt, names)) or _url_name_hint(names)
        raise _with_hint(exc, hint) from None
    wanted = cols.wanted()
    include = names if all_columns else [n for n in names if n in wanted]
    table = _read_table(path, fmt, names, include, _content_end(path, fmt))
    if table.num_rows == 0:
        raise InputError(path, "has a header but no prospect rows")
    # Excel hides a ``sep=`` line, so the header is row 1 and the first prospect row 2.
    # Built from its buffer: pa.array() would import pandas, which `validate` never needs.
    numbers = np.arange(2, 2 + table.num_rows, dtype=np.int64)
    rows = pa.Array.from_buffers(pa.int64(), len(numbers), [None, pa.py_buffer(numbers)])
    return Prospects(
        source=path,
        columns=tuple(names),
        url_column=cols.url,
        note_column=cols.note,
        sender_column=cols.sender,
        table=table,
        rows=rows,
        warnings=cols.warnings,
        company_column=cols.company,
        column_notes=tuple(_column_notes(names, cols)),
    )


def _csv_sample(head: bytes, fmt: _CsvFormat, names: list[str]) -> dict[str, list[str]]:
    """The first rows' cells by column, from the head already read (for error hints)."""
    text = _decode_head(head, fmt.encoding).split("\n", fmt.skip_lines)[-1]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=fmt.delimiter)
    columns: dict[str, list[str]] = {n: [] for n in names}
    try:
        for record in itertools.islice(reader, 1, SAMPLE_ROWS + 1):
            for name, cell in zip(names, record, strict=False):
                columns[name].append(cell)
    except csv.Error:
        pass  # a cell cut off where the head ends: the rows before it are enough
    return columns


def _read_table(
    path: Path, fmt: _CsvFormat, names: list[str], include: list[str], end: int
) -> pa.Table:
    encodings = [fmt.encoding]
    if fmt.encoding == "utf-8":
        encodings += ["cp1252", "latin-1"]
    elif fmt.encoding == "cp1252":
        encodings.append("latin-1")
    last_error = ""
    for encoding in encodings:
        try:
            return _arrow_read(path, fmt, encoding, names, include, end)
        except UnicodeDecodeError:
            continue
        except pa.ArrowInvalid as exc:
            message = str(exc)
            if "UTF8" in message or "UTF-8" in message:
                continue
            if "Expected" in message and "columns" in message:
                raise _ragged_row_error(path, fmt, len(names)) from None
            last_error = message
            break
    raise InputError(path, f"cannot read as CSV: {last_error or 'unknown text encoding'}")


def _arrow_read(
    path: Path, fmt: _CsvFormat, encoding: str, names: list[str], include: list[str], end: int
) -> pa.Table:
    from pyarrow import csv as pacsv

    read = pacsv.ReadOptions(
        column_names=names,
        skip_rows=1 + fmt.skip_lines,
        encoding="utf8" if encoding == "utf-8" else encoding,
        block_size=BLOCK_BYTES,
    )
    parse = pacsv.ParseOptions(
        delimiter=fmt.delimiter,
        newlines_in_values=True,
        # A blank line is a spreadsheet row too: keeping it keeps row numbers right.
        ignore_empty_lines=False,
    )
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        include_columns=include,
        null_values=[],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    options = {"read_options": read, "parse_options": parse, "convert_options": convert}
    if end >= path.stat().st_size:
        return pacsv.read_csv(path, **options)
    # Only the rows up to ``end``: mapped, not copied, so a large file costs no more memory.
    with pa.memory_map(str(path)) as mapped:
        return pacsv.read_csv(pa.BufferReader(mapped.read_buffer(end)), **options)


def _ragged_row_error(path: Path, fmt: _CsvFormat, width: int) -> InputError:
    """Find (slowly, but only on this error path) the first row with the wrong cell count."""
    codec = "utf-8-sig" if fmt.encoding == "utf-8" else fmt.encoding
    with path.open(encoding=codec, errors="replace", newline="") as fh:
        for _ in range(fmt.skip_lines):
            fh.readline()
        reader = csv.reader(fh, delimiter=fmt.delimiter)
        next(reader, None)
        # Excel hides a ``sep=`` line, so the header is row 1 either way.
        for row, record in enumerate(reader, start=2):
            if record and len(record) != width:
                return InputError(
                    path,
                    f"has {len(record)} cells where the header has {width} "
                    "(an unquoted delimiter inside a cell?)",
                    row=row,
                )
    return InputError(path, "rows have different numbers of cells")


def _content_end(path: Path, fmt: _CsvFormat) -> int:
    """Where the file's last row with a cell in it ends, in bytes (after its line break).

    Google Sheets and Excel end exports with lines empty in every column (``,,,``, ``;;;``
    or ``"",""``), and every file may end in blank lines: none of these is a prospect. Read
    backwards in growing blocks until a line with content shows up. Such a line cannot lie
    inside a quoted cell: holding no lone quote, it could never close one.
    """
    junk = re.compile(f'(?:""|{re.escape(fmt.delimiter)})*')
    wide = 2 if fmt.encoding.startswith("utf-16") else 1  # bytes per character here
    with path.open("rb") as fh:
        size = fh.seek(0, io.SEEK_END)
        block = 4096
        while True:
            start = max(0, size - block)
            start -= start % wide
            fh.seek(start)
            text = _decode_tail(fh.read(), fmt.encoding)
            lines = re.split(r"(\r\n|\r|\n)", text)
            # lines alternates text, break, text, ...; the first piece may be cut short.
            kept = len(lines)
            while kept > 1 and junk.fullmatch(lines[kept - 1]):
                kept -= 2
            if kept > 1 or start == 0:
                dropped = "".join(lines[kept + 1 :]) if kept < len(lines) else ""
                return size - len(dropped) * wide
            block *= 4


def _decode_tail(tail: bytes, encoding: str) -> str:
    if encoding.startswith("utf-16"):
        codec = "utf-16-be" if encoding == "utf-16-be" or tail[-2:-1] == b"\x00" else "utf-16-le"
        return tail.decode(codec, errors="replace")
    return tail.decode("latin-1")  # one character per byte: offsets stay byte offsets


# -- XLSX -------------------------------------------------------------------------------

# A title row above the header is skipped when one of this many rows below it is the header.
TITLE_ROWS = 5


@dataclass(frozen=True)
class _SheetHead:
    """Where a sheet's header is: ``rows`` are its first non-empty rows, ``header`` indexes
    them (None: no row among them names a URL column), ``rest`` yields the rows after."""

    index: int
    rows: list[xlsx.Row]
    header: int | None
    rest: Generator[xlsx.Row, None, None]

    def names(self) -> list[str]:
        return _unique_names(self.rows[self.header or 0][1]) if self.rows else []


def _load_xlsx(
    path: Path,
    url_column: str | None,
    note_column: str | None,
    sheet: str | int | None,
    all_columns: bool,
    require_url: bool,
) -> Prospects:
    # Sheets' row streams are closed here, not when the garbage collector gets to them:
    # after an error the traceback keeps them alive, and with them the workbook's file.
    with xlsx.Workbook(path) as book:
        head = _choose_sheet(path, book, sheet, url_column, require_url)
        with contextlib.closing(head.rest):
            return _read_sheet(path, book, head, url_column, note_column, all_columns, require_url)


def _read_sheet(
    path: Path,
    book: xlsx.Workbook,
    head: _SheetHead,
    url_column: str | None,
    note_column: str | None,
    all_columns: bool,
    require_url: bool,
) -> Prospects:
    if not head.rows:
        raise InputError(path, f"{_sheet_name(book, head.index)} is empty")
    names = head.names()
    try:
        cols = _choose_columns(path, names, url_column, note_column, require_url)
    except ColumnNotFoundError as exc:
        if _has_url_column(names, url_column):
            raise  # the note column asked for is missing
        raise _with_hint(exc, _sheets_hint(book, head, url_column)) from None
    return _xlsx_prospects(path, book, head, names, cols, all_columns)


def _choose_sheet(
    path: Path, book: xlsx.Workbook, sheet: str | int | None, url_column: str | None, require: bool
) -> _SheetHead:
    if sheet is not None:
        return _sheet_head(book, _sheet_index(path, book, sheet), url_column)
    first = _sheet_head(book, 0, url_column)
    if first.header is not None or not require:
        return first
    for index in range(1, len(book.names)):
        if _has_header(book, index, url_column):
            first.rest.close()
            return _sheet_head(book, index, url_column)
    return first


def _sheet_index(path: Path, book: xlsx.Workbook, sheet: str | int) -> int:
    """A sheet by name (exact, then ignoring case and spaces) or by 1-based number."""
    names = book.names
    if isinstance(sheet, str):
        if sheet in names:
            return names.index(sheet)
        loose = [i for i, n in enumerate(names) if _canonical(n) == _canonical(sheet)]
        if loose:
            return loose[0]
        if sheet.strip().isdigit():
            sheet = int(sheet)
    if isinstance(sheet, int) and 1 <= sheet <= len(names):
        return sheet - 1
    listed = ", ".join(f"{i}: {n!r}" for i, n in enumerate(names, start=1))
    close = get_close_matches(str(sheet), names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise InputError(path, f"no sheet {sheet!r} (sheets: {listed}){hint}")


def _sheet_head(book: xlsx.Workbook, index: int, url_column: str | None) -> _SheetHead:
    rows = book.rows(index)
    head = list(itertools.islice(rows, TITLE_ROWS + 1))
    header = next(
        (i for i, (_, texts, _) in enumerate(head) if _has_url_column(texts, url_column)), None
    )
    return _SheetHead(index, head, header, rows)


def _has_header(book: xlsx.Workbook, index: int, url_column: str | None) -> bool:
    head = _sheet_head(book, index, url_column)
    head.rest.close()
    return head.header is not None


def _has_url_column(texts: Sequence[str], url_column: str | None) -> bool:
    names = {_canonical(t) for t in texts if t}
    wanted = [url_column] if url_column is not None else URL_ALIASES
    return any(_canonical(w) in names for w in wanted)


def _sheet_name(book: xlsx.Workbook, index: int) -> str:
    return f"sheet {book.names[index]!r}"


def _sheets_hint(book: xlsx.Workbook, head: _SheetHead, url_column: str | None) -> str:
    """For a sheet without a URL column: the sheets with one, or the columns that hold URLs."""
    hints = []  # a URL column asked for by name: the error names the closest already
    if url_column is None:
        hints.append(_url_values_hint(_sample_columns(book, head)) or _url_name_hint(head.names()))
    if len(book.names) > 1:
        others = [
            i
            for i in range(len(book.names))
            if i != head.index and _has_header(book, i, url_column)
        ]
        here = _sheet_name(book, head.index)
        if others:
            there = ", ".join(repr(book.names[i]) for i in others)
            flag = shlex.quote(book.names[others[0]])
            verb = "has" if len(others) == 1 else "have"
            hints.append(f"{here} has none; {there} {verb} one: use --sheet {flag}")
        else:
            hints.append(f"{here} has none, nor has any other sheet")
    return "; ".join(h for h in hints if h)


def _sample_columns(book: xlsx.Workbook, head: _SheetHead) -> dict[str, list[str]]:
    """The first rows' cells by column, with the link behind a cell where there is one."""
    names = head.names()
    below = head.rows[(head.header or 0) + 1 :]
    below += list(itertools.islice(head.rest, SAMPLE_ROWS - len(below)))
    links = book.links(head.index)
    columns: dict[str, list[str]] = {n: [] for n in names}
    for number, texts, _ in below:
        for i, name in enumerate(names):
            columns[name].append(links.get((number, i), texts[i] if i < len(texts) else ""))
    return columns


def _xlsx_prospects(
    path: Path,
    book: xlsx.Workbook,
    head: _SheetHead,
    names: list[str],
    cols: _Columns,
    all_columns: bool,
) -> Prospects:
    wanted = set(cols.wanted())
    keep = [i for i, n in enumerate(names) if all_columns or n in wanted]
    data: list[list[str]] = [[] for _ in keep]
    rows: list[int] = []
    note_at = names.index(cols.note) if cols.note is not None else -1
    typed_notes: list[tuple[int, str]] = []
    for row_number, values, typed in itertools.chain(
        head.rows[(head.header or 0) + 1 :], head.rest
    ):
        rows.append(row_number)
        for out, i in zip(data, keep, strict=True):
            out.append(values[i] if i < len(values) else "")
        if note_at in typed:
            typed_notes.append((row_number, values[note_at]))
    if not rows:
        raise InputError(path, "has a header but no prospect rows")
    notes = _sheet_notes(book, head)
    url_notes: list[str] = []
    if cols.url is not None and names.index(cols.url) in keep:
        at = keep.index(names.index(cols.url))
        url_notes = _follow_links(book, head.index, keep[at], rows, data[at], cols.url)
    notes += _column_notes(names, cols, url_notes, _typed_notes(cols.note, typed_notes))
    table = pa.table(
        {names[i]: pa.array(col, pa.string()) for i, col in zip(keep, data, strict=True)}
    )
    return Prospects(
        source=path,
        columns=tuple(names),
        url_column=cols.url,
        note_column=cols.note,
        sender_column=cols.sender,
        table=table,
        rows=pa.array(rows, pa.int64()),
        warnings=cols.warnings,
        company_column=cols.company,
        column_notes=tuple(notes),
        sheet=book.names[head.index],
    )


def _typed_notes(column: str | None, typed: list[tuple[int, str]]) -> list[str]:
    if not typed:
        return []
    (row, text), one = typed[0], len(typed) == 1
    what = "is a date or number" if one else "are dates or numbers"
    return [
        f"{len(typed)} {_cells(len(typed))} of {column!r} {what}, sent as the sheet shows "
        f"{'it' if one else 'them'} (row {row}: {text!r})"
    ]


def _sheet_notes(book: xlsx.Workbook, head: _SheetHead) -> list[str]:
    notes = []
    if len(book.names) > 1:
        notes.append(f"sheet {book.names[head.index]!r} ({head.index + 1} of {len(book.names)})")
    if head.header:
        above = [str(number) for number, _, _ in head.rows[: head.header]]
        which = f"row {above[0]} is" if len(above) == 1 else f"rows {', '.join(above)} are"
        notes.append(f"{which} a title: the header is row {head.rows[head.header][0]}")
    return notes


def _follow_links(
    book: xlsx.Workbook, index: int, column: int, rows: list[int], cells: list[str], name: str
) -> list[str]:
    """Put the link behind a URL cell in its place ("View profile" -> the profile)."""
    links = book.links(index, {column})
    if not links:
        return []
    at = {number: i for i, number in enumerate(rows)}
    followed: list[tuple[int, str]] = []
    for (number, _), target in sorted(links.items()):
        i = at.get(number)
        if i is None or not _LOOKS_LIKE_URL.match(target) or cells[i] == target:
            continue
        followed.append((number, cells[i]))
        cells[i] = target
    if not followed:
        return []
    number, text = followed[0]
    return [
        f"{len(followed)} {_cells(len(followed))} of {name!r} "
        f"{'shows' if len(followed) == 1 else 'show'} text with a link behind it "
        f"(row {number}: {text!r}): the link is used"
    ]


def _cells(count: int) -> str:
    return "cell" if count == 1 else "cells"

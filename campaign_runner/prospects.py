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
asked for: it is several times faster than pandas' parser on million-row files. Columns are
found by name among common aliases, ignoring case, spaces, ``_`` and ``-``.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import re
import warnings
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

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
    "notes",
)
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
    all_columns: bool = True,
    require_url: bool = True,
) -> Prospects:
    """Read a prospect CSV or XLSX file into :class:`Prospects`.

    The URL and note columns are found among common aliases unless named (``url_column``,
    ``note_column``: exact name first, then ignoring case and spaces); an optional sender
    column (``sender_id``, ``senderId``, ``sender``) is picked up too. With
    ``all_columns=False`` only those columns are read, which is what validation needs and
    much cheaper for large files. Raises :class:`InputError` for a file that cannot be used
    (missing, empty, not a spreadsheet, ragged rows) and :class:`ColumnNotFoundError` when
    no URL column is found, naming the columns that were (unless ``require_url`` is
    false, as for do-not-contact lists that may hold only companies).
    """
    path = Path(path)
    head = _read_head(path)
    if head.startswith(b"PK\x03\x04"):
        return _load_xlsx(path, url_column, note_column, all_columns, require_url)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise InputError(path, "old Excel .xls format: save it as .xlsx or CSV (UTF-8)")
    return _load_csv(path, head, url_column, note_column, all_columns, require_url)


# -- columns ----------------------------------------------------------------------------


def _canonical(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", name).casefold()


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
            raise ColumnNotFoundError(path, f"{wanted} column {explicit!r}", list(names))
        return matches[0]
    by_canonical: dict[str, str] = {}
    for name in names:
        by_canonical.setdefault(_canonical(name), name)
    for alias in aliases:
        if _canonical(alias) in by_canonical:
            return by_canonical[_canonical(alias)]
    return None


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
        raise ColumnNotFoundError(path, "LinkedIn URL", list(names))
    note = _find_column(path, names, "note", note_column, NOTE_ALIASES)
    sender = _find_column(path, names, "sender", None, SENDER_ALIASES)
    company = _find_column(path, names, "company", None, COMPANY_ALIASES)
    spaced = [n for n in names if n != n.strip()]
    notes = tuple(
        f"{path}: column {n!r} has spaces around its name (matched as {n.strip()!r})"
        for n in spaced
    )
    return _Columns(url=url, note=note, sender=sender, warnings=notes, company=company)


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
    cols = _choose_columns(path, names, url_column, note_column, require_url)
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
    )


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


def _load_xlsx(
    path: Path,
    url_column: str | None,
    note_column: str | None,
    all_columns: bool,
    require_url: bool,
) -> Prospects:
    # Closed here, not when the garbage collector gets to the generator: after an error
    # (a missing column) the traceback keeps it alive, and with it the workbook's file.
    with contextlib.closing(_xlsx_records(path)) as records:
        return _xlsx_prospects(path, records, url_column, note_column, all_columns, require_url)


def _xlsx_prospects(
    path: Path,
    records: Iterator[tuple[int, tuple[Any, ...]]],
    url_column: str | None,
    note_column: str | None,
    all_columns: bool,
    require_url: bool,
) -> Prospects:
    _, header = next(records, (0, ()))
    if not header:
        raise InputError(path, "the workbook's first sheet is empty")
    names = _unique_names([_cell_text(v) for v in header])
    cols = _choose_columns(path, names, url_column, note_column, require_url)
    wanted = set(cols.wanted())
    keep = [i for i, n in enumerate(names) if all_columns or n in wanted]
    data: list[list[str]] = [[] for _ in keep]
    rows: list[int] = []
    for row_number, values in records:
        if not any(v is not None and v != "" for v in values):
            continue  # openpyxl reports formatted-but-empty rows; they are not prospects
        rows.append(row_number)
        for out, i in zip(data, keep, strict=True):
            out.append(_cell_text(values[i]) if i < len(values) else "")
    if not rows:
        raise InputError(path, "has a header but no prospect rows")
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
    )


def _xlsx_records(path: Path) -> Generator[tuple[int, tuple[Any, ...]], None, None]:
    """(row number, cell values) of the first sheet, from its first non-empty row on."""
    import zipfile

    import openpyxl  # imported here: it costs startup time that CSV users should not pay

    try:
        with warnings.catch_warnings():
            # openpyxl warns about styles and extensions it ignores; none matter here.
            warnings.simplefilter("ignore")
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InputError(path, f"not a readable Excel workbook ({exc})") from None
    except Exception as exc:  # openpyxl raises its own InvalidFileException and others
        raise InputError(path, f"not a readable Excel workbook ({type(exc).__name__})") from None
    try:
        sheet = book.worksheets[0]
        started = False
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            if not started and not any(v is not None and v != "" for v in values):
                continue
            started = True
            yield number, tuple(values)
    finally:
        book.close()


def _cell_text(value: Any) -> str:
    """An Excel cell as the text a user sees (numbers without a spurious ``.0``)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)

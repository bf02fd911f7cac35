"""Reading a results file into a :class:`~.state.JournalState`.

Tolerant of files written by hand or by other tools (missing optional columns, extra
columns, blank lines, statuses in any case, non-canonical URLs), strict about everything
that would make a line mean something else: a malformed line is refused with
``file:line: reason``, and an unfinished last line is set aside only where an interrupted
append of the journal's own can have left it (:mod:`.recovery`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from campaign_runner.arrowkit import release_unused
from campaign_runner.csvio import FORMULA_START_CLASS, PLAIN_NUMBER
from campaign_runner.errors import JournalError
from campaign_runner.journal.format import JOURNAL_COLUMNS, PENDING, STATUSES
from campaign_runner.journal.recovery import (
    Layout,
    read_layout,
    records,
    refusal,
    repair_note,
    require_columns,
    tail_problem,
)
from campaign_runner.journal.state import JournalState
from campaign_runner.urls import canonical_or_kept

_INT_COLUMNS = ("row", "attempts")
_ESCAPED = "^'" + FORMULA_START_CLASS
_ESCAPED_NUMBER = "^'" + PLAIN_NUMBER + "$"


def load_journal(path: Path) -> JournalState:
    """Read a results file (ours, hand-written or from another tool) into a JournalState.

    A missing or empty file is an empty state. Missing optional columns get defaults (``""``,
    ``0``), extra columns are kept, blank lines ignored, statuses compared case-insensitively,
    apostrophe escapes removed. An unfinished last line that an interrupted append left is
    left out, and :attr:`JournalState.repair` says so; :meth:`Journal.open` cuts it off.
    Raises :class:`JournalError` naming the file (and line) when it cannot be used,
    including for an unfinished last line that is not the journal's own.
    """
    return load_with_layout(path)[0]


def load_with_layout(path: Path) -> tuple[JournalState, Layout | None]:
    """:func:`load_journal`, and the layout it found (``None``: no file, or an empty one)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return _empty_state(path, JOURNAL_COLUMNS), None
    except OSError as exc:
        raise JournalError(f"{path}: cannot read the results file: {exc.strerror}") from exc
    if size == 0:
        return _empty_state(path, JOURNAL_COLUMNS), None
    try:
        with open(path, "rb") as f:
            layout = read_layout(path, f, size)
        if not layout.columns:
            note = f"{path}: removed a header that an interrupted run left unfinished"
            return _empty_state(path, JOURNAL_COLUMNS, repair=note), layout
        require_columns(path, layout.columns)
        table = _read_table(path, layout)
    except OSError as exc:
        raise JournalError(f"{path}: cannot read the results file: {exc.strerror}") from exc
    table = _normalise(path, layout, table)
    repair = ""
    if layout.tail is not None:
        tail = layout.tail
        problem = tail_problem(tail, _pending_lookup(table))
        if problem:
            raise refusal(path, tail, problem)
        repair = repair_note(path, tail)
    release_unused()  # the parsing buffers and the columns before _normalise
    return JournalState(path=path, lines=table.num_rows, repair=repair, _table=table), layout


def _pending_lookup(table: pa.Table) -> Callable[[str], bool]:
    def has_pending(url: str) -> bool:
        lines = pc.and_(pc.equal(table["status"], PENDING), pc.equal(table["linkedin_url"], url))
        return bool(pc.any(lines).as_py())

    return has_pending


def _read_table(path: Path, layout: Layout) -> pa.Table:
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
        for _ in records(path, layout):  # raises with the line number when it can
            pass
        raise JournalError(f"{path}: cannot read the results file: {exc}") from exc


def _normalise(path: Path, layout: Layout, table: pa.Table) -> pa.Table:
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
            col = canonical_or_kept(col)
        arrays[name] = col
    return pa.table(arrays)


def _unescape(col: pa.Array) -> pa.Array:
    if not pc.any(pc.starts_with(col, "'")).as_py():
        return col
    escaped = pc.and_(
        pc.match_substring_regex(col, _ESCAPED),
        pc.invert(pc.match_substring_regex(col, _ESCAPED_NUMBER)),
    )
    return pc.if_else(escaped, pc.utf8_slice_codeunits(col, 1), col)


def _to_int(path: Path, layout: Layout, name: str, col: pa.Array) -> pa.Array:
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


def _check_status(path: Path, layout: Layout, col: pa.Array) -> pa.Array:
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


def _record_line(path: Path, layout: Layout, index: int) -> int:
    for number, (line, _) in enumerate(records(path, layout)):
        if number == index:
            return line
    return 0  # unreachable for an index from the same file


def _empty_state(path: Path, columns: Sequence[str], repair: str = "") -> JournalState:
    empty = pa.table(
        {c: pa.array([], pa.int64() if c in _INT_COLUMNS else pa.string()) for c in columns}
    )
    return JournalState(path=path, lines=0, repair=repair, _table=empty)

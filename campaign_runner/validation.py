"""Which prospect rows can be sent: profile URLs, notes, duplicates. Pure: no I/O but reading.

Profile URLs
    Normalised by :mod:`campaign_runner.urls`, which holds the one canonical rule; a row
    whose URL cannot be normalised is ``invalid`` with that module's reason.

Notes
    The note is kept exactly as written (spaces, line breaks, emoji, control characters), but
    an empty or whitespace-only cell means "no note". The API's limit is 300 characters and
    the API is a JavaScript (NestJS) service, whose ``string.length`` counts UTF-16 code
    units; we count the same way: an emoji or other character outside the Basic
    Multilingual Plane counts 2. That is never less than the count in code points, so a
    note we accept is never refused for its length. Notes over 200 characters get a warning,
    because LinkedIn free accounts cap notes at 200 (and send invitations from free
    accounts without the note at all).

Templates and placeholders
    With a note template (:mod:`campaign_runner.notes`), a row without its own note gets
    the template rendered from its cells; a row whose placeholder has no value (and no
    fallback) is ``invalid``, naming the column. Every note, the row's own or rendered,
    that still holds placeholder syntax (``{first_name}``, ``[First Name]``...) is
    ``invalid``. The rendered note is the one measured, reported and sent.

Duplicates
    The same canonical URL twice: the first row that could be sent stays ``valid``, later
    ones are ``duplicate`` and name the row they repeat.

Speed
    A million rows are checked with Arrow compute kernels (regular expressions, string
    lengths, hashing); URLs and notes are checked in parallel, chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from campaign_runner.arrowkit import (
    StrArray,
    blank_strings,
    byte_table,
    chunk_pool,
    from_numpy,
    map_chunks,
    release_unused,
    str_array,
    str_data,
    str_offsets,
    str_scalar,
    string_chunks,
    to_numpy,
)
from campaign_runner.config import Settings
from campaign_runner.csvio import FORMULA_FIRST_CHARS, escape_cell
from campaign_runner.exclusions import Exclusions, fold_companies, load_exclusions
from campaign_runner.notes import BoundTemplate, NoteTemplate, parse_template, placeholder_reasons
from campaign_runner.prospects import Prospects, load_prospects
from campaign_runner.urls import normalize_chunk

if TYPE_CHECKING:
    import pandas as pd


STATUS_VALID = "valid"
STATUS_INVALID = "invalid"
STATUS_DUPLICATE = "duplicate"
STATUS_EXCLUDED = "excluded"  # on a do-not-contact list: intended, not a problem
NOTE_LIMIT = 300  # the API's limit
FREE_NOTE_LIMIT = 200  # LinkedIn free accounts: warn above this

FRAME_COLUMNS = ("row", "linkedin_url", "status", "reason", "note", "sender_id", "warning")
REPORT_COLUMNS = ("row", "linkedin_url", "status", "reason", "warning")
STATUSES = (STATUS_VALID, STATUS_INVALID, STATUS_DUPLICATE, STATUS_EXCLUDED)
_ASTRAL = r"[\x{10000}-\x{10FFFF}]"


def note_length(note: str) -> int:
    """The length of ``note`` as the API counts it: UTF-16 code units (an emoji counts 2)."""
    return len(note.encode("utf-16-le")) // 2


def note_lengths(notes: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """Vectorised :func:`note_length` (as int64)."""
    parts = map_chunks(_note_lengths_chunk, string_chunks(notes))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _note_lengths_chunk(notes: pa.Array) -> npt.NDArray[np.int64]:
    lengths = to_numpy(pc.utf8_length(notes)).astype(np.int64)
    # Only non-ASCII notes can hold characters that count twice; look only at those.
    wide = pc.invert(pc.string_is_ascii(notes))
    if pc.any(wide).as_py():
        extra = pc.count_substring_regex(notes.filter(wide), _ASTRAL)
        lengths[np.flatnonzero(to_numpy(wide))] += to_numpy(extra)
    return lengths


def _blank_spaces(notes: pa.Array) -> pa.Array:
    """Whitespace-only notes become ``''`` (no note); every other note stays as written."""
    if notes.null_count:
        notes = notes.fill_null(str_scalar(""))
    space = pc.utf8_is_space(notes)
    if pc.any(space).as_py():
        notes = pc.if_else(space, str_scalar(""), notes)
    return notes


@dataclass(frozen=True)
class _NoteSource:
    """Where each row's note comes from: its own cell, else the template."""

    column: str | None
    template: BoundTemplate | None

    def columns(self) -> list[str]:
        own = [self.column] if self.column is not None else []
        return list(dict.fromkeys(own + (self.template.needed() if self.template else [])))

    def chunk(self, cells: pa.RecordBatch) -> tuple[pa.Array, npt.NDArray[np.int64], pa.Array]:
        """One chunk's notes, their lengths, and their problems (``''`` where none)."""
        n = cells.num_rows
        notes = blank_strings(n)
        if self.column is not None:
            notes = _blank_spaces(cells.column(self.column).cast(pa.string()))
        problems = blank_strings(n)
        if self.template is not None:
            own = pc.not_equal(notes, str_scalar(""))
            rendered = self.template.render(
                {c: cells.column(c).cast(pa.string()) for c in self.template.needed()}, n
            )
            notes = pc.if_else(own, notes, _blank_spaces(rendered.notes))
            for reason, missing in rendered.missing:
                text = pc.if_else(pc.and_not(missing, own), str_scalar(reason), str_scalar(""))
                problems = _join_reasons(problems, text)
        unfilled = placeholder_reasons(notes)
        if unfilled is not None:
            problems = _join_reasons(problems, unfilled)
        return notes, _note_lengths_chunk(notes), problems


_FORMULA_BYTE = byte_table(FORMULA_FIRST_CHARS)  # cells a spreadsheet may execute


# -- a whole file -----------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationResult:
    """The verdict on every row of one prospect file, in input order.

    ``frame`` has exactly the columns of :data:`FRAME_COLUMNS`: ``row`` (int64, the
    spreadsheet row: header = 1, first prospect = 2), ``linkedin_url`` (canonical, ``''``
    when the URL is unusable), ``status`` (valid, invalid, duplicate), ``reason`` (``''``
    for valid rows), ``note`` (exactly as given, or as the template rendered it; ``''`` =
    no note), ``sender_id`` (``''`` when the file has no sender column) and ``warning``.
    ``notices`` are file-level remarks (header names with stray spaces and the like).
    ``note_template`` is the template that filled rows without their own note, as written.
    """

    source: Path
    url_column: str
    note_column: str | None
    sender_column: str | None
    frame: pd.DataFrame
    notices: tuple[str, ...] = field(default=())
    note_template: str | None = None

    @property
    def counts(self) -> dict[str, int]:
        """Rows per status, every status present (zero when none)."""
        found = self.frame["status"].value_counts()
        return {s: int(found.get(s, 0)) for s in STATUSES}

    @property
    def valid(self) -> pd.DataFrame:
        """The rows that can be sent."""
        return self.frame[self.frame["status"] == STATUS_VALID]

    @property
    def problems(self) -> pd.DataFrame:
        """The invalid and duplicate rows."""
        return self.frame[self.frame["status"].isin([STATUS_INVALID, STATUS_DUPLICATE])]


@dataclass(frozen=True)
class Verdicts:
    """The same verdicts as :class:`ValidationResult`, held in Arrow.

    What the ``validate`` command uses: summarising and reporting a million rows straight
    from Arrow skips building a DataFrame that nothing would read.
    """

    source: Path
    url_column: str
    note_column: str | None
    sender_column: str | None
    table: pa.Table  # the columns of FRAME_COLUMNS
    notices: tuple[str, ...] = ()
    note_template: str | None = None  # as written; fills the rows without their own note
    # Which columns (and sheet, and header row) were used, said for a person to check.
    column_notes: tuple[str, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        """Rows per status, every status present (zero when none)."""
        found = {
            d["values"]: d["counts"] for d in pc.value_counts(self.table["status"]).to_pylist()
        }
        return {s: int(found.get(s, 0)) for s in STATUSES}

    def problems(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The invalid and duplicate rows (the first ``limit`` of them), as dicts."""
        wanted = str_array([STATUS_INVALID, STATUS_DUPLICATE])
        return self._rows(pc.is_in(self.table["status"], value_set=wanted), limit)

    def excluded(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The rows a do-not-contact list names (the first ``limit`` of them), as dicts."""
        return self._rows(pc.equal(self.table["status"], str_scalar(STATUS_EXCLUDED)), limit)

    def warnings(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The rows that carry a warning (the first ``limit`` of them), as dicts."""
        return self._rows(pc.not_equal(self.table["warning"], str_scalar("")), limit)

    def count_warnings(self) -> int:
        return int(pc.sum(pc.not_equal(self.table["warning"], str_scalar(""))).as_py() or 0)

    def has_notes(self) -> bool:
        return bool(pc.any(pc.not_equal(self.table["note"], str_scalar(""))).as_py())

    def _rows(self, mask: StrArray, limit: int | None) -> list[dict[str, Any]]:
        picked = self.table.select(["row", "linkedin_url", "status", "reason", "warning"])
        picked = picked.filter(mask)
        if limit is not None:
            picked = picked.slice(0, limit)
        rows: list[dict[str, Any]] = picked.to_pylist()
        return rows

    def result(self) -> ValidationResult:
        """As a :class:`ValidationResult` (with a pandas ``frame``)."""
        return ValidationResult(
            source=self.source,
            url_column=self.url_column,
            note_column=self.note_column,
            sender_column=self.sender_column,
            frame=self.table.to_pandas(),
            notices=self.notices,
            note_template=self.note_template,
        )


def validate_file(
    path: Path,
    *,
    url_column: str | None = None,
    note_column: str | None = None,
    exclusions: Exclusions | None = None,
    note_template: str | None = None,
) -> ValidationResult:
    """Load the prospect spreadsheet at ``path`` and validate every row.

    Raises :class:`~campaign_runner.errors.InputError` (or ``ColumnNotFoundError``) when the
    file cannot be used at all, a template placeholder naming a column it lacks included,
    and :class:`~campaign_runner.errors.ConfigError` for a template that does not parse;
    row-level problems are results, not exceptions.
    """
    return check_file(
        path,
        url_column=url_column,
        note_column=note_column,
        exclusions=exclusions,
        note_template=note_template,
    ).result()


def check_file(
    path: Path,
    *,
    url_column: str | None = None,
    note_column: str | None = None,
    exclusions: Exclusions | None = None,
    note_template: str | None = None,
    sheet: str | int | None = None,
) -> Verdicts:
    """:func:`validate_file`, with the verdicts left in Arrow (see :class:`Verdicts`).

    ``sheet`` picks a workbook's sheet by name or 1-based number (see
    :func:`~campaign_runner.prospects.load_prospects`)."""
    template = parse_template(note_template) if note_template is not None else None
    # Which columns a template names is known only against the header, so with one every
    # column is read, and those it does not name are dropped at once. On a million rows of
    # 12 columns that cost 1.2x the time and 1.5x the peak memory of reading the few
    # (benchmarks/bench_notes.py); an `extra_columns` hook in the loader would save it.
    prospects = load_prospects(
        Path(path),
        url_column=url_column,
        note_column=note_column,
        all_columns=template is not None,
        sheet=sheet,
    )
    if template is not None:
        prospects = _narrowed(prospects, template.bind(prospects.source, prospects.columns))
    verdicts = check_prospects(prospects, exclusions, template)
    del prospects  # its URLs as written, needed no more: free them before releasing memory
    release_unused()
    return verdicts


def check_with_settings(
    path: Path,
    settings: Settings,
    *,
    url_column: str | None = None,
    note_column: str | None = None,
    note_template: str | None = None,
    sheet: str | int | None = None,
    exclude: Sequence[Path] = (),
) -> Verdicts:
    """:func:`check_file` as ``validate`` and ``run`` call it, with :func:`settings_rules`."""
    exclusions, template = settings_rules(settings, note_template, exclude)
    return check_file(
        path,
        url_column=url_column,
        note_column=note_column,
        exclusions=exclusions,
        note_template=template,
        sheet=sheet,
    )


def settings_rules(
    settings: Settings, note_template: str | None = None, exclude: Sequence[Path] = ()
) -> tuple[Exclusions, str | None]:
    """The do-not-contact lists and the note template a check of the input uses: the
    config's lists with ``exclude`` added, and its template unless ``note_template`` is
    given."""
    exclusions = load_exclusions([*settings.campaign.exclude, *exclude])
    return exclusions, note_template or settings.campaign.note_template


def _narrowed(prospects: Prospects, template: BoundTemplate) -> Prospects:
    """``prospects`` holding only the columns validation reads."""
    used = {
        prospects.url_column,
        prospects.note_column,
        prospects.sender_column,
        prospects.company_column,
        *template.needed(),
    }
    keep = [c for c in prospects.table.column_names if c in used]
    return replace(prospects, table=prospects.table.select(keep))


def check_prospects(
    prospects: Prospects,
    exclusions: Exclusions | None = None,
    template: NoteTemplate | str | None = None,
) -> Verdicts:
    """Validate loaded :class:`Prospects`, leaving the verdicts in Arrow.

    Rows on a do-not-contact list (``exclusions``) are ``excluded``, naming the list; an
    invalid row stays invalid, and an excluded one is never the original of a duplicate.
    With a note ``template``, rows without their own note get it rendered from their
    cells; ``prospects`` must hold the columns it names (load them all, or at least those).
    """
    table, n = prospects.table, len(prospects)
    url_column = prospects.url_column
    assert url_column is not None, "loaded with require_url"
    if isinstance(template, str):
        template = parse_template(template)
    bound = template.bind(prospects.source, prospects.columns) if template else None
    source = _NoteSource(prospects.note_column, bound)
    unread = [c for c in source.columns() if c not in table.column_names]
    if unread:
        raise ValueError(f"columns the note template needs were not loaded: {unread}")
    empty = pa.chunked_array([blank_strings(n)])
    with chunk_pool() as pool:
        # URLs first: the duplicate search needs them all, and runs here (Arrow releases
        # the GIL) while the pool's threads are still busy with the notes.
        url_jobs = [pool.submit(normalize_chunk, c) for c in string_chunks(table[url_column])]
        note_jobs = []
        if source.column is not None or source.template is not None:
            # A template without placeholders reads no column: the URLs give the chunks.
            batches = table.select(source.columns() or [url_column]).to_batches()
            note_jobs = [pool.submit(source.chunk, b) for b in batches]
        url_parts = [job.result() for job in url_jobs]
        urls = pa.chunked_array([u for u, _ in url_parts], pa.string())
        url_reasons = pa.chunked_array([r for _, r in url_parts], pa.string())
        codes = to_numpy(pa.chunked_array([c.indices for c in pc.dictionary_encode(urls).chunks]))
        note_parts = [job.result() for job in note_jobs]
    if note_parts:
        notes = pa.chunked_array([p for p, _, _ in note_parts], pa.string())
        lengths = np.concatenate([x for _, x, _ in note_parts])
        note_problems = pa.chunked_array([r for _, _, r in note_parts], pa.string())
    else:
        notes, lengths, note_problems = empty, np.zeros(n, dtype=np.int64), empty
    too_long = lengths > NOTE_LIMIT
    invalid = _nonempty(url_reasons) | too_long | _nonempty(note_problems)
    status = invalid.astype(np.int8)
    reasons = _join_reasons(
        _join_reasons(url_reasons, note_problems),
        _length_text(lengths, too_long, NOTE_LIMIT, empty),
    )
    rows = to_numpy(prospects.rows)
    excluded = np.zeros(n, dtype=bool)
    if exclusions:
        excluded, why = _excluded(prospects, urls, exclusions)
        excluded &= ~invalid
        if excluded.any():
            status[excluded] = 3
            picked = [why[i] for i in np.flatnonzero(excluded).tolist()]
            reasons = pc.replace_with_mask(
                _combined(reasons), from_numpy(excluded), str_array(picked)
            )
    dup_idx, first_idx = _duplicates(codes, ~invalid & ~excluded)
    if len(dup_idx):
        status[dup_idx] = 2
        dup_mask = np.zeros(n, dtype=bool)
        dup_mask[dup_idx] = True
        # replace_with_mask fills in mask order, and dup_idx is ascending.
        repeated = [f"duplicate of row {r}" for r in rows[first_idx].tolist()]
        reasons = pc.replace_with_mask(
            _combined(reasons), from_numpy(dup_mask), str_array(repeated)
        )
    warn = (lengths > FREE_NOTE_LIMIT) & ~too_long
    senders = empty
    if prospects.sender_column is not None:
        senders = pc.utf8_trim_whitespace(table[prospects.sender_column])
    table = pa.table(
        {
            "row": prospects.rows,
            "linkedin_url": urls,
            "status": str_array(list(STATUSES)).take(from_numpy(status)),
            "reason": reasons,
            "note": notes,
            "sender_id": senders,
            "warning": _length_text(lengths, warn, FREE_NOTE_LIMIT, empty),
        }
    )
    return Verdicts(
        source=prospects.source,
        url_column=url_column,
        note_column=prospects.note_column,
        sender_column=prospects.sender_column,
        table=table,
        notices=prospects.warnings,
        note_template=template.text if template is not None else None,
        column_notes=_column_notes(prospects, template),
    )


def _column_notes(prospects: Prospects, template: NoteTemplate | None) -> tuple[str, ...]:
    """The loader's account of the columns, with what a template changes about the note."""
    if template is None:
        return prospects.column_notes
    own = prospects.note_column
    said = f"note from {own!r}, else the note template" if own else "note from the note template"
    return tuple(
        said if n.startswith(("note from ", "no note column")) else n
        for n in prospects.column_notes
    )


def _excluded(
    prospects: Prospects, urls: pa.ChunkedArray, exclusions: Exclusions
) -> tuple[npt.NDArray[np.bool_], dict[int, str]]:
    """Which rows a do-not-contact list names, and why (by row position)."""
    n = len(prospects)
    hit = np.zeros(n, dtype=bool)
    why: dict[int, str] = {}
    if exclusions.urls:
        listed = str_array(list(exclusions.urls))
        where = pc.index_in(urls, value_set=listed)
        for i in np.flatnonzero(to_numpy(pc.is_valid(where))).tolist():
            source = exclusions.urls[urls[i].as_py()]
            hit[i] = True
            why[i] = f"on the do-not-contact list {source}"
    column = prospects.company_column
    if exclusions.companies and column is not None:
        folded = fold_companies(prospects.table[column])
        where = pc.index_in(folded, value_set=str_array(list(exclusions.companies)))
        for i in np.flatnonzero(to_numpy(pc.is_valid(where))).tolist():
            if hit[i]:
                continue
            company = prospects.table[column][i].as_py()
            source = exclusions.companies[folded[i].as_py()]
            hit[i] = True
            why[i] = f"company {company.strip()!r} is on the do-not-contact list {source}"
    return hit, why


def _nonempty(values: pa.ChunkedArray) -> npt.NDArray[np.bool_]:
    parts = [np.diff(str_offsets(c)) != 0 for c in string_chunks(values)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def _combined(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.Array):
        return values
    return values.combine_chunks() if values.num_chunks else blank_strings(0).cast(values.type)


def _length_text(
    lengths: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_], limit: int, empty: StrArray
) -> StrArray:
    """``note is N characters...`` where ``mask``, else ``''`` (built by Arrow, not Python)."""
    if not mask.any():
        return empty
    if limit == NOTE_LIMIT:
        suffix = f" characters, the limit is {NOTE_LIMIT}"
    else:
        suffix = f" characters: LinkedIn free accounts cap notes at {FREE_NOTE_LIMIT}"
    picked = np.flatnonzero(mask)
    counts = pc.cast(from_numpy(lengths[picked]), pa.string())
    text = pc.binary_join_element_wise(
        str_scalar("note is "), counts, str_scalar(suffix), str_scalar("")
    )
    result: StrArray = pc.replace_with_mask(_combined(empty), from_numpy(mask), text)
    return result


def _join_reasons(first: StrArray, second: StrArray) -> StrArray:
    blank = str_scalar("")
    if not pc.any(pc.not_equal(second, blank)).as_py():
        return first
    both = pc.binary_join_element_wise(first, second, str_scalar("; "))
    joined: StrArray = pc.if_else(
        pc.equal(first, blank), second, pc.if_else(pc.equal(second, blank), first, both)
    )
    return joined


def _duplicates(
    codes: npt.NDArray[Any], candidates: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Positions of repeated URLs among ``candidates``, and of the row each repeats.

    ``codes`` number the URLs (``dictionary_encode``: the same URL, the same number across
    chunks); rows that are not candidates are simply left out.
    """
    positions = np.flatnonzero(candidates)
    if len(positions) < 2:
        return positions[:0], positions[:0]
    picked = codes[positions]
    distinct, first_of_code = np.unique(picked, return_index=True)
    first = first_of_code[np.searchsorted(distinct, picked)]
    repeated = np.flatnonzero(first != np.arange(len(picked)))
    return positions[repeated], positions[first[repeated]]


def write_report(result: ValidationResult | Verdicts, path: Path) -> None:
    """Write the report CSV: ``row, linkedin_url, status, reason, warning``, one line per
    input row, every text cell escaped so that no spreadsheet runs it as a formula."""
    from pyarrow import csv as pacsv

    if isinstance(result, Verdicts):
        table = result.table.select(list(REPORT_COLUMNS))
    else:
        frame = result.frame
        table = pa.table({name: pa.array(frame[name]) for name in REPORT_COLUMNS})
    texts = [
        pa.chunked_array(_escaped(string_chunks(table[name])), pa.string())
        for name in REPORT_COLUMNS[1:]
    ]
    columns = [table["row"].cast(pa.int64()), *texts]
    pacsv.write_csv(pa.table(columns, names=list(REPORT_COLUMNS)), Path(path))


def _escaped(chunks: list[pa.Array]) -> list[pa.Array]:
    """Cells escaped by :func:`campaign_runner.csvio.escape_cell`, which has the last word.

    NumPy picks the candidates from the first byte of each cell (cells starting like a
    formula: a superset of what csvio escapes, kept in step by a test), so that only those
    reach Python, and csvio is imported only when some cell needs it.
    """
    escaped: list[pa.Array] = []
    for values in chunks:
        if values.null_count:
            values = values.fill_null(str_scalar(""))
        offsets, data = str_offsets(values), str_data(values)
        risky = np.zeros(len(values), dtype=bool)
        if len(data):
            first = data[np.minimum(offsets[:-1], len(data) - 1)]
            risky = (offsets[1:] > offsets[:-1]) & _FORMULA_BYTE[first]
        if risky.any():
            mask = from_numpy(risky)
            fixed = [escape_cell(v) for v in values.filter(mask).to_pylist()]
            values = pc.replace_with_mask(values, mask, str_array(fixed))
        escaped.append(values)
    return escaped

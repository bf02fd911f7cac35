"""Which prospect rows can be sent: profile URLs, notes, duplicates. Pure: no I/O but reading.

Profile URLs
    People paste profile URLs in many forms: with ``http://`` or no scheme, with ``www.``,
    a country (``uk.``) or the mobile (``m.``) subdomain, a trailing slash, a query such as
    ``?trk=...``, a sub-page (``/in/jane-doe/detail/recent-activity/``), a percent-encoded
    or non-Latin name. All become ``https://www.linkedin.com/in/<slug>``. Rejected, each
    with a reason the user can act on: company, school and showcase pages, Sales Navigator
    links (which cannot be sent to; the reason says how to get the public URL), member-ID
    URLs (``/in/ACoAA...``, refused by LinkedIn for invitations), other hosts (including
    look-alikes such as ``linkedin.com.evil.example`` and LinkedIn URLs wrapped in another
    site's query string), empty cells and text that is not a URL.

Case and encoding of the slug
    LinkedIn treats profile names case-insensitively, so the canonical slug is lower-cased:
    ``/in/Jane-Doe`` and ``/in/jane-doe`` are the same person, which makes duplicates
    compare case-insensitively. A percent-encoded slug is decoded (UTF-8), checked, lower-
    cased and encoded again with upper-case hex, so ``J%c3%b6rg``, ``Jörg`` and ``j%C3%B6rg``
    all become ``j%C3%B6rg``. Normalising a normalised URL gives it back unchanged.

Notes
    The note is kept exactly as written (spaces, line breaks, emoji, control characters), but
    an empty or whitespace-only cell means "no note". The API's limit is 300 characters and
    the API is a JavaScript (NestJS) service, whose ``string.length`` counts UTF-16 code
    units; we count the same way: an emoji or other character outside the Basic
    Multilingual Plane counts 2. That is never less than the count in code points, so a
    note we accept is never refused for its length. Notes over 200 characters get a warning,
    because LinkedIn free accounts cap notes at 200 (and send invitations from free
    accounts without the note at all).

Duplicates
    The same canonical URL twice: the first row that could be sent stays ``valid``, later
    ones are ``duplicate`` and name the row they repeat.

Speed
    A million rows are checked with Arrow compute kernels (regular expressions, string
    lengths, hashing); only the few rows the vectorised path cannot decide (odd URLs,
    percent-encoding, every rejection) go through :func:`normalize_profile_url` in Python.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar
from urllib.parse import quote, unquote

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from campaign_runner.prospects import Prospects, load_prospects

if TYPE_CHECKING:
    import pandas as pd

STATUS_VALID = "valid"
STATUS_INVALID = "invalid"
STATUS_DUPLICATE = "duplicate"
NOTE_LIMIT = 300  # the API's limit
FREE_NOTE_LIMIT = 200  # LinkedIn free accounts: warn above this

PROFILE_PREFIX = "https://www.linkedin.com/in/"
SLUG_MIN, SLUG_MAX = 3, 100  # LinkedIn's rule for custom profile URLs
FRAME_COLUMNS = ("row", "linkedin_url", "status", "reason", "note", "sender_id", "warning")
REPORT_COLUMNS = ("row", "linkedin_url", "status", "reason", "warning")

_T = TypeVar("_T")
StrArray: TypeAlias = pa.Array | pa.ChunkedArray
STATUSES = (STATUS_VALID, STATUS_INVALID, STATUS_DUPLICATE)
_STATUSES = pa.array(STATUSES)
# Cells starting with one of these may be formulas (see csvio; a test keeps both in step).
FORMULA_FIRST_CHARS = "=+-@\t\r"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
_LINKEDIN_HOST = re.compile(r"(?:(?:www|m|[a-z]{2})\.)?linkedin\.com")
_MEMBER_ID = ("acoaa", "acwaa")
_URL_SAFE = r"A-Za-z0-9\-._~%!$&'()*+,;=:@/?#"
# The common case, decided by Arrow without Python: a plain ASCII slug on a LinkedIn host.
# Anything it does not match goes to normalize_profile_url(), which has the final word;
# a property test checks that both agree.
_FAST_URL = (
    r"^[ \t]*(?:https?://|//)?(?:(?:www|m|[a-z]{2})\.)?linkedin\.com/in/"
    rf"[A-Za-z0-9_\-]{{{SLUG_MIN},{SLUG_MAX}}}(?:[/?#][{_URL_SAFE}]*)?[ \t]*$"
)
# \w is str.isalnum() plus "_": a subset of _slug_char(), which also allows combining marks.
_WORD_SLUG = re.compile(r"[\w\-]+")
_KIND_REASONS = {
    "company": "a company page (/company/), not a person's profile",
    "school": "a school page (/school/), not a person's profile",
    "showcase": "a showcase page (/showcase/), not a person's profile",
    "sales": (
        "a Sales Navigator link, which cannot be sent to: open the lead in Sales Navigator, "
        "choose 'View LinkedIn profile' from its ... menu and copy the linkedin.com/in/ URL"
    ),
}
_EMPTY_REASON = "no LinkedIn URL (empty cell)"
_ASTRAL = r"[\x{10000}-\x{10FFFF}]"


class InvalidUrl(ValueError):
    """A cell that is not a usable LinkedIn profile URL; ``reason`` says why, for humans."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


# -- one URL ----------------------------------------------------------------------------


def normalize_profile_url(raw: str) -> str:
    """Return ``https://www.linkedin.com/in/<slug>`` for a pasted profile URL.

    Accepts the forms described in this module's docstring and raises :class:`InvalidUrl`
    with a human reason for anything else. The result is canonical: lower-case slug,
    non-ASCII characters percent-encoded, no query, fragment or trailing slash; feeding it
    back returns it unchanged.
    """
    text = raw.strip()
    if not text:
        raise InvalidUrl(_EMPTY_REASON)
    # isprintable() is False for control, format (zero-width) and separator characters.
    if " " in text or not text.isprintable():
        raise InvalidUrl("not a URL (contains spaces or invisible characters)")
    rest = _without_scheme(text)
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:cut], rest[cut:]
    _check_host(netloc.lower(), tail)
    path = re.split(r"[?#]", tail, maxsplit=1)[0]
    segments = [s for s in path.split("/") if s]
    slug = _profile_slug(segments)
    return PROFILE_PREFIX + quote(slug, safe="-_")


def _without_scheme(text: str) -> str:
    scheme = _SCHEME.match(text)
    if scheme:
        if scheme.group(1).lower() not in ("http", "https"):
            raise InvalidUrl(f"not a web address ({scheme.group(1)}://)")
        return text[scheme.end() :]
    return text[2:] if text.startswith("//") else text


def _check_host(host: str, tail: str) -> None:
    if "@" in host or ":" in host:
        raise InvalidUrl(f"not a LinkedIn profile URL (unexpected address part {host!r})")
    if "." not in host:
        raise InvalidUrl("not a URL")
    if host == "lnkd.in":
        raise InvalidUrl("shortened lnkd.in link: open it and copy the profile URL it leads to")
    if _LINKEDIN_HOST.fullmatch(host):
        return
    if "linkedin.com/in/" in unquote(tail).lower():
        raise InvalidUrl(
            f"a LinkedIn URL wrapped in another address (host {host}): "
            "paste the linkedin.com/in/... URL itself"
        )
    raise InvalidUrl(f"not a LinkedIn profile URL (host {host})")


def _profile_slug(segments: list[str]) -> str:
    kind = segments[0].lower() if segments else ""
    if kind in _KIND_REASONS:
        raise InvalidUrl(_KIND_REASONS[kind])
    if kind in ("pub", "profile"):
        raise InvalidUrl(
            f"an old-style /{kind}/ address: open it and copy the linkedin.com/in/ URL it shows"
        )
    if kind != "in":
        where = f"/{segments[0]}/ page" if segments else "no /in/ profile path"
        raise InvalidUrl(f"not a profile URL ({where})")
    if len(segments) < 2:
        raise InvalidUrl("no profile name after /in/")
    return _canonical_slug(segments[1])


def _canonical_slug(raw_slug: str) -> str:
    try:
        slug = unquote(raw_slug, errors="strict")
    except UnicodeDecodeError:
        raise InvalidUrl("malformed percent-encoding in the profile name") from None
    slug = slug.lower()
    if slug.startswith(_MEMBER_ID):
        raise InvalidUrl(
            "a member-ID URL (/in/ACoAA...), which LinkedIn refuses for invitations: "
            "open the profile and copy the URL with the person's name"
        )
    plain = _WORD_SLUG.fullmatch(slug) is not None  # the common case, without a loop
    bad = None if plain else next((ch for ch in slug if not _slug_char(ch)), None)
    if bad is not None:
        raise InvalidUrl(f"the profile name contains {bad!r}, which profile URLs never do")
    if not SLUG_MIN <= len(slug) <= SLUG_MAX:
        raise InvalidUrl(
            f"the profile name is {len(slug)} characters; LinkedIn's are {SLUG_MIN} to {SLUG_MAX}"
        )
    return slug


def _slug_char(ch: str) -> bool:
    return ch.isalnum() or ch in "-_" or unicodedata.category(ch).startswith("M")


# -- many URLs, notes -------------------------------------------------------------------


def normalize_urls(values: pa.Array | pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """Vectorised :func:`normalize_profile_url`: (canonical URLs, reasons), element-wise.

    A URL is ``''`` where its reason is not, and the other way round. Chunks are processed
    in parallel (Arrow kernels release the GIL).
    """
    parts = _map_chunks(_normalize_chunk, _chunks(values))
    urls = pa.chunked_array([u for u, _ in parts], pa.string())
    reasons = pa.chunked_array([r for _, r in parts], pa.string())
    return urls, reasons


def _normalize_chunk(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    fast = pc.match_substring_regex(values, _FAST_URL).fill_null(False)
    # Every fast row holds "/in/"; the others get one so that the split lines up. Splitting
    # on plain strings is several times cheaper than extracting with a regex.
    after = pc.list_element(
        pc.split_pattern(pc.if_else(fast, values, "/in/"), "/in/", max_splits=1), 1
    )
    for separator in "/?#":
        after = pc.list_element(pc.split_pattern(after, separator, max_splits=1), 0)
    slugs = pc.ascii_lower(pc.utf8_rtrim(after, characters=" \t"))
    member = pc.or_(*(pc.starts_with(slugs, p) for p in _MEMBER_ID))
    fast = pc.and_(fast, pc.invert(member))
    empty = pc.equal(values, "").fill_null(True)
    urls = pc.if_else(fast, pc.binary_join_element_wise(PROFILE_PREFIX, slugs, ""), "")
    reasons = pc.if_else(empty, _EMPTY_REASON, "")
    slow = pc.invert(pc.or_(fast, empty))
    if pc.any(slow).as_py():
        urls, reasons, slow = _common_rejections(values, urls, reasons, slow)
    if pc.any(slow).as_py():
        slow_urls, slow_reasons = _normalize_each(values.filter(slow).to_pylist())
        urls = pc.replace_with_mask(urls, slow, pa.array(slow_urls, pa.string()))
        reasons = pc.replace_with_mask(reasons, slow, pa.array(slow_reasons, pa.string()))
    return urls, reasons


def _common_rejections(
    values: pa.Array, urls: pa.Array, reasons: pa.Array, slow: pa.Array
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Company pages and Sales Navigator links, the usual rejections, decided by Arrow too.

    Each pattern accepts only what :func:`normalize_profile_url` rejects with that same
    reason (a property test checks that both agree).
    """
    for kind, reason in _KIND_REASONS.items():
        hit = pc.and_(slow, pc.match_substring_regex(values, _kind_pattern(kind)).fill_null(False))
        if pc.any(hit).as_py():
            reasons = pc.if_else(hit, reason, reasons)
            slow = pc.and_(slow, pc.invert(hit))
    return urls, reasons, slow


def _kind_pattern(kind: str) -> str:
    return (
        r"^[ \t]*(?:https?://|//)?(?:(?:www|m|[a-z]{2})\.)?linkedin\.com/"
        rf"{kind}(?:[/?#][{_URL_SAFE}]*)?[ \t]*$"
    )


def _normalize_each(values: list[str | None]) -> tuple[list[str], list[str]]:
    urls: list[str] = []
    reasons: list[str] = []
    for value in values:
        try:
            urls.append(normalize_profile_url(value or ""))
            reasons.append("")
        except InvalidUrl as exc:
            urls.append("")
            reasons.append(exc.reason)
    return urls, reasons


def note_length(note: str) -> int:
    """The length of ``note`` as the API counts it: UTF-16 code units (an emoji counts 2)."""
    return len(note.encode("utf-16-le")) // 2


def note_lengths(notes: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """Vectorised :func:`note_length` (as int64)."""
    parts = _map_chunks(_note_lengths_chunk, _chunks(notes))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _note_lengths_chunk(notes: pa.Array) -> npt.NDArray[np.int64]:
    counted = pc.utf8_length(notes).to_numpy(zero_copy_only=False)
    lengths: npt.NDArray[np.int64] = np.array(counted, dtype=np.int64)
    # Only non-ASCII notes can hold characters that count twice; look only at those.
    wide = pc.invert(pc.string_is_ascii(notes))
    if pc.any(wide).as_py():
        extra = pc.count_substring_regex(notes.filter(wide), _ASTRAL)
        lengths[np.flatnonzero(wide.to_numpy(zero_copy_only=False))] += extra.to_numpy()
    return lengths


def _notes_chunk(notes: pa.Array) -> tuple[pa.Array, npt.NDArray[np.int64]]:
    """Whitespace-only notes become ``''`` (no note); every other note stays as written."""
    space = pc.utf8_is_space(notes).fill_null(False)
    if pc.any(space).as_py():
        notes = pc.if_else(space, "", notes)
    return notes, _note_lengths_chunk(notes)


def _chunks(values: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    return [c if pa.types.is_string(c.type) else c.cast(pa.string()) for c in chunks]


def _map_chunks(func: Callable[[pa.Array], _T], chunks: list[pa.Array]) -> list[_T]:
    if len(chunks) < 2:
        return [func(c) for c in chunks]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(func, chunks))


# -- a whole file -----------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationResult:
    """The verdict on every row of one prospect file, in input order.

    ``frame`` has exactly the columns of :data:`FRAME_COLUMNS`: ``row`` (int64, the
    spreadsheet row: header = 1, first prospect = 2), ``linkedin_url`` (canonical, ``''``
    when the URL is unusable), ``status`` (valid, invalid, duplicate), ``reason`` (``''``
    for valid rows), ``note`` (exactly as given; ``''`` = no note), ``sender_id`` (``''``
    when the file has no sender column) and ``warning``. ``notices`` are file-level
    remarks (header names with stray spaces and the like).
    """

    source: Path
    url_column: str
    note_column: str | None
    sender_column: str | None
    frame: pd.DataFrame
    notices: tuple[str, ...] = field(default=())

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
        return self.frame[self.frame["status"] != STATUS_VALID]


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

    @property
    def counts(self) -> dict[str, int]:
        """Rows per status, every status present (zero when none)."""
        found = {
            d["values"]: d["counts"] for d in pc.value_counts(self.table["status"]).to_pylist()
        }
        return {s: int(found.get(s, 0)) for s in STATUSES}

    def problems(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The invalid and duplicate rows (the first ``limit`` of them), as dicts."""
        return self._rows(pc.not_equal(self.table["status"], STATUS_VALID), limit)

    def warnings(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The rows that carry a warning (the first ``limit`` of them), as dicts."""
        return self._rows(pc.not_equal(self.table["warning"], ""), limit)

    def count_warnings(self) -> int:
        return int(pc.sum(pc.not_equal(self.table["warning"], "")).as_py() or 0)

    def has_notes(self) -> bool:
        return bool(pc.any(pc.not_equal(self.table["note"], "")).as_py())

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
        )


def validate_file(
    path: Path, *, url_column: str | None = None, note_column: str | None = None
) -> ValidationResult:
    """Load the prospect spreadsheet at ``path`` and validate every row.

    Raises :class:`~campaign_runner.errors.InputError` (or ``ColumnNotFoundError``) when the
    file cannot be used at all; row-level problems are results, not exceptions.
    """
    return check_file(path, url_column=url_column, note_column=note_column).result()


def check_file(
    path: Path, *, url_column: str | None = None, note_column: str | None = None
) -> Verdicts:
    """:func:`validate_file`, with the verdicts left in Arrow (see :class:`Verdicts`)."""
    prospects = load_prospects(
        Path(path), url_column=url_column, note_column=note_column, all_columns=False
    )
    return check_prospects(prospects)


def validate_prospects(prospects: Prospects) -> ValidationResult:
    """Validate loaded :class:`Prospects` (see :func:`validate_file`)."""
    return check_prospects(prospects).result()


def check_prospects(prospects: Prospects) -> Verdicts:
    """Validate loaded :class:`Prospects`, leaving the verdicts in Arrow."""
    table, n = prospects.table, len(prospects)
    empty = pa.chunked_array([pa.repeat("", n)])
    urls, url_reasons = normalize_urls(table[prospects.url_column])
    if prospects.note_column is None:
        notes, lengths = empty, np.zeros(n, dtype=np.int64)
    else:
        parts = _map_chunks(_notes_chunk, _chunks(table[prospects.note_column]))
        notes = pa.chunked_array([p for p, _ in parts], pa.string())
        lengths = np.concatenate([x for _, x in parts])
    too_long = lengths > NOTE_LIMIT
    invalid = ~pc.equal(url_reasons, "").to_numpy() | too_long
    status = invalid.astype(np.int8)
    reasons = _join_reasons(url_reasons, _length_text(lengths, too_long, NOTE_LIMIT, empty))
    rows = prospects.rows.to_numpy()
    dup_idx, first_idx = _duplicates(urls, ~invalid)
    if len(dup_idx):
        status[dup_idx] = 2
        dup_mask = np.zeros(n, dtype=bool)
        dup_mask[dup_idx] = True
        # replace_with_mask fills in mask order, and dup_idx is ascending.
        repeated = [f"duplicate of row {r}" for r in rows[first_idx].tolist()]
        reasons = pc.replace_with_mask(
            _combined(reasons), pa.array(dup_mask), pa.array(repeated, pa.string())
        )
    warn = (lengths > FREE_NOTE_LIMIT) & ~too_long
    senders = empty
    if prospects.sender_column is not None:
        senders = pc.utf8_trim_whitespace(table[prospects.sender_column])
    table = pa.table(
        {
            "row": pa.array(rows, pa.int64()),
            "linkedin_url": urls,
            "status": _STATUSES.take(pa.array(status)),
            "reason": reasons,
            "note": notes,
            "sender_id": senders,
            "warning": _length_text(lengths, warn, FREE_NOTE_LIMIT, empty),
        }
    )
    return Verdicts(
        source=prospects.source,
        url_column=prospects.url_column,
        note_column=prospects.note_column,
        sender_column=prospects.sender_column,
        table=table,
        notices=prospects.warnings,
    )


def _combined(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.Array):
        return values
    return values.combine_chunks() if values.num_chunks else pa.array([], values.type)


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
    text = pc.binary_join_element_wise(
        "note is ", pc.cast(pa.array(lengths[picked]), pa.string()), suffix, ""
    )
    result: StrArray = pc.replace_with_mask(_combined(empty), pa.array(mask), text)
    return result


def _join_reasons(first: StrArray, second: StrArray) -> StrArray:
    if not pc.any(pc.not_equal(second, "")).as_py():
        return first
    both = pc.binary_join_element_wise(first, second, "; ")
    joined: StrArray = pc.if_else(
        pc.equal(first, ""), second, pc.if_else(pc.equal(second, ""), first, both)
    )
    return joined


def _duplicates(
    urls: StrArray, candidates: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Positions of repeated URLs among ``candidates``, and of the row each repeats."""
    positions = np.flatnonzero(candidates)
    if len(positions) < 2:
        return positions[:0], positions[:0]
    # dictionary_encode numbers distinct values in order of first appearance, with the same
    # numbers across chunks; rows that are not candidates are simply left out afterwards.
    encoded = pc.dictionary_encode(urls)
    chunks = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in chunks])[positions]
    distinct, first_of_code = np.unique(codes, return_index=True)
    first = first_of_code[np.searchsorted(distinct, codes)]
    repeated = np.flatnonzero(first != np.arange(len(codes)))
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
    texts = [_combined(table[name]).cast(pa.string()) for name in REPORT_COLUMNS[1:]]
    columns = [table["row"].cast(pa.int64()), *_map_chunks(_escaped, texts)]
    pacsv.write_csv(pa.table(columns, names=list(REPORT_COLUMNS)), Path(path))


def _escaped(values: pa.Array) -> pa.Array:
    """Cells escaped by :func:`campaign_runner.csvio.escape_cell`, which has the last word.

    Arrow picks the candidates (cells starting like a formula: a superset of what csvio
    escapes, kept in step by a test), so that csvio, and pandas with it, is imported only
    when some cell needs it.
    """
    # Comparing first characters is several times cheaper than a regex over every cell.
    first = pc.utf8_slice_codeunits(values, 0, 1)
    risky = pc.is_in(first, value_set=pa.array(list(FORMULA_FIRST_CHARS))).fill_null(False)
    if not pc.any(risky).as_py():
        return values
    from campaign_runner.csvio import escape_cell

    fixed = [escape_cell(v or "") for v in values.filter(risky).to_pylist()]
    escaped: pa.Array = pc.replace_with_mask(values, risky, pa.array(fixed, pa.string()))
    return escaped

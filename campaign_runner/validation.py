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

from campaign_runner.csvio import FORMULA_FIRST_CHARS, escape_cell
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
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
_LINKEDIN_HOST = re.compile(r"(?:(?:www|m|[a-z]{2})\.)?linkedin\.com")
_MEMBER_ID = ("acoaa", "acwaa")
_URL_SAFE = r"A-Za-z0-9\-._~%!$&'()*+,;=:@/?#"
# The common case, decided without Python: an ASCII slug (maybe %-encoded) on a LinkedIn
# host. Its length is checked afterwards: a bounded repeat makes the regex twice as slow.
# Anything it does not decide goes to normalize_profile_url(), which has the final word;
# a property test checks that both agree.
_FAST_URL = (
    r"^[ \t]*(?:https?://|//)?(?:(?:www|m|[a-z]{2})\.)?linkedin\.com/in/"
    rf"[A-Za-z0-9_\-%]+(?:[/?#][{_URL_SAFE}]*)?[ \t]*$"
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
    in parallel (Arrow kernels and NumPy release the GIL).
    """
    parts = _map_chunks(_normalize_chunk, _chunks(values))
    urls = pa.chunked_array([u for u, _ in parts], pa.string())
    reasons = pa.chunked_array([r for _, r in parts], pa.string())
    return urls, reasons


def _normalize_chunk(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """One chunk: Arrow picks the common form, NumPy cuts out its slug, Python the rest."""
    if values.null_count:
        values = values.fill_null(_text(""))
    n = len(values)
    offsets = _offsets(values)
    fast = _numpy(pc.match_substring_regex(values, _FAST_URL))
    rows = np.flatnonzero(fast)
    slugs = _Slugs.find(values, offsets, rows)
    plain = slugs.plain()
    urls = _prefixed_lower_slugs(slugs, plain, n)
    fixed_rows, fixed_urls = _percent_encoded(slugs, ~plain & slugs.percent)
    decided = np.zeros(n, dtype=bool)
    decided[rows[plain]] = True
    decided[fixed_rows] = True
    empty = offsets[1:] == offsets[:-1]
    reasons = pc.if_else(_arrow(empty), _text(_EMPTY_REASON), _blank(n))
    slow = ~(decided | empty)
    if slow.any():
        reasons = _common_rejections(values, reasons, slow)
    if slow.any():
        slow_rows = np.flatnonzero(slow)
        slow_urls, slow_reasons = _normalize_each(values.filter(_arrow(slow)).to_pylist())
        reasons = pc.replace_with_mask(reasons, _arrow(slow), _strings(slow_reasons))
        fixed_rows = np.concatenate([fixed_rows, slow_rows])
        fixed_urls += slow_urls
    if len(fixed_rows):
        order = np.argsort(fixed_rows, kind="stable")
        mask = np.zeros(n, dtype=bool)
        mask[fixed_rows] = True
        urls = pc.replace_with_mask(urls, _arrow(mask), _strings([fixed_urls[i] for i in order]))
    return urls, reasons


@dataclass(frozen=True)
class _Slugs:
    """Where the profile name is, in the bytes of the rows that matched ``_FAST_URL``.

    Those rows are ASCII, so byte positions are character positions. ``start`` and ``end``
    index ``values``' data buffer, whose bytes from ``lo`` on are ``data``.
    """

    values: pa.Array
    rows: npt.NDArray[np.intp]
    start: npt.NDArray[np.int64]
    end: npt.NDArray[np.int64]
    percent: npt.NDArray[np.bool_]
    data: npt.NDArray[np.uint8]
    lo: int

    @classmethod
    def find(
        cls, values: pa.Array, offsets: npt.NDArray[np.int64], rows: npt.NDArray[np.intp]
    ) -> _Slugs:
        lo, hi = int(offsets[0]), int(offsets[-1])
        data = _data(values)[lo:hi]
        # A fast row has "/in/" only right after the host: the name starts there...
        found = _numpy(pc.find_substring(values, "/in/"))[rows]
        start = offsets[rows] + found + 4
        # ...and ends at the first byte that cannot be in it (the regex guarantees one of
        # / ? # space tab, or the end of the cell).
        stops = np.append(np.flatnonzero(_NOT_SLUG_BYTE[data]), hi - lo) + lo
        end = np.minimum(stops[np.searchsorted(stops, start)], offsets[rows + 1])
        marks = np.flatnonzero(data == ord("%")) + lo
        percent = np.searchsorted(marks, start) < np.searchsorted(marks, end)
        return cls(values, rows, start, end, percent, data, lo)

    def plain(self) -> npt.NDArray[np.bool_]:
        """Names that are canonical once lower-cased: no %-escapes, 3-100 characters, and
        not a member ID (whose first five bytes, lower-cased, are acoaa or acwaa)."""
        length = self.end - self.start
        at = np.minimum(self.start[:, None] - self.lo + _FIVE, max(len(self.data) - 1, 0))
        head = _LOWER_BYTE[self.data[at]] if len(self.data) else at
        member = np.zeros(len(self.rows), dtype=bool)
        for prefix in _MEMBER_ID_BYTES:
            member |= (head == prefix).all(axis=1)
        member &= length >= len(_MEMBER_ID[0])
        return ~self.percent & (length >= SLUG_MIN) & (length <= SLUG_MAX) & ~member

    def take(self, picked: npt.NDArray[np.bool_]) -> pa.Array:
        """The picked names, cut out of the cells by Arrow (one copy, no per-byte NumPy).

        Names and the bytes between them, alternately, are the strings of one string array
        over the same data buffer; the names are its even-numbered strings.
        """
        bounds = np.empty(2 * int(picked.sum()), dtype=np.int64)
        bounds[0::2], bounds[1::2] = self.start[picked], self.end[picked]
        if not len(bounds):
            return _blank(0)
        pieces = pa.Array.from_buffers(
            pa.large_string(),
            len(bounds) - 1,
            [None, pa.py_buffer(bounds), self.values.buffers()[2]],
        )
        return pieces.take(_arrow(np.arange(0, len(bounds), 2))).cast(pa.string())

    def text(self, picked: npt.NDArray[np.bool_]) -> list[str]:
        names: list[str] = self.take(picked).to_pylist()
        return names


def _prefixed_lower_slugs(slugs: _Slugs, plain: npt.NDArray[np.bool_], n: int) -> pa.Array:
    """``PROFILE_PREFIX + name.lower()`` for the plain rows, ``''`` for every other row.

    The other rows add no bytes, so the plain rows' URLs, in order, are already the data
    buffer of the whole column: only the offsets need the empty rows.
    """
    names = pc.ascii_lower(slugs.take(plain))
    joined = pc.binary_join_element_wise(_text(PROFILE_PREFIX), names, _text(""))
    sizes = np.zeros(n, dtype=np.int64)
    sizes[slugs.rows[plain]] = np.diff(_offsets(joined))
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(sizes, out=offsets[1:])
    start = int(_offsets(joined)[0]) if len(joined) else 0
    offsets += start
    data = joined.buffers()[2] if len(joined) else pa.py_buffer(b"")
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), data])


def _percent_encoded(
    slugs: _Slugs, picked: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.intp], list[str]]:
    """Canonical URLs for the fast rows whose name is %-encoded, where that is plain.

    Decoding, lower-casing and encoding again all work character by character, so they are
    done once over all names joined by line breaks (never in a name: a decoded one holding
    one fails the check). Names left out go to :func:`normalize_profile_url`.
    """
    if not picked.any():
        return np.zeros(0, dtype=np.intp), []
    raw = slugs.text(picked)
    try:
        decoded = unquote("\n".join(raw), errors="strict").lower().split("\n")
    except UnicodeDecodeError:
        decoded = []
    if len(decoded) != len(raw):
        decoded = [_decoded(s) for s in raw]
    ok = [
        SLUG_MIN <= len(s) <= SLUG_MAX
        and not s.startswith(_MEMBER_ID)
        and _WORD_SLUG.fullmatch(s) is not None
        for s in decoded
    ]
    kept = [s for s, good in zip(decoded, ok, strict=True) if good]
    # quote(name, safe="-_") for such names: their ASCII characters are all safe, and
    # every byte of a non-ASCII one becomes %XX (a C-level translate, not a Python loop).
    joined = "\n".join(kept).encode("utf-8").decode("latin-1").translate(_PERCENT_HIGH)
    encoded = joined.split("\n") if kept else []
    rows = slugs.rows[picked][np.array(ok, dtype=bool)]
    return rows, [PROFILE_PREFIX + s for s in encoded]


def _decoded(raw_slug: str) -> str:
    try:
        return unquote(raw_slug, errors="strict").lower()
    except UnicodeDecodeError:
        return ""  # refused by the length check; normalize_profile_url gives the reason


def _common_rejections(
    values: pa.Array, reasons: pa.Array, slow: npt.NDArray[np.bool_]
) -> pa.Array:
    """Company pages and Sales Navigator links, the usual rejections, decided by Arrow too.

    Each pattern accepts only what :func:`normalize_profile_url` rejects with that same
    reason (a property test checks that both agree). Only undecided rows are searched;
    ``slow`` loses the rows decided here.
    """
    for kind, reason in _KIND_REASONS.items():
        rows = np.flatnonzero(slow)
        if not len(rows):
            break
        subset = values.take(_arrow(rows.astype(np.int64)))
        hit = _numpy(pc.match_substring_regex(subset, _kind_pattern(kind)))
        if hit.any():
            mask = np.zeros(len(slow), dtype=bool)
            mask[rows[hit]] = True
            reasons = pc.if_else(_arrow(mask), _text(reason), reasons)
            slow &= ~mask
    return reasons


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
    lengths = _numpy(pc.utf8_length(notes)).astype(np.int64)
    # Only non-ASCII notes can hold characters that count twice; look only at those.
    wide = pc.invert(pc.string_is_ascii(notes))
    if pc.any(wide).as_py():
        extra = pc.count_substring_regex(notes.filter(wide), _ASTRAL)
        lengths[np.flatnonzero(_numpy(wide))] += _numpy(extra)
    return lengths


def _notes_chunk(notes: pa.Array) -> tuple[pa.Array, npt.NDArray[np.int64]]:
    """Whitespace-only notes become ``''`` (no note); every other note stays as written."""
    if notes.null_count:
        notes = notes.fill_null(_text(""))
    space = pc.utf8_is_space(notes)
    if pc.any(space).as_py():
        notes = pc.if_else(space, _text(""), notes)
    return notes, _note_lengths_chunk(notes)


def _chunks(values: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    return [c if pa.types.is_string(c.type) else c.cast(pa.string()) for c in chunks]


def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))


def _map_chunks(func: Callable[[pa.Array], _T], chunks: list[pa.Array]) -> list[_T]:
    if len(chunks) < 2:
        return [func(c) for c in chunks]
    with _pool() as pool:
        return list(pool.map(func, chunks))


# -- Arrow without pandas ---------------------------------------------------------------
# pyarrow imports pandas (0.3-0.5 s, a tenth of validating a million rows) the first time
# it converts a Python value or makes a NumPy array: pa.array(), pa.scalar(), a plain
# str argument to a compute function, .to_numpy(). Validation builds and reads Arrow
# buffers directly instead, so that `campaign-runner validate` never imports pandas.


def _strings(values: list[str]) -> pa.Array:
    """A string array of ``values``, as ``pa.array(values, pa.string())`` makes it."""
    encoded = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)), out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.large_string(), len(encoded), buffers).cast(pa.string())


def _text(value: str) -> pa.Scalar:
    """A string scalar, as ``pa.scalar(value)`` makes it."""
    return _strings([value])[0]


def _blank(n: int) -> pa.Array:
    """``n`` empty strings."""
    offsets = pa.py_buffer(np.zeros(n + 1, dtype=np.int32))
    return pa.Array.from_buffers(pa.string(), n, [None, offsets, pa.py_buffer(b"")])


def _arrow(values: npt.NDArray[Any]) -> pa.Array:
    """A NumPy vector (bool or integer) as an Arrow array, as ``pa.array(values)``."""
    if values.dtype == np.bool_:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    values = np.ascontiguousarray(values)
    kind = pa.from_numpy_dtype(values.dtype)
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


_NUMPY_TYPES: dict[pa.DataType, type[np.generic]] = {
    pa.int8(): np.int8,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.uint8(): np.uint8,
}


def _numpy(values: pa.Array | pa.ChunkedArray) -> npt.NDArray[Any]:
    """A bool or integer array without nulls as a (read-only) NumPy vector."""
    if isinstance(values, pa.ChunkedArray):
        parts = [_numpy(c) for c in values.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if values.null_count:
        raise ValueError("nulls where none can be")  # pragma: no cover - a bug, not input
    if pa.types.is_boolean(values.type):
        return _numpy(values.cast(pa.uint8())).view(np.bool_)
    dtype = np.dtype(_NUMPY_TYPES[values.type])
    buffer = values.buffers()[1]
    return np.frombuffer(buffer, dtype, len(values), values.offset * dtype.itemsize)


def _offsets(values: pa.Array) -> npt.NDArray[np.int64]:
    """Where each string of a string array starts in its data buffer, and where the last ends."""
    view = np.frombuffer(values.buffers()[1], np.int32, len(values) + 1, values.offset * 4)
    return view.astype(np.int64)


def _data(values: pa.Array) -> npt.NDArray[np.uint8]:
    buffer = values.buffers()[2]
    return np.frombuffer(buffer, np.uint8) if buffer is not None else np.zeros(0, np.uint8)


def _byte_table(chars: str) -> npt.NDArray[np.bool_]:
    table = np.zeros(256, dtype=bool)
    table[list(chars.encode("ascii"))] = True
    return table


_SLUG_BYTES = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-%"
_NOT_SLUG_BYTE = ~_byte_table(_SLUG_BYTES)
_LOWER_BYTE = np.arange(256, dtype=np.uint8)
_LOWER_BYTE[ord("A") : ord("Z") + 1] += 32
_FIVE = np.arange(5)
_PERCENT_HIGH = {b: f"%{b:02X}" for b in range(0x80, 0x100)}
_MEMBER_ID_BYTES = [np.frombuffer(p.encode("ascii"), np.uint8) for p in _MEMBER_ID]
_FORMULA_BYTE = _byte_table(FORMULA_FIRST_CHARS)  # cells a spreadsheet may execute


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
        return self._rows(pc.not_equal(self.table["status"], _text(STATUS_VALID)), limit)

    def warnings(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The rows that carry a warning (the first ``limit`` of them), as dicts."""
        return self._rows(pc.not_equal(self.table["warning"], _text("")), limit)

    def count_warnings(self) -> int:
        return int(pc.sum(pc.not_equal(self.table["warning"], _text(""))).as_py() or 0)

    def has_notes(self) -> bool:
        return bool(pc.any(pc.not_equal(self.table["note"], _text(""))).as_py())

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


def check_prospects(prospects: Prospects) -> Verdicts:
    """Validate loaded :class:`Prospects`, leaving the verdicts in Arrow."""
    table, n = prospects.table, len(prospects)
    empty = pa.chunked_array([_blank(n)])
    with _pool() as pool:
        # URLs first: the duplicate search needs them all, and runs here (Arrow releases
        # the GIL) while the pool's threads are still busy with the notes.
        url_jobs = [pool.submit(_normalize_chunk, c) for c in _chunks(table[prospects.url_column])]
        note_jobs = []
        if prospects.note_column is not None:
            note_jobs = [
                pool.submit(_notes_chunk, c) for c in _chunks(table[prospects.note_column])
            ]
        url_parts = [job.result() for job in url_jobs]
        urls = pa.chunked_array([u for u, _ in url_parts], pa.string())
        url_reasons = pa.chunked_array([r for _, r in url_parts], pa.string())
        codes = _numpy(pa.chunked_array([c.indices for c in pc.dictionary_encode(urls).chunks]))
        note_parts = [job.result() for job in note_jobs]
    if note_parts:
        notes = pa.chunked_array([p for p, _ in note_parts], pa.string())
        lengths = np.concatenate([x for _, x in note_parts])
    else:
        notes, lengths = empty, np.zeros(n, dtype=np.int64)
    too_long = lengths > NOTE_LIMIT
    invalid = _nonempty(url_reasons) | too_long
    status = invalid.astype(np.int8)
    reasons = _join_reasons(url_reasons, _length_text(lengths, too_long, NOTE_LIMIT, empty))
    rows = _numpy(prospects.rows)
    dup_idx, first_idx = _duplicates(codes, ~invalid)
    if len(dup_idx):
        status[dup_idx] = 2
        dup_mask = np.zeros(n, dtype=bool)
        dup_mask[dup_idx] = True
        # replace_with_mask fills in mask order, and dup_idx is ascending.
        repeated = [f"duplicate of row {r}" for r in rows[first_idx].tolist()]
        reasons = pc.replace_with_mask(_combined(reasons), _arrow(dup_mask), _strings(repeated))
    warn = (lengths > FREE_NOTE_LIMIT) & ~too_long
    senders = empty
    if prospects.sender_column is not None:
        senders = pc.utf8_trim_whitespace(table[prospects.sender_column])
    table = pa.table(
        {
            "row": prospects.rows,
            "linkedin_url": urls,
            "status": _strings(list(STATUSES)).take(_arrow(status)),
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


def _nonempty(values: pa.ChunkedArray) -> npt.NDArray[np.bool_]:
    parts = [np.diff(_offsets(c)) != 0 for c in _chunks(values)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def _combined(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.Array):
        return values
    return values.combine_chunks() if values.num_chunks else _blank(0).cast(values.type)


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
    counts = pc.cast(_arrow(lengths[picked]), pa.string())
    text = pc.binary_join_element_wise(_text("note is "), counts, _text(suffix), _text(""))
    result: StrArray = pc.replace_with_mask(_combined(empty), _arrow(mask), text)
    return result


def _join_reasons(first: StrArray, second: StrArray) -> StrArray:
    blank = _text("")
    if not pc.any(pc.not_equal(second, blank)).as_py():
        return first
    both = pc.binary_join_element_wise(first, second, _text("; "))
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
        pa.chunked_array(_escaped(_chunks(table[name])), pa.string()) for name in REPORT_COLUMNS[1:]
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
            values = values.fill_null(_text(""))
        offsets, data = _offsets(values), _data(values)
        risky = np.zeros(len(values), dtype=bool)
        if len(data):
            first = data[np.minimum(offsets[:-1], len(data) - 1)]
            risky = (offsets[1:] > offsets[:-1]) & _FORMULA_BYTE[first]
        if risky.any():
            mask = _arrow(risky)
            fixed = [escape_cell(v) for v in values.filter(mask).to_pylist()]
            values = pc.replace_with_mask(values, mask, _strings(fixed))
        escaped.append(values)
    return escaped

"""LinkedIn profile URLs: the one canonical rule, for one URL and for a million.

People paste profile URLs in many forms: with ``http://`` or no scheme, with ``www.``,
a country (``uk.``) or the mobile (``m.``) subdomain, a trailing slash, a query such as
``?trk=...``, ``?originalSubdomain=de`` or the apps' ``?utm_source=share&...``, a sub-page
(``/in/jane-doe/detail/recent-activity/``, ``/overlay/contact-info/``, a profile language
``/en/``), a percent-encoded or non-Latin name, from LinkedIn Lite (``/mwlite/in/...``) or a
LinkedIn e-mail (``/comm/in/...``). All become ``https://www.linkedin.com/in/<slug>``.
Rejected, each with a reason the user can act on: company, school and showcase pages,
Sales Navigator links (which cannot be sent to; the reason says how to get the public URL),
member-ID URLs (``/in/ACoAA...``, refused by LinkedIn for invitations), shortened
``lnkd.in`` links, other hosts (including look-alikes such as ``linkedin.com.evil.example``
and LinkedIn URLs wrapped in another site's query string), empty cells and text that is
not a URL.

Case, encoding and Unicode form of the slug
    LinkedIn treats profile names case-insensitively, so the canonical slug is lower-cased:
    ``/in/Jane-Doe`` and ``/in/jane-doe`` are the same person, which makes duplicates
    compare case-insensitively. A percent-encoded slug is decoded (UTF-8), put in Unicode
    NFC form, checked, lower-cased and encoded again with upper-case hex, so ``J%c3%b6rg``,
    ``Jörg``, ``j%C3%B6rg`` and the decomposed ``jo%CC%88rg`` (``o`` + a combining
    diaeresis, as macOS file names and some exports write it) all become ``j%C3%B6rg``.
    Normalising a normalised URL gives it back unchanged.

Speed
    A million URLs are checked with Arrow compute kernels (regular expressions, string
    lengths); only the few the vectorised path cannot decide (odd URLs, percent-encoding,
    every rejection) go through :func:`normalize_profile_url` in Python.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote, unquote

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from campaign_runner.arrowkit import (
    blank_strings,
    byte_table,
    from_numpy,
    map_chunks,
    str_array,
    str_data,
    str_offsets,
    str_scalar,
    string_chunks,
    to_numpy,
)

PROFILE_PREFIX = "https://www.linkedin.com/in/"
SLUG_MIN, SLUG_MAX = 3, 100  # LinkedIn's rule for custom profile URLs
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
_LINKEDIN_HOST = re.compile(r"(?:(?:www|m|[a-z]{2})\.)?linkedin\.com")
_MEMBER_ID = ("acoaa", "acwaa")
# Paths that show the same page another way: LinkedIn Lite (the mobile site for slow
# networks) and the links in LinkedIn's e-mails. Rare, so left to the scalar rule.
_VIEW_PREFIXES = ("mwlite", "comm")
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
_SLUG_BYTES = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-%"
_NOT_SLUG_BYTE = ~byte_table(_SLUG_BYTES)
_LOWER_BYTE = np.arange(256, dtype=np.uint8)
_LOWER_BYTE[ord("A") : ord("Z") + 1] += 32
_FIVE = np.arange(5)
_PERCENT_HIGH = {b: f"%{b:02X}" for b in range(0x80, 0x100)}
_MEMBER_ID_BYTES = [np.frombuffer(p.encode("ascii"), np.uint8) for p in _MEMBER_ID]


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
    if segments and segments[0].lower() in _VIEW_PREFIXES:
        segments = segments[1:]
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
    slug = fold_slug(slug)
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


def fold_slug(slug: str) -> str:
    """A decoded profile name in the form it is compared in: NFC, then lower case.

    The same name typed on a Mac (NFD: ``o`` + combining diaeresis) and on Windows (NFC:
    ``ö``) must be one person. NFC again after lower-casing, since lower-casing a
    precomposed capital can yield a decomposed pair (``İ`` -> ``i`` + dot above).
    """
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", slug).lower())


def _slug_char(ch: str) -> bool:
    return ch.isalnum() or ch in "-_" or unicodedata.category(ch).startswith("M")


# -- many URLs, notes -------------------------------------------------------------------


def normalize_urls(values: pa.Array | pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """Vectorised :func:`normalize_profile_url`: (canonical URLs, reasons), element-wise.

    A URL is ``''`` where its reason is not, and the other way round. Chunks are processed
    in parallel (Arrow kernels and NumPy release the GIL).
    """
    parts = map_chunks(normalize_chunk, string_chunks(values))
    urls = pa.chunked_array([u for u, _ in parts], pa.string())
    reasons = pa.chunked_array([r for _, r in parts], pa.string())
    return urls, reasons


def normalize_chunk(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """One chunk: Arrow picks the common form, NumPy cuts out its slug, Python the rest."""
    if values.null_count:
        values = values.fill_null(str_scalar(""))
    n = len(values)
    offsets = str_offsets(values)
    fast = to_numpy(pc.match_substring_regex(values, _FAST_URL))
    rows = np.flatnonzero(fast)
    slugs = _Slugs.find(values, offsets, rows)
    plain = slugs.plain()
    urls = _prefixed_lower_slugs(slugs, plain, n)
    fixed_rows, fixed_urls = _percent_encoded(slugs, ~plain & slugs.percent)
    decided = np.zeros(n, dtype=bool)
    decided[rows[plain]] = True
    decided[fixed_rows] = True
    empty = offsets[1:] == offsets[:-1]
    reasons = pc.if_else(from_numpy(empty), str_scalar(_EMPTY_REASON), blank_strings(n))
    slow = ~(decided | empty)
    if slow.any():
        reasons = _common_rejections(values, reasons, slow)
    if slow.any():
        slow_rows = np.flatnonzero(slow)
        slow_urls, slow_reasons = _normalize_each(values.filter(from_numpy(slow)).to_pylist())
        reasons = pc.replace_with_mask(reasons, from_numpy(slow), str_array(slow_reasons))
        fixed_rows = np.concatenate([fixed_rows, slow_rows])
        fixed_urls += slow_urls
    if len(fixed_rows):
        order = np.argsort(fixed_rows, kind="stable")
        mask = np.zeros(n, dtype=bool)
        mask[fixed_rows] = True
        urls = pc.replace_with_mask(
            urls, from_numpy(mask), str_array([fixed_urls[i] for i in order])
        )
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
        data = str_data(values)[lo:hi]
        # A fast row has "/in/" only right after the host: the name starts there...
        found = to_numpy(pc.find_substring(values, "/in/"))[rows]
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
            return blank_strings(0)
        pieces = pa.Array.from_buffers(
            pa.large_string(),
            len(bounds) - 1,
            [None, pa.py_buffer(bounds), self.values.buffers()[2]],
        )
        return pieces.take(from_numpy(np.arange(0, len(bounds), 2))).cast(pa.string())

    def text(self, picked: npt.NDArray[np.bool_]) -> list[str]:
        names: list[str] = self.take(picked).to_pylist()
        return names


def _prefixed_lower_slugs(slugs: _Slugs, plain: npt.NDArray[np.bool_], n: int) -> pa.Array:
    """``PROFILE_PREFIX + name.lower()`` for the plain rows, ``''`` for every other row.

    The other rows add no bytes, so the plain rows' URLs, in order, are already the data
    buffer of the whole column: only the offsets need the empty rows.
    """
    names = pc.ascii_lower(slugs.take(plain))
    joined = pc.binary_join_element_wise(str_scalar(PROFILE_PREFIX), names, str_scalar(""))
    sizes = np.zeros(n, dtype=np.int64)
    sizes[slugs.rows[plain]] = np.diff(str_offsets(joined))
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(sizes, out=offsets[1:])
    start = int(str_offsets(joined)[0]) if len(joined) else 0
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
        decoded = fold_slug(unquote("\n".join(raw), errors="strict")).split("\n")
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
        return fold_slug(unquote(raw_slug, errors="strict"))
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
        subset = values.take(from_numpy(rows.astype(np.int64)))
        hit = to_numpy(pc.match_substring_regex(subset, _kind_pattern(kind)))
        if hit.any():
            mask = np.zeros(len(slow), dtype=bool)
            mask[rows[hit]] = True
            reasons = pc.if_else(from_numpy(mask), str_scalar(reason), reasons)
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


# -- URLs read back from results files -------------------------------------------------

# What campaign-runner itself writes for a name without escapes. Anything else, percent-
# escapes included (they may be in the wrong case or an NFD form), is normalised again.
_PLAIN_CANONICAL = r"^https://www\.linkedin\.com/in/[a-z0-9_\-]+$"


def canonical_or_kept(col: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """URLs in the canonical form the runner matches on, for URLs read back from a file.

    A results file written by hand or by another tool may hold ``linkedin.com/in/Jane/``
    for a prospect the input lists as ``https://www.linkedin.com/in/jane``; without this,
    the prospect would look new and be invited again. Only the rare non-canonical cells
    are normalised; one that cannot be stays as written (it matches nothing).
    """
    odd = pc.invert(pc.match_substring_regex(col, _PLAIN_CANONICAL))
    odd = pc.and_(odd, pc.not_equal(col, str_scalar("")))
    if not pc.any(odd).as_py():
        return col
    if isinstance(col, pa.ChunkedArray):
        col, odd = col.combine_chunks(), odd.combine_chunks()
    written = col.filter(odd)
    fixed, reasons = normalize_urls(written)
    fixed = pc.if_else(pc.equal(reasons, str_scalar("")), fixed, written)
    return pc.replace_with_mask(col, odd, fixed.combine_chunks())


def could_start_canonical(text: str) -> bool:
    """Whether ``text`` can be the beginning of a URL in canonical form (for torn lines)."""
    if len(text) <= len(PROFILE_PREFIX):
        return PROFILE_PREFIX.startswith(text)
    return (
        text.startswith(PROFILE_PREFIX)
        and re.fullmatch(
            r"[a-z0-9_\-]*(%[0-9A-F]{2}[a-z0-9_\-]*)*(%[0-9A-F]?)?", text[len(PROFILE_PREFIX) :]
        )
        is not None
    )

"""An Excel cell's number or date as the sheet displays it, from its number format.

A workbook stores ``24.12.2024`` as the number 45650 with a format such as ``DD.MM.YYYY``;
openpyxl hands back ``datetime(2024, 12, 24)``, whose ``str()`` (``2024-12-24 00:00:00``)
is not what anyone typed. Every cell becomes text, and a note must leave exactly as the
person saw it, so numbers and dates are rendered here with the cell's format: dates and
times token by token (``yyyy``, ``mm``, ``d``, ``mmm``, ``hh:mm``, ``AM/PM``, ...), numbers
with their decimals, thousands separators, percent, currency and literal text.

Two built-in formats are shown by Excel in the reader's locale, not as written:
``numFmtId`` 14 (the short date: ``12/24/2024`` in the US, ``24.12.2024`` in Germany) and
22 (short date and time). Not knowing the locale, they render as ISO dates
(``2024-12-24``, ``2024-12-24 09:30``): unambiguous, and never Python's form. Formats this
module does not know (fractions, conditions, scientific) fall back to Excel's ``General``
(integers without ``.0``, at most 15 significant digits), as Excel itself shows a number
without a format.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import ROUND_HALF_UP, Decimal

LOCALE_SHORT_DATE = 14
LOCALE_SHORT_DATE_TIME = 22

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
# One token of a format: quoted text, an escaped or padding character, a [bracket], a run
# of one date letter, AM/PM, or any other single character.
_TOKEN = re.compile(
    r'"[^"]*"|\\.|_.|\*.|\[[^\]]*\]|AM/PM|am/pm|A/P|a/p|([yYmMdDhHsS])\1*|\.0+|.', re.DOTALL
)
_DATE_LETTERS = re.compile(r'"[^"]*"|\\.|\[[^\]]*\]|([yYdDhHsS]|[mM])')


def shown(value: object, number_format: str, format_id: int = 0) -> str:
    """``value`` (a number, date, time, duration or boolean) as a cell with this format shows it."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return _date_text(value, number_format, format_id)
    if isinstance(value, dt.timedelta):
        return _duration_text(value)
    if isinstance(value, int) and number_format in ("General", "0"):
        return str(value)  # the common case, without parsing the format
    if isinstance(value, int | float):
        return _number_text(float(value) if isinstance(value, float) else value, number_format)
    return str(value)


def general(value: int | float) -> str:
    """Excel's ``General``: ``12``, ``2.5``, ``0.3`` (not ``0.30000000000000004``)."""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".15g").upper()  # 1E+20, as Excel writes it
    return str(value)


@functools.lru_cache(maxsize=256)
def _sections(number_format: str) -> tuple[str, ...]:
    found = re.findall(r'(?:"[^"]*"|\\.|\[[^\]]*\]|[^;])+', number_format)
    return tuple(found) or ("",)


# -- dates and times -------------------------------------------------------------------


def _date_text(value: dt.datetime | dt.date | dt.time, number_format: str, format_id: int) -> str:
    moment = _as_datetime(value)
    if format_id == LOCALE_SHORT_DATE:
        return f"{moment:%Y-%m-%d}"
    if format_id == LOCALE_SHORT_DATE_TIME:
        return f"{moment:%Y-%m-%d %H:%M}"
    if not _is_date(number_format):  # a date cell without a date format: say it all
        return _iso(moment)
    return _render_date(moment, _sections(number_format)[0])


def _as_datetime(value: dt.datetime | dt.date | dt.time) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    return dt.datetime(1899, 12, 31, value.hour, value.minute, value.second, value.microsecond)


def _iso(moment: dt.datetime) -> str:
    day = f"{moment:%Y-%m-%d}"
    if moment.time() != dt.time():
        seconds = f":{moment:%S}" if moment.second else ""
        return f"{day} {moment:%H:%M}{seconds}"
    return day


def _is_date(number_format: str) -> bool:
    return any(m.group(1) for m in _DATE_LETTERS.finditer(number_format))


def _render_date(moment: dt.datetime, section: str) -> str:
    parts, twelve = _date_plan(section)
    out: list[str] = []
    for kind, width, text in parts:
        if kind == "":
            out.append(text)
        elif kind == "minute":
            out.append(f"{moment.minute:0{width}d}")
        elif kind == "ampm":
            out.append(("AM" if moment.hour < 12 else "PM")[:width])
        elif kind == "fraction":
            out.append("." + f"{moment.microsecond:06d}"[:width].ljust(width, "0"))
        else:
            out.append(_date_part(moment, kind, width, twelve))
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _date_plan(section: str) -> tuple[tuple[tuple[str, int, str], ...], bool]:
    """A date format, parsed once: (part kind, width, literal text) for each token."""
    tokens = [m.group(0) for m in _TOKEN.finditer(section)]
    twelve = any(t.upper() in ("AM/PM", "A/P") for t in tokens)
    parts: list[tuple[str, int, str]] = []
    for i, token in enumerate(tokens):
        letter = token[0].lower()
        if letter == "m" and token.isalpha() and _is_minute(tokens, i):
            parts.append(("minute", min(len(token), 2), ""))
        elif token.isalpha() and letter in "ymdhs" and len(set(token.lower())) == 1:
            parts.append((letter, len(token), ""))
        elif token.upper() in ("AM/PM", "A/P"):
            parts.append(("ampm", 2 if len(token) == 5 else 1, ""))
        elif token.startswith(".0"):
            parts.append(("fraction", len(token) - 1, ""))
        else:
            parts.append(("", 0, _literal(token)))
    return tuple(parts), twelve


def _is_minute(tokens: list[str], i: int) -> bool:
    """``m`` means minutes right after an hour or right before a second (Excel's rule)."""
    letters = [
        (j, t[0].lower()) for j, t in enumerate(tokens) if t.isalpha() and t[0].lower() in "ymdhs"
    ]
    at = next(k for k, (j, _) in enumerate(letters) if j == i)
    before = letters[at - 1][1] if at > 0 else ""
    after = letters[at + 1][1] if at + 1 < len(letters) else ""
    return before == "h" or after == "s"


def _date_part(moment: dt.datetime, letter: str, width: int, twelve: bool) -> str:
    if letter == "y":
        return f"{moment.year % 100:02d}" if width <= 2 else f"{moment.year:04d}"
    if letter == "m":
        if width >= 5:
            return _MONTHS[moment.month - 1][0]
        if width == 4:
            return _MONTHS[moment.month - 1]
        if width == 3:
            return _MONTHS[moment.month - 1][:3]
        return f"{moment.month:0{width}d}"
    if letter == "d":
        if width >= 4:
            return _DAYS[moment.weekday()]
        if width == 3:
            return _DAYS[moment.weekday()][:3]
        return f"{moment.day:0{width}d}"
    if letter == "h":
        hour = (moment.hour % 12 or 12) if twelve else moment.hour
        return f"{hour:0{min(width, 2)}d}"
    return f"{moment.second:0{min(width, 2)}d}"


def _duration_text(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    return f"{sign}{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _literal(token: str) -> str:
    if token.startswith('"'):
        return token[1:-1]
    if token.startswith("\\"):
        return token[1:]
    if token.startswith("_"):
        return ""  # room as wide as a character, for alignment: not text anyone reads
    if token.startswith("*"):
        return ""  # fill to the column width
    if token.startswith("["):
        inner = token[1:-1]
        if inner.startswith("$"):  # [$€-407]: a currency symbol and a locale
            return inner[1:].split("-", 1)[0]
        return ""  # [Red], [$-407], a condition
    return token


# -- numbers ---------------------------------------------------------------------------


def _number_text(value: int | float, number_format: str) -> str:
    sections = _sections(number_format)
    section = sections[0]
    sign = ""
    if value < 0 and len(sections) > 1:
        section, value = sections[1], -value
    elif value == 0 and len(sections) > 2:
        section = sections[2]
    elif value < 0:
        sign, value = "-", -value
    plain = re.sub(r'"[^"]*"|\\.|\[[^\]]*\]', "", section)
    unknown = re.search(r"[eE][+-]|/|@|general", plain, re.IGNORECASE)
    if not number_format.strip() or unknown or re.search(r"\[[<>=]", section):
        return sign + general(value)
    if not re.search(r"[0#?]", plain):
        return _literal_only(section)  # a section of text only, e.g. "-" for zero
    return sign + _placeholders(value, section)


def _literal_only(section: str) -> str:
    return "".join(_literal(m.group(0)) for m in _TOKEN.finditer(section))


def _placeholders(value: int | float, section: str) -> str:
    tokens = [m.group(0) for m in _TOKEN.finditer(section)]
    # ".0+" is one token for dates; for numbers its characters are separate placeholders.
    tokens = [c for t in tokens for c in (t if t.startswith(".0") else [t])]
    if "%" in tokens:
        value = value * 100
    placeholder = [t in ("0", "#", "?") for t in tokens]
    first = placeholder.index(True)
    last = len(tokens) - 1 - placeholder[::-1].index(True)
    point = next((i for i in range(first, last + 1) if tokens[i] == "."), last + 1)
    scale = 0
    while last + 1 < len(tokens) and tokens[last + 1] == ",":  # "#,##0," shows thousands
        scale += 1
        last += 1
    value = value / 1000**scale if scale else value
    int_tokens = tokens[first:point]
    frac_tokens = [t for t in tokens[point + 1 : last + 1] if t in ("0", "#", "?")]
    grouped = "," in int_tokens
    int_tokens = [t for t in int_tokens if t != ","]
    rounded = Decimal(repr(value)).quantize(Decimal(1).scaleb(-len(frac_tokens)), ROUND_HALF_UP)
    whole, _, frac = f"{rounded:f}".partition(".")
    middle = _integer_part(whole, int_tokens, grouped) + _fraction_part(frac, frac_tokens)
    if point < len(tokens) and tokens[point] == "." and not frac_tokens:
        middle += "."  # "0.##" shows 2 as "2."
    before = "".join(_literal(t) for t in tokens[:first])
    after = "".join(_literal(t) for t in tokens[last + 1 :])
    return before + middle + after


def _integer_part(whole: str, tokens: list[str], grouped: bool) -> str:
    digits = whole.lstrip("0")
    slots = [t for t in tokens if t in ("0", "#", "?")]
    if grouped or len(slots) == len(tokens):  # no literal text between the digits
        width = sum(1 for t in slots if t == "0")
        spaces = sum(1 for t in slots if t == "?")
        text = digits.rjust(width, "0") if width else digits
        if grouped:
            text = f"{int(text or 0):,}" if text else ""
            text = text.rjust(width + (width - 1) // 3, "0") if width > len(text) else text
        return text.rjust(len(text) + max(0, spaces - len(text)), " ")
    # Literal text between the digits, as in a phone number format "000-000-0000": fill
    # the placeholders from the right; digits left over go before the first one.
    out: list[str] = []
    rest = digits
    for token in reversed(tokens):
        if token in ("0", "#", "?"):
            if rest:
                out.append(rest[-1])
                rest = rest[:-1]
            elif token == "0":
                out.append("0")
            elif token == "?":
                out.append(" ")
        else:
            out.append(_literal(token))
    return rest + "".join(reversed(out))


def _fraction_part(frac: str, tokens: list[str]) -> str:
    if not tokens:
        return ""
    digits = list(frac.ljust(len(tokens), "0"))
    for i in range(len(tokens) - 1, -1, -1):  # optional places drop trailing zeros
        if tokens[i] == "0" or digits[i] != "0":
            break
        digits[i] = "" if tokens[i] == "#" else " "
    return "." + "".join(digits)

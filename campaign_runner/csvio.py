"""Spreadsheet-safe CSV cells, shared by every CSV the project writes.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a
formula by Excel, LibreOffice and Google Sheets when the file is opened (CSV injection:
OWASP). Every such cell is written with a leading apostrophe, which spreadsheets show as
text and hide. Values that are plain numbers (``-3``, ``+1.5``) are left alone: they cannot
execute, and ``row``/``attempts`` columns must stay numeric.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Only for annotations: `validate` uses escape_cell and must not pay for importing pandas.
    import pandas as pd

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_DANGEROUS = r"^[=+\-@\t\r]"


def escape_cell(value: str) -> str:
    """Return ``value`` with a leading apostrophe if a spreadsheet would execute it."""
    if value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def escape_series(values: pd.Series) -> pd.Series:
    """Vectorised :func:`escape_cell` for a column of strings."""
    text = values.astype(str)
    risky = text.str.contains(_DANGEROUS, regex=True) & ~text.str.fullmatch(_PLAIN_NUMBER.pattern)
    if not risky.any():
        return text
    return text.where(~risky, "'" + text)

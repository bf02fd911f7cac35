"""Spreadsheet-safe cells, shared by every CSV and workbook the project writes.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a
formula by Excel, LibreOffice and Google Sheets when the file is opened (CSV injection:
OWASP). Every such cell is written with a leading apostrophe, which spreadsheets show as
text and hide. Values that are plain numbers (``-3``, ``+1.5``) are left alone: they cannot
execute, and ``row``/``attempts`` columns must stay numeric. A workbook's text cells are
not executed, but the same cells are marked there as typed with an apostrophe, so that
editing one does not turn it into a formula (:mod:`campaign_runner.export`).
"""

from __future__ import annotations

import re

# The one definition of a risky cell; the vectorised writers (journal, validation report)
# build their patterns from these.
FORMULA_FIRST_CHARS = "=+-@\t\r"
PLAIN_NUMBER = r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?"
FORMULA_START_CLASS = "[" + re.escape(FORMULA_FIRST_CHARS) + "]"

_FORMULA_START = tuple(FORMULA_FIRST_CHARS)
_PLAIN_NUMBER = re.compile(PLAIN_NUMBER)


def runs_as_formula(value: str) -> bool:
    """Whether a spreadsheet would execute ``value`` typed into a cell."""
    return value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value)


def escape_cell(value: str) -> str:
    """Return ``value`` with a leading apostrophe if a spreadsheet would execute it."""
    return "'" + value if runs_as_formula(value) else value

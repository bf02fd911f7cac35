"""Numbers and dates as a sheet shows them: campaign_runner.cellformat."""

from __future__ import annotations

import datetime as dt

import pytest

from campaign_runner.cellformat import LOCALE_SHORT_DATE, LOCALE_SHORT_DATE_TIME, shown

MOMENT = dt.datetime(2024, 12, 24, 9, 5, 7)


@pytest.mark.parametrize(
    ("value", "number_format", "format_id", "text"),
    [
        (MOMENT, "DD.MM.YYYY", 0, "24.12.2024"),
        (MOMENT, "[$-407]DD.MM.YYYY;@", 0, "24.12.2024"),
        (MOMENT, 'dd.mm.yyyy "um" hh:mm "Uhr"', 0, "24.12.2024 um 09:05 Uhr"),
        (MOMENT, "yyyy-mm-dd h:mm:ss", 0, "2024-12-24 9:05:07"),
        (MOMENT, "h:mm A/P", 0, "9:05 A"),
        (MOMENT, "mmmmm", 0, "D"),
        (MOMENT, "hh:mm:ss.00", 0, "09:05:07.00"),
        (MOMENT, "General", 0, "2024-12-24 09:05:07"),  # a date without a date format
        (MOMENT, "mm-dd-yy", LOCALE_SHORT_DATE, "2024-12-24"),
        (MOMENT, "m/d/yy h:mm", LOCALE_SHORT_DATE_TIME, "2024-12-24 09:05"),
        (dt.date(2024, 1, 2), "DD.MM.YYYY", 0, "02.01.2024"),
        (dt.timedelta(hours=26, minutes=3), "[h]:mm:ss", 0, "26:03:00"),
        (0.5, "0", 0, "1"),  # Excel rounds half away from zero
        (2, "0.##", 0, "2."),
        (12345678, "#,##0,", 0, "12,346"),
        (1e20, "General", 0, "1E+20"),
        (0.000123, "0.00E+00", 0, "0.000123"),  # not rendered: General instead
        (42, "", 0, "42"),
        (0, '0;-0;"-"', 0, "-"),
        (1234.5, "$#,##0.00_);($#,##0.00)", 0, "$1,234.50"),
        (-1234.5, "$#,##0.00_);[Red]($#,##0.00)", 0, "($1,234.50)"),
        (5, '0 "Mitarbeiter"', 0, "5 Mitarbeiter"),
        (False, "General", 0, "FALSE"),
    ],
)
def test_shown(value: object, number_format: str, format_id: int, text: str) -> None:
    assert shown(value, number_format, format_id) == text

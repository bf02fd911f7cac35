"""Times written by others (the API's resetsAt, webhook times): read, or None."""

from __future__ import annotations

import pytest

from campaign_runner.timestamps import format_timestamp, parse_iso_time, parse_timestamp

NOON = 1_700_049_600.0  # 2023-11-15T12:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-11-15T12:00:00.000Z", NOON),
        ("2023-11-15T12:00:00Z", NOON),
        ("2023-11-15T13:00:00+01:00", NOON),
        ("2023-11-15T12:00:00", NOON),  # no zone: UTC
        (" 2023-11-15T12:00:00Z ", NOON),
        ("2023-11-15", NOON - 12 * 3_600),
        ("tomorrow", None),
        ("", None),
        ("2023-13-01T00:00:00Z", None),
    ],
)
def test_times_from_elsewhere_are_read_or_none(text: str, expected: float | None) -> None:
    assert parse_iso_time(text) == expected


def test_our_own_stamps_round_trip() -> None:
    assert parse_timestamp(format_timestamp(NOON + 0.123)) == pytest.approx(NOON + 0.123)
    assert parse_iso_time(format_timestamp(NOON)) == NOON

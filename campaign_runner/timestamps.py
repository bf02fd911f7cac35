"""The one timestamp format of results files and the workspace: ISO 8601 UTC with ms.

``2026-11-27T10:00:00.123Z``: fixed width and UTC, so canonical stamps sort and compare as
strings, which lets a million of them be compared without parsing.
"""

from __future__ import annotations

from datetime import UTC, datetime

CANONICAL_TS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


def format_timestamp(epoch: float) -> str:
    """Format seconds since the epoch as the journal's ISO 8601 UTC timestamp with ms."""
    millis = int(epoch * 1000)
    moment = datetime.fromtimestamp(millis // 1000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}Z"


def parse_timestamp(stamp: str) -> float:
    """Epoch seconds of one of our own timestamps (``2026-11-27T10:00:00.123Z``)."""
    when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return when.timestamp()


def parse_iso_time(text: str) -> float | None:
    """Epoch seconds of a time as another system writes it: ISO 8601, with ``Z``, an
    offset, or no zone (read as UTC), as the API's ``resetsAt`` and webhook times come.
    None when it cannot be read: such a time is missing, not an error."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()

"""The workspace ledger: one truth for every campaign of a SendPilot workspace.

:mod:`.base` says what it promises and how; :mod:`.sql` holds the logic both backends
run; :mod:`.sqlite` is the default (one file per workspace on this machine) and
:mod:`.postgres` the one a team shares.
"""

from __future__ import annotations

from pathlib import Path

from campaign_runner.errors import LedgerError
from campaign_runner.ledger.base import (
    ACCEPTED_EVENTS,
    LIVE,
    SPENDING,
    WEEK_WINDOWS,
    Acceptance,
    CampaignInfo,
    Claim,
    ClaimRequest,
    Holder,
    ImportLine,
    Invitation,
    Ledger,
    SenderLimits,
    SenderUsage,
    Settle,
    Verdict,
    WebhookEvent,
)
from campaign_runner.ledger.dsn import is_postgres_url, public_url, scrub
from campaign_runner.ledger.sqlite import SQLiteLedger

__all__ = [
    "ACCEPTED_EVENTS",
    "LIVE",
    "SPENDING",
    "WEEK_WINDOWS",
    "Acceptance",
    "CampaignInfo",
    "Claim",
    "ClaimRequest",
    "Holder",
    "ImportLine",
    "Invitation",
    "Ledger",
    "SQLiteLedger",
    "SenderLimits",
    "SenderUsage",
    "Settle",
    "Verdict",
    "WebhookEvent",
    "open_ledger",
]


def open_ledger(database: str | Path) -> Ledger:
    """The ledger at ``database``: a ``postgresql://`` (or ``postgres://``) URL, or else the
    path of an SQLite file."""
    text = str(database)
    if not is_postgres_url(text):
        return SQLiteLedger(Path(database))
    try:
        # Imported here, so that psycopg is needed only by those who use PostgreSQL.
        from campaign_runner.ledger.postgres import PostgresLedger
    except ImportError as exc:
        # The reason says which: psycopg itself, or the libpq it needs (Debian's libpq5).
        reason = scrub(str(exc), text)
        raise LedgerError(
            f"{public_url(text)}: a PostgreSQL ledger needs psycopg: "
            f"install campaign-runner[postgres] ({reason})"
        ) from None
    return PostgresLedger(text)

"""The workspace ledger: one truth for every campaign of a SendPilot workspace.

:mod:`.base` says what it promises and how; :mod:`.sql` holds the logic both backends
run; :mod:`.sqlite` is the default (one file per workspace on this machine) and
:mod:`.postgres` the one a team shares.
"""

from __future__ import annotations

from campaign_runner.ledger.base import (
    LIVE,
    SPENDING,
    WEEK_WINDOWS,
    CampaignInfo,
    Claim,
    ClaimRequest,
    Holder,
    ImportLine,
    Ledger,
    SenderLimits,
    SenderUsage,
    Settle,
    Verdict,
)
from campaign_runner.ledger.sqlite import SQLiteLedger

__all__ = [
    "LIVE",
    "SPENDING",
    "WEEK_WINDOWS",
    "CampaignInfo",
    "Claim",
    "ClaimRequest",
    "Holder",
    "ImportLine",
    "Ledger",
    "SQLiteLedger",
    "SenderLimits",
    "SenderUsage",
    "Settle",
    "Verdict",
]

"""The workspace ledger's interface, and the SQL both backends run.

One truth per SendPilot workspace, shared by every campaign, process and machine that
sends for it: who was invited (one row per attempt, by canonical profile URL), by which
sender and campaign, with what outcome, and when. Two promises rest on it:

- **Nobody twice.** At most one *live* attempt per person: ``pending`` (a request may be
  on its way), ``sent``, ``unknown`` (it may exist) or ``already_connected``. A unique
  index over the live rows makes a claim atomic: of two campaigns claiming one person at
  once, exactly one wins; the other learns who holds the person (:class:`Holder`).
  A person is invited again only after :meth:`Ledger.release` (a withdrawn invitation).
- **No sender overspent.** A claim also reserves its sender's next slot, in the same
  transaction: it is granted only while the sender's attempts in the rolling day and the
  rolling week are under its limits, and no sooner than one pacing interval after the
  sender's previous slot when another campaign took that one (a campaign's own slots are
  paced by its own limiter). Processes sharing a sender therefore keep its interval
  together instead of each keeping it alone.

Claims are committed (durably) before the request leaves; outcomes are settled after.

The ledger also keeps SendPilot's webhook events (:class:`WebhookEvent`), each once by its
event id, so that who accepted is known beside who was invited, without editing a results file.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

PENDING = "pending"
SENT = "sent"
UNKNOWN = "unknown"
ALREADY_CONNECTED = "already_connected"
FAILED = "failed"
DEFERRED = "deferred"
RELEASED = "released"  # a live attempt let go on purpose: the person may be invited again

LIVE: tuple[str, ...] = (PENDING, SENT, UNKNOWN, ALREADY_CONNECTED)
# Attempts that spend the sender's capacity: the invitation (may have) left.
SPENDING: tuple[str, ...] = (PENDING, SENT, UNKNOWN)
OUTCOMES: frozenset[str] = frozenset({SENT, UNKNOWN, ALREADY_CONNECTED, FAILED, DEFERRED})
WEEK_WINDOWS = 7  # a week is seven capacity windows


@dataclass(frozen=True)
class SenderLimits:
    """What one sender may do, as this run's settings say."""

    daily_limit: int
    weekly_limit: int
    interval_seconds: float  # the joint pace: seconds between two of its invitations


@dataclass(frozen=True)
class ClaimRequest:
    url: str  # canonical profile URL
    sender_id: str
    row: int = 0  # the spreadsheet row, for people reading the ledger


class Verdict(enum.Enum):
    CLAIMED = "claimed"  # yours: send it now
    TAKEN = "taken"  # another attempt holds the person (see holder)
    WAIT = "wait"  # the sender's next slot is later (see not_before)
    FULL = "full"  # the sender's day or week is spent (see not_before: when it renews)


@dataclass(frozen=True)
class Holder:
    """The live attempt that holds a person."""

    campaign: str
    status: str
    sender_id: str
    at: float  # when it was claimed, epoch seconds
    campaign_id: int = 0


@dataclass(frozen=True)
class Claim:
    verdict: Verdict
    claim_id: int | None = None
    holder: Holder | None = None
    not_before: float | None = None  # WAIT: the slot; FULL: when capacity frees up


@dataclass(frozen=True)
class Settle:
    """The outcome of a claimed attempt."""

    claim_id: int
    status: str  # one of OUTCOMES
    request_id: str = ""
    error: str = ""


@dataclass(frozen=True)
class SenderUsage:
    """One sender's spending attempts in the rolling day and week, by campaign."""

    day: int = 0
    week: int = 0
    day_by_campaign: Mapping[int, int] = field(default_factory=dict)  # by campaign id
    week_by_campaign: Mapping[int, int] = field(default_factory=dict)
    last_at: float | None = None  # its latest slot, any campaign
    oldest_in_day: float | None = None  # when the day's first attempt leaves the window
    oldest_in_week: float | None = None  # the same for the week (seven windows)


@dataclass(frozen=True)
class CampaignInfo:
    id: int
    name: str
    results_path: str
    created_at: float


@dataclass(frozen=True)
class Invitation:
    """One person's attempt as a report reads it: the live one, else the newest."""

    url: str  # canonical profile URL
    sender_id: str
    status: str  # one of LIVE, OUTCOMES or RELEASED
    request_id: str
    at: float  # when it was claimed (just before the request left), epoch seconds


@dataclass(frozen=True)
class ImportLine:
    """One outcome read from a results file written before the ledger existed."""

    url: str
    sender_id: str
    status: str
    at: float
    request_id: str = ""
    error: str = ""
    row: int = 0


# The event types that say an invitation was accepted (the older name, then the newer).
ACCEPTED_EVENTS: tuple[str, ...] = ("connection.accepted", "connection_request.accepted")


@dataclass(frozen=True)
class WebhookEvent:
    """One event SendPilot delivered, as the receiver keeps it."""

    event_id: str
    event_type: str
    received_at: float  # epoch seconds
    occurred_at: float | None  # the event's own timestamp / data.acceptedAt, epoch seconds
    sender_id: str  # '' when the event has none
    url: str  # canonical profile URL ('' when none)
    payload: str  # the raw JSON body as received (no secrets in it)


@dataclass(frozen=True)
class Acceptance:
    """The first acceptance seen of one sender's invitation to one person."""

    sender_id: str
    url: str  # canonical
    accepted_at: float  # epoch seconds
    event_id: str


class Ledger(ABC):
    """A workspace ledger; :func:`campaign_runner.ledger.open_ledger` opens one."""

    location: str  # where it lives, for people: a path or a URL without its password

    @abstractmethod
    def campaign(self, name: str, results_path: str, now: float) -> CampaignInfo:
        """The campaign of this results file, registered on first use."""

    @abstractmethod
    def find_campaign(self, results_path: str) -> CampaignInfo | None:
        """The campaign of this results file, if it was ever registered."""

    @abstractmethod
    def claim(
        self,
        campaign_id: int,
        requests: Sequence[ClaimRequest],
        limits: Mapping[str, SenderLimits],
        window_seconds: float,
        now: float | Callable[[], float],
    ) -> list[Claim]:
        """Claim each person for its sender, in order, in one durable transaction.

        ``now`` may be a clock, read once the transaction holds the ledger's lock: a time
        read before that wait (another process committing) would stamp the claims early,
        and the next campaign's claim of the sender's slot would come that much too soon.
        """

    @abstractmethod
    def settle(self, outcomes: Sequence[Settle], now: float) -> None:
        """Record the outcomes of claimed attempts, in one durable transaction."""

    @abstractmethod
    def holders(self, urls: Iterable[str]) -> dict[str, Holder]:
        """The live attempts (of any campaign) that hold any of ``urls``."""

    @abstractmethod
    def usage(self, window_seconds: float, now: float) -> dict[str, SenderUsage]:
        """Every sender's spending attempts in the rolling day and week."""

    @abstractmethod
    def windows_sent(
        self, sender_ids: Iterable[str], window_seconds: float, now: float
    ) -> dict[str, int]:
        """Per sender, in how many whole windows since its first invitation in the workspace
        it sent (the window now under way not counted): what a warm-up counts."""

    @abstractmethod
    def release(self, urls: Iterable[str], now: float) -> int:
        """Let the live attempts on ``urls`` go, so they may be invited again; how many."""

    @abstractmethod
    def imported(self, campaign_id: int) -> bool:
        """Whether the campaign's results from before the ledger were brought in whole."""

    @abstractmethod
    def mark_imported(self, campaign_id: int, now: float) -> None:
        """Say that they were (after the last :meth:`import_lines` of them)."""

    @abstractmethod
    def import_lines(self, campaign_id: int, lines: Sequence[ImportLine]) -> int:
        """Bring in outcomes of a results file from before the ledger; how many were new."""

    @abstractmethod
    def campaigns(self) -> list[CampaignInfo]:
        """Every campaign of the workspace, oldest first."""

    @abstractmethod
    def invitations(self) -> list[Invitation]:
        """Every person the workspace ever tried, once: the live attempt that holds them,
        else their newest attempt; oldest first."""

    @abstractmethod
    def totals(self) -> dict[str, int]:
        """People per status of their latest attempt."""

    @abstractmethod
    def record_event(self, event: WebhookEvent) -> bool:
        """Keep a webhook event, durably before it returns; False when its event id was
        known already (a redelivery: nothing changes)."""

    @abstractmethod
    def acceptances(self) -> list[Acceptance]:
        """The earliest acceptance per (sender, profile URL), from either accepted event
        type, dated by the event's own time (its arrival when it has none); events without
        a URL are kept but cannot say who accepted, so they are not among these."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

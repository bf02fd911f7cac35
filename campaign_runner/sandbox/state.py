"""What the sandbox knows: its configuration, its senders' capacity and what it has done.

Capacity is counted per sender in fixed windows of ``window_seconds`` measured on the
configured clock from the moment the state is created (the server's start), the way the real
service renews a sender's daily quota. Everything here is synchronous and touches no network,
so the HTTP layer (:mod:`campaign_runner.sandbox.app`) stays a thin translation.
"""

from __future__ import annotations

import base64
import binascii
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from campaign_runner.sandbox.faults import FaultRule
from campaign_runner.sandbox.profiles import profile_key

SENDER_STATUSES = ("active", "disconnected", "rate_limited")
# How the stand-in signs webhooks: SendPilot's documented Webhook-Signature, or Standard
# Webhooks (Svix: webhook-id, webhook-timestamp, webhook-signature, with a whsec_ secret).
WEBHOOK_SIGNINGS = ("sendpilot", "standard")
# How events write the profile: as the client sent it, or in the varied forms LinkedIn
# and exports show (case, scheme, subdomain, trailing slash, query), seeded.
WEBHOOK_PROFILE_URLS = ("as_sent", "varied")
NOTE_MAX_CHARS = 300
# The message and like quotas are reported for shape only: the sandbox never spends them.
MESSAGE_LIMIT = 100
LIKE_LIMIT = 50


@dataclass(frozen=True)
class SandboxSender:
    """One LinkedIn sender account of the sandbox workspace.

    ``capacity`` is how many invitations it may send per window; ``premium`` senders deliver
    notes, free ones send the invitation without it (as the real API does); ``status`` is what
    the senders list reports and decides how the sender answers (see ``app``).
    """

    id: str
    name: str = "Sandbox Sender"
    capacity: int = 25
    premium: bool = True
    status: str = "active"

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a sandbox sender needs an id")
        if self.capacity < 0:
            raise ValueError(f"sender {self.id}: capacity must be at least 0")
        if self.status not in SENDER_STATUSES:
            raise ValueError(
                f"sender {self.id}: status must be one of {', '.join(SENDER_STATUSES)}"
            )

    @property
    def linkedin_url(self) -> str:
        return f"https://www.linkedin.com/in/{self.id.replace('_', '-')}"


DEMO_SENDERS: tuple[SandboxSender, ...] = (
    SandboxSender("sender_alice", name="Alice Premium", capacity=25, premium=True),
    SandboxSender("sender_bob", name="Bob Free", capacity=25, premium=False),
)


@dataclass(frozen=True)
class SandboxConfig:
    """Everything that shapes a sandbox's behaviour; see the package docstring."""

    api_key: str = "sandbox-key"
    senders: tuple[SandboxSender, ...] = DEMO_SENDERS
    window_seconds: float = 86400.0
    already_connected: frozenset[str] = frozenset()
    faults: tuple[FaultRule, ...] = ()
    seed: int = 0
    clock: Callable[[], float] = time.time
    webhook_url: str | None = None
    webhook_secret: str | None = None
    accept_share: float = 0.0
    accept_delay_seconds: float = 60.0
    workspace_id: str = "ws_sandbox"
    webhook_timeout_seconds: float = 5.0
    webhook_signing: str = "sendpilot"  # one of WEBHOOK_SIGNINGS
    webhook_profile_urls: str = "as_sent"  # one of WEBHOOK_PROFILE_URLS
    webhook_redeliveries: int = 0  # each event delivered this many times more
    # Mark every answer as the stand-in's (app.STAND_IN_HEADER), so that a client pointed
    # at it by api.base_url alone records its invitations as rehearsals. Off where the
    # stand-in plays the real service (the tests); on for `campaign-runner sandbox`.
    announce: bool = False

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("the sandbox needs a non-empty api_key")
        ids = [s.id for s in self.senders]
        if len(set(ids)) != len(ids):
            raise ValueError("sandbox sender ids must be unique")
        if self.window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        if not 0.0 <= self.accept_share <= 1.0:
            raise ValueError("accept_share must be between 0 and 1")
        if self.accept_delay_seconds < 0:
            raise ValueError("accept_delay_seconds must not be negative")
        if self.webhook_url is not None and not self.webhook_secret:
            raise ValueError("webhook_url needs a webhook_secret to sign deliveries")
        if self.webhook_redeliveries < 0:
            raise ValueError("webhook_redeliveries must not be negative")
        if self.webhook_signing not in WEBHOOK_SIGNINGS:
            raise ValueError(f"webhook_signing must be one of {', '.join(WEBHOOK_SIGNINGS)}")
        if self.webhook_profile_urls not in WEBHOOK_PROFILE_URLS:
            raise ValueError(
                f"webhook_profile_urls must be one of {', '.join(WEBHOOK_PROFILE_URLS)}"
            )
        standard = self.webhook_signing == "standard"
        if standard and self.webhook_secret and not _standard_secret(self.webhook_secret):
            raise ValueError("Standard Webhooks signing needs a whsec_<base64> webhook_secret")

    def sender(self, sender_id: str) -> SandboxSender | None:
        return next((s for s in self.senders if s.id == sender_id), None)


def _standard_secret(secret: str) -> bool:
    """Whether ``secret`` is ``whsec_`` and base64, as Standard Webhooks secrets are."""
    if not secret.startswith("whsec_"):
        return False
    try:
        return bool(base64.b64decode(secret.removeprefix("whsec_"), validate=True))
    except (binascii.Error, ValueError):
        return False


@dataclass(frozen=True)
class Invitation:
    """One invitation the sandbox created, whether or not the client learned about it.

    ``note`` is the note as delivered: ``None`` when there was none or the sender is free.
    """

    sender_id: str
    linkedin_url: str
    note: str | None
    request_id: str
    created_at: float


@dataclass(frozen=True)
class Quota:
    limit: int
    used: int
    remaining: int
    resets_at: float


def iso_timestamp(seconds: float) -> str:
    """``2024-02-24T15:30:00.000Z``: the API's timestamp form, in UTC with milliseconds."""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class SandboxState:
    """The mutable record of one running sandbox: capacity use, invitations and counters.

    Inspect ``invitations`` (every invitation created, in order, duplicates included) and
    ``counters`` (a ``Counter`` keyed by ``(route, outcome)``) from tests; ``accepted`` maps
    request ids to the clock time their acceptance was simulated; ``requests`` counts the
    authenticated requests per route (what a fault's ``nth`` refers to).
    """

    config: SandboxConfig
    started_at: float = 0.0
    invitations: list[Invitation] = field(default_factory=list)
    counters: Counter[tuple[str, str]] = field(default_factory=Counter)
    accepted: dict[str, float] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    _used: dict[str, tuple[int, int]] = field(default_factory=dict)
    _invited: Counter[str] = field(default_factory=Counter)
    _ids: random.Random = field(default_factory=random.Random)
    _already_connected: frozenset[str] = frozenset()

    @classmethod
    def create(cls, config: SandboxConfig) -> SandboxState:
        """A fresh state whose first window starts now on ``config.clock``."""
        return cls(
            config=config,
            started_at=config.clock(),
            _ids=random.Random(f"{config.seed}/ids"),
            _already_connected=frozenset(profile_key(u) for u in config.already_connected),
        )

    def next_request(self, route: str) -> int:
        """Count one more authenticated request to ``route``; returns its 1-based number."""
        self.requests[route] += 1
        return self.requests[route]

    def now(self) -> float:
        return self.config.clock()

    def window(self) -> int:
        """The number of the current capacity window (0 for the first)."""
        return max(0, int((self.now() - self.started_at) // self.config.window_seconds))

    def window_end(self) -> float:
        return self.started_at + (self.window() + 1) * self.config.window_seconds

    def used(self, sender_id: str) -> int:
        """Invitations ``sender_id`` sent in the current window."""
        window, count = self._used.get(sender_id, (-1, 0))
        return count if window == self.window() else 0

    def connection_quota(self, sender: SandboxSender) -> Quota:
        used = self.used(sender.id)
        remaining = max(0, sender.capacity - used)
        return Quota(sender.capacity, used, remaining, self.window_end())

    def is_already_connected(self, url: str) -> bool:
        return profile_key(url) in self._already_connected

    def new_request_id(self) -> str:
        return f"conn_{self._ids.getrandbits(48):012x}"

    def record_invitation(self, sender: SandboxSender, url: str, note: str | None) -> Invitation:
        """Spend one unit of ``sender``'s capacity and record the invitation.

        A second invitation of the same recipient (by any sender) is recorded again and
        counted as ``("connect", "repeat")``: the sandbox never hides a duplicate send.
        """
        delivered = note if (note and sender.premium) else None
        invitation = Invitation(
            sender_id=sender.id,
            linkedin_url=url,
            note=delivered,
            request_id=self.new_request_id(),
            created_at=self.now(),
        )
        self._used[sender.id] = (self.window(), self.used(sender.id) + 1)
        key = profile_key(url)
        if self._invited[key]:
            self.counters[("connect", "repeat")] += 1
        self._invited[key] += 1
        self.invitations.append(invitation)
        return invitation

    def duplicates(self) -> dict[str, int]:
        """``profile key -> count`` for every recipient invited more than once."""
        return {key: n for key, n in self._invited.items() if n > 1}


def senders_from_spec(
    spec: str | None, premium: set[str] | None = None, free: set[str] | frozenset[str] = frozenset()
) -> tuple[SandboxSender, ...]:
    """Senders from ``ID:CAPACITY[,ID:CAPACITY...]`` (the demo senders when ``spec`` is empty).

    Every sender is premium unless listed in ``free``; when ``premium`` is given, the senders
    it does not list are free. Raises ``ValueError`` naming the bad part.
    """
    if not spec:
        senders = DEMO_SENDERS
    else:
        senders = tuple(_sender_from_part(part.strip()) for part in spec.split(",") if part.strip())
    known = {s.id for s in senders}
    both = (premium or set()) & set(free)
    if both:
        raise ValueError(f"listed as both premium and free: {', '.join(sorted(both))}")
    unknown = ((premium or set()) | set(free)) - known
    if unknown:
        raise ValueError(f"not a sender of this sandbox: {', '.join(sorted(unknown))}")
    if premium is None and not free:
        return senders
    return tuple(
        replace(s, premium=(s.id in premium) if premium is not None else s.id not in free)
        for s in senders
    )


def _sender_from_part(part: str) -> SandboxSender:
    sender_id, sep, capacity = part.partition(":")
    if not sep or not sender_id.strip() or not capacity.strip().isdigit():
        raise ValueError(f"{part!r}: expected ID:CAPACITY, e.g. sender_a:25")
    sender_id = sender_id.strip()
    return SandboxSender(sender_id, name=sender_id, capacity=int(capacity))

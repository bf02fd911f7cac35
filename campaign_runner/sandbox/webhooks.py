"""Signed webhook deliveries, as SendPilot sends them, and their verification.

Each event is a JSON POST ``{eventId, eventType, timestamp, workspaceId, data}``, signed in
one of the two forms seen from SendPilot (``SandboxConfig.webhook_signing``):

- ``sendpilot`` (the documented one): ``Webhook-Signature: t=<unix seconds>,s=<hex>``,
  where ``<hex>`` is HMAC-SHA256(secret, ``"<t>.<raw body>"``);
- ``standard`` (Standard Webhooks, as Svix sends them): ``webhook-id: msg_...``,
  ``webhook-timestamp: <unix seconds>`` and ``webhook-signature: v1,<base64>``, the
  HMAC-SHA256 of ``"<id>.<timestamp>.<raw body>"`` keyed with the base64-decoded part of a
  ``whsec_...`` secret.

(HTTP header names are case-insensitive: both forms use the same signature header.) The
sandbox sends ``connection_request.sent`` for every invitation it creates and
``connection_request.accepted`` for a seeded share of them after a delay. Event ids are
unique across runs, not seeded: a receiver keeps each id once, and rehearsals repeat.
With ``webhook_profile_urls="varied"``, events write the profile the way people paste it
(another case, scheme, subdomain, a trailing slash or a query), one form after another.

Deliveries run in background tasks so that a slow or failing receiver never affects the API.
Each event is delivered once, without retries (the real service retries for hours, which a
rehearsal does not need), then ``webhook_redeliveries`` times more whatever the answer (as
the real service does when an answer is lost), each signed anew (the Standard form keeps its
message id, as Svix's retries do). Outcomes are counted in the server's counters as
``("webhook", "delivered")`` or ``("webhook", "failed")``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
import secrets
from collections import Counter
from typing import Any

import aiohttp

from campaign_runner.sandbox.profiles import profile_slug
from campaign_runner.sandbox.state import Invitation, SandboxConfig, iso_timestamp

SIGNATURE_HEADER = "Webhook-Signature"
STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
SENT = "connection_request.sent"
ACCEPTED = "connection_request.accepted"

# The forms "varied" cycles through, each a way the same profile is commonly written.
PROFILE_FORMS = (
    "http://www.linkedin.com/in/{Slug}/?utm_source=share&utm_medium=member_desktop",
    "https://linkedin.com/in/{slug}/",
    "https://uk.linkedin.com/in/{SLUG}?originalSubdomain=uk",
    "www.linkedin.com/in/{slug}",
)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Webhook-Signature`` header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},s={digest.hexdigest()}"


def sign_standard(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks ``webhook-signature`` value for ``body``: ``v1,<base64>``,
    keyed with the base64 part of a ``whsec_...`` secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def shown_profile_url(url: str, form: int) -> str:
    """``url`` written in the ``form``-th of :data:`PROFILE_FORMS` (a URL that is not a
    plain profile URL is left as it is)."""
    slug = profile_slug(url)
    if slug is None:
        return url
    pattern = PROFILE_FORMS[form % len(PROFILE_FORMS)]
    return pattern.format(slug=slug, Slug=slug[:1].upper() + slug[1:], SLUG=slug.upper())


def verify_signature(
    secret: str, header: str, body: bytes, now: float, tolerance: float = 300
) -> bool:
    """Whether ``header`` is a valid signature of ``body`` made within ``tolerance`` seconds.

    Parses ``t=<seconds>,s=<hex>`` (extra parts are ignored; several ``s`` values are
    allowed, as during a secret rotation), rejects timestamps further than ``tolerance``
    from ``now`` (replay protection) and compares digests in constant time.
    """
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "s":
            signatures.append(value)
    if timestamp is None or not signatures or abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).partition(",s=")[2]
    # Check every candidate so that timing does not reveal which one matched.
    matched = [hmac.compare_digest(expected, candidate) for candidate in signatures]
    return any(matched)


class WebhookEmitter:
    """Background delivery of connection events for one running sandbox."""

    def __init__(self, config: SandboxConfig, counters: Counter[tuple[str, str]]) -> None:
        self._config = config
        self._counters = counters
        self._accepts = random.Random(f"{config.seed}/accept")
        self._invited = 0  # invitations so far: which profile form the next one shows
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._config.webhook_url is not None:
            timeout = aiohttp.ClientTimeout(total=self._config.webhook_timeout_seconds)
            self._session = aiohttp.ClientSession(timeout=timeout)

    async def stop(self) -> None:
        """Cancel pending deliveries and acceptances, then close the HTTP session."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def idle(self) -> None:
        """Wait until every scheduled delivery and acceptance has finished (for tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def invitation_created(self, invitation: Invitation, accepted: dict[str, float]) -> None:
        """Schedule the ``sent`` event and, for a seeded share, a later acceptance."""
        will_accept = self._accepts.random() < self._config.accept_share
        shown = invitation.linkedin_url
        if self._config.webhook_profile_urls == "varied":
            shown = shown_profile_url(shown, self._invited)
        self._invited += 1
        task = asyncio.get_running_loop().create_task(
            self._follow(invitation, shown, will_accept, accepted)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(
        self,
        invitation: Invitation,
        shown: str,
        will_accept: bool,
        accepted: dict[str, float],
    ) -> None:
        await self._deliver(SENT, invitation, shown, {"note": invitation.note})
        if not will_accept:
            return
        await asyncio.sleep(self._config.accept_delay_seconds)
        accepted_at = self._config.clock()
        accepted[invitation.request_id] = accepted_at
        extra = {"acceptedAt": iso_timestamp(accepted_at)}
        await self._deliver(ACCEPTED, invitation, shown, extra)

    def event(
        self, event_type: str, invitation: Invitation, shown: str, extra: dict[str, Any]
    ) -> bytes:
        """The raw JSON body of one event about ``invitation``, its profile written as
        ``shown``."""
        lead = hashlib.sha256(invitation.linkedin_url.lower().encode()).hexdigest()[:12]
        payload = {
            "eventId": f"evt_{secrets.token_hex(8)}",
            "eventType": event_type,
            "timestamp": iso_timestamp(self._config.clock()),
            "workspaceId": self._config.workspace_id,
            "data": {
                "leadId": f"lead_{lead}",
                # Invitations sent through the API belong to no SendPilot campaign.
                "campaignId": None,
                "linkedinUrl": shown,
                "senderId": invitation.sender_id,
                **extra,
            },
        }
        return json.dumps(payload, separators=(",", ":")).encode()

    async def _deliver(
        self, event_type: str, invitation: Invitation, shown: str, extra: dict[str, Any]
    ) -> None:
        if self._session is None or self._config.webhook_url is None:
            return
        body = self.event(event_type, invitation, shown, extra)
        message_id = f"msg_{secrets.token_hex(12)}"
        for _ in range(1 + self._config.webhook_redeliveries):
            headers = {"Content-Type": "application/json", **self.signature(body, message_id)}
            try:
                async with self._session.post(
                    self._config.webhook_url, data=body, headers=headers
                ) as response:
                    ok = 200 <= response.status < 300
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            self._counters[("webhook", "delivered" if ok else "failed")] += 1

    def signature(self, body: bytes, message_id: str) -> dict[str, str]:
        """The headers that sign ``body`` now, in the configured form (the Standard form
        names the delivery ``message_id``)."""
        secret = self._config.webhook_secret or ""
        timestamp = int(self._config.clock())
        if self._config.webhook_signing == "standard":
            return {
                STANDARD_ID_HEADER: message_id,
                STANDARD_TIMESTAMP_HEADER: str(timestamp),
                STANDARD_SIGNATURE_HEADER: sign_standard(secret, message_id, timestamp, body),
            }
        return {SIGNATURE_HEADER: sign(secret, timestamp, body)}

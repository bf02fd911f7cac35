"""Signed webhook deliveries, as SendPilot sends them, and their verification.

Each event is a JSON POST ``{eventId, eventType, timestamp, workspaceId, data}`` with the
header ``Webhook-Signature: t=<unix seconds>,s=<hex>``, where ``<hex>`` is
HMAC-SHA256(secret, ``"<t>.<raw body>"``). The sandbox sends ``connection_request.sent`` for
every invitation it creates and ``connection_request.accepted`` for a seeded share of them
after a delay.

Deliveries run in background tasks so that a slow or failing receiver never affects the API.
Each event is delivered once: there are no retries (the real service retries for hours,
which a rehearsal does not need). Outcomes are counted in the server's counters as
``("webhook", "delivered")`` or ``("webhook", "failed")``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
from collections import Counter
from typing import Any

import aiohttp

from campaign_runner.sandbox.state import Invitation, SandboxConfig, iso_timestamp

SIGNATURE_HEADER = "Webhook-Signature"
SENT = "connection_request.sent"
ACCEPTED = "connection_request.accepted"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Webhook-Signature`` header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},s={digest.hexdigest()}"


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
        self._events = random.Random(f"{config.seed}/events")
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
        task = asyncio.get_running_loop().create_task(
            self._follow(invitation, will_accept, accepted)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(
        self, invitation: Invitation, will_accept: bool, accepted: dict[str, float]
    ) -> None:
        await self._deliver(SENT, invitation, {"note": invitation.note})
        if not will_accept:
            return
        await asyncio.sleep(self._config.accept_delay_seconds)
        accepted_at = self._config.clock()
        accepted[invitation.request_id] = accepted_at
        await self._deliver(ACCEPTED, invitation, {"acceptedAt": iso_timestamp(accepted_at)})

    def event(self, event_type: str, invitation: Invitation, extra: dict[str, Any]) -> bytes:
        """The raw JSON body of one event about ``invitation``."""
        lead = hashlib.sha256(invitation.linkedin_url.lower().encode()).hexdigest()[:12]
        payload = {
            "eventId": f"evt_{self._events.getrandbits(64):016x}",
            "eventType": event_type,
            "timestamp": iso_timestamp(self._config.clock()),
            "workspaceId": self._config.workspace_id,
            "data": {
                "leadId": f"lead_{lead}",
                # Invitations sent through the API belong to no SendPilot campaign.
                "campaignId": None,
                "linkedinUrl": invitation.linkedin_url,
                "senderId": invitation.sender_id,
                **extra,
            },
        }
        return json.dumps(payload, separators=(",", ":")).encode()

    async def _deliver(
        self, event_type: str, invitation: Invitation, extra: dict[str, Any]
    ) -> None:
        if self._session is None or self._config.webhook_url is None:
            return
        body = self.event(event_type, invitation, extra)
        secret = self._config.webhook_secret or ""
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, int(self._config.clock()), body),
        }
        try:
            async with self._session.post(
                self._config.webhook_url, data=body, headers=headers
            ) as response:
                ok = 200 <= response.status < 300
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        self._counters[("webhook", "delivered" if ok else "failed")] += 1

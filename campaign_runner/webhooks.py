"""SendPilot's webhooks: signature checks, events, and the receiver that keeps them.

Two signature forms have been seen from SendPilot, and both are accepted:

- the documented one: ``Webhook-Signature: t=<unix seconds>,s=<hex>``, the hex
  HMAC-SHA256 of ``"<t>.<raw body>"`` keyed with the secret as given;
- Standard Webhooks (Svix): ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature:
  v1,<base64>`` (several, space-separated), the base64 HMAC-SHA256 of
  ``"<id>.<timestamp>.<raw body>"`` keyed with the base64-decoded part of a ``whsec_...``
  secret (Svix's own ``svix-*`` header names too).

Header names are case-insensitive in HTTP, so both forms arrive in one signature header and
are told apart by its value. Every secret given is tried (an old and a new one during a
rotation), every candidate compared in constant time, and a signature is good only within
five minutes of its timestamp, either way (a replay, or a clock far off).

The receiver answers only once an event is durable in the workspace ledger (so that
SendPilot retries a delivery we lost), and keeps each event id once (SendPilot redelivers).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import hashlib
import hmac
import json
import math
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from campaign_runner.config import Secret
from campaign_runner.errors import LedgerError
from campaign_runner.ledger.base import ACCEPTED_EVENTS, Ledger, WebhookEvent
from campaign_runner.timestamps import parse_iso_time
from campaign_runner.urls import InvalidUrl, normalize_profile_url

PATH = "/webhooks/sendpilot"
TOLERANCE_SECONDS = 300.0
STANDARD_PREFIX = "whsec_"

# A timestamp as both forms write it: whole seconds. Twelve digits reach the year 33658, so
# a value in milliseconds (13 digits) is refused rather than read as the far future.
_SECONDS = re.compile(r"\d{1,12}")


class Check(enum.Enum):
    """What a delivery's signature says; only VALID is let in."""

    VALID = "valid"
    UNSIGNED = "no signature"
    INVALID = "signature does not match"
    STALE = "signature too old (a replay?), or this machine's clock is off"


@dataclass(frozen=True)
class SigningKey:
    """One secret's keys: as given (the documented form) and decoded (Standard Webhooks).
    Never shown in a repr: they are the secret."""

    documented: bytes = field(repr=False)
    # None: the secret is not base64, so it signs no Standard form.
    standard: bytes | None = field(repr=False)


def signing_keys(secrets: Iterable[Secret]) -> tuple[SigningKey, ...]:
    """The keys of each secret, made once when the receiver starts."""
    keys = []
    for secret in secrets:
        text = secret.reveal()
        encoded = text.removeprefix(STANDARD_PREFIX)
        try:
            standard: bytes | None = base64.b64decode(encoded, validate=True) or None
        except (binascii.Error, ValueError):
            standard = None
        keys.append(SigningKey(documented=text.encode("utf-8"), standard=standard))
    return tuple(keys)


def check_signature(
    headers: Mapping[str, str],
    body: bytes,
    keys: Sequence[SigningKey],
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> Check:
    """Whether ``body`` was signed, in either form, with one of ``keys`` within
    ``tolerance`` seconds of ``now``.

    The timestamp is judged only once a signature matches, so that STALE is said only of a
    genuine delivery (a replay, or this machine's clock off) and never helps a forger.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    signature = lowered.get("webhook-signature") or lowered.get("svix-signature")
    if not signature:
        return Check.UNSIGNED
    documented = _documented(signature)
    if documented is not None:
        stamp, candidates = documented
        matched = _any_match(
            [_hex_hmac(k.documented, stamp, body) for k in keys], candidates, lower=True
        )
    else:
        delivery = lowered.get("webhook-id") or lowered.get("svix-id")
        stamp = lowered.get("webhook-timestamp") or lowered.get("svix-timestamp") or ""
        candidates = _standard(signature)
        if not delivery or not _SECONDS.fullmatch(stamp) or not candidates:
            return Check.INVALID
        expected = [
            _base64_hmac(k.standard, f"{delivery}.{stamp}", body)
            for k in keys
            if k.standard is not None
        ]
        matched = _any_match(expected, candidates, lower=False)
    if not matched:
        return Check.INVALID
    return Check.VALID if abs(now - int(stamp)) <= tolerance else Check.STALE


def signed_delivery_id(headers: Mapping[str, str]) -> str:
    """The delivery id (``webhook-id``) when the signature covers it, as the Standard
    form's does; ``''`` for the documented form, which signs the body alone: there the
    header could be anything, and would let one signed body be kept again and again."""
    lowered = {name.lower(): value for name, value in headers.items()}
    signature = lowered.get("webhook-signature") or lowered.get("svix-signature") or ""
    if _documented(signature) is not None:
        return ""
    return lowered.get("webhook-id") or lowered.get("svix-id") or ""


def _documented(value: str) -> tuple[str, list[str]] | None:
    """``t=<seconds>,s=<hex>[,s=<hex>...]`` (other parts ignored), or None if not so."""
    stamp, signatures = None, []
    for part in value.split(","):
        key, _, text = part.strip().partition("=")
        if key == "t":
            stamp = text.strip()
        elif key == "s":
            signatures.append(text.strip())
    if stamp is None or not _SECONDS.fullmatch(stamp) or not signatures:
        return None
    return stamp, signatures


def _standard(value: str) -> list[str]:
    """The ``v1`` signatures of ``v1,<base64> [v1,<base64> ...]`` (other versions, such as
    the asymmetric ``v1a``, are not ours to check)."""
    found = []
    for token in value.split():
        version, _, signature = token.partition(",")
        if version == "v1" and signature:
            found.append(signature)
    return found


def _hex_hmac(key: bytes, stamp: str, body: bytes) -> str:
    return hmac.new(key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _base64_hmac(key: bytes, prefix: str, body: bytes) -> str:
    digest = hmac.new(key, prefix.encode() + b"." + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _any_match(expected: Sequence[str], candidates: Sequence[str], *, lower: bool) -> bool:
    """Every pair compared in constant time, all of them (no early exit), so that timing
    says nothing of which secret or candidate came close."""
    results = [
        hmac.compare_digest(
            want.encode(), (got.lower() if lower else got).encode("utf-8", "replace")
        )
        for want in expected
        for got in candidates
    ]
    return any(results)


class BadEvent(ValueError):
    """A signed body that is not a JSON object: nothing to keep."""


def parse_event(body: bytes, received_at: float, delivery_id: str = "") -> WebhookEvent:
    """The event in a verified delivery, tolerant of missing fields.

    An event without a sender or a URL is still kept (with ``''``); without an event id it
    is known by ``delivery_id`` (Standard Webhooks' ``webhook-id``, the same on every retry),
    else by a digest of the body (a redelivery repeats the body). Raises :class:`BadEvent`.
    """
    try:
        text = body.decode("utf-8")
        payload: Any = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        raise BadEvent("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise BadEvent("the body is not a JSON object")
    data = payload.get("data")
    if not isinstance(data, dict):
        data = {}
    event_type = _text(payload.get("eventType")) or _text(payload.get("type"))
    event_id = (
        _text(payload.get("eventId"))
        or _text(delivery_id)
        or "sha256:" + hashlib.sha256(body).hexdigest()
    )
    stamps = [payload.get("timestamp")]
    if event_type in ACCEPTED_EVENTS:
        stamps.insert(0, data.get("acceptedAt"))
    occurred = next((t for t in map(_epoch, stamps) if t is not None), None)
    return WebhookEvent(
        event_id=event_id,
        event_type=event_type,
        received_at=received_at,
        occurred_at=occurred,
        sender_id=_text(data.get("senderId")),
        url=_canonical(data.get("linkedinUrl") or data.get("recipientLinkedinUrl")),
        payload=text,
    )


def _text(value: object) -> str:
    """A field as text ('' when it is missing or not a string or number). NUL characters
    are dropped: PostgreSQL cannot store them, and no id or URL has one."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return str(value).replace("\x00", "").strip()


def _canonical(value: object) -> str:
    """The canonical profile URL (the one rule of :mod:`campaign_runner.urls`), or ''."""
    text = _text(value)
    if not text:
        return ""
    try:
        return normalize_profile_url(text)
    except InvalidUrl:
        return ""


def _epoch(value: object) -> float | None:
    """Epoch seconds of an ISO 8601 time (``2024-02-24T15:30:00.000Z``; UTC when it names no
    zone) or of a number of seconds; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str) or not value.strip():
        return None
    return parse_iso_time(value)


# -- the receiver


@dataclass(frozen=True)
class Receiver:
    """What the receiving application needs: where events go, the keys, the clock, a log."""

    ledger: Ledger
    keys: tuple[SigningKey, ...]
    now: Callable[[], float] = time.time
    log: Callable[[str], None] = lambda line: None
    tolerance: float = TOLERANCE_SECONDS


RECEIVER = web.AppKey("receiver", Receiver)


def create_app(receiver: Receiver) -> web.Application:
    """The receiver as an ``aiohttp.web.Application``: ``POST /webhooks/sendpilot``."""
    if not receiver.keys:
        raise ValueError("a webhook receiver needs at least one secret")
    app = web.Application()
    app[RECEIVER] = receiver
    app.router.add_post(PATH, _receive)
    return app


async def _receive(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER]
    body = await request.read()
    received_at = receiver.now()
    check = check_signature(request.headers, body, receiver.keys, received_at, receiver.tolerance)
    if check is not Check.VALID:
        # Said to the caller and the log alike: a reason, never a secret or signature.
        receiver.log(f"refused a delivery: {check.value}")
        return web.json_response({"error": check.value}, status=401)
    try:
        event = parse_event(body, received_at, signed_delivery_id(request.headers))
    except BadEvent as exc:
        receiver.log(f"refused a signed delivery: {exc}")
        return web.json_response({"error": str(exc)}, status=400)
    try:
        # In a thread: the commit (an fsync) must not hold up other deliveries.
        new = await asyncio.to_thread(receiver.ledger.record_event, event)
    except LedgerError as exc:
        # Not 2xx, so that SendPilot delivers it again once the ledger is back.
        receiver.log(f"could not keep {event.event_id}: {exc}")
        return web.json_response({"error": "the event could not be kept"}, status=503)
    sender = event.sender_id or "-"
    kind = event.event_type or "(no type)"
    again = "" if new else " (redelivery, kept already)"
    receiver.log(f"{kind} sender={sender} event={event.event_id}{again}")
    return web.json_response({"ok": True, "duplicate": not new})


class WebhookServer:
    """The receiver served on a socket: ``async with WebhookServer(receiver, host, port)``.

    ``port=0`` picks a free port; :attr:`url` then names the endpoint.
    """

    def __init__(self, receiver: Receiver, host: str = "127.0.0.1", port: int = 0) -> None:
        self.receiver = receiver
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the webhook receiver is not started")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{PATH}"

    async def start(self) -> None:
        """Bind the socket and serve (raises ``OSError`` if the address cannot be had)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        runner = web.AppRunner(create_app(self.receiver), access_log=None, shutdown_timeout=10)
        try:
            # A restarted receiver takes its port back at once despite TIME_WAIT connections.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._requested_port))
            await runner.setup()
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = sock.getsockname()[1]

    async def stop(self) -> None:
        """Stop taking deliveries, let those under way finish; idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> WebhookServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

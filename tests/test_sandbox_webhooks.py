"""Signed webhooks from the sandbox, received by a real loopback receiver."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from conftest import FakeClock, SandboxFactory
from helpers import until

from campaign_runner.sandbox import (
    SIGNATURE_HEADER,
    SandboxConfig,
    SandboxSender,
    SandboxServer,
    shown_profile_url,
    sign,
    sign_standard,
    verify_signature,
)
from campaign_runner.sandbox.state import iso_timestamp

SECRET = "whsec_test"
SENDERS = (SandboxSender("s_premium", capacity=10), SandboxSender("s_free", premium=False))
EVENT_FIELDS = ["eventId", "eventType", "timestamp", "workspaceId", "data"]
ACCEPTED = "connection_request.accepted"
SENT_DATA = ["leadId", "campaignId", "linkedinUrl", "senderId", "note"]
ACCEPTED_DATA = ["leadId", "campaignId", "linkedinUrl", "senderId", "acceptedAt"]


@dataclass
class Receiver:
    url: str
    status: int = 200
    deliveries: list[tuple[str, bytes]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.deliveries]


AiohttpServer = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture
async def receiver(aiohttp_server: AiohttpServer) -> Receiver:
    box = Receiver(url="")

    async def hook(request: web.Request) -> web.Response:
        box.deliveries.append((request.headers.get(SIGNATURE_HEADER, ""), await request.read()))
        box.headers.append({name.lower(): value for name, value in request.headers.items()})
        return web.Response(status=box.status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    box.url = str(server.make_url("/hook"))
    return box


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def send(
    http: aiohttp.ClientSession, server: SandboxServer, slug: str, sender: str, note: str
) -> str:
    payload = {
        "senderId": sender,
        "recipientLinkedinUrl": f"https://www.linkedin.com/in/{slug}",
        "message": note,
    }
    headers = {"X-API-Key": server.api_key}
    async with http.post(server.base_url + "/inbox/connect", json=payload, headers=headers) as r:
        assert r.status == 200
        request_id: str = (await r.json())["requestId"]
        return request_id


async def test_sent_and_accepted_events_are_signed_and_shaped(
    sandbox: SandboxFactory,
    http: aiohttp.ClientSession,
    receiver: Receiver,
    fake_clock: FakeClock,
) -> None:
    server = await sandbox(
        senders=SENDERS,
        clock=fake_clock,
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        accept_share=1.0,
        accept_delay_seconds=0.01,
    )
    first = await send(http, server, "ann", "s_premium", "Hello Ann")
    second = await send(http, server, "bob", "s_free", "Hello Bob")
    await server.drain_webhooks()

    assert len(receiver.deliveries) == 4
    for header, raw in receiver.deliveries:
        assert verify_signature(SECRET, header, raw, now=fake_clock.now)
        assert header == sign(SECRET, int(fake_clock.now), raw)
    events = receiver.events()
    for event in events:
        assert list(event) == EVENT_FIELDS
        assert event["workspaceId"] == "ws_sandbox"
        assert event["timestamp"] == iso_timestamp(fake_clock.now)
        assert event["eventId"].startswith("evt_")
        assert event["data"]["campaignId"] is None
        assert event["data"]["leadId"].startswith("lead_")
    assert len({e["eventId"] for e in events}) == 4
    sent = [e for e in events if e["eventType"] == "connection_request.sent"]
    accepted = [e for e in events if e["eventType"] == "connection_request.accepted"]
    assert [list(e["data"]) for e in sent] == [SENT_DATA, SENT_DATA]
    assert [list(e["data"]) for e in accepted] == [ACCEPTED_DATA, ACCEPTED_DATA]
    by_url = {e["data"]["linkedinUrl"]: e["data"] for e in sent}
    assert by_url["https://www.linkedin.com/in/ann"]["note"] == "Hello Ann"
    assert by_url["https://www.linkedin.com/in/ann"]["senderId"] == "s_premium"
    # The free sender's invitation went without its note, and the event says so.
    assert by_url["https://www.linkedin.com/in/bob"]["note"] is None
    assert {e["data"]["acceptedAt"] for e in accepted} == {iso_timestamp(fake_clock.now)}
    # An acceptance refers to the same lead as its invitation.
    assert {e["data"]["leadId"] for e in accepted} == {d["leadId"] for d in by_url.values()}
    assert set(server.state.accepted) == {first, second}
    assert server.state.counters[("webhook", "delivered")] == 4


async def test_emitted_signatures_fail_when_anything_changes(
    sandbox: SandboxFactory, http: aiohttp.ClientSession, receiver: Receiver, fake_clock: FakeClock
) -> None:
    server = await sandbox(
        senders=SENDERS, clock=fake_clock, webhook_url=receiver.url, webhook_secret=SECRET
    )
    await send(http, server, "ann", "s_premium", "Hi")
    await server.drain_webhooks()
    [(header, raw)] = receiver.deliveries
    now = fake_clock.now
    assert verify_signature(SECRET, header, raw, now)
    assert not verify_signature("another-secret", header, raw, now)
    assert not verify_signature(SECRET, header, raw.replace(b"Hi", b"Yo"), now)
    assert not verify_signature(SECRET, header, raw, now + 301)
    assert verify_signature(SECRET, header, raw, now + 300)
    assert not verify_signature(SECRET, header, raw, now + 60, tolerance=30)


async def test_no_acceptances_without_a_share(
    sandbox: SandboxFactory, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    server = await sandbox(
        senders=SENDERS,
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        accept_delay_seconds=0.0,
    )
    for n in range(3):
        await send(http, server, f"p{n}", "s_premium", "Hi")
    await server.drain_webhooks()
    assert [e["eventType"] for e in receiver.events()] == ["connection_request.sent"] * 3
    assert server.state.accepted == {}


async def test_accepted_share_is_seeded(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    async def accepted(seed: int) -> list[str]:
        server = await sandbox(
            senders=SENDERS, seed=seed, accept_share=0.5, accept_delay_seconds=0.0
        )
        for n in range(12):
            await send(http, server, f"p{n}", "s_premium" if n < 10 else "s_free", "Hi")
        await server.drain_webhooks()
        by_id = {i.request_id: i.linkedin_url for i in server.state.invitations}
        return sorted(by_id[r] for r in server.state.accepted)

    first = await accepted(5)
    assert first == await accepted(5)
    assert 0 < len(first) < 12


async def test_failed_deliveries_do_not_affect_the_api(
    sandbox: SandboxFactory, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    receiver.status = 500
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    broken = await sandbox(
        senders=SENDERS,
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        accept_share=1.0,
        accept_delay_seconds=0.0,
    )
    nobody = await sandbox(
        senders=SENDERS,
        webhook_url=f"http://127.0.0.1:{closed_port}/hook",
        webhook_secret=SECRET,
    )
    await send(http, broken, "ann", "s_premium", "Hi")
    await send(http, nobody, "ann", "s_premium", "Hi")
    await broken.drain_webhooks()
    await nobody.drain_webhooks()
    assert broken.state.counters[("webhook", "failed")] == 2
    assert nobody.state.counters[("webhook", "failed")] == 1
    assert len(receiver.deliveries) == 2  # no retries
    assert len(broken.state.invitations) == len(nobody.state.invitations) == 1


async def test_stop_cancels_pending_acceptances(
    sandbox: SandboxFactory, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    server = await sandbox(
        senders=SENDERS,
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        accept_share=1.0,
        accept_delay_seconds=3600,
    )
    await send(http, server, "ann", "s_premium", "Hi")
    await until(lambda: bool(receiver.deliveries))
    await server.stop()
    # An hour-long acceptance still scheduled would make this wait forever.
    await asyncio.wait_for(server.drain_webhooks(), 0.5)
    assert server.state.accepted == {}
    assert [e["eventType"] for e in receiver.events()] == ["connection_request.sent"]


BODY = b'{"eventId":"evt_1"}'


@pytest.mark.parametrize(
    ("header", "now", "valid"),
    [
        (sign(SECRET, 1000, BODY), 1000.0, True),
        (sign(SECRET, 1000, BODY), 1299.9, True),
        (sign(SECRET, 1000, BODY), 700.0, True),
        (sign(SECRET, 1000, BODY), 1300.5, False),
        (sign(SECRET, 1000, BODY), 699.0, False),
        (sign(SECRET, 1000, BODY).replace(",", ", "), 1000.0, True),
        (sign(SECRET, 1000, BODY) + ",v=1", 1000.0, True),
        (f"t=1000,s={'0' * 64},{sign(SECRET, 1000, BODY).split(',')[1]}", 1000.0, True),
        (sign(SECRET, 1000, BODY + b" "), 1000.0, False),
        (sign("other", 1000, BODY), 1000.0, False),
        (sign(SECRET, 1000, BODY).replace("t=1000", "t=1001"), 1000.0, False),
        ("", 1000.0, False),
        ("t=1000", 1000.0, False),
        (sign(SECRET, 1000, BODY).split(",")[1], 1000.0, False),
        ("t=abc,s=00", 1000.0, False),
        ("garbage", 1000.0, False),
    ],
)
def test_verify_signature(header: str, now: float, valid: bool) -> None:
    assert verify_signature(SECRET, header, BODY, now) is valid


def test_sign_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign("k", 1700000000, BODY) == f"t=1700000000,s={expected}"


STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_sign_standard_gives_the_published_example() -> None:
    # Svix's "verifying payloads manually" example, byte for byte.
    signature = sign_standard(
        STANDARD_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


async def test_standard_webhooks_signing_sends_the_three_headers(
    sandbox: SandboxFactory, http: aiohttp.ClientSession, receiver: Receiver, fake_clock: FakeClock
) -> None:
    server = await sandbox(
        senders=SENDERS,
        clock=fake_clock,
        webhook_url=receiver.url,
        webhook_secret=STANDARD_SECRET,
        webhook_signing="standard",
        accept_share=1.0,
        accept_delay_seconds=0.0,
    )
    await send(http, server, "ann", "s_premium", "Hi")
    await server.drain_webhooks()
    assert len(receiver.deliveries) == 2
    ids = set()
    for headers, (_, raw) in zip(receiver.headers, receiver.deliveries, strict=True):
        assert headers["webhook-timestamp"] == str(int(fake_clock.now))
        assert headers["webhook-id"].startswith("msg_")
        expected = sign_standard(STANDARD_SECRET, headers["webhook-id"], int(fake_clock.now), raw)
        assert headers["webhook-signature"] == expected
        ids.add(headers["webhook-id"])
    assert len(ids) == 2


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"webhook_signing": "standard", "webhook_secret": "plain"}, "whsec_<base64>"),
        ({"webhook_signing": "standard", "webhook_secret": "whsec_%%%"}, "whsec_<base64>"),
        ({"webhook_signing": "svix"}, "webhook_signing must be one of sendpilot, standard"),
        ({"webhook_profile_urls": "odd"}, "webhook_profile_urls must be one of as_sent, varied"),
    ],
)
def test_webhook_signing_and_profile_forms_are_checked(
    overrides: dict[str, str], problem: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        SandboxConfig(**overrides)  # type: ignore[arg-type]


def test_shown_profile_urls_are_the_same_profile_written_otherwise() -> None:
    url = "https://www.linkedin.com/in/jane-doe"
    shown = [shown_profile_url(url, n) for n in range(5)]
    assert shown == [
        "http://www.linkedin.com/in/Jane-doe/?utm_source=share&utm_medium=member_desktop",
        "https://linkedin.com/in/jane-doe/",
        "https://uk.linkedin.com/in/JANE-DOE?originalSubdomain=uk",
        "www.linkedin.com/in/jane-doe",
        "http://www.linkedin.com/in/Jane-doe/?utm_source=share&utm_medium=member_desktop",
    ]
    assert shown_profile_url("not a profile", 1) == "not a profile"


async def test_varied_profile_urls_show_each_invitation_in_another_form(
    sandbox: SandboxFactory, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    server = await sandbox(
        senders=SENDERS,
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        webhook_profile_urls="varied",
        accept_share=1.0,
        accept_delay_seconds=0.0,
    )
    for n in range(4):
        await send(http, server, f"person-{n}", "s_premium", "Hi")
    await server.drain_webhooks()
    shown = {(e["eventType"], e["data"]["linkedinUrl"]) for e in receiver.events()}
    # Both events of an invitation write it alike; each invitation in the next form.
    expected = {shown_profile_url(f"https://www.linkedin.com/in/person-{n}", n) for n in range(4)}
    assert shown == {(t, u) for t in ("connection_request.sent", ACCEPTED) for u in expected}
    # None of them is the form the invitation was sent in.
    assert not expected & {i.linkedin_url for i in server.state.invitations}


async def test_event_ids_differ_between_stand_ins_of_one_seed(
    sandbox: SandboxFactory, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    # A receiver keeps each id once, and a rehearsal repeated must not look like a replay.
    for _ in range(2):
        server = await sandbox(senders=SENDERS, webhook_url=receiver.url, webhook_secret=SECRET)
        await send(http, server, "ann", "s_premium", "Hi")
        await server.drain_webhooks()
    ids = [e["eventId"] for e in receiver.events()]
    assert len(ids) == 2 and len(set(ids)) == 2


@pytest.mark.parametrize("signing", ["sendpilot", "standard"])
async def test_redeliveries_repeat_the_event_signed_anew(
    sandbox: SandboxFactory,
    http: aiohttp.ClientSession,
    receiver: Receiver,
    fake_clock: FakeClock,
    signing: str,
) -> None:
    server = await sandbox(
        senders=SENDERS,
        clock=fake_clock,
        webhook_url=receiver.url,
        webhook_secret=STANDARD_SECRET,
        webhook_signing=signing,
        webhook_redeliveries=2,
    )
    await send(http, server, "ann", "s_premium", "Hi")
    await server.drain_webhooks()
    assert len(receiver.deliveries) == 3
    assert len({raw for _, raw in receiver.deliveries}) == 1  # the same event, byte for byte
    if signing == "standard":
        assert len({h["webhook-id"] for h in receiver.headers}) == 1
    assert server.state.counters[("webhook", "delivered")] == 3

"""SendPilot's webhooks received: signatures in both forms, events, the receiver, the command.

Deliveries are signed with the stand-in's own signing code (``campaign_runner.sandbox``) and
checked with the receiver's (``campaign_runner.webhooks``), so that a mistake shared by
both sides cannot hide.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner
from conftest import FakeClock, SandboxFactory
from helpers import prospects, run_campaign, settings_for

from campaign_runner.cli import cli
from campaign_runner.config import WEBHOOK_SECRET_ENV, Secret
from campaign_runner.ledger import (
    Acceptance,
    ClaimRequest,
    Ledger,
    SenderLimits,
    Settle,
    SQLiteLedger,
)
from campaign_runner.sandbox import SandboxSender, sign, sign_standard
from campaign_runner.sandbox.state import iso_timestamp
from campaign_runner.timestamps import parse_timestamp
from campaign_runner.webhooks import (
    PATH,
    BadEvent,
    Check,
    Receiver,
    WebhookServer,
    check_signature,
    parse_event,
    signing_keys,
)

T = 1_700_000_000
OLD = "whsec_" + base64.b64encode(b"the old secret, before rotation").decode()
NEW = "whsec_" + base64.b64encode(b"the new secret, after rotation!").decode()
FORMS = ["sendpilot", "standard"]


def signed(form: str, secret: str, body: bytes, at: int = T, message: str = "msg_1") -> dict:
    """The headers that sign ``body`` at ``at``, made by the stand-in's code."""
    if form == "sendpilot":
        return {"Webhook-Signature": sign(secret, at, body)}
    return {
        "webhook-id": message,
        "webhook-timestamp": str(at),
        "webhook-signature": sign_standard(secret, message, at, body),
    }


def check(headers: dict, body: bytes, *secrets: str, now: float = T) -> Check:
    return check_signature(headers, body, signing_keys(Secret(s) for s in secrets), now)


def accepted_body(event_id: str = "evt_1", url: str = "https://www.linkedin.com/in/ann") -> bytes:
    payload = {
        "eventId": event_id,
        "eventType": "connection_request.accepted",
        "timestamp": "2023-11-14T22:13:25.000Z",
        "workspaceId": "ws_1",
        "data": {
            "leadId": "lead_1",
            "campaignId": None,
            "linkedinUrl": url,
            "senderId": "s1",
            "acceptedAt": "2023-11-14T22:13:21.500Z",
        },
    }
    return json.dumps(payload).encode()


BODY = accepted_body()

# -- signatures


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("case", "made_with", "at", "body", "now", "secrets", "expected"),
    [
        ("valid", NEW, T, BODY, T, (NEW,), Check.VALID),
        ("wrong secret", OLD, T, BODY, T, (NEW,), Check.INVALID),
        ("tampered body", NEW, T, BODY.replace(b"s1", b"s2"), T, (NEW,), Check.INVALID),
        ("5 minutes old", NEW, T, BODY, T + 300, (NEW,), Check.VALID),
        ("stale", NEW, T, BODY, T + 301, (NEW,), Check.STALE),
        ("5 minutes ahead", NEW, T, BODY, T - 300, (NEW,), Check.VALID),
        ("from the future", NEW, T, BODY, T - 301, (NEW,), Check.STALE),
        ("stale and forged", OLD, T, BODY, T + 3600, (NEW,), Check.INVALID),
        ("rotated: the old secret", OLD, T, BODY, T, (OLD, NEW), Check.VALID),
        ("rotated: the new secret", NEW, T, BODY, T, (OLD, NEW), Check.VALID),
        ("rotated away", OLD, T, BODY, T, (NEW,), Check.INVALID),
    ],
)
def test_signatures_in_both_forms(
    form: str,
    case: str,
    made_with: str,
    at: int,
    body: bytes,
    now: float,
    secrets: tuple[str, ...],
    expected: Check,
) -> None:
    headers = signed(form, made_with, BODY, at)
    assert check(headers, body, *secrets, now=now) is expected


@pytest.mark.parametrize("form", FORMS)
def test_a_signature_moved_to_another_time_fails(form: str) -> None:
    headers = signed(form, NEW, BODY, T)
    if form == "sendpilot":
        headers["Webhook-Signature"] = headers["Webhook-Signature"].replace(f"t={T}", f"t={T + 1}")
    else:
        headers["webhook-timestamp"] = str(T + 1)
    assert check(headers, BODY, NEW, now=T) is Check.INVALID


@pytest.mark.parametrize(
    "headers",
    [{}, {"Webhook-Signature": ""}, {"X-Signature": sign(NEW, T, BODY)}],
    ids=["none", "empty", "another header"],
)
def test_an_unsigned_delivery(headers: dict) -> None:
    assert check(headers, BODY, NEW) is Check.UNSIGNED


def documented_hex() -> str:
    return sign(NEW, T, BODY).partition(",s=")[2]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"t={T}, s={documented_hex()}", Check.VALID),
        (f"s={documented_hex()},t={T},v=2", Check.VALID),
        (f"t={T},s={'0' * 64},s={documented_hex()}", Check.VALID),
        (f"t={T},s={documented_hex().upper()}", Check.VALID),
        (f"t={T}000,s={documented_hex()}", Check.INVALID),  # milliseconds: not the form
        (f"t=abc,s={documented_hex()}", Check.INVALID),
        (f"t={T}", Check.INVALID),
        (f"s={documented_hex()}", Check.INVALID),
        (f"t={T},s=é{documented_hex()[1:]}", Check.INVALID),
        ("garbage", Check.INVALID),
    ],
)
def test_the_documented_header_as_written(header: str, expected: Check) -> None:
    assert check({"webhook-signature": header}, BODY, NEW) is expected


def test_the_documented_form_takes_any_secret_as_given() -> None:
    plain = "not base64, and no whsec_ prefix!"
    assert check(signed("sendpilot", plain, BODY), BODY, plain) is Check.VALID
    assert check(signed("sendpilot", NEW, BODY), BODY, NEW.removeprefix("whsec_")) is Check.INVALID


def test_the_standard_webhooks_published_example() -> None:
    # The example of Svix's "verifying payloads manually" page, byte for byte.
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert check(headers, body, secret, now=1614265330) is Check.VALID
    # The same key without its prefix is the same secret.
    assert check(headers, body, secret.removeprefix("whsec_"), now=1614265330) is Check.VALID
    svix = {name.replace("webhook-", "svix-"): value for name, value in headers.items()}
    assert check(svix, body, secret, now=1614265330) is Check.VALID


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda h: {**h, "webhook-signature": "v1,AAAA " + h["webhook-signature"]}, Check.VALID),
        (lambda h: {**h, "webhook-signature": h["webhook-signature"] + " v1a,xyz"}, Check.VALID),
        (lambda h: {**h, "webhook-signature": h["webhook-signature"][3:]}, Check.INVALID),
        (lambda h: {**h, "webhook-signature": "v2," + h["webhook-signature"][3:]}, Check.INVALID),
        (lambda h: {**h, "webhook-id": "msg_2"}, Check.INVALID),
        (lambda h: {k: v for k, v in h.items() if k != "webhook-id"}, Check.INVALID),
        (lambda h: {k: v for k, v in h.items() if k != "webhook-timestamp"}, Check.INVALID),
        (lambda h: {**h, "webhook-timestamp": f"{T}.5"}, Check.INVALID),
    ],
    ids=[
        "several signatures",
        "an asymmetric one beside",
        "no version",
        "another version",
        "another message id",
        "no message id",
        "no timestamp",
        "a fractional timestamp",
    ],
)
def test_the_standard_headers_as_written(change: Callable[[dict], dict], expected: Check) -> None:
    assert check(change(signed("standard", NEW, BODY)), BODY, NEW) is expected


# -- events


def test_an_acceptance_is_read_with_its_own_time_and_the_canonical_url() -> None:
    body = accepted_body(url="http://www.linkedin.com/in/Ann/?utm_source=share")
    event = parse_event(body, received_at=T + 9.0)
    assert dataclasses.asdict(event) == {
        "event_id": "evt_1",
        "event_type": "connection_request.accepted",
        "received_at": T + 9.0,
        "occurred_at": T + 1.5,  # data.acceptedAt, not the event's timestamp
        "sender_id": "s1",
        "url": "https://www.linkedin.com/in/ann",
        "payload": body.decode(),
    }


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"eventId": "e", "eventType": "reply.received"}, ("e", "reply.received", None, "", "")),
        (
            {"eventId": "e", "eventType": "connection.sent", "timestamp": "2023-11-14T22:13:20Z"},
            ("e", "connection.sent", float(T), "", ""),
        ),
        (
            {"eventId": 7, "type": "connection.accepted", "data": {"acceptedAt": T + 2}},
            ("7", "connection.accepted", float(T + 2), "", ""),
        ),
        (
            {"eventId": "e", "data": {"senderId": "s1", "linkedinUrl": "linkedin.com/company/x"}},
            ("e", "", None, "s1", ""),
        ),
        (
            {"eventId": "e", "timestamp": "yesterday", "data": ["not", "a", "mapping"]},
            ("e", "", None, "", ""),
        ),
        (
            {"eventId": "e\u0000", "data": {"senderId": "s\u00001", "linkedinUrl": True}},
            ("e", "", None, "s1", ""),
        ),
        (
            {"eventId": "e", "data": {"recipientLinkedinUrl": "https://uk.linkedin.com/in/Bob-S"}},
            ("e", "", None, "", "https://www.linkedin.com/in/bob-s"),
        ),
    ],
)
def test_events_are_read_tolerantly(payload: dict, fields: tuple) -> None:
    event = parse_event(json.dumps(payload).encode(), received_at=T)
    assert (event.event_id, event.event_type, event.occurred_at, event.sender_id, event.url) == (
        fields
    )


def test_an_event_without_an_id_is_known_by_its_delivery_or_its_body() -> None:
    body = b'{"eventType": "connection.accepted"}'
    assert parse_event(body, T, delivery_id="msg_9").event_id == "msg_9"
    by_body = parse_event(body, T).event_id
    assert by_body.startswith("sha256:")
    assert parse_event(body, T + 60).event_id == by_body  # a redelivery repeats the body
    assert parse_event(body + b" ", T).event_id != by_body


@pytest.mark.parametrize("body", [b"", b"{", b"[1, 2]", b'"text"', b"\xff{}", b"null"])
def test_a_body_that_is_no_json_object_is_a_bad_event(body: bytes) -> None:
    with pytest.raises(BadEvent):
        parse_event(body, T)


# -- the receiver, over loopback


@dataclass
class Receiving:
    url: str
    ledger: Ledger
    clock: FakeClock
    log: list[str]
    http: aiohttp.ClientSession

    async def post(self, body: bytes, headers: dict) -> tuple[int, dict]:
        async with self.http.post(self.url, data=body, headers=headers) as response:
            return response.status, await response.json()


@pytest.fixture
async def receiving(tmp_path: Path, fake_clock: FakeClock) -> AsyncIterator[Receiving]:
    fake_clock.now = float(T)
    ledger = SQLiteLedger(tmp_path / "workspace.sqlite3")
    log: list[str] = []
    keys = signing_keys([Secret(OLD), Secret(NEW)])
    receiver = Receiver(ledger, keys, now=fake_clock, log=log.append)
    async with WebhookServer(receiver) as server, aiohttp.ClientSession() as http:
        yield Receiving(server.url, ledger, fake_clock, log, http)
    ledger.close()


@pytest.mark.parametrize("form", FORMS)
async def test_a_signed_acceptance_is_kept_once_and_redeliveries_say_so(
    receiving: Receiving, form: str
) -> None:
    assert await receiving.post(BODY, signed(form, NEW, BODY)) == (
        200,
        {"ok": True, "duplicate": False},
    )
    # SendPilot's retry a minute later: signed anew, same event id.
    receiving.clock.advance(60)
    again = signed(form, NEW, BODY, at=T + 60, message="msg_1")
    assert await receiving.post(BODY, again) == (200, {"ok": True, "duplicate": True})
    # The same delivery replayed byte for byte, inside and then outside the window.
    assert (await receiving.post(BODY, signed(form, NEW, BODY)))[1]["duplicate"] is True
    receiving.clock.advance(300)
    assert await receiving.post(BODY, signed(form, NEW, BODY)) == (
        401,
        {"error": Check.STALE.value},
    )
    assert receiving.ledger.acceptances() == [
        Acceptance("s1", "https://www.linkedin.com/in/ann", T + 1.5, "evt_1")
    ]
    assert receiving.log[:2] == [
        "connection_request.accepted sender=s1 event=evt_1",
        "connection_request.accepted sender=s1 event=evt_1 (redelivery, kept already)",
    ]


@pytest.mark.parametrize("form", FORMS)
async def test_refused_deliveries_keep_nothing_and_say_nothing_secret(
    receiving: Receiving, form: str
) -> None:
    forged = "whsec_" + base64.b64encode(b"somebody else's secret").decode()
    deliveries = [
        (BODY, signed(form, forged, BODY), Check.INVALID),
        (BODY.replace(b"s1", b"s9"), signed(form, NEW, BODY), Check.INVALID),
        (BODY, signed(form, NEW, BODY, at=T - 301), Check.STALE),
        (BODY, {}, Check.UNSIGNED),
    ]
    for body, headers, reason in deliveries:
        status, answer = await receiving.post(body, headers)
        assert (status, answer) == (401, {"error": reason.value})
    assert receiving.ledger.acceptances() == []
    assert receiving.log == [f"refused a delivery: {reason.value}" for _, _, reason in deliveries]
    secrets = [OLD, NEW, OLD.removeprefix("whsec_"), NEW.removeprefix("whsec_")]
    assert not any(s in line for s in secrets for line in receiving.log)


async def test_a_signed_body_that_is_not_json_is_a_bad_request(receiving: Receiving) -> None:
    body = b"<html>not an event</html>"
    status, answer = await receiving.post(body, signed("sendpilot", OLD, body))
    assert (status, answer) == (400, {"error": "the body is not JSON"})


async def test_other_events_are_acknowledged_and_kept(receiving: Receiving) -> None:
    body = json.dumps({"eventId": "evt_r", "eventType": "reply.received", "data": {}}).encode()
    assert (await receiving.post(body, signed("standard", OLD, body)))[0] == 200
    # Kept: the same id again is a redelivery.
    assert (await receiving.post(body, signed("standard", OLD, body)))[1]["duplicate"] is True
    assert receiving.ledger.acceptances() == []
    assert receiving.log[0] == "reply.received sender=- event=evt_r"


async def test_an_acceptance_matches_its_invitation_on_a_url_pasted_in_another_form(
    receiving: Receiving,
) -> None:
    ledger = receiving.ledger
    campaign = ledger.campaign("q3", "/q3.results.csv", T).id
    limits = {"s1": SenderLimits(daily_limit=10, weekly_limit=10, interval_seconds=0)}
    claim = ledger.claim(
        campaign, [ClaimRequest("https://www.linkedin.com/in/jane-doe", "s1")], limits, 86400, T
    )[0]
    assert claim.claim_id is not None
    ledger.settle([Settle(claim.claim_id, "sent", request_id="conn_1")], T)
    body = accepted_body(url="http://www.linkedin.com/in/Jane-Doe/?utm=x")
    assert (await receiving.post(body, signed("sendpilot", NEW, body)))[0] == 200
    [acceptance] = ledger.acceptances()
    holder = ledger.holders([acceptance.url])[acceptance.url]
    assert (acceptance.sender_id, acceptance.url) == ("s1", "https://www.linkedin.com/in/jane-doe")
    assert (holder.campaign, holder.sender_id, holder.status) == ("q3", "s1", "sent")


async def test_an_event_the_ledger_cannot_keep_is_not_acknowledged(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    fake_clock.now = float(T)
    path = tmp_path / "workspace.sqlite3"
    SQLiteLedger(path).close()
    log: list[str] = []
    with SQLiteLedger(path, read_only=True) as unwritable:
        receiver = Receiver(unwritable, signing_keys([Secret(NEW)]), now=fake_clock, log=log.append)
        async with WebhookServer(receiver) as server, aiohttp.ClientSession() as http:
            headers = signed("sendpilot", NEW, BODY)
            async with http.post(server.url, data=BODY, headers=headers) as response:
                answer = (response.status, await response.json())
    # Not 2xx: SendPilot delivers it again later.
    assert answer == (503, {"error": "the event could not be kept"})
    assert log[0].startswith(f"could not keep evt_1: {path}: the workspace ledger failed")


async def test_deliveries_at_once_are_each_kept_once(receiving: Receiving) -> None:
    bodies = [
        accepted_body(f"evt_{n}", f"https://www.linkedin.com/in/person-{n}") for n in range(20)
    ]
    posts = [receiving.post(b, signed("sendpilot", NEW, b)) for b in bodies * 2]
    answers = await asyncio.gather(*posts)
    assert sorted(a[1]["duplicate"] for a in answers) == [False] * 20 + [True] * 20
    assert len(receiving.ledger.acceptances()) == 20


# -- the command


def test_the_command_refuses_to_start_without_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(WEBHOOK_SECRET_ENV, raising=False)
    database = tmp_path / "workspace.sqlite3"
    monkeypatch.setenv("CAMPAIGN_RUNNER_DATABASE", str(database))
    result = CliRunner().invoke(cli, ["webhooks", "--port", "0"])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1
    assert f"no webhook secret: set {WEBHOOK_SECRET_ENV}" in result.output
    assert not database.exists()


def test_the_command_needs_to_know_the_workspace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENDPILOT_API_KEY", raising=False)
    result = CliRunner().invoke(cli, ["webhooks", "--port", "0", "--secret", NEW])
    assert result.exit_code == 2, result.output
    assert "which workspace?" in result.output


def test_a_taken_port_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setenv("CAMPAIGN_RUNNER_DATABASE", str(tmp_path / "workspace.sqlite3"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["webhooks", "--port", str(port), "--secret", NEW])
    assert result.exit_code == 2, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output


async def _read_until(process: asyncio.subprocess.Process, marker: str) -> str:
    assert process.stdout is not None
    text = ""
    while marker not in text:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        if not line:
            raise AssertionError(f"webhooks exited early: {text}")
        text += line.decode()
    return text


@pytest.mark.slow
async def test_stand_in_to_receiver_to_ledger_in_both_forms_across_a_rotation(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """A real `campaign-runner webhooks` process; two stand-ins, one signing each way (one
    with the old secret, one with the new), each running a campaign whose acceptances
    write the profile in other forms. The ledger's acceptances are the stand-ins' own."""
    api_key = "sandbox-key"  # the stand-ins' key: the workspace, and so the ledger, it names
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "SENDPILOT_API_KEY": api_key,
        WEBHOOK_SECRET_ENV: f"{OLD}, {NEW}",
    }
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "campaign_runner", "webhooks", "--port", "0"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    try:
        banner = await _read_until(process, "press Ctrl-C to stop")
        url = banner.split("receiving SendPilot webhooks at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith(PATH)
        assert "signatures checked against 2 secrets" in banner
        servers = []
        for n, (signing, secret) in enumerate([("sendpilot", OLD), ("standard", NEW)]):
            server = await sandbox(
                senders=(SandboxSender("s1", capacity=50), SandboxSender("s2", capacity=50)),
                seed=n,
                webhook_url=url,
                webhook_secret=secret,
                webhook_signing=signing,
                webhook_profile_urls="varied",
                accept_share=0.75,
                accept_delay_seconds=0.0,
                webhook_redeliveries=1,  # every event twice, as when an answer is lost
            )
            settings = settings_for(server, [("s1", 50), ("s2", 50)])
            people = prospects(tmp_path / f"p{n}.csv", 8, start=10 * n)
            _, summary = await run_campaign(settings, people, tmp_path / f"p{n}.results.csv")
            assert summary.final == {"sent": 8}
            await server.drain_webhooks()
            # Every delivery was answered 2xx: each was durable before its answer.
            events = 8 + len(server.state.accepted)
            assert server.state.counters[("webhook", "delivered")] == 2 * events
            servers.append(server)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode == 0, stderr.decode()
    expected = set()
    for server in servers:
        invitations = {i.request_id: i for i in server.state.invitations}
        for request_id, at in server.state.accepted.items():
            invitation = invitations[request_id]
            accepted_at = parse_timestamp(iso_timestamp(at))  # the event's ms precision
            expected.add((invitation.sender_id, invitation.linkedin_url, accepted_at))
    assert 0 < len(expected) < 16
    from campaign_runner.config import load_settings
    from campaign_runner.workspace import ledger_location

    location = ledger_location(load_settings(None, {"SENDPILOT_API_KEY": api_key}), rehearsal=False)
    assert location is not None
    with SQLiteLedger(Path(location)) as ledger:
        got = {(a.sender_id, a.url, a.accepted_at) for a in ledger.acceptances()}
        # Every acceptance names a person its sender invited, in the ledger's own words.
        holders = ledger.holders(a[1] for a in got)
    assert got == expected
    assert {(h.sender_id, u) for u, h in holders.items()} == {(s, u) for s, u, _ in got}
    lines = stdout.decode().splitlines()
    kept = [line for line in lines if " event=evt_" in line and "redelivery" not in line]
    again = [line for line in lines if line.endswith(" (redelivery, kept already)")]
    assert len(kept) == len(again) == 16 + len(expected)
    assert sum("connection_request.accepted" in line for line in kept) == len(expected)
    assert not any("refused" in line for line in lines)
    assert lines[-1] == "webhooks stopped"
    for secret in (OLD, NEW, OLD.removeprefix("whsec_"), NEW.removeprefix("whsec_")):
        assert secret not in stdout.decode() + stderr.decode()


async def test_an_unsigned_delivery_id_cannot_make_a_signed_body_new(receiving: Receiving) -> None:
    # The documented form signs the body alone: a webhook-id beside it proves nothing, and
    # the same signed body (no eventId in it) is one event however the header is set.
    body = json.dumps(
        {"eventType": "connection_request.accepted", "data": {"senderId": "s1"}}
    ).encode()
    headers = signed("sendpilot", NEW, body)
    answers = [
        (await receiving.post(body, {**headers, "webhook-id": f"x{n}"}))[1]["duplicate"]
        for n in range(3)
    ]
    assert answers == [False, True, True]


def test_signing_keys_never_show_the_secret() -> None:
    keys = signing_keys([Secret(NEW), Secret("plain-secret")])
    assert "plain-secret" not in repr(keys)
    assert base64.b64decode(NEW.removeprefix("whsec_")).decode() not in repr(keys)

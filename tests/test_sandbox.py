"""The stand-in SendPilot server's routes, over real loopback HTTP.

Wire shapes are checked field by field against the examples in ``sendpilot-api.md``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import FakeClock, SandboxFactory

from campaign_runner.sandbox import (
    FaultRule,
    SandboxConfig,
    SandboxSender,
    SandboxServer,
    senders_from_spec,
)
from campaign_runner.sandbox.state import iso_timestamp

# The documented examples (sendpilot-api.md), used as the reference for field names and types.
CONNECT_EXAMPLE: dict[str, Any] = {
    "success": True,
    "requestId": "conn_xyz789",
    "recipientLinkedinUrl": "https://www.linkedin.com/in/john-doe",
    "status": "sent",
    "timestamp": "2024-02-24T15:30:00.000Z",
}
ERROR_EXAMPLE: dict[str, Any] = {
    "statusCode": 400,
    "message": "Validation failed",
    "error": "Bad Request",
}
SENDER_FIELDS = {
    "id": str,
    "name": str,
    "linkedinUrl": str,
    "status": str,
    "dailyMessageLimit": int,
    "messagesSentToday": int,
    "remainingMessages": int,
}
QUOTA_FIELDS = {"limit": int, "used": int, "remaining": int, "resetsAt": str}
ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

JOHN = "https://www.linkedin.com/in/john-doe"
SENDERS = (
    SandboxSender("s_premium", name="Pat Premium", capacity=2, premium=True),
    SandboxSender("s_free", name="Fay Free", capacity=5, premium=False),
)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession,
    server: SandboxServer,
    method: str,
    path: str,
    body: Any = None,
    *,
    key: str | None = "use-server-key",
    raw: str | None = None,
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    headers = (
        {} if key is None else {"X-API-Key": server.api_key if key == "use-server-key" else key}
    )
    kwargs: dict[str, Any] = {"headers": headers}
    if raw is not None:
        kwargs["data"] = raw
        headers["Content-Type"] = "application/json"
    elif body is not None:
        kwargs["json"] = body
    async with http.request(method, server.base_url + path, **kwargs) as response:
        return response.status, await response.json(), response.headers


async def connect(
    http: aiohttp.ClientSession,
    server: SandboxServer,
    url: str = JOHN,
    sender: str = "s_premium",
    note: str | None = None,
) -> tuple[int, Any]:
    body: dict[str, Any] = {"senderId": sender, "recipientLinkedinUrl": url}
    if note is not None:
        body["message"] = note
    status, payload, _ = await call(http, server, "POST", "/inbox/connect", body)
    return status, payload


def assert_error_shape(payload: Any, status: int) -> None:
    assert set(payload) == set(ERROR_EXAMPLE)
    assert payload["statusCode"] == status
    assert isinstance(payload["message"], str) and payload["message"]
    assert isinstance(payload["error"], str) and payload["error"]


async def test_connect_answers_like_the_documented_example(
    sandbox: SandboxFactory, http: aiohttp.ClientSession, fake_clock: FakeClock
) -> None:
    server = await sandbox(senders=SENDERS, clock=fake_clock)
    fake_clock.advance(1.5)
    status, payload = await connect(http, server, note="Hi John")

    assert status == 200
    assert list(payload) == list(CONNECT_EXAMPLE)
    for name, example in CONNECT_EXAMPLE.items():
        assert type(payload[name]) is type(example), name
    assert payload["success"] is True
    assert payload["status"] == "sent"
    assert payload["recipientLinkedinUrl"] == JOHN
    assert re.fullmatch(r"conn_[0-9a-f]+", payload["requestId"])
    assert ISO_MILLIS.match(payload["timestamp"])
    assert payload["timestamp"] == "2023-11-14T22:13:21.500Z"
    [invitation] = server.state.invitations
    assert invitation.sender_id == "s_premium"
    assert invitation.linkedin_url == JOHN
    assert invitation.note == "Hi John"
    assert invitation.request_id == payload["requestId"]
    assert invitation.created_at == fake_clock.now
    assert server.state.counters[("connect", "sent")] == 1


def test_iso_timestamp_matches_the_documented_form() -> None:
    # 2024-02-24T15:30:00Z, the example's moment.
    assert iso_timestamp(1708788600.0) == CONNECT_EXAMPLE["timestamp"]
    assert iso_timestamp(1708788600.0129) == "2024-02-24T15:30:00.012Z"


async def test_base_url_names_an_ephemeral_loopback_port(sandbox: SandboxFactory) -> None:
    server = await sandbox()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", server.base_url)
    assert server.port > 0
    assert server.api_key == "sandbox-key"


@pytest.mark.parametrize(
    ("route", "method", "key", "message"),
    [
        ("/inbox/connect", "POST", None, "Missing API key"),
        ("/inbox/connect", "POST", "wrong", "Invalid API key"),
        ("/inbox/senders", "GET", None, "Missing API key"),
        ("/inbox/senders", "GET", "sandbox-key-but-longer", "Invalid API key"),
        ("/senders/quotas", "GET", "", "Missing API key"),
        ("/senders/quotas", "GET", "SANDBOX-KEY", "Invalid API key"),
    ],
)
async def test_requests_without_the_key_get_401(
    sandbox: SandboxFactory,
    http: aiohttp.ClientSession,
    route: str,
    method: str,
    key: str | None,
    message: str,
) -> None:
    server = await sandbox(senders=SENDERS)
    body = {"senderId": "s_premium", "recipientLinkedinUrl": JOHN}
    status, payload, _ = await call(http, server, method, route, body, key=key)
    assert status == 401
    assert payload == {"statusCode": 401, "message": message, "error": "Unauthorized"}
    name = {"/inbox/connect": "connect", "/inbox/senders": "senders"}.get(route, "quotas")
    assert server.state.counters == {(name, "unauthorized"): 1}
    assert server.state.invitations == []


@pytest.mark.parametrize(
    ("body", "raw", "message"),
    [
        (None, "not json", "Validation failed: the body must be a JSON object"),
        ([JOHN], None, "Validation failed: the body must be a JSON object"),
        ({"recipientLinkedinUrl": JOHN}, None, "Validation failed: senderId is required"),
        ({"senderId": "", "recipientLinkedinUrl": JOHN}, None, "senderId is required"),
        ({"senderId": 7, "recipientLinkedinUrl": JOHN}, None, "senderId is required"),
        ({"senderId": "s_premium"}, None, "recipientLinkedinUrl is required"),
        (
            {
                "senderId": "s_premium",
                "recipientLinkedinUrl": "https://www.linkedin.com/company/acme",
            },
            None,
            "recipientLinkedinUrl must be a LinkedIn profile URL",
        ),
        (
            {"senderId": "s_premium", "recipientLinkedinUrl": "https://example.com/in/john-doe"},
            None,
            "recipientLinkedinUrl must be a LinkedIn profile URL",
        ),
        (
            {"senderId": "s_premium", "recipientLinkedinUrl": "www.linkedin.com/in/john-doe"},
            None,
            "recipientLinkedinUrl must be a LinkedIn profile URL",
        ),
        (
            {"senderId": "s_premium", "recipientLinkedinUrl": f"{JOHN}/details/experience"},
            None,
            "recipientLinkedinUrl must be a LinkedIn profile URL",
        ),
        (
            {
                "senderId": "s_premium",
                "recipientLinkedinUrl": "https://www.linkedin.com/in/ACoAAB1234567890",
            },
            None,
            "not a member URN",
        ),
        (
            {"senderId": "s_premium", "recipientLinkedinUrl": JOHN, "message": "x" * 301},
            None,
            "Validation failed: message must be at most 300 characters",
        ),
        (
            {"senderId": "s_premium", "recipientLinkedinUrl": JOHN, "message": 42},
            None,
            "message must be a string",
        ),
        (
            {"senderId": "nobody", "recipientLinkedinUrl": JOHN},
            None,
            "Invalid request or sender not found",
        ),
    ],
)
async def test_bad_connect_requests_get_400(
    sandbox: SandboxFactory,
    http: aiohttp.ClientSession,
    body: Any,
    raw: str | None,
    message: str,
) -> None:
    server = await sandbox(senders=SENDERS)
    status, payload, _ = await call(http, server, "POST", "/inbox/connect", body, raw=raw)
    assert status == 400
    assert_error_shape(payload, 400)
    assert payload["error"] == "Bad Request"
    assert message in payload["message"]
    assert server.state.invitations == []
    assert server.state.counters[("connect", "sent")] == 0


@pytest.mark.parametrize(
    "url",
    [
        JOHN,
        f"{JOHN}/",
        "https://linkedin.com/in/john-doe",
        "http://www.linkedin.com/in/john-doe",
        "https://de.linkedin.com/in/j%C3%BCrgen-m%C3%BCller",
        "https://www.linkedin.com/in/Jane_Doe-123",
    ],
)
async def test_profile_urls_are_accepted(
    sandbox: SandboxFactory, http: aiohttp.ClientSession, url: str
) -> None:
    server = await sandbox(senders=SENDERS)
    status, payload = await connect(http, server, url=url)
    assert (status, payload["status"], payload["recipientLinkedinUrl"]) == (200, "sent", url)


async def test_a_note_of_exactly_300_characters_is_accepted(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    server = await sandbox(senders=SENDERS)
    note = "é" * 299 + "!"
    status, _ = await connect(http, server, note=note)
    assert status == 200
    assert server.state.invitations[0].note == note


async def test_capacity_is_spent_then_429_daily_limit(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    server = await sandbox(senders=SENDERS)
    for n in range(2):
        status, _ = await connect(http, server, url=f"{JOHN}-{n}")
        assert status == 200

    status, payload, headers = await call(
        http,
        server,
        "POST",
        "/inbox/connect",
        {"senderId": "s_premium", "recipientLinkedinUrl": f"{JOHN}-2"},
    )
    assert status == 429
    assert payload == {
        "statusCode": 429,
        "message": "Daily connection limit exceeded",
        "error": "Too Many Requests",
    }
    # The client tells a spent sender from a transient limit by these words.
    assert "daily" in payload["message"].lower() and "limit" in payload["message"].lower()
    assert "Retry-After" not in headers
    # Another sender still has its own capacity.
    assert (await connect(http, server, url=f"{JOHN}-2", sender="s_free"))[0] == 200
    assert [i.linkedin_url for i in server.state.invitations] == [
        f"{JOHN}-0",
        f"{JOHN}-1",
        f"{JOHN}-2",
    ]
    assert server.state.counters[("connect", "daily_limit")] == 1
    assert server.state.counters[("connect", "sent")] == 3


async def test_capacity_renews_when_the_window_ends(
    sandbox: SandboxFactory, http: aiohttp.ClientSession, fake_clock: FakeClock
) -> None:
    start = fake_clock.now
    server = await sandbox(senders=SENDERS, clock=fake_clock, window_seconds=100.0)
    for n in range(2):
        assert (await connect(http, server, url=f"{JOHN}-{n}"))[0] == 200
    fake_clock.advance(99.9)
    assert (await connect(http, server, url=f"{JOHN}-2"))[0] == 429
    quota = await premium_quota(http, server)
    assert quota == {
        "limit": 2,
        "used": 2,
        "remaining": 0,
        "resetsAt": iso_timestamp(start + 100),
    }

    fake_clock.advance(0.1)
    quota = await premium_quota(http, server)
    assert quota == {"limit": 2, "used": 0, "remaining": 2, "resetsAt": iso_timestamp(start + 200)}
    assert (await connect(http, server, url=f"{JOHN}-2"))[0] == 200
    assert (await premium_quota(http, server))["used"] == 1

    # A window skipped entirely still renews (no carry-over of unused capacity either).
    fake_clock.advance(1000)
    quota = await premium_quota(http, server)
    assert quota == {"limit": 2, "used": 0, "remaining": 2, "resetsAt": iso_timestamp(start + 1200)}


async def premium_quota(http: aiohttp.ClientSession, server: SandboxServer) -> Any:
    status, payload, _ = await call(http, server, "GET", "/senders/quotas")
    assert status == 200
    return next(s for s in payload["senders"] if s["senderId"] == "s_premium")["connections"]


async def test_already_connected_profiles_spend_no_capacity(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    server = await sandbox(senders=SENDERS, already_connected=frozenset({f"{JOHN}/"}))
    # Matched however the URL is written; answered even with the capacity spent.
    for url in (JOHN, "https://linkedin.com/in/John-Doe", JOHN):
        status, payload = await connect(http, server, url=url)
        assert status == 200
        assert list(payload) == list(CONNECT_EXAMPLE)
        assert payload["status"] == "already_connected"
        assert payload["recipientLinkedinUrl"] == url
        assert payload["requestId"].startswith("conn_")
    for n in range(2):
        assert (await connect(http, server, url=f"{JOHN}-{n}"))[0] == 200
    assert (await connect(http, server, url=JOHN))[1]["status"] == "already_connected"
    assert len(server.state.invitations) == 2
    assert server.state.counters[("connect", "already_connected")] == 4


async def test_free_senders_drop_the_note(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    server = await sandbox(senders=SENDERS)
    assert (await connect(http, server, url=f"{JOHN}-1", sender="s_free", note="Hi"))[0] == 200
    assert (await connect(http, server, url=f"{JOHN}-2", sender="s_premium", note="Hi"))[0] == 200
    assert (await connect(http, server, url=f"{JOHN}-3", sender="s_premium", note=""))[0] == 200
    assert (await connect(http, server, url=f"{JOHN}-4", sender="s_free"))[0] == 200
    assert [i.note for i in server.state.invitations] == [None, "Hi", None, None]


async def test_a_repeated_recipient_is_invited_again_and_counted(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    server = await sandbox(senders=SENDERS)
    await connect(http, server, url=JOHN, sender="s_premium")
    await connect(http, server, url=f"{JOHN}/", sender="s_free")
    await connect(http, server, url="https://www.linkedin.com/in/other", sender="s_free")
    assert [i.linkedin_url for i in server.state.invitations] == [
        JOHN,
        f"{JOHN}/",
        "https://www.linkedin.com/in/other",
    ]
    assert server.state.counters[("connect", "repeat")] == 1
    assert server.state.duplicates() == {"john-doe": 2}
    assert len({i.request_id for i in server.state.invitations}) == 3


@pytest.mark.parametrize(
    ("status_word", "http_status", "message"),
    [
        ("disconnected", 400, "Sender s_x is disconnected"),
        ("rate_limited", 429, "Daily connection limit exceeded"),
    ],
)
async def test_unusable_senders(
    sandbox: SandboxFactory,
    http: aiohttp.ClientSession,
    status_word: str,
    http_status: int,
    message: str,
) -> None:
    server = await sandbox(senders=(SandboxSender("s_x", status=status_word),))
    status, payload = await connect(http, server, sender="s_x")
    assert status == http_status
    assert_error_shape(payload, http_status)
    assert payload["message"] == message
    assert server.state.invitations == []


async def test_senders_list_has_the_documented_fields(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    senders = (*SENDERS, SandboxSender("s_off", status="disconnected"))
    server = await sandbox(senders=senders)
    status, payload, _ = await call(http, server, "GET", "/inbox/senders")
    assert status == 200
    assert list(payload) == ["senders", "total"]
    assert payload["total"] == 3
    for item in payload["senders"]:
        assert set(item) == set(SENDER_FIELDS)
        for name, kind in SENDER_FIELDS.items():
            assert type(item[name]) is kind, name
        assert item["remainingMessages"] == item["dailyMessageLimit"] - item["messagesSentToday"]
    assert [(s["id"], s["name"], s["status"]) for s in payload["senders"]] == [
        ("s_premium", "Pat Premium", "active"),
        ("s_free", "Fay Free", "active"),
        ("s_off", "Sandbox Sender", "disconnected"),
    ]
    assert payload["senders"][0]["linkedinUrl"].startswith("https://www.linkedin.com/in/")
    assert server.state.counters[("senders", "ok")] == 1


async def test_quotas_have_the_assumed_fields(
    sandbox: SandboxFactory, http: aiohttp.ClientSession, fake_clock: FakeClock
) -> None:
    server = await sandbox(senders=SENDERS, clock=fake_clock, window_seconds=3600)
    await connect(http, server, sender="s_free")
    status, payload, _ = await call(http, server, "GET", "/senders/quotas")
    assert status == 200
    assert list(payload) == ["senders", "total"]
    assert payload["total"] == 2
    resets = "2023-11-14T23:13:20.000Z"
    for item in payload["senders"]:
        assert list(item) == ["senderId", "connections", "messages", "likes"]
        for part in ("connections", "messages", "likes"):
            assert list(item[part]) == list(QUOTA_FIELDS)
            for name, kind in QUOTA_FIELDS.items():
                assert type(item[part][name]) is kind, (part, name)
            assert item[part]["resetsAt"] == resets
    by_id = {item["senderId"]: item["connections"] for item in payload["senders"]}
    assert by_id == {
        "s_premium": {"limit": 2, "used": 0, "remaining": 2, "resetsAt": resets},
        "s_free": {"limit": 5, "used": 1, "remaining": 4, "resetsAt": resets},
    }


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nowhere", 404), ("GET", "/inbox/connect", 405), ("DELETE", "/inbox/senders", 405)],
)
async def test_unknown_routes_answer_in_the_error_shape(
    sandbox: SandboxFactory, http: aiohttp.ClientSession, method: str, path: str, status: int
) -> None:
    server = await sandbox()
    got, payload, _ = await call(http, server, method, path)
    assert got == status
    assert_error_shape(payload, status)
    assert payload["message"] == f"Cannot {method} /v1{path}"


async def test_counters_account_for_every_request(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    server = await sandbox(senders=SENDERS, faults=(FaultRule("error", nth=2),))
    await connect(http, server, url=f"{JOHN}-1")
    await connect(http, server, url=f"{JOHN}-2")  # the injected 500
    await connect(http, server, url=f"{JOHN}-3")
    await connect(http, server, url=f"{JOHN}-4")  # capacity 2: spent
    await connect(http, server, sender="nobody")
    await call(http, server, "GET", "/inbox/senders")
    await call(http, server, "GET", "/senders/quotas", key="bad")
    assert server.state.counters == {
        ("connect", "sent"): 2,
        ("connect", "fault:500"): 1,
        ("connect", "daily_limit"): 1,
        ("connect", "unknown_sender"): 1,
        ("senders", "ok"): 1,
        ("quotas", "unauthorized"): 1,
    }
    assert server.state.requests == {"connect": 5, "senders": 1}
    assert server.state.counters[("connect", "sent")] == len(server.state.invitations)


async def test_start_and_stop_without_async_with(http: aiohttp.ClientSession) -> None:
    server = SandboxServer(SandboxConfig(senders=SENDERS))
    with pytest.raises(RuntimeError):
        _ = server.base_url
    await server.start()
    try:
        assert (await connect(http, server))[0] == 200
    finally:
        await server.stop()
    await server.stop()  # idempotent
    with pytest.raises(aiohttp.ClientConnectionError):
        await connect(http, server)


async def test_a_taken_port_raises_oserror(sandbox: SandboxFactory) -> None:
    first = await sandbox()
    with pytest.raises(OSError):
        await SandboxServer(SandboxConfig(), port=first.port).start()


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"senders": (SandboxSender("a"), SandboxSender("a"))}, "unique"),
        ({"window_seconds": 0}, "window_seconds"),
        ({"accept_share": 1.5}, "accept_share"),
        ({"api_key": ""}, "api_key"),
        ({"webhook_url": "http://127.0.0.1:1/"}, "webhook_secret"),
    ],
)
def test_config_rejects_nonsense(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        SandboxConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"id": ""}, "id"),
        ({"id": "a", "capacity": -1}, "capacity"),
        ({"id": "a", "status": "x"}, "status"),
    ],
)
def test_sender_rejects_nonsense(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        SandboxSender(**kwargs)


@pytest.mark.parametrize(
    ("spec", "premium", "free", "expected"),
    [
        (None, None, set(), [("sender_alice", 25, True), ("sender_bob", 25, False)]),
        ("a:3,b:0", None, set(), [("a", 3, True), ("b", 0, True)]),
        (" a:3 , b:1 ,", None, {"b"}, [("a", 3, True), ("b", 1, False)]),
        ("a:3,b:1,c:2", {"c"}, set(), [("a", 3, False), ("b", 1, False), ("c", 2, True)]),
    ],
)
def test_senders_from_spec(
    spec: str | None, premium: set[str] | None, free: set[str], expected: list[Any]
) -> None:
    senders = senders_from_spec(spec, premium, free)
    assert [(s.id, s.capacity, s.premium) for s in senders] == expected


@pytest.mark.parametrize(
    ("spec", "premium", "free", "problem"),
    [
        ("a", None, set(), "expected ID:CAPACITY"),
        ("a:-1", None, set(), "expected ID:CAPACITY"),
        (":3", None, set(), "expected ID:CAPACITY"),
        ("a:1", {"a"}, {"a"}, "both premium and free"),
        ("a:1", None, {"zed"}, "not a sender of this sandbox: zed"),
    ],
)
def test_senders_from_spec_rejects(
    spec: str, premium: set[str] | None, free: set[str], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        senders_from_spec(spec, premium, free)


def test_duplicate_sender_ids_are_caught_by_the_config() -> None:
    with pytest.raises(ValueError, match="unique"):
        SandboxConfig(senders=senders_from_spec("a:1,a:2"))


async def test_a_recorded_stand_in_started_again_knows_who_was_invited(
    sandbox: SandboxFactory, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    record = tmp_path / "record.jsonl"
    first = await sandbox(senders=SENDERS, record_path=str(record))
    assert (await connect(http, first, note="hi"))[0] == 200
    assert (await connect(http, first, url="https://www.linkedin.com/in/jane-roe"))[0] == 200
    with record.open("a", encoding="utf-8") as f:
        f.write('{"sender_id": "s_prem')  # a line torn by a kill mid-write
    again = await sandbox(senders=SENDERS, record_path=str(record))
    assert [i.linkedin_url for i in again.state.invitations] == [
        i.linkedin_url for i in first.state.invitations
    ]
    assert again.state.invitations[0] == first.state.invitations[0]
    await connect(http, again)  # John, a second time: the stand-in sees it
    assert again.state.duplicates() == {"john-doe": 2}
    assert again.state.counters[("connect", "repeat")] == 1
